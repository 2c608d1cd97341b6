#include "server/ghl_routes.h"

#include <algorithm>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "core/json_text.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "ghl/hot_stage.h"
#include "server/api.h"
#include "server/codec.h"
#include "server/http_errors.h"
#include "server/responses.h"

namespace reai::server {
namespace json = boost::json;

namespace {

// Deliveries waiting for the worker; beyond it GHL is answered 429 (it
// retries those later).
constexpr std::size_t kMaxQueuedJobs = 10'000;
constexpr std::size_t kMaxListed = 1000;

ApiResponse error_answer(const Status& status, Route route) {
  ApiResponse r = error_response(status, route);
  if (status.code() == StatusCode::kResourceExhausted) r.retry_after = "60";
  return r;
}

// What both GHL delivery routes refuse before reading a byte of the body.
std::optional<ApiResponse> refuse_unless_post_within_limit(const ApiRequest& request, Route route) {
  if (request.method != Method::kPost) return method_not_allowed(route);
  if (request.body.size() > ghl::kMaxDeliveryBytes) {
    return error_answer(payload_too_large("delivery larger than " + std::to_string(ghl::kMaxDeliveryBytes) + " bytes"),
                        route);
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
  }
  return {};
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out.append("; ");
    out.append(p);
  }
  return out;
}

// The body of PUT /api/admin/ghl/config: {"hot_stage": {...} | null}.
Result<std::optional<ghl::HotStage>> parse_config_body(std::string_view body) {
  auto v = parse_json(body);
  if (!v) return v.status();
  const auto* o = v->if_object();
  if (!o) return invalid_argument("the body must be a JSON object");
  for (const auto& field : *o) {
    if (field.key() != "hot_stage") return invalid_argument("unknown field '" + std::string(field.key()) + "'");
  }
  const auto* hot = o->if_contains("hot_stage");
  if (!hot) return invalid_argument("hot_stage is required (an object, or null to turn it off)");
  if (hot->is_null()) return std::optional<ghl::HotStage>();
  const auto* stage = hot->if_object();
  if (!stage) return invalid_argument("hot_stage must be an object {pipeline_id, stage_id} or null");
  ghl::HotStage out;
  for (const auto& field : *stage) {
    std::string* into = field.key() == "pipeline_id" ? &out.pipeline_id
                        : field.key() == "stage_id"  ? &out.stage_id
                                                     : nullptr;
    if (!into) return invalid_argument("unknown field 'hot_stage." + std::string(field.key()) + "'");
    if (!field.value().is_string()) return invalid_argument("hot_stage." + std::string(field.key()) + " must be a string");
    *into = std::string(field.value().as_string());
  }
  REAI_RETURN_IF_ERROR(ghl::check_ghl_id(out.pipeline_id, "hot_stage.pipeline_id"));
  REAI_RETURN_IF_ERROR(ghl::check_ghl_id(out.stage_id, "hot_stage.stage_id"));
  return std::optional<ghl::HotStage>(std::move(out));
}

}  // namespace

GhlRoutes::GhlRoutes(Api& api) : api_(api), worker_([this] { run(); }) {}

GhlRoutes::~GhlRoutes() { stop(); }

Status GhlRoutes::load_keys() {
  auto v = ghl::SignatureVerifier::from_files(api_.config_.ghl_ed25519_key_file, api_.config_.ghl_rsa_key_file);
  if (!v) return v.status();
  verifier_ = std::move(*v);
  return {};
}

Status GhlRoutes::resume_pending() {
  auto tenants = api_.deps_.store.list_tenants();
  if (!tenants) return tenants.status();
  std::vector<std::string> ids;
  for (const auto& t : *tenants) ids.push_back(t.tenant_id);
  std::size_t resumed = 0;
  for (const auto& id : ids) {
    auto pending = api_.deps_.store.list_ghl_deliveries(id, store::DeliveryStatus::kPending, 1'000'000);
    if (!pending) return pending.status();
    for (const auto& d : *pending) {
      enqueue_process(d.tenant_id, d.delivery_id);
      ++resumed;
    }
  }
  if (resumed) spdlog::info("ghl: processing {} pending deliveries left from the last run", resumed);
  return {};
}

ApiResponse GhlRoutes::webhook(const ApiRequest& request, Post post, Respond respond) {
  constexpr Route kRoute = Route::kGhlWebhook;
  if (auto refused = refuse_unless_post_within_limit(request, kRoute)) return std::move(*refused);
  if (!verifier_) return error_answer(unavailable("GHL keys not loaded"), kRoute);
  // Nothing of the body is read before its signature verifies.
  if (Status s = verifier_->verify(request.body, request.ghl_signature, request.wh_signature); !s) {
    return error_answer(s, kRoute);
  }
  auto envelope = ghl::parse_envelope(request.body);
  if (!envelope) return error_answer(envelope.status(), kRoute);
  if (Status s = ghl::check_fresh(envelope->timestamp, api_.deps_.clock.now()); !s) return error_answer(s, kRoute);

  std::string tenant_id;
  auto tenant = api_.deps_.store.find_tenant_by_ghl_location(envelope->location_id);
  if (tenant) {
    tenant_id = tenant->tenant_id;
  } else if (tenant.status().code() != StatusCode::kNotFound) {
    return error_answer(resource_exhausted("store unavailable: " + tenant.status().message()), kRoute);
  } else if (envelope->type == "INSTALL") {
    // A GHL-installed tenant's id is its locationId. The row exists before
    // the delivery is stored so a crash before processing still finds the
    // delivery at start (pending deliveries are found per tenant).
    auto linked = store::link_ghl_location(api_.deps_.store, envelope->location_id, api_.deps_.clock.now());
    if (!linked) {
      const StatusCode code = linked.status().code();
      if (code == StatusCode::kInvalidArgument || code == StatusCode::kAlreadyExists) {
        return error_answer(linked.status(), kRoute);
      }
      return error_answer(resource_exhausted("store unavailable: " + linked.status().message()), kRoute);
    }
    tenant_id = linked->tenant_id;
  } else {
    return error_answer(not_found("unknown GHL location '" + envelope->location_id + "'"), kRoute);
  }

  store::GhlDelivery d;
  d.tenant_id = std::move(tenant_id);
  d.location_id = envelope->location_id;
  d.webhook_id = envelope->webhook_id;
  d.kind = "webhook";
  d.received_at = api_.deps_.clock.now();
  d.body = std::string(request.body);
  return accept(std::move(d), int(kRoute), std::move(post), std::move(respond));
}

ApiResponse GhlRoutes::workflow(std::string_view tenant_id, const ApiRequest& request, Post post, Respond respond) {
  constexpr Route kRoute = Route::kGhlWorkflow;
  if (auto refused = refuse_unless_post_within_limit(request, kRoute)) return std::move(*refused);
  // No tenant has an invalid id, so saying so reveals nothing.
  if (Status s = check_tenant_id(tenant_id); !s) return error_answer(s, kRoute);
  const std::string tenant(tenant_id);
  auto settings = api_.deps_.store.get_ghl_settings(tenant);
  if (!settings) {
    if (settings.status().code() == StatusCode::kNotFound) {
      // Same answer for an unknown tenant and one without a secret: the
      // route does not reveal which tenants exist.
      return error_answer(unauthenticated("workflow webhooks are not enabled for this tenant"), kRoute);
    }
    return error_answer(resource_exhausted("store unavailable: " + settings.status().message()), kRoute);
  }
  if (settings->workflow_secret.empty()) {
    return error_answer(unauthenticated("workflow webhooks are not enabled for this tenant"), kRoute);
  }
  auto mapping = ghl::parse_field_mapping(settings->field_map_json);
  auto mapped = ghl::map_workflow(request.body, tenant, mapping ? *mapping : ghl::FieldMapping{}, 0);
  // The secret comes from the header, else from customData.secret; without
  // a readable body there is no secret to check.
  const std::string_view given = !request.workflow_secret.empty() ? request.workflow_secret
                                 : mapped                          ? std::string_view(mapped->secret)
                                                                   : std::string_view();
  if (!ghl::secrets_equal(given, settings->workflow_secret)) {
    return error_answer(unauthenticated("missing or wrong workflow secret"), kRoute);
  }
  if (!mapped) return error_answer(mapped.status(), kRoute);

  store::GhlDelivery d;
  d.tenant_id = tenant;
  d.webhook_id = mapped->dedup_key;
  d.kind = "workflow";
  d.received_at = api_.deps_.clock.now();
  d.body = std::string(request.body);
  return accept(std::move(d), int(kRoute), std::move(post), std::move(respond));
}

ApiResponse GhlRoutes::accept(store::GhlDelivery delivery, int route, Post post, Respond respond) {
  if (!post || !respond) {
    std::optional<std::int64_t> id;
    ApiResponse r = record(delivery, route, &id);
    if (id) enqueue_process(delivery.tenant_id, *id);
    return r;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return error_answer(resource_exhausted("server is stopping; retry later"), Route(route));
    if (records_.size() + processing_.size() >= kMaxQueuedJobs) {
      return error_answer(resource_exhausted("too many deliveries waiting; retry later"), Route(route));
    }
    records_.push_back(Job{std::move(delivery), std::move(post), std::move(respond)});
  }
  wake_.notify_one();
  ApiResponse r;
  r.deferred = true;
  return r;
}

ApiResponse GhlRoutes::record(const store::GhlDelivery& delivery, int route, std::optional<std::int64_t>* id) {
  auto stored = api_.deps_.store.record_ghl_delivery(delivery);
  if (!stored) {
    spdlog::error("ghl: cannot store delivery {}: {}", delivery.webhook_id, stored.status().message());
    // 429 is the one answer GHL retries.
    return error_answer(resource_exhausted("delivery not stored; retry later"), Route(route));
  }
  *id = *stored;
  if (!*stored) return json_response(200, R"({"status":"duplicate"})", Route(route));
  return json_response(200, "{\"status\":\"accepted\",\"delivery_id\":" + std::to_string(**stored) + "}", Route(route));
}

void GhlRoutes::enqueue_process(const std::string& tenant_id, std::int64_t id) {
  Job job;
  job.delivery.tenant_id = tenant_id;
  job.delivery.delivery_id = id;
  {
    std::lock_guard lock(mu_);
    processing_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void GhlRoutes::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !records_.empty() || !processing_.empty(); });
    if (records_.empty() && processing_.empty()) return;  // stopping, nothing left
    std::deque<Job>& from = records_.empty() ? processing_ : records_;
    Job job = std::move(from.front());
    from.pop_front();
    busy_ = true;
    lock.unlock();
    if (job.delivery.delivery_id == 0) {
      std::optional<std::int64_t> id;
      ApiResponse r = record(job.delivery, int(job.delivery.kind == "workflow" ? Route::kGhlWorkflow : Route::kGhlWebhook), &id);
      job.post([respond = std::move(job.respond), r = std::move(r)]() mutable { respond(std::move(r)); });
      if (id) enqueue_process(job.delivery.tenant_id, *id);
    } else {
      auto stored = api_.deps_.store.get_ghl_delivery(job.delivery.tenant_id, job.delivery.delivery_id);
      if (!stored) {
        spdlog::error("ghl: delivery {} unreadable: {}", job.delivery.delivery_id, stored.status().message());
      } else if (stored->status == store::DeliveryStatus::kPending) {
        auto [status, error] = process(*stored);
        // Health first: whoever sees the failed row in the store (an admin
        // listing, a test) must also see it in /readyz.
        if (status == store::DeliveryStatus::kFailed) {
          spdlog::warn("ghl: delivery {} of tenant {} failed: {}", stored->delivery_id, stored->tenant_id, error);
          std::lock_guard failure_lock(mu_);
          // /readyz answers anyone: its text names the delivery, never the
          // tenant's data or error (the tenant's admins list those).
          last_failure_ = "delivery " + std::to_string(stored->delivery_id) +
                          " failed; its tenant's admins read why at GET /api/admin/ghl/deliveries?status=failed";
          ++failures_;
        }
        Status s = api_.deps_.store.set_ghl_delivery_status(stored->tenant_id, stored->delivery_id, status, error, true);
        if (!s) spdlog::error("ghl: cannot mark delivery {}: {}", stored->delivery_id, s.message());
      }
    }
    lock.lock();
    busy_ = false;
    if (records_.empty() && processing_.empty()) idle_.notify_all();
  }
}

Result<ghl::FieldMapping> GhlRoutes::mapping_of(const std::string& tenant_id, bool* active) {
  *active = true;
  auto settings = api_.deps_.store.get_ghl_settings(tenant_id);
  if (!settings) {
    if (settings.status().code() == StatusCode::kNotFound) return ghl::FieldMapping{};
    return settings.status();
  }
  *active = settings->active;
  auto mapping = ghl::parse_field_mapping(settings->field_map_json);
  if (!mapping) return Status(mapping.status().code(), "tenant field mapping: " + mapping.status().message());
  return mapping;
}

std::pair<store::DeliveryStatus, std::string> GhlRoutes::process(const store::GhlDelivery& d) {
  using store::DeliveryStatus;
  bool active = true;
  auto mapping = mapping_of(d.tenant_id, &active);
  if (!mapping) return {DeliveryStatus::kFailed, mapping.status().message()};
  ghl::Mapped mapped;
  if (d.kind == "workflow") {
    auto w = ghl::map_workflow(d.body, d.tenant_id, *mapping, d.received_at);
    if (!w) return {DeliveryStatus::kFailed, w.status().message()};
    mapped = std::move(w->mapped);
  } else {
    auto m = ghl::map_webhook(d.body, d.tenant_id, *mapping);
    if (!m) return {DeliveryStatus::kFailed, m.status().message()};
    mapped = std::move(*m);
  }
  // An uninstall is dated (`reai tenant list`, GET /api/admin/ghl/config);
  // an install clears the date.
  auto settings_with = [&](bool now_active) -> Status {
    store::GhlSettingsChange change;
    change.active = now_active;
    change.uninstalled_at = now_active ? 0 : std::max<UnixSeconds>(d.received_at, 1);
    return api_.deps_.store.update_ghl_settings(d.tenant_id, change);
  };
  switch (mapped.action) {
    case ghl::Action::kIgnored:
      return {DeliveryStatus::kIgnored, mapped.ignored_reason};
    case ghl::Action::kInstall: {
      store::Tenant t{d.tenant_id, d.tenant_id, api_.deps_.clock.now(), d.location_id};
      if (auto existing = api_.deps_.store.get_tenant(d.tenant_id)) {
        t = *existing;
        t.ghl_location_id = d.location_id;
      }
      if (Status s = api_.deps_.store.upsert_tenant(t); !s) return {DeliveryStatus::kFailed, s.message()};
      if (Status s = api_.ensure_tenant(d.tenant_id); !s) return {DeliveryStatus::kFailed, s.message()};
      if (Status s = settings_with(true); !s) return {DeliveryStatus::kFailed, s.message()};
      return {DeliveryStatus::kDone, ""};
    }
    case ghl::Action::kUninstall:
      if (Status s = settings_with(false); !s) return {DeliveryStatus::kFailed, s.message()};
      return {DeliveryStatus::kDone, ""};
    case ghl::Action::kRecords:
      break;
  }
  if (!active) return {DeliveryStatus::kIgnored, "the app is uninstalled for this location"};
  auto [status, error] = apply(d.tenant_id, mapped);
  if (status != DeliveryStatus::kDone) return {status, error};
  return {DeliveryStatus::kDone, join(mapped.warnings)};
}

Result<store::LeadWrite> GhlRoutes::lead_write_of(const std::string& tenant_id, const ghl::Mapped& mapped) {
  if (!mapped.contact) return invalid_argument("delivery maps to records without a contact");
  const ghl::ContactPatch& patch = *mapped.contact;
  store::LeadWrite write;
  Contact& contact = write.contact;
  auto existing = api_.deps_.store.get_contact(tenant_id, patch.contact_id);
  const bool stored = existing.has_value();
  if (existing) {
    contact = std::move(*existing);
  } else if (existing.status().code() == StatusCode::kNotFound) {
    contact.tenant_id = tenant_id;
    contact.contact_id = patch.contact_id;
    contact.created_at = api_.deps_.clock.now();
  } else {
    return existing.status();
  }
  const UnixSeconds created_before = contact.created_at;
  const std::optional<double> budget_before = contact.budget;
  ghl::apply_patch(patch, &contact);
  note_budget_statement(budget_before, stored, api_.deps_.clock.now(), &contact);
  // Only a stated created_at is checked (as PUT /api/contacts does).
  if (contact.created_at != created_before) {
    REAI_RETURN_IF_ERROR(check_crm_time(contact.created_at, api_.deps_.clock.now(), "created_at"));
  }
  // A patch naming only the contact (a message, an appointment) makes it
  // exist; one stating fields replaces the stored row.
  write.replace_contact = ghl::states_fields(patch);
  write.events = mapped.events;
  write.stages = mapped.stages;
  return write;
}

std::pair<store::DeliveryStatus, std::string> GhlRoutes::apply(const std::string& tenant_id,
                                                               const ghl::Mapped& mapped) {
  using store::DeliveryStatus;
  auto write = lead_write_of(tenant_id, mapped);
  if (!write) return {DeliveryStatus::kFailed, "nothing stored: " + write.status().message()};
  auto stored = api_.store_lead(std::move(*write), api_.deps_.clock.now());
  if (!stored) return {DeliveryStatus::kFailed, "nothing stored: " + stored.status().message()};
  if (!stored->score) {
    // Retrying it is harmless: its records are replays now.
    return {DeliveryStatus::kFailed, "stored, but the lead was not scored: " + stored->score_status.message()};
  }
  return {DeliveryStatus::kDone, ""};
}

ApiResponse GhlRoutes::list_deliveries(const TokenClaims& claims, std::string_view query) {
  constexpr Route kRoute = Route::kGhlDeliveries;
  if (claims.role != Role::kAdmin) return error_answer(permission_denied("admin role required"), kRoute);
  const std::string status_name = query_value(query, "status");
  auto status = store::parse_delivery_status(status_name.empty() ? "failed" : status_name);
  if (!status) return error_answer(invalid_argument("status must be pending, done, failed or ignored"), kRoute);
  std::size_t limit = 100;
  if (const std::string l = query_value(query, "limit"); !l.empty()) {
    auto n = parse_id(l);
    if (!n || *n < 1 || std::size_t(*n) > kMaxListed) return error_answer(invalid_argument("limit must be 1..1000"), kRoute);
    limit = std::size_t(*n);
  }
  auto list = api_.deps_.store.list_ghl_deliveries(claims.tenant_id, *status, limit);
  if (!list) return error_answer(list.status(), kRoute);
  json::array items;
  for (const auto& d : *list) {
    items.push_back(json::object{{"delivery_id", d.delivery_id},
                                 {"webhook_id", d.webhook_id},
                                 {"kind", d.kind},
                                 {"location_id", d.location_id},
                                 {"received_at", format_iso8601(d.received_at)},
                                 {"status", store::delivery_status_name(d.status)},
                                 {"error", d.error},
                                 {"attempts", d.attempts},
                                 {"body", d.body}});
  }
  json::object o{{"tenant_id", claims.tenant_id}, {"deliveries", std::move(items)}};
  return json_response(200, json_text(o), kRoute);
}

ApiResponse GhlRoutes::retry_delivery(const TokenClaims& claims, std::string_view delivery_id) {
  constexpr Route kRoute = Route::kGhlRetry;
  if (claims.role != Role::kAdmin) return error_answer(permission_denied("admin role required"), kRoute);
  auto id = parse_id(delivery_id);
  if (!id) return error_answer(invalid_argument("delivery id must be a number"), kRoute);
  auto d = api_.deps_.store.get_ghl_delivery(claims.tenant_id, *id);
  if (!d) return error_answer(d.status(), kRoute);
  if (d->status != store::DeliveryStatus::kFailed && d->status != store::DeliveryStatus::kIgnored) {
    return error_answer(already_exists("delivery is " + std::string(store::delivery_status_name(d->status)) +
                                       "; only failed or ignored ones are retried"),
                        kRoute);
  }
  Status s = api_.deps_.store.set_ghl_delivery_status(claims.tenant_id, *id, store::DeliveryStatus::kPending, "", false);
  if (!s) return error_answer(s, kRoute);
  enqueue_process(claims.tenant_id, *id);
  return json_response(202, "{\"status\":\"pending\",\"delivery_id\":" + std::to_string(*id) + "}", kRoute);
}

ApiResponse GhlRoutes::config(const TokenClaims& claims, const ApiRequest& request, bool put) {
  constexpr Route kRoute = Route::kGhlConfig;
  if (claims.role != Role::kAdmin) return error_answer(permission_denied("admin role required"), kRoute);
  store::Store& store = api_.deps_.store;
  if (put) {
    auto hot = parse_config_body(request.body);
    if (!hot) return error_answer(hot.status(), kRoute);
    store::GhlSettingsChange change;
    change.hot_stage = *hot ? store::GhlSettingsChange::HotStage{(*hot)->pipeline_id, (*hot)->stage_id}
                            : store::GhlSettingsChange::HotStage{};
    if (Status s = store.update_ghl_settings(claims.tenant_id, change); !s) return error_answer(s, kRoute);
  }
  store::GhlSettings settings;
  if (auto stored = store.get_ghl_settings(claims.tenant_id)) {
    settings = std::move(*stored);
  } else if (stored.status().code() != StatusCode::kNotFound) {
    return error_answer(stored.status(), kRoute);
  }
  std::string location;
  json::value install = json::object{{"state", "none"}, {"since", nullptr}, {"detail", ""}};
  if (auto tenant = store.get_tenant(claims.tenant_id)) {
    location = tenant->ghl_location_id;
    auto state = store::ghl_install_of(store, *tenant);
    if (!state) return error_answer(state.status(), kRoute);
    install = json::object{{"state", store::ghl_install_state_name(state->state)},
                           {"since", state->since != 0 ? json::value(format_iso8601(state->since)) : json::value(nullptr)},
                           {"detail", state->detail}};
  }
  json::value hot_stage = nullptr;
  if (!settings.hot_stage_id.empty()) {
    hot_stage = json::object{{"pipeline_id", settings.hot_pipeline_id}, {"stage_id", settings.hot_stage_id}};
  }
  json::object o{{"tenant_id", claims.tenant_id},
                 {"ghl_location_id", location},
                 {"hot_stage", std::move(hot_stage)},
                 {"install", std::move(install)}};
  return json_response(200, json_text(o), kRoute);
}

void GhlRoutes::drain() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return records_.empty() && processing_.empty() && !busy_; });
}

void GhlRoutes::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

GhlRoutes::Health GhlRoutes::health() const {
  std::lock_guard lock(mu_);
  return Health{last_failure_, failures_};
}

std::size_t GhlRoutes::queued() const {
  std::lock_guard lock(mu_);
  return records_.size() + processing_.size();
}

}  // namespace reai::server
