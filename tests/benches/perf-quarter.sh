#!/usr/bin/env bash
# Profiles the scale bench's quarter phase: the bench process (ingest, analytics and notify
# run in it) and nats-server, 30 s each at once, from 5 s into the quarter.
#   cargo bench -p borderwatch-e2e --bench scale --no-run   # prints the binary's path
#   tests/benches/perf-quarter.sh <that binary> <out dir>
# Then: perf report -i <out>/bench.perf --no-children --sort dso,symbol --stdio
# (and nats.perf likewise). BENCH_FIGURES sizes the run (default here 10,000,000).
# Needs perf and nats-server (NATS_SERVER_BIN or on PATH).
set -euo pipefail
bin=${1:?usage: perf-quarter.sh BENCH_BINARY OUT_DIR}
out=${2:?usage: perf-quarter.sh BENCH_BINARY OUT_DIR}
mkdir -p "$out"
BENCH_FIGURES=${BENCH_FIGURES:-10000000} BENCH_EMBEDDED=0 "$bin" --bench > "$out/bench.log" 2>&1 &
pid=$!
# The history's analysis is over when its peak memory is printed; the quarter follows.
until grep -q "analytics + notify) |" "$out/bench.log" 2>/dev/null; do
  sleep 1
  kill -0 "$pid" 2>/dev/null || { echo "the bench ended early: $out/bench.log" >&2; exit 1; }
done
sleep 5
nats=$(pgrep -P "$pid" nats-server | head -1)
echo "bench $pid, nats-server $nats: recording 30 s"
perf record -F 499 -g -o "$out/bench.perf" -p "$pid" -- sleep 30 > /dev/null 2>&1 &
perf record -F 499 -g -o "$out/nats.perf" -p "$nats" -- sleep 30 > /dev/null 2>&1 &
wait "$pid"
echo "done: $out/bench.log, $out/bench.perf, $out/nats.perf"
