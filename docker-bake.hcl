# docker buildx bake for KTRDR's four images, built by the ktrdr-images
# frontend: no Dockerfile, the frontend image is named by BUILDKIT_SYNTAX.
# Generated from KTRDR's default spec (the project has no [tool.ktrdr-images]
# table) by `ktrdr-images bake-file`: change the spec, not this file, and run
# it again where this file is:
#   ktrdr-images bake-file --context examples/ktrdr --output docker-bake.hcl
#
#   docker buildx bake                       # all four (the default group)
#   docker buildx bake backend-prod --push
#   REGISTRY=ghcr.io/me TAG=sha-abc docker buildx bake --push
#   docker buildx bake --call=targets backend-prod
#   PLATFORMS=linux/amd64 docker buildx bake --load backend-prod  # one platform, into docker
#   docker buildx bake --sbom=true --provenance=mode=max --push
#   INDEX_URL=https://pypi.corp/simple INDEX_AUTH_SECRET=index INDEX_USERNAME=ci \
#     INDEX_PASSWORD=... docker buildx bake --push
#
# Every ktrdr-images option is a build arg (see `ktrdr-images build --help`);
# the variables below forward the common ones, empty meaning the default.

variable "REGISTRY" {
  default = "127.0.0.1:5000/ktrdr"
}
# TAG tags the images the spec names with latest or no tag; ktrdr-backend:dev
# and ktrdr-backend:prod keep theirs.
variable "TAG" {
  default = "latest"
}
variable "FRONTEND" {
  default = "127.0.0.1:5000/ktrdr-images/frontend:latest"
}
variable "PLATFORMS" {
  default = "linux/amd64,linux/arm64"
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
# OCI revision and source (labels, annotations, the SBOM's project entry).
variable "REVISION" {
  default = ""
}
variable "SOURCE" {
  default = ""
}
# A private index: INDEX_AUTH_SECRET names the secret, INDEX_SECRET_FROM says
# where buildx reads it (env=VAR or src=FILE); with INDEX_USERNAME it is the
# password or token, without it a netrc file.
variable "INDEX_AUTH_SECRET" {
  default = ""
}
variable "INDEX_USERNAME" {
  default = ""
}
variable "INDEX_SECRET_FROM" {
  default = "env=INDEX_PASSWORD"
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
    REVISION          = REVISION
    SOURCE            = SOURCE
    INDEX_AUTH_SECRET = INDEX_AUTH_SECRET
    INDEX_USERNAME    = INDEX_USERNAME
  }
  secret = INDEX_AUTH_SECRET == "" ? [] : ["id=${INDEX_AUTH_SECRET},${INDEX_SECRET_FROM}"]
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
