# Percore's two quick-start commands:
#   make run    — the main job: YCSB workload A on an embedded cluster (100k records
#                 loaded, 2 s warm-up, 20 s measured), printing the report
#   make test   — formatting and lint checks, then every test of the workspace
# Both install the build prerequisites first when they are missing (scripts/setup.sh).
#
# Everything builds in the release profile, into one persistent target directory, so that
# RocksDB's C++ (~20-30 min on 2 cores) compiles once per machine.

CARGO_TARGET_DIR ?= $(HOME)/.cache/percore/target
export CARGO_TARGET_DIR
CARGO ?= cargo

.PHONY: setup run test build lint bench-log bench-ycsb

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --all-targets

run: setup
	$(CARGO) run --release -p percore-bench -- ycsb --workload a --records 100000 --duration 20s --warmup 2s --threads 1 --concurrency 64

test: setup lint
	$(CARGO) test --release --workspace

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

bench-log: setup
	$(CARGO) run --release -p percore-bench -- log --regions 64 --entry-size 128 --duration 10s --json

bench-ycsb: setup
	$(CARGO) run --release -p percore-bench -- ycsb --workload a --records 100000 --duration 20s --warmup 2s --json ycsb-a.json --hdr ycsb-a
