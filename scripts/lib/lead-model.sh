# Sourced by the scripts that keep a trained lead model between runs
# (run-cluster, bench/events_bench_env.sh). lead_model_is_current DIR
# succeeds when DIR holds a lead model of the format this reai loads
# (kModelFormat in src/scoring/lead_model.h); a model of an older format is
# refused by `reai serve`, so such a script retrains it instead.
lead_model_is_current() {
  grep -qs '"format":"reai-lead-model/2"' "$1/metadata.json"
}
