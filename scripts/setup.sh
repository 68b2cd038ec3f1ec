#!/usr/bin/env bash
# Installs what building Percore needs on a fresh Debian/Ubuntu machine, only when missing:
#   libclang-dev       — bindgen for RocksDB's C API (librocksdb-sys)
#   protobuf-compiler  — protoc for raft-rs's prost codec and our .proto files
# `scripts/setup.sh bench` also installs what the side-by-side benchmarks and profiling use:
#   redis-server, redis-tools (redis-cli, redis-benchmark), linux-perf
# Idempotent and quiet when everything is there.
set -euo pipefail

missing=()
# libclang itself (libclang.so / libclang-N.so), not libclang-cpp, which some images carry
# without it and which bindgen cannot use.
have_libclang() {
    local f
    for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
        /usr/lib/*-linux-gnu/libclang.so* /usr/lib/*-linux-gnu/libclang-[0-9]*.so*; do
        [ -e "$f" ] && return 0
    done
    return 1
}
have_libclang || missing+=(libclang-dev)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if [ "${1:-}" = bench ]; then
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
    command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
fi

if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
    }
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
