# Percore's two quick-start commands:
#   make run    — the main job (for now the raft log benchmark; a later issue makes it
#                 an embedded cluster running YCSB workload A)
#   make test   — formatting and lint checks, then every test of the workspace
# Both install the build prerequisites first when they are missing (scripts/setup.sh).
#
# Everything builds in the release profile, into one persistent target directory, so that
# RocksDB's C++ (~20-30 min on 2 cores) compiles once per machine.

CARGO_TARGET_DIR ?= $(HOME)/.cache/percore/target
export CARGO_TARGET_DIR
CARGO ?= cargo

.PHONY: setup run test build lint bench-log

setup:
	@./scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --all-targets

run: setup
	$(CARGO) run --release -p percore-bench -- log --regions 64 --entry-size 128 --duration 10s

test: setup lint
	$(CARGO) test --release --workspace

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

bench-log: setup
	$(CARGO) run --release -p percore-bench -- log --regions 64 --entry-size 128 --duration 10s --json
