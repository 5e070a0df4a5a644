#!/usr/bin/env bash
# Averages analytics' per-part debug timings per series, from a log written with
# RUST_LOG=borderwatch_analytics=debug (the scale or analytics_scaling bench, or a role):
#   tests/benches/part-timings.sh scale.log
# Parts are grouped by their size (a history's parts and a quarter's differ). The log's
# read/evaluated/stored/recorded times are cumulative within a part; this prints each step's
# own share, in milliseconds per series, and each release's release-wide step.
set -euo pipefail
log=${1:?usage: part-timings.sh LOG}
plain() { sed 's/\x1b\[[0-9;]*m//g' "$log"; }
plain | grep "part timings" |
  sed 's/.*series=\([0-9]*\) read_ms=\([0-9]*\) evaluated_ms=\([0-9]*\) stored_ms=\([0-9]*\) recorded_ms=\([0-9]*\).*/\1 \2 \3 \4 \5/' |
  awk '{k=$1; n[k]++; s[k]+=$1; r[k]+=$2; e[k]+=$3-$2; st[k]+=$4-$3; rc[k]+=$5-$4; t[k]+=$5}
    END {for (k in n) printf "parts of %s series: %d parts; ms per series: read %.3f, evaluate %.3f, store %.3f, record %.3f, total %.3f (sum of part times %.1f s)\n", k, n[k], r[k]/s[k], e[k]/s[k], st[k]/s[k], rc[k]/s[k], t[k]/s[k], t[k]/1000}'
plain | grep "release-wide timings" |
  sed 's/.*parts=\([0-9]*\) incident_work=\([0-9]*\) surges=\([0-9]*\) incidents_ms=\([0-9]*\) announced_ms=\([0-9]*\).*/\1 \2 \3 \4 \5/' |
  awk '{n[$1]++; w[$1]+=$2; i[$1]+=$4; a[$1]+=$5}
    END {for (k in n) printf "releases of %s parts: %d releases; mean incident work %.0f series, incidents %.0f ms, announced %.0f ms\n", k, n[k], w[k]/n[k], i[k]/n[k], a[k]/n[k]}'
