// The predictive analytics routes (issue 5, "Server"): market trends, deal
// closure, agent performance and pricing, each answer carrying its intervals
// and the version of the model that produced it. Private to src/server;
// owned by Api. The domain lives in src/analytics; this file only loads
// artefacts, caches per-tenant history and renders JSON.
//
// Artefacts come from the model directory, a tenant's own first
// (MODEL_DIR/tenants/T/<kind>), else the shared one (MODEL_DIR/<kind>):
//   deals/    `reai train deals --out`      (deal_model.json + boosters)
//   markets/  `reai forecast --out .../markets/forecast.csv`
//   avm/      `reai value train --out`      (model.json; optional sales.csv for comparables)
// Each is re-read when its key file changes (size or mtime), so a retrained
// model is served without a restart. A missing artefact answers 404
// {"error":"... not trained ..."}.
//
// Deal closure and agent performance need the tenant's CRM history: it is
// read from the store once per tenant and kept for kHistoryTtl (or until a
// new pipeline row arrives), and the predictions computed from it are cached
// with it, so repeated reads cost a map lookup and the JSON. That work runs
// on one worker thread, never on an io thread: the first read of a tenant
// waits for it (deferred answer); later reads answer from the cached
// predictions while a stale history is rebuilt in the background. Pricing
// (the AVM and a scan for comparables: milliseconds) runs on a second worker
// thread for the same reason: an io thread never computes a prediction.
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "server/api.h"

namespace reai::server {

class PredictionRoutes {
 public:
  static constexpr std::chrono::seconds kHistoryTtl{60};
  static constexpr std::size_t kMaxPricingBody = 64 * 1024;

  // `store` and `clock` must outlive this object. `model_dir` may not exist
  // (every route then answers "not trained").
  PredictionRoutes(store::Store& store, std::string model_dir, const Clock& clock);
  ~PredictionRoutes();

  // Which prediction route a path's decoded segments (path_segments) name
  // (`id` receives the opportunity or agent id, empty for the list forms);
  // kUnmatched otherwise.
  static Route match(std::span<const std::string> segments, std::string* id);
  // Answers a matched route for an authenticated caller (405 for a wrong
  // method). Deal closure and agent performance answer at once from cached
  // predictions; when these must be computed first, and `post`/`respond`
  // are given, the answer is `deferred` and goes to `respond` (exactly once,
  // through `post`) from the worker thread; without them it is computed
  // inline. Pricing, given `post`/`respond`, is always deferred to the
  // pricing worker (an oversize body is refused at once).
  ApiResponse handle(Route route, const TokenClaims& claims, bool get, bool post, std::string_view id,
                     std::string_view query, std::string_view body, Api::Post post_fn = {},
                     Api::Respond respond = {});
  // Answers the deferred requests still queued with 503 and joins the
  // worker. Idempotent; call before the io threads stop.
  void stop();

  // A new pipeline row of `tenant_id`: its cached history is rebuilt on the
  // next read. Cheap; any thread.
  void invalidate(const std::string& tenant_id);

  // GET /api/predictions/market-trends?region=&metric=&horizon=DAYS
  ApiResponse market_trends(const TokenClaims& claims, std::string_view query);
  // GET /api/predictions/deal-closure[/{opportunity_id}], computed inline.
  ApiResponse deal_closure(const TokenClaims& claims, std::string_view opportunity_id);
  // GET /api/predictions/agent-performance[/{agent_id}], computed inline.
  ApiResponse agent_performance(const TokenClaims& claims, std::string_view agent_id);
  // POST /api/predictions/pricing
  ApiResponse pricing(const TokenClaims& claims, std::string_view body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reai::server
