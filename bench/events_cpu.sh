#!/usr/bin/env bash
# Server CPU per POST /api/events request: the stable cost measure on a
# shared machine (wall-clock req/s and p99 depend on who else runs).
#
#   bench/events_cpu.sh [BUILD_DIR]     (default: build)
#
# Trains the fixture model once (cached in $TMPDIR/reai-events-cpu-model),
# starts `reai serve --threads 2` on a temp SQLite dir, warms up, then runs
# wrk with bench/post_events.lua while `perf stat -e task-clock` watches the
# server; prints one markdown row: CPU µs per request (server task-clock /
# requests), per-thread split, req/s, wrk p50/p99, load average before.
# Knobs (env): SECONDS_RUN (10), CONNECTIONS (16), WARMUP (3), DATA_DIR (temp),
# SYSCALLS=1 (also prints the server's futex / epoll_wait / epoll_ctl / write /
# sendmsg / recvfrom / pread64 / pwrite64 / fdatasync calls per request, from perf tracepoints, on
# a second line), RUNQ=1 (also prints how long each server thread and wrk
# waited for a core: run-queue delay from /proc/*/task/*/schedstat, µs per
# request, busiest server thread first, on another line).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
reai="$build/reai"
run_s=${SECONDS_RUN:-10}
conns=${CONNECTIONS:-16}
warmup=${WARMUP:-3}
source "$root/bench/events_bench_env.sh"
events_bench_setup cpu
data=${DATA_DIR:-$tmp/data}
"$reai" serve --port "$port" --data-dir "$data" --model-dir "$model" --jwt-secret "$secret" --threads "${SERVER_THREADS:-2}" \
  >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
token=$("$reai" token --tenant cpu --role agent --jwt-secret "$secret")
TOKEN=$token wrk -t2 -c"$conns" -d"${warmup}s" -s "$root/bench/post_events.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
# Per-thread utime+stime (ticks) before and after.
threads() { for t in /proc/$pid/task/*; do echo "${t##*/} $(awk '{print $14+$15}' "$t/stat")"; done | sort; }
# Voluntary context switches (a thread blocking: a futex or epoll wait) of
# all threads; unlike involuntary ones they do not depend on other load.
vcs() { cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n }'; }
# Run-queue delay (ns waiting for a core) per thread id.
runq() { for t in /proc/$1/task/*; do echo "${t##*/} $(awk '{print $2}' "$t/schedstat")"; done | sort; }
load=$(cut -d' ' -f1 /proc/loadavg)
v0=$(vcs)
t0=$(threads)
q0=$(runq "$pid")
events=task-clock,context-switches
syscalls="futex epoll_wait epoll_ctl write writev sendmsg recvfrom pread64 pwrite64 fdatasync"
if [[ -n "${SYSCALLS:-}" ]]; then for c in $syscalls; do events+=",syscalls:sys_enter_$c"; done; fi
perf stat -e "$events" -p "$pid" -o "$tmp/perf.txt" -- sleep "$((run_s + 1))" &
perf_pid=$!
TOKEN=$token wrk -t2 -c"$conns" -d"${run_s}s" --latency -s "$root/bench/post_events.lua" \
  "http://127.0.0.1:$port" >"$tmp/wrk.txt" 2>&1 &
wrk_pid=$!
if [[ -n "${RUNQ:-}" ]]; then
  # wrk's threads are gone once it exits: sample them across most of the run.
  sleep 0.5; w0=$(runq "$wrk_pid"); sleep "$((run_s - 1))"; w1=$(runq "$wrk_pid")
fi
wait "$wrk_pid"
q1=$(runq "$pid")
wait "$perf_pid"
t1=$(threads)
v1=$(vcs)
reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk.txt")
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.txt")
p50=$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.txt")
p99=$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.txt")
non2xx=$(awk '/Non-2xx/ { print $NF }' "$tmp/wrk.txt")
ms=$(awk '/task-clock/ { gsub(",", "", $1); print $1 }' "$tmp/perf.txt")
us=$(awk -v ms="$ms" -v n="$reqs" 'BEGIN { printf "%.1f", ms * 1000 / n }')
hz=$(getconf CLK_TCK)
# Per thread (by id, busiest first), µs per request.
split=$(join <(echo "$t0") <(echo "$t1") |
  awk -v hz="$hz" -v n="$reqs" '{ d = $3 - $2; if (d > 0) printf "%.1f\n", d / hz * 1e6 / n }' | sort -rn | head -4 | paste -sd/)
cs=$(awk -v n="$reqs" -v v=$((v1 - v0)) '/context-switches/ { gsub(",", "", $1); printf "%.2f (%.2f voluntary)", $1 / n, v / n }' "$tmp/perf.txt")
echo "| $(date -u +%H:%MZ) | $conns | ${us} µs | ${cs} | ${split%, } | $rps | $p50 | $p99 | ${non2xx:-0} | $load |"
if [[ -n "${RUNQ:-}" ]]; then
  per_thread=$(join <(echo "$q0") <(echo "$q1") | awk -v n="$reqs" '{ d = $3 - $2; if (d > 0) printf "%.1f\n", d / 1e3 / n }' | sort -rn)
  wrk_ms=$(join <(echo "$w0") <(echo "$w1") | awk -v s="$((run_s - 1))" '{ d += $3 - $2 } END { printf "%.0f", d / 1e6 / s }')
  echo "run-queue wait µs/request: server $(echo "$per_thread" | awk '{ n += $1 } END { printf "%.1f", n }') ($(echo "$per_thread" | head -4 | paste -sd/)); wrk ${wrk_ms} ms/s"
fi
if [[ -n "${SYSCALLS:-}" ]]; then
  awk -v n="$reqs" '/syscalls:sys_enter_/ { gsub(",", "", $1); sub("syscalls:sys_enter_", "", $2); printf "%s %.2f  ", $2, $1 / n } END { print "(per request)" }' "$tmp/perf.txt"
fi
