# cellbench: the two commands of the README are `make compare` and `make test`.
# Everything else here is what they are made of.

GO        ?= go
CARGO     ?= cargo
BIN       := bin
PINGORA_DEBUG   := target/debug/pingora-router
PINGORA_RELEASE := target/release/pingora-router

.PHONY: test compare build build-go build-pingora pingora-debug vet go-test parity-go-stdlib fuzz cargo-test parity-pingora bench latency clean

## test: every check — go vet, cargo test (which also builds the debug
## Pingora router), Go tests under -race (the parity suite runs against the Go
## router's default tuned engine there, the control-plane end-to-end tests
## against both routers), the parity suite against the Go router's stdlib
## engine, a bounded run of every Go fuzz target, then the parity suite
## against the Pingora router.
test: vet cargo-test pingora-debug go-test parity-go-stdlib fuzz parity-pingora

vet:
	$(GO) vet ./...

go-test:
	$(GO) test -race -count=1 -timeout 20m ./...

## fuzz: every Go fuzz target (found by name, so a new one is included) for
## FUZZTIME each. go test fuzzes one target per run, hence the loop; a
## failing input is written under the package's testdata/fuzz/ to commit.
FUZZTIME ?= 3s
fuzz:
	@set -e; files=$$(grep -rl --include='*_test.go' --exclude-dir=target --exclude-dir='.?*' '^func Fuzz' . | sort); \
	test -n "$$files" || { echo "make fuzz: no fuzz target found" >&2; exit 1; }; \
	for file in $$files; do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== fuzz $$target $$(dirname $$file)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$(dirname $$file); \
		done; \
	done

## parity-go-stdlib: the parity suite against go-router --engine stdlib
## (go-test runs it against the default engine, tuned).
parity-go-stdlib:
	CELLBENCH_GO_ENGINE=stdlib $(GO) test -race -count=1 -timeout 10m ./parity/...

cargo-test:
	$(CARGO) test --workspace --locked

pingora-debug:
	$(CARGO) build --locked -p pingora-router

parity-pingora: pingora-debug
	CELLBENCH_ROUTER_BIN=$(CURDIR)/$(PINGORA_DEBUG) CELLBENCH_ROUTER=pingora \
		$(GO) test -race -count=1 -timeout 10m ./parity/...

## compare: release builds of everything, then the harness with its defaults.
compare: build
	$(GO) run ./harness compare

build: build-go build-pingora

build-go:
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/go-router ./go-router
	$(GO) build -o $(BIN)/controlplane ./controlplane
	$(GO) build -o $(BIN)/mockbackends ./mockbackends

build-pingora:
	$(CARGO) build --release --locked -p pingora-router

## latency: added latency of both routers beside nginx at one request in
## flight, back to back and at 2 ms spacing (needs nginx and taskset; see
## go-router/README.md).
latency: build
	$(GO) build -o $(BIN)/floorproxy ./go-router/bench/floorproxy
	$(GO) run ./go-router/bench/latency --router $(BIN)/go-router,target/release/pingora-router --mock $(BIN)/mockbackends --bare $(BIN)/floorproxy --rounds 30
	$(GO) run ./go-router/bench/latency --router $(BIN)/go-router,target/release/pingora-router --mock $(BIN)/mockbackends --bare $(BIN)/floorproxy --rounds 15 --requests 500 --gap 2ms

## bench: micro-benchmarks of both routers' hot paths and the mock cells.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(CARGO) bench --workspace --locked

clean:
	rm -rf $(BIN)
