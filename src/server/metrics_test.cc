#include "server/metrics.h"

#include <gtest/gtest.h>

namespace reai::server {
namespace {

TEST(Metrics, LatencyPercentilesWithinResolution) {
  LatencyRecorder r;
  EXPECT_EQ(r.percentile(0.5), 0);
  for (int i = 1; i <= 1000; ++i) r.record(i * 1000);  // 1..1000 us
  const double p50 = double(r.percentile(0.50));
  const double p99 = double(r.percentile(0.99));
  EXPECT_NEAR(p50, 500'000, 500'000 * 0.15);
  EXPECT_NEAR(p99, 990'000, 990'000 * 0.15);
  EXPECT_EQ(r.count(), 1000u);
}

TEST(Metrics, RateCountsCompletedSeconds) {
  RateCounter c;
  for (int i = 0; i < 30; ++i) c.add(100);
  for (int i = 0; i < 10; ++i) c.add(101);
  EXPECT_DOUBLE_EQ(c.rate(102, 10), 4.0);
  EXPECT_DOUBLE_EQ(c.rate(102, 60), 40.0 / 60);
  EXPECT_DOUBLE_EQ(c.rate(200, 10), 0.0);  // old slots do not count
}

TEST(Metrics, PrometheusTextUsesRouteTemplates) {
  Metrics m;
  m.record_request(Route::kContactScore, 404, 0.002);
  m.record_request(Route::kEvents, 200, 0.0001);
  m.record_score("t1", 5000, true);
  const std::string text = m.render_prometheus("extra_metric 1\n");
  EXPECT_NE(text.find(R"(http_requests_total{route="/api/contacts/{id}/score",code="404"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(http_request_duration_seconds_bucket{route="/api/events",le="0.0001"} 1)"), std::string::npos);
  EXPECT_NE(text.find("reai_events_total 1"), std::string::npos);
  EXPECT_NE(text.find("reai_fallback_scores_total 1"), std::string::npos);
  EXPECT_NE(text.find("reai_scoring_latency_seconds_count 1"), std::string::npos);
  EXPECT_NE(text.find("extra_metric 1"), std::string::npos);
}

TEST(Metrics, PrometheusTextWritesFamiliesAndSamplesInTheExpositionFormat) {
  std::string out = "before\n";
  PrometheusText(&out)
      .family("reai_x_total", "counter", "Things by kind.")
      .sample("reai_x_total", "kind=\"a\"", 3)
      .sample("reai_x_total", "", 0)
      .gauge("reai_depth", "Waiting things.", 18446744073709551615ull);
  EXPECT_EQ(out,
            "before\n"
            "# HELP reai_x_total Things by kind.\n# TYPE reai_x_total counter\n"
            "reai_x_total{kind=\"a\"} 3\nreai_x_total 0\n"
            "# HELP reai_depth Waiting things.\n# TYPE reai_depth gauge\nreai_depth 18446744073709551615\n");
}

TEST(Metrics, CacheFiguresByKindWithHitRatios) {
  CacheFigures f;
  EXPECT_DOUBLE_EQ(f.all().hit_rate(), 0.0);  // no lookup yet
  f.feature_snapshots = {3, 1};
  f.snapshots_from_other_instances = 2;
  f.warm_scores = {0, 4};
  f.warm_score_entries = 7;
  f.warm_score_evictions = 5;
  EXPECT_DOUBLE_EQ(f.feature_snapshots.hit_rate(), 0.75);
  EXPECT_EQ(f.all().hits, 3u);
  EXPECT_EQ(f.all().misses, 5u);
  EXPECT_DOUBLE_EQ(f.all().hit_rate(), 0.375);
  std::string out;
  append_cache_metrics(f, &out);
  for (const char* line :
       {"# TYPE reai_cache_hits_total counter\n", "reai_cache_hits_total{kind=\"feature_snapshot\"} 3\n",
        "reai_cache_misses_total{kind=\"feature_snapshot\"} 1\n", "reai_cache_hits_total{kind=\"warm_score\"} 0\n",
        "reai_cache_misses_total{kind=\"warm_score\"} 4\n", "# TYPE reai_cache_hit_ratio gauge\n",
        "reai_cache_hit_ratio{kind=\"feature_snapshot\"} 0.75\n", "reai_cache_hit_ratio{kind=\"warm_score\"} 0\n",
        "reai_cache_entries{kind=\"warm_score\"} 7\n", "reai_cache_evictions_total{kind=\"warm_score\"} 5\n"}) {
    EXPECT_NE(out.find(line), std::string::npos) << line << out;
  }
}

}  // namespace
}  // namespace reai::server
