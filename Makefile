# Vigil — build, run and test. Run as root: the sensor loads eBPF programs, and so do the tests.

GO      ?= go
BIN     := bin/vigil
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Where `make run` writes events (the embedded default configuration's output.jsonl).
JSONL   ?= /var/log/vigil/events.jsonl

.PHONY: build run test vet generate check-generate vmlinux bench bench-rules bench-store bench-otlp bench-sign bench-usercpu fuzz clean e2e package

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vigil

## package: the fleet packages in dist/: vigil_<version>_<arch>.deb and vigil-<version>.<arch>.rpm
## for amd64 and arm64 (nfpm as a Go library: no packaging tool needed), whose scripts run
## `vigil install` and start the service; and dist/darwin/, the macOS package's payload root,
## scripts and PPPC profile, from which `sh dist/darwin/build-pkg.sh` makes the .pkg on a Mac.
## The version is VERSION made deb- and rpm-safe (sensor/install/package/version.go).
package:
	$(GO) run ./sensor/install/package -version '$(VERSION)' -ldflags '$(LDFLAGS)' -out dist

## run: build and start the sensor with the embedded default configuration (Ctrl-C stops it).
run: build
	@[ "$$(id -u)" = 0 ] || { echo "make run: the sensor needs root (try: sudo make run)"; exit 1; }
	./$(BIN) run --jsonl $(JSONL)

## test: static checks, then every test under the race detector (needs cgo: gcc). The eBPF
## tests load real programs: run as root. Under CI=true a test that cannot run here (no root,
## no BTF, a missing tool) fails instead of skipping (internal/testenv).
test: vet
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

## vet: gofmt, then go vet for this machine, for darwin and for linux/arm64, and an arm64 build
## of the sensor: no arm64 machine runs the tests, so this is what keeps the arm64 build whole.
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfel.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=linux GOARCH=arm64 $(GO) vet ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -o /dev/null ./cmd/vigil
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/vigil

## generate: rebuild the eBPF objects and Go bindings from bpf/*.c, one per architecture
## (amd64, arm64), on any machine (needs clang, llvm, libbpf-dev).
generate:
	$(GO) generate ./bpf/ ./bench/floor/

## check-generate: regenerating from the committed sources must change nothing and add no file.
check-generate: generate
	@git diff --exit-code --stat -- bpf bench/floor && [ -z "$$(git ls-files --others --exclude-standard -- bpf bench/floor)" ] || \
	  { git ls-files --others --exclude-standard -- bpf bench/floor; echo "generated eBPF files are stale: run make generate and commit"; exit 1; }

## vmlinux: refresh bpf/vmlinux.h from the running kernel's BTF (needs bpftool). CO-RE makes
## the objects portable, so this is only needed to use new kernel types. It must be an x86-64
## kernel's: the arm64 object is built from the same header plus arm64's register types.
vmlinux:
	@[ "$$(uname -m)" = x86_64 ] || { echo "make vmlinux: bpf/vmlinux.h must come from an x86-64 kernel (this is $$(uname -m))"; exit 1; }
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

## bench: the full benchmark (as root): overhead side by side (no sensor, empty-program floor,
## Vigil, auditd; untracked and tracked), throughput and loss, correlator on one core, sensor
## RSS/CPU/start-up; writes bench/results/full.{md,json,png}; then the store's, the OTLP
## export's and signing's Go benchmarks on one core (bench/results/fleet-outputs.md). The
## quick side by side alone: make bench BENCH_FLAGS='-mode quick' (bench/results/quick.md).
## See bench/README.md.
bench: bench-rules
	@[ "$$(id -u)" = 0 ] || { echo "make bench: the benchmark loads eBPF programs and runs auditd: run as root"; exit 1; }
	$(GO) build -o bin/vigil-bench-sensor ./cmd/vigil
	$(GO) build -o bin/loadgen ./bench/loadgen
	$(GO) build -o bin/bench ./bench
	./bin/bench -mode full -vigil bin/vigil-bench-sensor -loadgen bin/loadgen $(BENCH_FLAGS)
	$(MAKE) bench-store bench-otlp bench-sign bench-usercpu

## bench-store: the embedded store's Go benchmarks on one core (no root needed): lines written
## per second and per CPU-second, batched; bytes per line for a million lines (beside the
## JSONL's and a raw-JSON column's); query latency on a million lines; a million lines into a
## 64 MiB bound. A few minutes; bench/results/store.md reports a run.
bench-store:
	$(GO) test -run '^$$' -bench 'StoreWrite' -benchtime 300000x -count 3 -cpu 1 ./sensor/sink/store/
	$(GO) test -run '^$$' -bench 'StoreSize|StoreQuery|StoreRetention' -benchtime 10x -cpu 1 -timeout 30m ./sensor/sink/store/

## bench-otlp: the OTLP exporter's Go benchmarks on one core (no root needed): records/s and
## bytes/s per protocol to a loopback server decoding on the same core, and to a real
## OpenTelemetry Collector in its own process with the exporter's CPU per record; the spool's
## write and replay rates in records/s.
bench-otlp:
	$(GO) test -run '^$$' -bench 'Export|Spool' -benchtime 100000x -count 3 -cpu 1 ./sensor/sink/otlp/

## bench-usercpu: the sensor's user-space CPU per kernel event on one core, one open record
## through the whole path vigil run wires with the shipped defaults (decode, process table,
## hold journal, stitcher, starter rules, encoding, JSONL, store) and each step alone (no root
## needed); bench/results/usercpu.md reports a run.
bench-usercpu:
	$(GO) test -run '^$$' -bench '^BenchmarkUserCPU$$' -benchtime 20000x -cpu 1 ./cmd/vigil/

## bench-rules: the detection rules' cost per written line, the whole starter pack on one core
## over bound tool calls (goal: under 2 µs a line). Needs nothing but Go; `make bench` runs it first.
bench-rules:
	$(GO) test -run '^$$' -bench '^BenchmarkEvaluatePack$$' -benchmem -cpu 1 ./correlate/rules/

## bench-sign: the cost of output.sign on one core: a line written with and without its chain
## field (ns and bytes per line), and one seal (a new key, two signatures, three fsyncs). Needs
## nothing but Go; docs/integrity.md reports a run.
bench-sign:
	$(GO) test -run '^$$' -bench '^Benchmark(Uns|S)ignedWrite$$' -benchtime 300000x -count 3 -cpu 1 ./sensor/sink/jsonl/
	$(GO) test -run '^$$' -bench '^BenchmarkSeal$$' -benchtime 200x -count 3 -cpu 1 ./sensor/sink/jsonl/

## e2e: the real Claude Code and Codex CLIs (pinned, npm-installed into E2E_NPM_CACHE and reused),
## fully offline (one network namespace per scenario), under vigil run; scores Vigil's tool-call
## attribution and writes bench/e2e/results/report.{md,json}. Needs root and the npm registry on
## the first run. E2E_FLAGS e.g. -run 'claude/' or -examples docs/examples.
E2E_NPM_CACHE ?= /var/cache/vigil-e2e/npm
E2E_FLAGS ?=
e2e:
	@[ "$$(id -u)" = 0 ] || { echo "make e2e: needs root (eBPF, unshare -n): try sudo make e2e"; exit 1; }
	$(GO) run ./bench/e2e -npm-cache $(E2E_NPM_CACHE) $(E2E_FLAGS)

## fuzz: run every fuzz target in the repository for FUZZTIME (default 30s) each. The list is
## generated (each package with a `func Fuzz`, asked with go test -list), so a new target is
## never left out. FUZZ_PKGS narrows it, e.g. FUZZ_PKGS=./correlate/.
FUZZTIME ?= 30s
FUZZ_PKGS ?= $(shell git grep -l '^func Fuzz' -- '*_test.go' | xargs -r -n1 dirname | sort -u | sed 's|^|./|')
fuzz:
	@set -e; n=0; for pkg in $(FUZZ_PKGS); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) $$pkg; n=$$((n+1)); \
	  done; done; \
	[ $$n -gt 0 ] || { echo "make fuzz: no fuzz targets found"; exit 1; }; echo "make fuzz: $$n targets passed"

clean:
	rm -rf bin dist
