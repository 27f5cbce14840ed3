# ktrdr-images: the two commands of the README, and a few helpers.
#
#   make images      set up the offline world as needed (tools, buildkitd, registry,
#                    base images, package index), then build the four images of
#                    examples/ktrdr in one invocation, probe them, push them to the
#                    world's registry and print the table (REPORT=FILE: also JSON;
#                    APP=examples/signals: the second example's images;
#                    PLATFORMS=linux/amd64,linux/arm64: both platforms)
#   make test        unit tests, then the integration tests on the offline world,
#                    which is brought up as needed (what .ci/run runs)
#   make test-short  unit tests only, no daemon, seconds
#   make world       bring the offline world up, leave it running, print how to use it
#   make world-down  stop the world's services
#
# The world lives in $KTRDR_IMAGES_CACHE (default /var/cache/ktrdr-images).
# GO and TESTFLAGS may be set on the command line.

GO        ?= go
TESTFLAGS ?=
WORLD      = $(GO) run ./integration/world/cmd/ktrdr-world

.PHONY: images test test-short test-integration world world-down vet fmt-check

REPORT ?=
# APP: the project whose images make images builds (its [tool.ktrdr-images]
# spec, or KTRDR's four): make images APP=examples/signals
APP    ?= examples/ktrdr
# PLATFORMS: make images PLATFORMS=linux/amd64,linux/arm64 builds each image
# for both (worker-gpu: linux/amd64 only), every platform probed.
PLATFORMS ?= linux/amd64

images:
	$(GO) run ./integration/cmd/images -context $(APP) -platform $(PLATFORMS) $(if $(REPORT),-report $(REPORT))

test: fmt-check vet test-short test-integration

test-short:
	$(GO) test -short $(TESTFLAGS) ./...

# -count=1: integration results depend on the world, never on Go's test cache.
# -p 1: the packages share one world (one buildkitd, one registry), and the
# world's own tests stop and repair it; they must not run at the same time.
test-integration:
	$(GO) test -count=1 -p 1 -timeout 75m -v $(TESTFLAGS) ./integration/...

world:
	$(WORLD) up

world-down:
	$(WORLD) down

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# make verify: the seed's own verification (docker images, docker run, the
# smoke tests, Compose) on this machine's Docker engine, after building the
# images on the offline world (cached after make images) and loading them
# into the engine; prints each command, its output and a verdict. ATTACH=1
# uses a world that is already up instead of bringing it up.
.PHONY: verify
ATTACH ?=
verify:
	$(GO) run ./integration/cmd/verify $(if $(ATTACH),-attach)
