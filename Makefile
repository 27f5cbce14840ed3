# ktrdr-images: the two commands of the README, and a few helpers.
#
#   make images      set up the offline world as needed (tools, buildkitd, registry,
#                    base images, package index), then build the four images
#                    (the build lands with the LLB core; until then it says so)
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

images: world
	@echo "make images: the offline world is up; building the four images arrives with the LLB core issue."

test: fmt-check vet test-short test-integration

test-short:
	$(GO) test -short $(TESTFLAGS) ./...

# -count=1: integration results depend on the world, never on Go's test cache.
test-integration:
	$(GO) test -count=1 -timeout 60m -v $(TESTFLAGS) ./integration/...

world:
	$(WORLD) up

world-down:
	$(WORLD) down

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
