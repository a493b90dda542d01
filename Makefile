# natcheck: see README.md. Every target builds with CGO_ENABLED=0: the
# binary is static, to be copied onto a test host.
export CGO_ENABLED := 0
GO       ?= go
BIN      := bin/natcheck
BUILD    := build
FUZZTIME ?= 30s
# Minimizing each new corpus entry may take 60 s by default, which would
# eat a short CI run: a new input is kept unminimized after this long.
FUZZMINIMIZE ?= 2s
BENCHTIME ?= 1s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test bench bench-peers bench-live fuzz mutate demo lint clean

all: build

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/natcheck

# All tests: unit tests, randomized model tests, the Ginkgo specs and the
# fuzz seed corpora. The live-device suites (real kernels' NAT in network
# namespaces, judged against wall-clock deadlines) run after the rest and
# one at a time: with two of them at once on a 2-core machine a timing
# judgement failed now and then (TestConformance's B14 row read "not
# checked" once, 2026-12-02, on code that passed before and after).
LIVE_PKGS = ./device/external ./device/linuxnft ./device/livereplay
test:
	mkdir -p $(BUILD)
	$(GO) vet ./...
	NATCHECK_JUNIT=$(CURDIR)/$(BUILD)/specs-junit.xml $(GO) test -count=1 -timeout 12m \
		$$($(GO) list ./... | grep -v -x -e '.*/device/external' -e '.*/device/linuxnft' -e '.*/device/livereplay')
	$(GO) test -count=1 -timeout 12m -p 1 $(LIVE_PKGS)

# Benchmarks, with allocations: the engine on one core, the replay end to
# end on one and two cores, best case beside issue 11's busy subnet, and
# its length series (the first run generates the captures in the temp
# folder: about 11 GB, the 20,000,000-packet one 7 GB).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -cpu 1 ./reference/
	$(GO) test -run '^$$' -bench 'ReplayEndToEnd|ReplayPeakRSS|ReplayLength|ReplayOrder' -benchmem -benchtime 2x -cpu 1,2 ./replay/

# natcheck replay against tshark, tcpdump and tcprewrite on the best-case
# capture and issue 11's busy subnet, with the issue's goals as ratios of
# one run (see scripts/bench-peers.sh and docs/BENCHMARKS.md).
bench-peers: build
	NATCHECK=$(BIN) GO=$(GO) bash scripts/bench-peers.sh

# Live replay through the linux-nft device (learning every mapping, judging
# every flow) beside tcpreplay --topspeed into the same veth, in one run
# (docs/BENCHMARKS.md). Needs root; installs tcpreplay with apt-get when it
# is missing.
bench-live:
	command -v tcpreplay >/dev/null || apt-get install -y -qq tcpreplay || { apt-get update -qq && apt-get install -y -qq tcpreplay; }
	$(GO) test -run '^$$' -bench LiveReplay -benchmem -benchtime 3x ./device/livereplay/
	$(GO) test -run '^$$' -bench TopologySetup -benchmem -benchtime 30x ./device/topology/

# Fuzz every target of every package for FUZZTIME each (make fuzz FUZZTIME=10m).
# The fuzzing runs on Go 1.27.3, fetched by the go command from the module
# proxy (about 76 MB, once per machine): Go 1.26's fuzz coordinator can fail
# a target with "context deadline exceeded" and no failing input when
# -fuzztime ends under CPU load (golang/go#75804, fixed in 1.27; seen here in
# CI on FuzzEngineVsModel). The project itself still builds with Go 1.26.
FUZZ_GOTOOLCHAIN ?= go1.27.3
fuzz:
	@for p in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$p $$t"; GOTOOLCHAIN=$(FUZZ_GOTOOLCHAIN) $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$p || exit 1; \
		done; \
	done

# The main job on a bundled capture.
demo: build
	$(BIN) replay --ports-per-instance 8 captures/public/ndpi__anyconnect-vpn.pcap

# Mutation testing of the reference engine with gremlins (not in .ci/run:
# it builds and runs reference/'s tests once per mutant, 40 to 90 minutes
# on two shared cores). Results: build/mutate.log (one line per mutant)
# and build/mutate.json. GOFLAGS=-count=1: gremlins times the first test
# run to set each mutant's timeout, and a cached result takes no time
# (every mutant would then time out). Leave the checkout alone while it
# runs (no edit, merge or checkout under reference/): gremlins copies the
# module once at the start but parses each source file only when it
# reaches it, and writes the mutated file from that parse into its copy.
GREMLINS_VERSION ?= v0.6.0
mutate:
	mkdir -p $(BUILD)
	$(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
	GOFLAGS=-count=1 $$($(GO) env GOPATH)/bin/gremlins unleash --workers 2 --timeout-coefficient 5 \
		-o $(BUILD)/mutate.json ./reference | tee $(BUILD)/mutate.log

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin $(BUILD)
