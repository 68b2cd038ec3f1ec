# Percore's two quick-start commands:
#   make run    — the main job: YCSB workload A on an embedded cluster (100k records
#                 loaded, 2 s warm-up, 20 s measured), printing the report
#   make test   — formatting and lint checks, every test of the workspace (the scenario
#                 matrix, linearizability and process chaos included), the crash points
#                 (`failpoints` feature) and a fuzzing smoke run; see docs/testing.md
# Both install the build prerequisites first when they are missing (scripts/setup.sh).
#
# Everything builds in the release profile, into one persistent target directory, so that
# RocksDB's C++ (~20-30 min on 2 cores) compiles once per machine.

CARGO_TARGET_DIR ?= $(HOME)/.cache/percore/target
export CARGO_TARGET_DIR
CARGO ?= cargo

.PHONY: setup run test build lint test-failpoints test-matrix fuzz-smoke bench-log bench-ycsb

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --all-targets

run: setup
	$(CARGO) run --release -p percore-bench -- ycsb --workload a --records 100000 --duration 20s --warmup 2s --threads 1 --concurrency 64

test: setup lint
	$(CARGO) test --release --workspace
	$(MAKE) test-failpoints
	$(MAKE) fuzz-smoke

# Crash points: percore-server rebuilt with the `failpoints` feature, one process test per point.
test-failpoints: setup
	$(CARGO) test --release -p percore-raftstore --features failpoints --test failpoints -- --test-threads=1

# The TinyKV scenario matrix alone (27 fault combinations on 5 stores; also part of `make test`).
# Soak: PERCORE_MATRIX_ROUNDS=20 PERCORE_MATRIX_ROUND_MS=5000 make test-matrix.
test-matrix: setup
	$(CARGO) test --release -p percore-tests --test matrix

# Every fuzz target for a bounded time from its seed corpus (installs cargo-fuzz if missing).
fuzz-smoke: setup
	./scripts/fuzz.sh smoke

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	python3 scripts/import-cycles.py

bench-log: setup
	$(CARGO) run --release -p percore-bench -- log --regions 64 --entry-size 128 --duration 10s --json

bench-ycsb: setup
	$(CARGO) run --release -p percore-bench -- ycsb --workload a --records 100000 --duration 20s --warmup 2s --json ycsb-a.json --hdr ycsb-a
