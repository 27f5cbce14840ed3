# docker buildx bake for KTRDR's four images, built by the ktrdr-images
# frontend: no Dockerfile, the frontend image is named by BUILDKIT_SYNTAX.
#
#   docker buildx bake                       # all four (the default group)
#   docker buildx bake worker-cpu --push
#   REGISTRY=ghcr.io/me TAG=sha-abc docker buildx bake --push
#   docker buildx bake --call=targets worker-cpu
#
# Every ktrdr-images option is a build arg (see `ktrdr-images build --help`);
# the variables below forward the common ones, empty meaning the default.

variable "REGISTRY" {
  default = "127.0.0.1:5000/ktrdr"
}
variable "TAG" {
  default = "latest"
}
variable "FRONTEND" {
  default = "127.0.0.1:5000/ktrdr-images/frontend:latest"
}
variable "PLATFORMS" {
  default = "linux/amd64"
}
variable "CONTEXT" {
  default = "examples/ktrdr"
}
variable "SOURCE_DATE_EPOCH" {
  default = ""
}
variable "PYTHON_BASE" {
  default = ""
}
variable "CUDA_BASE" {
  default = ""
}
variable "INSTALLER" {
  default = ""
}
variable "UV_IMAGE" {
  default = ""
}
variable "UV_VERSION" {
  default = ""
}
variable "INDEX_URL" {
  default = ""
}
variable "CPU_INDEX_URL" {
  default = ""
}
variable "CUDA_INDEX_URL" {
  default = ""
}
variable "PROBE" {
  default = "true"
}

group "default" {
  targets = ["backend-dev", "backend-prod", "worker-cpu", "worker-gpu"]
}

target "_ktrdr" {
  context   = CONTEXT
  platforms = split(",", PLATFORMS)
  args = {
    BUILDKIT_SYNTAX   = FRONTEND
    SOURCE_DATE_EPOCH = SOURCE_DATE_EPOCH
    PYTHON_BASE       = PYTHON_BASE
    CUDA_BASE         = CUDA_BASE
    INSTALLER         = INSTALLER
    UV_IMAGE          = UV_IMAGE
    UV_VERSION        = UV_VERSION
    INDEX_URL         = INDEX_URL
    CPU_INDEX_URL     = CPU_INDEX_URL
    CUDA_INDEX_URL    = CUDA_INDEX_URL
    PROBE             = PROBE
  }
}

target "backend-dev" {
  inherits = ["_ktrdr"]
  target   = "backend-dev"
  tags     = ["${REGISTRY}/ktrdr-backend:dev"]
}

target "backend-prod" {
  inherits = ["_ktrdr"]
  target   = "backend-prod"
  tags     = ["${REGISTRY}/ktrdr-backend:prod"]
}

target "worker-cpu" {
  inherits = ["_ktrdr"]
  target   = "worker-cpu"
  tags     = ["${REGISTRY}/ktrdr-worker-cpu:${TAG}"]
}

target "worker-gpu" {
  inherits  = ["_ktrdr"]
  target    = "worker-gpu"
  tags      = ["${REGISTRY}/ktrdr-worker-gpu:${TAG}"]
  platforms = ["linux/amd64"]
}
