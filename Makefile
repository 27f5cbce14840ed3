# ktrdr-images: the two commands of the README, and a few helpers.
#
#   make images      set up the offline world as needed (tools, buildkitd, registry,
#                    base images, package index), then build the four images of
#                    examples/ktrdr in one invocation, probe them, push them to the
#                    world's registry and print the table (REPORT=FILE: also JSON;
#                    APP=examples/signals: the second example's images;
#                    PLATFORMS=linux/amd64,linux/arm64: both platforms)
#   make test        unit tests, then the integration tests on the offline world,
#                    which is brought up first (what .ci/run runs): every
#                    capability proven once, linux/amd64
#   make test-all    the same with the long tier: both platforms (the world's
#                    linux/arm64 half is brought up), the scale-out builder,
#                    every variant in the race drill
#   make test-times  the slowest tests of the last make test or test-all
#   make test-short  unit tests only, no daemon, seconds
#   make world       bring the offline world up, leave it running, print how to use it
#   make world-down  stop the world's services
#
# The world lives in $KTRDR_IMAGES_CACHE (default /var/cache/ktrdr-images).
# GO and TESTFLAGS may be set on the command line.

GO        ?= go
TESTFLAGS ?=
WORLD      = $(GO) run ./integration/world/cmd/ktrdr-world

.PHONY: images test test-all test-times test-short test-integration test-integration-all world world-arm64 world-down vet fmt-check

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

test-all: fmt-check vet test-short test-integration-all

test-short:
	$(GO) test -short $(TESTFLAGS) ./...

# The integration tests' go test -json events, for make test-times.
TEST_TIMES ?= .test-times.json
TESTTIMES   = $(GO) run ./integration/cmd/testtimes

# The world comes up first, on its own (its cold set-up is not inside any
# test binary's -timeout); each package's TestMain then reuses it.
# -count=1: integration results depend on the world, never on Go's test cache.
# -p 1: the packages share one world (one buildkitd, one registry), and the
# world's own tests stop and repair it; they must not run at the same time.
test-integration: world
	@rm -f $(TEST_TIMES)
	$(TESTTIMES) run -json $(TEST_TIMES) -- $(GO) test -json -count=1 -p 1 -timeout 45m -v $(TESTFLAGS) ./integration/...

# The long tier: KTRDR_TEST_LONG=1 runs the long tests, and a platform test
# that cannot have linux/arm64 fails instead of skipping.
test-integration-all: world-arm64
	@rm -f $(TEST_TIMES)
	KTRDR_TEST_LONG=1 KTRDR_TEST_REQUIRE_ARM64=1 $(TESTTIMES) run -json $(TEST_TIMES) -- $(GO) test -json -count=1 -p 1 -timeout 120m -v $(TESTFLAGS) ./integration/...

test-times:
	$(TESTTIMES) report -n 25 $(TEST_TIMES)

world:
	$(WORLD) up

world-arm64:
	$(WORLD) -arm64 up

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
