#!/usr/bin/env bash
# Side by side on this machine: YCSB workloads C and A (RECORDS records, 1 client thread ×
# 64 outstanding) against
#   percore-1   an embedded 1-store Percore cluster
#   percore-3   an embedded 3-store Percore cluster (every region on all 3 stores)
#   redis       redis-server without persistence (--save '' --appendonly no)
#   redis-aof   redis-server with --appendonly yes --appendfsync always
# Everything on loopback; the server side (Percore's shards and PD, or redis-server) on
# SERVER_CPU, the client on CLIENT_CPU. Each Redis run gets a fresh redis-server on PORT,
# stopped by PID afterwards. Results: OUT/<name>.json, .txt and .hgrm files, then
# `percore-bench compare` of each Percore run against each Redis run.
#
#   scripts/ycsb-vs-redis.sh                 # after `cargo build --release -p percore-bench`
#   RECORDS=10000 DURATION=5s scripts/ycsb-vs-redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-ycsb-results}
RECORDS=${RECORDS:-100000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-16379}
BENCH=${BENCH:-${CARGO_TARGET_DIR:-$HOME/.cache/percore/target}/release/percore-bench}
WORKLOADS=${WORKLOADS:-"c a"}

scripts/setup.sh bench
command -v redis-server >/dev/null || { echo "redis-server is missing (scripts/setup.sh bench did not install it)" >&2; exit 1; }
[ -x "$BENCH" ] || { echo "$BENCH is missing: cargo build --release -p percore-bench" >&2; exit 1; }
mkdir -p "$OUT"

common=(--records "$RECORDS" --duration "$DURATION" --warmup "$WARMUP" --threads 1 --concurrency 64
    --client-cpus "$CLIENT_CPU" --progress 10s --max-time 5m)

run() {
    local name=$1
    shift
    echo "== $name: percore-bench ycsb $* ${common[*]}" | tee "$OUT/$name.txt"
    echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/$name.txt"
    "$BENCH" ycsb "$@" "${common[@]}" --label "$name" --json "$OUT/$name.json" --hdr "$OUT/$name" 2>&1 \
        | tee -a "$OUT/$name.txt"
}

redis_pid=""
redis_dir=""
redis_stop() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
    fi
    if [ -n "$redis_dir" ]; then
        rm -rf "$redis_dir"
        redis_dir=""
    fi
}
trap redis_stop EXIT

redis_start() {
    redis_dir=$(mktemp -d /tmp/ycsb-redis-XXXXXX)
    taskset -c "$SERVER_CPU" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --dir "$redis_dir" "$@" \
        >"$redis_dir/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server did not start; see $redis_dir/redis.log" >&2
    return 1
}

for w in $WORKLOADS; do
    run "percore-1-$w" --workload "$w" --stores 1 --cpus "$SERVER_CPU"
    run "percore-3-$w" --workload "$w" --stores 3 --cpus "$SERVER_CPU"
    redis_start --appendonly no
    run "redis-$w" --workload "$w" --redis "127.0.0.1:$PORT"
    redis_stop
    redis_start --appendonly yes --appendfsync always
    run "redis-aof-$w" --workload "$w" --redis "127.0.0.1:$PORT"
    redis_stop
done

for w in $WORKLOADS; do
    for p in percore-1 percore-3; do
        for r in redis redis-aof; do
            echo "== compare $p-$w / $r-$w"
            "$BENCH" compare "$OUT/$p-$w.json" "$OUT/$r-$w.json" | tee "$OUT/compare-$p-$r-$w.txt"
        done
    done
done
