// GhlRoutes: GoHighLevel webhooks in (private to the server; the Api owns
// one and delegates to it).
//
//   POST /api/ghl/webhook                     signed marketplace app webhooks
//   POST /api/ghl/workflow/{tenant}           workflow "Webhook" action, shared secret
//   GET  /api/admin/ghl/deliveries?status=    a tenant's deliveries (admin token)
//   POST /api/admin/ghl/deliveries/{id}/retry puts a failed/ignored delivery back
//   GET|PUT /api/admin/ghl/config             the tenant's hot stage (admin token)
//
// Durable first: a delivery is verified (signature, freshness, tenant), its
// raw body stored, and only then answered 200; one worker thread then maps
// and applies it through the Api's own event/contact/stage path (so scores
// update and are pushed to WebSockets), and marks it done, ignored or failed
// with the error. Pending deliveries left by a crash are processed again at
// start (applying is idempotent: GHL ids become event ids).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/status.h"
#include "ghl/ghl.h"
#include "store/store.h"

namespace reai::server {

class Api;
struct ApiRequest;
struct ApiResponse;
struct TokenClaims;

class GhlRoutes {
 public:
  // Deferred answers: the store write happens on the worker thread and the
  // answer goes back through `post` (the connection's executor).
  using Post = std::function<void(std::function<void()>)>;
  using Respond = std::function<void(ApiResponse)>;

  // `api` must outlive this. Starts the worker thread.
  explicit GhlRoutes(Api& api);
  // Stops the worker (as stop()).
  ~GhlRoutes();
  GhlRoutes(const GhlRoutes&) = delete;
  GhlRoutes& operator=(const GhlRoutes&) = delete;

  // Loads the public keys of the config. InvalidArgument/NotFound for an
  // unusable key file. Call once before serving.
  Status load_keys();
  // Queues every tenant's pending deliveries for processing (after a crash).
  Status resume_pending();
  // Answers the route, or sets response.deferred and answers through
  // `respond` later (post/respond may be empty: then the answer is inline).
  // Any io thread.
  ApiResponse webhook(const ApiRequest& request, Post post, Respond respond);
  ApiResponse workflow(std::string_view tenant_id, const ApiRequest& request, Post post, Respond respond);
  ApiResponse list_deliveries(const TokenClaims& claims, std::string_view query);
  ApiResponse retry_delivery(const TokenClaims& claims, std::string_view delivery_id);
  // GET answers the token's tenant's GHL configuration; PUT replaces its hot
  // stage with {"hot_stage": {"pipeline_id": P, "stage_id": S}} or
  // {"hot_stage": null} (off) and answers the new configuration. 400 for
  // malformed JSON, unknown fields or ids ghl::check_ghl_id refuses; 403
  // without the admin role.
  ApiResponse config(const TokenClaims& claims, const ApiRequest& request, bool put);
  // Blocks until every delivery queued so far is processed (tests, stop).
  void drain();
  // Processes what is queued, then joins the worker. Idempotent.
  void stop();

  // Deliveries waiting for the worker (records and processing).
  std::size_t queued() const;
  // For /readyz: the last delivery that failed processing (its error text,
  // "" when none has), and how many failed since start. Any thread.
  struct Health {
    std::string last_failure;
    std::uint64_t failures = 0;
  };
  Health health() const;

 private:
  struct Job {
    store::GhlDelivery delivery;  // to record first (delivery_id == 0), then process
    Post post;
    Respond respond;
  };
  ApiResponse accept(store::GhlDelivery delivery, int route, Post post, Respond respond);
  // Records a new delivery; the answer for GHL.
  ApiResponse record(const store::GhlDelivery& delivery, int route, std::optional<std::int64_t>* id);
  void run();
  // Maps and applies one stored delivery; its final status and error.
  std::pair<store::DeliveryStatus, std::string> process(const store::GhlDelivery& delivery);
  // Stores the delivery's contact, events and stages in one commit
  // (Api::store_lead) and answers the delivery's status and error: failed,
  // naming what refused it, when nothing was stored; failed, saying so, when
  // the records were stored but the lead was not scored.
  std::pair<store::DeliveryStatus, std::string> apply(const std::string& tenant_id, const ghl::Mapped& mapped);
  // The lead write of a mapped delivery: the stored contact (or a new one
  // created now) with the patch applied.
  Result<store::LeadWrite> lead_write_of(const std::string& tenant_id, const ghl::Mapped& mapped);
  Result<ghl::FieldMapping> mapping_of(const std::string& tenant_id, bool* active);
  void enqueue_process(const std::string& tenant_id, std::int64_t id);

  Api& api_;
  std::optional<ghl::SignatureVerifier> verifier_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  // Both FIFO; records go first so an answer waits only for its own store
  // write, and deliveries are processed in the order they were stored.
  std::deque<Job> records_;
  std::deque<Job> processing_;
  bool busy_ = false;
  bool stopping_ = false;
  std::string last_failure_;  // under mu_
  std::uint64_t failures_ = 0;
  std::thread worker_;  // last: started once everything above exists
};

}  // namespace reai::server
