#!/usr/bin/env bash
# User-space instructions per POST /api/events request: the steadiest cost
# measure on a shared machine (callgrind counts instructions, not time).
#
#   bench/events_callgrind.sh [BUILD_DIR] [OUT_PREFIX]   (default: build, $TMPDIR/reai-events-cg)
#
# Runs `reai serve --threads 2` under callgrind (SQLite in a temp dir, the
# model bench/events_cpu.sh trains), warms up with wrk for 5 s, zeroes the
# counters, runs wrk -t1 -c4 for 15 s over 300 leads (LEADS), dumps, and
# prints the instructions per request of the whole server and without the
# WAL checkpointer thread (a checkpoint lands in the window or not: noise).
# The dump (OUT_PREFIX.PID.1) can be read with callgrind_annotate.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
out=${2:-${TMPDIR:-/tmp}/reai-events-cg}
source "$root/bench/events_bench_env.sh"
events_bench_setup cg
# OMP_WAIT_POLICY set: reai re-executes itself without it, which valgrind
# cannot follow.
OMP_WAIT_POLICY=passive valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$build/reai" serve --port "$port" \
  --data-dir "$tmp/data" --model-dir "$model" --jwt-secret "$secret" --threads 2 >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
token=$("$build/reai" token --tenant cg --role agent --jwt-secret "$secret")
leads=${LEADS:-300}
LEADS=$leads TOKEN=$token wrk -t1 -c4 -d5s -s "$root/bench/post_events.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
load=$(cut -d' ' -f1 /proc/loadavg)
callgrind_control -z "$pid" >/dev/null
LEADS=$leads TOKEN=$token wrk -t1 -c4 -d15s -s "$root/bench/post_events.lua" "http://127.0.0.1:$port" >"$tmp/wrk.txt" 2>&1
callgrind_control -d "$pid" >/dev/null
reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk.txt")
dump="$out.$pid.1"
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
ckpt=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
  awk '/Checkpointer::run\(\)/ && !n { gsub(",", "", $1); print $1; n = 1 }' || true)
awk -v t="$total" -v c="${ckpt:-0}" -v n="$reqs" -v l="$load" -v f="$dump" 'BEGIN {
  printf "%d requests, %.0f instructions per request, %.0f without the checkpointer (load %s; %s)\n", n, t / n, (t - c) / n, l, f }'
