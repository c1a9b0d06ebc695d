# Vigil: one static binary. `make demo` sets everything up and runs the demo;
# `make test` runs the whole test suite (lab tests need root).
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/vigil-ha/vigil/internal/cli.Version=$(VERSION) -X github.com/vigil-ha/vigil/internal/cli.Commit=$(COMMIT)
FUZZTIME ?= 10s

.PHONY: all build deps demo test test-unit fuzz vet bench bench-failover chaos clean deb

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

# Everything measured, results in bench/results/ (docs/performance.md explains them):
# the failover benchmark (root, about an hour), detection time and the idle cost of a
# 3-node cluster over 5 minutes on loopback, the decision core at 64 nodes x 2,000
# groups, the heartbeat codec.
bench: build bench-failover
	bin/vigil bench detection --trials 20 --timing default --json bench/results/detection-default.json
	bin/vigil bench detection --trials 20 --timing tuned --json bench/results/detection-tuned.json
	bin/vigil bench idle --duration 5m --json bench/results/idle.json
	$(GO) test -run='^$$' -bench=BenchmarkPlacementAfterNodeDeath -benchtime=200x -benchmem ./internal/decide/ | tee bench/results/scale.txt
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./internal/heartbeat/

# Client-observed failover in network namespaces (root, keepalived installed): Vigil and
# keepalived side by side on the same hosts, VIP and client, BENCH_TRIALS trials of
# each fault (power-off, all links cut) at default and tuned timers;
# bench/results/failover-{default,tuned}.json and failover.svg.
BENCH_TRIALS ?= 50
bench-failover:
	VIGIL_BENCH_FAILOVER=1 VIGIL_BENCH_TRIALS=$(BENCH_TRIALS) $(GO) test -count=1 -timeout 0 -v -run '^TestFailoverBenchmark$$' ./internal/labcluster/

# Randomised fault injection against real agents in network namespaces
# (root): a 3-node and a 5-node cluster with a witness, a client on the VIP,
# the 10 ms split-brain poll. SEED=0 takes one from the clock (logged);
# results (JSON + SVG timeline) go to bench/results/chaos/.
SEED ?= 0
DURATION ?= 10m
NODES ?= 3,5
chaos:
	$(GO) test -count=1 -timeout 0 -v -run '^TestChaos$$' ./internal/chaos/ -chaos.seed=$(SEED) -chaos.duration=$(DURATION) -chaos.nodes=$(NODES) -chaos.out=$(CURDIR)/bench/results/chaos

# dist/vigil_<version>_<arch>.deb: binary, systemd unit, man pages, completions (packaging/).
deb:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' ./packaging/build-deb.sh

clean:
	rm -rf bin
