# cellbench: the two commands of the README are `make compare` and `make test`.
# Everything else here is what they are made of.

GO        ?= go
CARGO     ?= cargo
BIN       := bin
PINGORA_DEBUG   := target/debug/pingora-router
PINGORA_RELEASE := target/release/pingora-router

.PHONY: test lint lint-go lint-rust compare compare-quick crosscheck build build-go build-pingora pingora-debug vet go-test parity-go-stdlib fuzz cargo-test parity-pingora k8s-validate bench latency clean

## test: every check — the linters (lint: lint-go, lint-rust), cargo test
## (which also builds the debug Pingora router), Go tests under -race (the
## parity suite runs against the Go router's default tuned engine there, the
## control-plane end-to-end tests against both routers), the Kubernetes
## manifests validated (k8s-validate), the parity suite against the Go router's stdlib
## engine, a bounded run of every Go fuzz target, the parity suite against
## the Pingora router, then a quick `harness compare` (release builds, every
## scenario and target once at a fraction of its duration: every report
## section is produced; its figures are not verdicts).
test: lint cargo-test pingora-debug go-test k8s-validate parity-go-stdlib fuzz parity-pingora compare-quick

## lint: every linter and formatter of both languages.
lint: lint-go lint-rust

vet:
	$(GO) vet ./...

## lint-go: gofmt (no file may need it), go vet, and staticcheck with every
## check (staticcheck.conf), pinned in go.mod as a tool (go tool staticcheck).
lint-go: vet
	@unformatted=$$(find . \( -path ./target -o -name '.?*' \) -prune -o -name '*.go' -print | xargs gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: run gofmt -w on:"; echo "$$unformatted"; exit 1; fi
	$(GO) tool staticcheck ./...

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

## k8s-validate: deploy/kubernetes decoded strictly into the Kubernetes API
## types (k8s.io/api, in a module of its own: not a dependency of cellbench)
## and its references checked; no cluster needed (docs/scale-out.md).
k8s-validate:
	cd deploy/kubernetes/validate && $(GO) vet ./... && $(GO) test -count=1 ./...

## parity-go-stdlib: the parity suite against go-router --engine stdlib
## (go-test runs it against the default engine, tuned).
parity-go-stdlib:
	CELLBENCH_GO_ENGINE=stdlib $(GO) test -race -count=1 -timeout 10m ./parity/...

## lint-rust: rustfmt and clippy over the Rust workspace, warnings as errors
## (pingora-router/clippy.toml holds the cognitive-complexity threshold).
lint-rust:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

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

## compare-quick: the whole pipeline in a few minutes (docs/measurement.md).
compare-quick: build
	$(GO) run ./harness compare --quick --skip-build --out reports/quick

## crosscheck: every proxy closed loop, the harness's generator beside wrk
## (apt-get install wrk), on the same budget; fails beyond 15 %.
crosscheck: build
	$(GO) run ./harness crosscheck --skip-build

build: build-go build-pingora

build-go:
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/go-router ./go-router
	$(GO) build -o $(BIN)/controlplane ./controlplane
	$(GO) build -o $(BIN)/mockbackends ./mockbackends
	$(GO) build -o $(BIN)/floorproxy ./go-router/bench/floorproxy

build-pingora:
	$(CARGO) build --release --locked -p pingora-router --bin pingora-router --example floor

## latency: added latency of every proxy beside nginx and direct at one
## request at a time (2 ms apart), in 8 rounds.
latency: build
	$(GO) run ./harness compare --skip-build --skip-parity --only one_in_flight --rounds 8

## bench: micro-benchmarks of both routers' hot paths and the mock cells.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(CARGO) bench --workspace --locked

clean:
	rm -rf $(BIN)
