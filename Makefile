# ktrdr-images: the two commands of the README.
#
#   make test        all tests (unit now; the integration suite joins with the
#                    offline world)
#   make test-short  unit tests only, no daemon, seconds
#
# GOFLAGS and TESTFLAGS may be set on the command line.

GO        ?= go
TESTFLAGS ?=

.PHONY: test test-short vet fmt-check

test: fmt-check vet
	$(GO) test $(TESTFLAGS) ./...

test-short:
	$(GO) test -short $(TESTFLAGS) ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
