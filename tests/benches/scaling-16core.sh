#!/usr/bin/env bash
# The analytics scaling run of issue 16 item 5, prepared for a machine with 16 cores that has
# neither cargo nor nats-server: release binaries built on the development machine travel
# with the checkout, and this script runs them there and writes every result to $OUT.
#
# On the development machine (from the repository root):
#
#   export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
#   cargo build --release -p borderwatch --bin borderwatch
#   cargo bench -p borderwatch-e2e --bench analytics_scaling --no-run        # prints its path
#   cargo bench -p borderwatch-analytics --bench analytics --no-run          # prints its path
#   tests/benches/scaling-16core.sh stage \
#       "$CARGO_TARGET_DIR"/release/deps/analytics_scaling-<hash> \
#       "$CARGO_TARGET_DIR"/release/deps/analytics-<hash> \
#       "$CARGO_TARGET_DIR"/release/borderwatch "$NATS_SERVER_BIN"
#
# `stage` strips the four binaries and packs them into target/scaling/bins.tar.xz (ignored by
# git: /target). Carry `target/scaling` to the machine and run, from the repository root:
#
#   tests/benches/scaling-16core.sh run        # results in $OUT (default ./scaling-out)
#
# What `run` does, in this order, each step under its own time limit so that the whole fits
# one 10-minute command (the limits are environment variables, in seconds):
#   1. machine.txt: cores, processor, memory, load average, kernel.
#   2. analytics.md: the in-process bench (crates/analytics/benches/analytics.rs), one thread
#      against all cores on one big release (BW_LIMIT_ANALYTICS, default 90).
#   3. replicas-1-thread.md: 1, 2, 4 and 8 `borderwatch analytics` processes with one thread
#      each (RAYON_NUM_THREADS = POLARS_MAX_THREADS = 1): how throughput grows with replicas
#      when each has a core (BW_LIMIT_ONE_THREAD, default 300).
#   4. replicas-all-threads.md: the same with every replica free to use all cores, as a
#      deployment runs them (BW_LIMIT_ALL_THREADS, default 150).
# BENCH_SERIES (default 25,000 series × 40 quarters) and BW_REPLICAS (default 1,2,4,8) are
# passed on. A step that runs out of time keeps the rows it printed; the rest still run.
set -uo pipefail

stage() {
    if [ "$#" -ne 4 ]; then
        echo "usage: $0 stage SCALING_BENCH ANALYTICS_BENCH BORDERWATCH NATS_SERVER" >&2
        exit 2
    fi
    local dir=target/scaling
    local tree=$dir/tree
    rm -rf "$tree" && mkdir -p "$tree/release/deps" || exit 1
    # The bench finds `borderwatch` beside its deps/ folder (tests/harness: borderwatch_bin).
    strip -o "$tree/release/deps/analytics_scaling" "$1" &&
        strip -o "$tree/release/deps/analytics" "$2" &&
        strip -o "$tree/release/borderwatch" "$3" &&
        cp "$4" "$tree/nats-server" || exit 1
    tar -C "$tree" -cf - . | xz -T0 -6 >"$dir/bins.tar.xz" || exit 1
    rm -rf "$tree"
    ls -l "$dir/bins.tar.xz"
    echo "carry target/scaling (the whole checkout must stay under 64 MiB)"
}

# Runs "$@" under `timeout $1`, its output teed to $2; notes a timeout in the file.
step() {
    local limit=$1 file=$2
    shift 2
    echo "## $(basename "$file" .md): $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$file"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$file"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "(exit $rc$([ "$rc" -eq 124 ] && echo ": stopped after $limit s"))" | tee -a "$file"
    fi
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$file"
}

run() {
    local out=${OUT:-$PWD/scaling-out}
    local bins=/tmp/bw-scaling
    mkdir -p "$out" "$bins" || exit 1
    xz -dc target/scaling/bins.tar.xz | tar -C "$bins" -xf - || exit 1
    {
        echo "cores: $(nproc)"
        grep -m1 'model name' /proc/cpuinfo
        grep MemTotal /proc/meminfo
        echo "load: $(cat /proc/loadavg)"
        uname -a
    } >"$out/machine.txt"
    cat "$out/machine.txt"
    # No cargo there: the harness's rebuild of `borderwatch` fails to start and it uses the
    # staged binary as it is.
    export CARGO=/nonexistent/cargo
    export NATS_SERVER_BIN=$bins/nats-server
    export BENCH_SERIES=${BENCH_SERIES:-25000}
    local replicas=${BW_REPLICAS:-1,2,4,8}
    step "${BW_LIMIT_ANALYTICS:-90}" "$out/analytics.md" "$bins/release/deps/analytics"
    BENCH_REPLICAS=$replicas BENCH_THREADS=1 step "${BW_LIMIT_ONE_THREAD:-300}" \
        "$out/replicas-1-thread.md" "$bins/release/deps/analytics_scaling"
    BENCH_REPLICAS=$replicas step "${BW_LIMIT_ALL_THREADS:-150}" \
        "$out/replicas-all-threads.md" "$bins/release/deps/analytics_scaling"
}

case "${1:-}" in
stage) shift && stage "$@" ;;
run) run ;;
*)
    echo "usage: $0 stage SCALING_BENCH ANALYTICS_BENCH BORDERWATCH NATS_SERVER | $0 run" >&2
    exit 2
    ;;
esac
