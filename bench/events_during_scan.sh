#!/usr/bin/env bash
# POST /api/events under wrk (bench/events_cpu.sh) on a grown database while
# GET /api/predictions/agent-performance makes the server scan the tenant
# (its prediction snapshot: for_each_contact/event/stage), 4 s into the run.
#
#   GROWN=DIR bench/events_during_scan.sh BUILD_DIR...
#
# GROWN holds a reai.db whose tenant "cpu" was grown by
# `DATA_DIR=DIR SECONDS_RUN=20 bench/events_cpu.sh` runs; each build runs on a
# fresh copy. Prints events_cpu.sh's row per build and the GETs' codes and times
# (404 "not trained" without opportunity rows: the scan ran all the same).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d /tmp/reai-events-scan.XXXXXX)
trap 'rm -rf "$work"' EXIT
for b in "$@"; do
  rm -rf "$work/copy" && cp -r "$GROWN" "$work/copy"
  DATA_DIR=$work/copy SECONDS_RUN=12 bench/events_cpu.sh "$b" > "$work/out.txt" 2>&1 &
  bpid=$!
  srv=""
  for _ in $(seq 200); do
    for p in /proc/[0-9]*; do
      if tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q -- "serve --port .* --data-dir $work/copy"; then srv=${p#/proc/}; break; fi
    done
    [[ -n "$srv" ]] && break; sleep 0.1
  done
  cmd=$(tr '\0' ' ' < /proc/$srv/cmdline)
  port=$(echo "$cmd" | sed -E 's/.*--port ([0-9]+).*/\1/')
  secret=$(echo "$cmd" | sed -E 's/.*--jwt-secret ([^ ]+).*/\1/')
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  sleep 7  # warm-up (3 s) and 4 s into the measured run
  tok=$(build/reai token --tenant cpu --role agent --jwt-secret "$secret")
  for i in 1 2 3; do
    curl -s -o /dev/null -w "GET %{http_code} %{time_total}s\n" -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/api/predictions/agent-performance"
    sleep 1
  done
  wait $bpid
  echo "$b $(tail -1 "$work/out.txt")"
done
