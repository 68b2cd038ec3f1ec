#!/usr/bin/env bash
# Is the load generator the limit? GET throughput against one redis-server (no persistence,
# on SERVER_CPU) from `redis-benchmark -c 1 -P 64` and from `percore-bench ycsb --redis`
# (workload C, 1 thread × 64 outstanding, uniform keys), both on CLIENT_CPU, on the same
# RECORDS keys of VALUE bytes. Each client runs ROUNDS times, alternating; the medians and
# their ratio are printed (the target of issue 14: ycsb / redis-benchmark ≥ 0.8).
#
#   scripts/loadgen-vs-redis-benchmark.sh      # after `cargo build --release -p percore-bench`
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-100000}
VALUE=${VALUE:-1000}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-16380}
OUT=${OUT:-ycsb-results/loadgen}
BENCH=${BENCH:-${CARGO_TARGET_DIR:-$HOME/.cache/percore/target}/release/percore-bench}

scripts/setup.sh bench
[ -x "$BENCH" ] || { echo "$BENCH is missing: cargo build --release -p percore-bench" >&2; exit 1; }
mkdir -p "$OUT"

dir=$(mktemp -d /tmp/loadgen-redis-XXXXXX)
taskset -c "$SERVER_CPU" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

# The YCSB records (user…, one VALUE-byte value each), loaded by percore-bench itself.
fields=$((VALUE / 100))
ycsb=(--workload c --records "$RECORDS" -p fieldcount="$fields" -p fieldlength=100 -p requestdistribution=uniform
    --threads 1 --concurrency 64 --client-cpus "$CLIENT_CPU" --redis "127.0.0.1:$PORT")
"$BENCH" ycsb "${ycsb[@]}" --phase load >"$OUT/load.txt"
# redis-benchmark's keys (key:000000000000 … ) with values of the same size.
taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t set -n "$RECORDS" -r "$RECORDS" -d "$VALUE" -c 1 -P 64 -q \
    >/dev/null

rb=()
yc=()
for i in $(seq "$ROUNDS"); do
    n=$((600000 * SECONDS_PER_RUN))
    line=$(taskset -c "$CLIENT_CPU" timeout $((SECONDS_PER_RUN * 6)) redis-benchmark -p "$PORT" -t get -n "$n" \
        -r "$RECORDS" -d "$VALUE" -c 1 -P 64 -q --csv | grep '"GET"')
    rps=$(echo "$line" | cut -d, -f2 | tr -d '"')
    rb+=("$rps")
    "$BENCH" ycsb "${ycsb[@]}" --phase run --duration "${SECONDS_PER_RUN}s" --warmup 1s \
        --json "$OUT/ycsb-$i.json" >"$OUT/ycsb-$i.txt" 2>&1
    ops=$(grep -E '^run +TOTAL' "$OUT/ycsb-$i.txt" | awk '{print $6}')
    yc+=("$ops")
    echo "round $i: redis-benchmark GET $rps/s, percore-bench ycsb --redis C $ops ops/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
m_rb=$(median "${rb[@]}")
m_yc=$(median "${yc[@]}")
echo "median: redis-benchmark $m_rb GET/s, percore-bench $m_yc ops/s, ratio $(awk -v a="$m_yc" -v b="$m_rb" 'BEGIN {printf "%.2f", a / b}')"
