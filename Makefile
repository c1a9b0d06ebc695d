# Vigil: one static binary. `make demo` sets everything up and runs the demo;
# `make test` runs the whole test suite (lab tests need root).
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/vigil-ha/vigil/internal/cli.Version=$(VERSION) -X github.com/vigil-ha/vigil/internal/cli.Commit=$(COMMIT)
FUZZTIME ?= 10s

.PHONY: all build deps demo test test-unit fuzz vet bench clean deb

all: build

deps:
	@if [ "$$(id -u)" -eq 0 ]; then ./scripts/install-deps.sh; else echo "deps: not root, skipping apt (lab tests and the namespace demo need root)"; $(GO) mod download; fi

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/vigil ./cmd/vigil

demo: deps build
	./bin/vigil demo

vet:
	$(GO) vet ./...

# Unit, in-process, lab (network namespaces, real processes) and fuzz smoke tests.
test: deps vet
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

test-unit:
	$(GO) test -short -count=1 ./...

fuzz:
	./scripts/fuzz.sh ./internal/config/ FuzzParse $(FUZZTIME)
	./scripts/fuzz.sh ./internal/heartbeat/ FuzzDecode $(FUZZTIME)
	./scripts/fuzz.sh ./internal/heartbeat/ FuzzUnmarshal $(FUZZTIME)
	./scripts/fuzz.sh ./internal/hbimport/ FuzzParseHaCf $(FUZZTIME)
	./scripts/fuzz.sh ./internal/hbimport/ FuzzParseHaresources $(FUZZTIME)
	./scripts/fuzz.sh ./internal/hbimport/ FuzzImport $(FUZZTIME)

# Real 3-node clusters on loopback (no root needed); results go to bench/results/.
bench: build
	bin/vigil bench detection --trials 20 --timing default --json bench/results/detection-default.json
	bin/vigil bench detection --trials 20 --timing tuned --json bench/results/detection-tuned.json
	bin/vigil bench idle --duration 60s --json bench/results/idle.json
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./internal/heartbeat/

# dist/vigil_<version>_<arch>.deb: binary, systemd unit, man pages, completions (packaging/).
deb:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' ./packaging/build-deb.sh

clean:
	rm -rf bin
