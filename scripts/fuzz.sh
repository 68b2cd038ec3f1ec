#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer) — targets in fuzz/fuzz_targets/, seeds in fuzz/corpus/.
#
#   scripts/fuzz.sh smoke              every target for a bounded time from its seed corpus;
#                                      exits non-zero if any target crashes (CI)
#   scripts/fuzz.sh run TARGET [SECS]  a long run (default 3600 s), growing fuzz/corpus-work/TARGET
#   scripts/fuzz.sh repro TARGET FILE  runs one input (a crash artifact) and shows the panic
#   scripts/fuzz.sh build | list | seeds
#
# Works on a stable toolchain: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows.
# Installs cargo-fuzz when missing. Builds into $FUZZ_TARGET_DIR (default
# ~/.cache/percore/fuzz-target), in release with debug assertions and overflow checks, with
# AddressSanitizer (FUZZ_SANITIZER=none to turn it off). Crashes land in
# fuzz/artifacts/TARGET/ (crash-*, timeout-*, oom-*, leak-*).
#
# Tunables: SMOKE_SECONDS (per target, default 30), SMOKE_RUNS (per target, default 1000000,
# whichever comes first), FUZZ_TIMEOUT (seconds per input before it counts as a hang, 10),
# FUZZ_RUNS (stop `run` after this many executions as well).
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/percore/fuzz-target}"
SANITIZER="${FUZZ_SANITIZER:-address}"
SMOKE_SECONDS="${SMOKE_SECONDS:-30}"
SMOKE_RUNS="${SMOKE_RUNS:-1000000}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
TARGETS=(frame_codec request_decoding log_recovery)
BUILD_FLAGS=(-O -a --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR")

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

ensure_cargo_fuzz() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz" >&2
        cargo install cargo-fuzz --locked
    fi
}

# Per-target libFuzzer options: segments need room for several 4 KiB batches.
target_flags() {
    case "$1" in
        log_recovery) echo "-max_len=32768" ;;
        *) echo "" ;;
    esac
}

check_target() {
    local t
    for t in "${TARGETS[@]}"; do
        [ "$t" = "$1" ] && return 0
    done
    echo "fuzz: unknown target '$1' (targets: ${TARGETS[*]})" >&2
    exit 2
}

build() {
    ensure_cargo_fuzz
    local start=$SECONDS
    cargo fuzz build "${BUILD_FLAGS[@]}"
    echo "fuzz: build took $((SECONDS - start)) s" >&2
}

# fuzz TARGET WORK_CORPUS LIBFUZZER_ARGS... — new inputs go to WORK_CORPUS; the checked-in
# seeds are read but never written.
fuzz() {
    local t="$1" work="$2"
    shift 2
    mkdir -p "$work" "fuzz/artifacts/$t"
    # shellcheck disable=SC2046
    cargo fuzz run "${BUILD_FLAGS[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -timeout="$FUZZ_TIMEOUT" -print_final_stats=1 $(target_flags "$t") "$@"
}

cmd="${1:-}"
case "$cmd" in
    smoke)
        build
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        failed=()
        for t in "${TARGETS[@]}"; do
            echo "fuzz: smoke $t (${SMOKE_SECONDS} s or ${SMOKE_RUNS} runs)" >&2
            start=$SECONDS
            if fuzz "$t" "$work/$t" -max_total_time="$SMOKE_SECONDS" -runs="$SMOKE_RUNS" >"$work/$t.log" 2>&1; then
                grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done)' "$work/$t.log" >&2 || true
                echo "fuzz: $t ok in $((SECONDS - start)) s" >&2
            else
                tail -n 60 "$work/$t.log" >&2
                echo "fuzz: $t FAILED — the input is in fuzz/artifacts/$t/" >&2
                failed+=("$t")
            fi
        done
        if ((${#failed[@]})); then
            echo "fuzz: smoke failed: ${failed[*]}" >&2
            exit 1
        fi
        echo "fuzz: smoke passed" >&2
        ;;
    run)
        [ $# -ge 2 ] || usage
        check_target "$2"
        build
        # shellcheck disable=SC2086
        fuzz "$2" "fuzz/corpus-work/$2" -max_total_time="${3:-3600}" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS}
        ;;
    repro)
        [ $# -ge 3 ] || usage
        check_target "$2"
        ensure_cargo_fuzz
        RUST_BACKTRACE=1 cargo fuzz run "${BUILD_FLAGS[@]}" "$2" "$3"
        ;;
    build)
        build
        ;;
    list)
        printf '%s\n' "${TARGETS[@]}"
        ;;
    seeds)
        CARGO_TARGET_DIR="$TARGET_DIR" cargo run -q --manifest-path fuzz/Cargo.toml --example seeds
        ;;
    *)
        usage
        ;;
esac
