# Sourced by bench/events_cpu.sh and bench/events_callgrind.sh: what both need
# around the server they measure. Expects $root and $build; sets $model (the
# fixture lead model, trained once and cached in $TMPDIR/reai-events-cpu-model),
# $tmp (removed at exit), $port, $secret and $pid (the server, which the caller
# starts; stopped with SIGTERM at exit).
#
#   events_bench_setup TAG
source "$root/scripts/lib/free-port.sh"
source "$root/scripts/lib/lead-model.sh"

events_bench_setup() {
  local tag=$1 fixtures="$root/tests/fixtures/crm_small"
  model=${TMPDIR:-/tmp}/reai-events-cpu-model
  if ! lead_model_is_current "$model/leads"; then
    "$build/reai" train leads --contacts "$fixtures/contacts.csv" --events "$fixtures/events.csv" \
      --stages "$fixtures/opportunity_stages.csv" --out "$model/leads" >/dev/null 2>&1
  fi
  tmp=$(mktemp -d "/tmp/reai-events-$tag.XXXXXX")
  port=$(free_port)
  secret="$tag-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"  # an HS256 key: at least 32 bytes
  pid=""
  trap events_bench_cleanup EXIT
}

events_bench_cleanup() {
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
