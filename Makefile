# wso2img — the two commands a fresh machine needs are `make demo` and `make test`;
# both install and build what they use (make tools) and start their own daemons.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/wso2img/wso2img/internal/version.Version=$(VERSION)
# Fuzz targets run their seed corpus in every `go test`; FUZZTIME runs each for longer.
FUZZTIME ?= 20s

.PHONY: all build tools test unit lint fuzz demo bench clean

all: build

## build: bin/wso2img, its version stamped from git
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/wso2img ./cmd/wso2img

## tools: runc, busybox-static (Debian), and buildkitd, buildctl, registry built from pinned modules into bin/
tools:
	@bash hack/tools.sh

## test: the tools, lint, then every test with the race detector, end-to-end tests included (never skipped)
# go vet builds every dependency; built with -race as the tests are, it builds them once for both.
test: VETFLAGS = -race
test: tools lint
	WSO2IMG_E2E=1 $(GO) test -race -count=1 -timeout 20m ./...

## unit: the tests that need no daemons (end-to-end tests skip with a message)
unit:
	$(GO) test -race ./...

## lint: gofmt and go vet
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(VETFLAGS) ./...

## fuzz: run every parser's fuzz target for FUZZTIME each (FUZZTIME=10m for the figures in docs/RELIABILITY.md; FUZZ_ONLY=REGEXP picks targets)
fuzz:
	@FUZZTIME=$(FUZZTIME) FUZZ_ONLY='$(FUZZ_ONLY)' bash hack/fuzz.sh

## demo: the main job end to end against a local registry (and BuildKit) it starts itself; it
## builds only the tools it needs (the stock cosign CLI and Trivy in the background while the main job runs)
# bin/wso2img and the tools build side by side: on a fresh machine neither keeps two cores busy alone.
demo:
	@bash hack/tools.sh buildkitd registry & tools=$$!; \
	echo "building bin/wso2img"; \
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/wso2img ./cmd/wso2img || { kill $$tools; exit 1; }; \
	wait $$tools
	@bash hack/demo.sh

## bench: benchmarks, not part of make test: wso2img against the Dockerfile path (BuildKit, buildah) and the
## physical limit, on 100 MB to 1 GB bases; prints the tables and writes docs/BENCHMARKS.md (BENCHFLAGS=-quick: a smoke run)
bench: tools build
	@bash hack/bench/deps.sh
	$(GO) run ./hack/bench $(BENCHFLAGS)

clean:
	rm -rf bin .state
