#include "server/property_routes.h"

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <utility>

#include "bus/bus.h"
#include "core/json_text.h"
#include "core/time.h"
#include "property/inventory.h"
#include "property/matching.h"
#include "server/codec.h"
#include "server/http_errors.h"
#include "server/responses.h"
#include "store/store.h"

namespace reai::server {
namespace json = boost::json;
namespace {

constexpr std::size_t kMaxK = 100;
constexpr std::size_t kMaxAttributes = 1000;
constexpr std::size_t kMaxAreas = 100;       // stated areas in one match request
constexpr std::size_t kMaxAreasListed = 30;  // an unknown area's 400 names the tenant's areas up to this many
constexpr std::size_t kMaxQueuedJobs = 65536;
constexpr auto kJobPause = std::chrono::milliseconds(10);  // see worker_loop
constexpr std::size_t kTopChanged = 3;  // a match_update goes out when these change

ApiResponse answer(std::string body, Route route) { return json_response(200, std::move(body), route); }

// The inventory's failure as an answer: a catalog still loading (or a store
// that cannot be reached) is worth retrying soon.
ApiResponse inventory_error(const Status& status, Route route) {
  ApiResponse r = error_response(status, route);
  // Built, not assigned from a literal: GCC 12 inlines the assignment into a
  // false -Wrestrict (its PR 105329) once parse_json is inlined here too.
  if (status.code() == StatusCode::kUnavailable) r.retry_after = std::string(1, '1');
  return r;
}

Result<json::object> parse_body_object(std::string_view body) {
  auto v = parse_json(body);
  if (!v) return v.status();
  if (!v->is_object()) return invalid_argument("body must be a JSON object");
  return std::move(v->as_object());
}

// k in 1..kMaxK from "k=N" (default 10).
Result<std::size_t> parse_k(std::string_view query) {
  const auto k = query_param(query, "k");
  if (!k) return std::size_t{10};
  const Status bad = invalid_argument("k must be 1..100");
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(k->data(), k->data() + k->size(), v);
  if (k->empty() || ec != std::errc() || end != k->data() + k->size() || v == 0 || v > kMaxK) return bad;
  return v;
}

bool moves_matches(EventType type) {
  return type == EventType::kPropertyView || type == EventType::kPropertySave || type == EventType::kTourRequest;
}

json::value finite_or_null(double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); }

double number_or_nan(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<double>() : std::nan("");
}

// A listing's valuation as the importer stored it (inventory.h
// valuation_json); nullopt when not valued or unreadable.
std::optional<StoredValuation> parse_stored_valuation(std::string_view text) {
  if (text.empty()) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.as_object();
  StoredValuation out;
  out.valuation.predicted = number_or_nan(o, "value");
  out.valuation.lower80 = number_or_nan(o, "lower80");
  out.valuation.upper80 = number_or_nan(o, "upper80");
  out.valuation.lower90 = number_or_nan(o, "lower90");
  out.valuation.upper90 = number_or_nan(o, "upper90");
  const auto& w = out.valuation;
  if (!(w.predicted > 0) || !std::isfinite(w.lower80) || !std::isfinite(w.upper80) || !std::isfinite(w.lower90) ||
      !std::isfinite(w.upper90)) {
    return std::nullopt;
  }
  if (const json::value* m = o.if_contains("model"); m != nullptr && m->is_string()) out.model = std::string(m->get_string());
  if (const json::value* r = o.if_contains("outside_training_range"); r != nullptr && (r->is_array() || r->is_null())) {
    out.outside_training_range = std::make_shared<const json::value>(*r);
  }
  if (const json::value* m = o.if_contains("market_as_of"); m != nullptr && m->is_string()) {
    out.market_as_of = std::string(m->get_string());
  }
  return out;
}

// The valuation as a match shows it: valuation_json at `list_price`, with
// the listing's own outside_training_range when it was stored.
json::object shown_valuation(const StoredValuation& v, double list_price) {
  json::object valuation = json::parse(property::valuation_json(v.valuation, list_price, v.model)).as_object();
  if (v.outside_training_range) valuation["outside_training_range"] = *v.outside_training_range;
  return valuation;
}

}  // namespace

// Listings and the ranker serving them. Immutable once built apart from the
// catalog's live popularity (the worker adds behaviour through
// behaviour_sink, which readers see without a lock); shared by requests and
// the worker.
struct PropertyRoutes::Inventory {
  std::shared_ptr<const property::ListingCatalog> catalog;
  // The same catalog, for the worker alone to add live behaviour to
  // (ListingCatalog::add_live_*, safe beside readers).
  std::shared_ptr<property::ListingCatalog> behaviour_sink;
  // Which catalog build this is (kept when only the match model changes),
  // and where in the store (read_new_events) its popularity was folded to.
  std::uint64_t catalog_serial = 0;
  store::EventCursor behaviour_cursor;
  // Each listing's stored valuation (catalog index), null when not valued.
  std::shared_ptr<const std::vector<std::optional<StoredValuation>>> valuations;
  std::int64_t listings_version = 0;  // store's listings_version when read
  std::unique_ptr<const property::Matcher> matcher;
  std::string model_version;  // "content" or match@mtime
  bool learned = false;       // false: the content scorer ranks
};

// A buyer's preference state as the worker keeps it, and the top listings it
// last published (or computed).
struct PropertyRoutes::BuyerState {
  property::BuyerPreferences preferences;
  std::vector<std::uint32_t> top;
};

struct PropertyRoutes::TenantState {
  std::mutex mu;       // guards the fields below
  std::shared_ptr<const Inventory> inventory;
  bool no_listings = false;  // the store had none at the last load
  std::int64_t no_listings_version = 0;  // listings_version of that load
  // The next time a request may queue a check of the store's listings
  // version, and whether one is queued.
  std::chrono::steady_clock::time_point next_check{};
  bool check_queued = false;
  std::unordered_map<std::string, BuyerState> buyers;  // only the worker writes
  // The AVM serving this tenant and its version (model_dir_version).
  std::shared_ptr<const property::ValuationModel> avm;
  std::string avm_version;
  // Only the worker reads and writes these (no lock): the catalog build
  // whose popularity holds the tenant's stored behaviour up to `cursor`,
  // and the last job ticket queued before that read began.
  struct BehaviourRead {
    std::uint64_t catalog_serial = 0;
    store::EventCursor cursor;
    std::uint64_t ticket = 0;
  } behaviour;
};

// Buyer states index a catalog: they stay valid while it does (a new match
// model reuses the catalog), and are dropped with it.
bool PropertyRoutes::same_catalog(const std::shared_ptr<const Inventory>& a, const std::shared_ptr<const Inventory>& b) {
  return a && b && a->catalog == b->catalog;
}

PropertyRoutes::PropertyRoutes(store::Store& store, bus::Bus& bus, const Clock& clock, std::string model_dir,
                               std::chrono::milliseconds listings_check_interval)
    : store_(store),
      bus_(bus),
      clock_(clock),
      model_dir_(std::move(model_dir)),
      listings_check_interval_(listings_check_interval) {
  Job preload;
  preload.preload_all = true;
  queue_.push_back(std::move(preload));  // the worker's first job
  worker_ = std::thread([this] { worker_loop(); });
}

PropertyRoutes::~PropertyRoutes() { stop(); }

void PropertyRoutes::stop() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  std::lock_guard lock(stop_mu_);
  if (worker_.joinable()) worker_.join();
}

Route PropertyRoutes::route_of(std::span<const std::string> segments, std::string* id) {
  const auto& s = segments;
  if (s.size() == 3 && s[0] == "api" && s[1] == "properties" && s[2] == "match") return Route::kPropertiesMatch;
  if (s.size() == 3 && s[0] == "api" && s[1] == "properties" && s[2] == "value") return Route::kPropertiesValue;
  if (s.size() == 3 && s[0] == "api" && s[1] == "listings" && !s[2].empty()) {
    *id = s[2];
    return Route::kListing;
  }
  if (s.size() == 4 && s[0] == "api" && s[1] == "leads" && !s[2].empty() && s[3] == "matches") {
    *id = s[2];
    return Route::kLeadMatches;
  }
  return Route::kUnmatched;
}

ApiResponse PropertyRoutes::handle(Route route, const TokenClaims& claims, const ApiRequest& request,
                                   const std::string& id, std::string_view query) {
  const bool get = request.method == Method::kGet || request.method == Method::kHead;
  const bool post = request.method == Method::kPost;
  switch (route) {
    case Route::kLeadMatches:
      if (get) return lead_matches(claims, id, query);
      break;
    case Route::kPropertiesMatch:
      if (post) return criteria_matches(claims, request);
      break;
    case Route::kPropertiesValue:
      if (post) return value_listing(claims, request);
      break;
    case Route::kListing:
      if (get) return listing(claims, id);
      break;
    default:
      return error_response(not_found("no such route"), route);
  }
  return method_not_allowed(route);
}

std::shared_ptr<PropertyRoutes::TenantState> PropertyRoutes::tenant(const std::string& tenant_id) {
  std::lock_guard lock(tenants_mu_);
  auto& slot = tenants_[tenant_id];
  if (!slot) slot = std::make_shared<TenantState>();
  return slot;
}

std::string PropertyRoutes::model_on_disk(const std::string& tenant_id, std::string_view kind,
                                          std::string* name) const {
  const std::string shared = (std::filesystem::path(model_dir_) / std::string(kind)).string();
  auto dir = model_dir_.empty() ? Result<std::string>(shared) : property::tenant_model_dir(model_dir_, tenant_id, kind);
  if (!dir) dir = shared;  // an id the path builder refuses never gets a directory of its own
  *name = *dir == shared ? std::string(kind) : "tenants/" + tenant_id + "/" + std::string(kind);
  if (model_dir_.empty()) return {};
  auto version = property::model_dir_version(*dir, kind);
  return version ? *version : std::string();
}

PropertyRoutes::RefreshReport PropertyRoutes::refresh(const std::string& tenant_id) {
  RefreshReport report = refresh_own(tenant_id);
  std::vector<std::pair<std::string, std::shared_ptr<TenantState>>> others;
  {
    std::lock_guard lock(tenants_mu_);
    for (const auto& [id, st] : tenants_) {
      if (id != tenant_id) others.emplace_back(id, st);
    }
  }
  for (auto& [id, st] : others) {
    if (holds_stale_shared_model(id, *st)) ++report.tenants_refreshed;
  }
  return report;
}

PropertyRoutes::RefreshReport PropertyRoutes::refresh_own(const std::string& tenant_id) {
  RefreshReport report;
  auto state = tenant(tenant_id);
  std::shared_ptr<const Inventory> held;
  std::optional<std::int64_t> held_listings;  // none: no catalog loaded yet
  {
    std::lock_guard lock(state->mu);
    held = state->inventory;
    if (held) held_listings = held->listings_version;
    else if (state->no_listings) held_listings = state->no_listings_version;
  }
  const auto record = [&report](bool moved, std::string name) {
    (moved ? report.reloaded : report.unchanged).push_back(std::move(name));
  };
  bool rebuild = false;
  if (auto version = store_.listings_version(tenant_id)) {  // the store down: the next check retries
    // None loaded yet is not a swap: the catalog's first load is queued.
    const bool moved = held_listings && *held_listings != *version;
    record(moved, "listings");
    rebuild = moved || !held_listings;
  }
  std::string name;
  const std::string match = model_on_disk(tenant_id, "match", &name);
  const bool match_moved = held && held->model_version != (match.empty() ? "content" : match);
  if (match_moved || !match.empty()) record(match_moved, name);
  rebuild = rebuild || match_moved;
  const std::string value = model_on_disk(tenant_id, "value", &name);
  bool value_moved = false;
  {
    std::lock_guard lock(state->mu);
    value_moved = state->avm && state->avm_version != value;
    if (value_moved) state->avm.reset();  // the next valuation loads what is on disk
  }
  if (value_moved || !value.empty()) record(value_moved, name);
  if (rebuild) maybe_queue_listings_check(*state, tenant_id, true);
  return report;
}

bool PropertyRoutes::holds_stale_shared_model(const std::string& tenant_id, TenantState& state) {
  std::string name;
  const std::string match = model_on_disk(tenant_id, "match", &name);
  const bool shared_match = name == "match";
  const std::string value = model_on_disk(tenant_id, "value", &name);
  const bool shared_value = name == "value";
  bool match_moved = false;
  bool value_moved = false;
  {
    std::lock_guard lock(state.mu);
    match_moved = shared_match && state.inventory && state.inventory->model_version != (match.empty() ? "content" : match);
    value_moved = shared_value && state.avm && state.avm_version != value;
    if (value_moved) state.avm.reset();  // the next valuation loads what is on disk
  }
  // The catalog is kept: the worker attaches the new matcher to it.
  if (match_moved) maybe_queue_listings_check(state, tenant_id, true);
  return match_moved || value_moved;
}

void PropertyRoutes::preload_all() {
  auto tenants = store_.list_tenants();
  if (!tenants) return;  // the store is down: requests queue their tenant's load
  for (const store::Tenant& t : *tenants) {
    {
      std::lock_guard lock(queue_mu_);
      if (stopping_) return;
    }
    check_listings(t.tenant_id);
  }
}

Result<std::shared_ptr<PropertyRoutes::Inventory>> PropertyRoutes::load_listings(const std::string& tenant_id) {
  // The version first: a write racing this read shows as a newer version,
  // so the next check rebuilds rather than missing it.
  auto version = store_.listings_version(tenant_id);
  if (!version) return version.status();
  std::vector<property::StoredListing> stored;
  std::vector<std::string> valuation_texts;
  REAI_RETURN_IF_ERROR(store_.for_each_listing(tenant_id, [&](const store::ListingRecord& l) {
    stored.push_back({l.listing_id, l.list_price, l.attributes_json});
    valuation_texts.push_back(l.valuation_json);
    return true;
  }));
  auto inv = std::make_shared<Inventory>();
  inv->listings_version = *version;
  if (stored.empty()) return inv;  // no catalog: the tenant has no listings
  auto table = property::listings_table(stored, "listings of " + tenant_id);
  if (!table) return table.status();
  auto built = property::ListingCatalog::build(
      *table, {std::string(property::kListPriceColumn), std::string(property::kListingIdColumn)});
  if (!built) return built.status();
  auto owned = std::make_shared<property::ListingCatalog>(std::move(*built));
  auto valuations = std::make_shared<std::vector<std::optional<StoredValuation>>>(owned->size());
  for (std::size_t r = 0; r < stored.size(); ++r) {
    const int i = owned->find(stored[r].id);
    if (i < 0) continue;
    auto v = parse_stored_valuation(valuation_texts[r]);
    if (!v) continue;
    owned->set_appraisal(static_cast<std::size_t>(i), v->valuation.predicted);
    // Parsed and built here, once, not per match answer.
    v->shown = std::make_shared<const json::object>(shown_valuation(*v, owned->listing(static_cast<std::size_t>(i)).price));
    (*valuations)[static_cast<std::size_t>(i)] = std::move(*v);
  }
  // Popularity from the tenant's stored views, saves and tour requests, read
  // through a cursor so live behaviour goes on from where this read ends.
  store::EventCursor cursor;
  REAI_RETURN_IF_ERROR(store_.read_new_events(tenant_id, cursor, [&](const Event& e) {
    if (e.property_id.empty() || !moves_matches(e.type)) return;
    const int i = owned->find(e.property_id);
    if (i < 0) return;
    if (e.type == EventType::kPropertyView) owned->record_view(static_cast<std::size_t>(i), e.ts);
    else owned->record_interest(static_cast<std::size_t>(i), e.ts);
  }));
  owned->finish_popularity();
  static std::atomic<std::uint64_t> serials{0};
  inv->catalog_serial = ++serials;
  inv->behaviour_cursor = std::move(cursor);
  inv->behaviour_sink = owned;
  inv->catalog = std::move(owned);
  inv->valuations = std::move(valuations);
  return inv;
}

std::string PropertyRoutes::wanted_match_model(const std::string& tenant_id, std::string* match_dir) const {
  // Claims are validated before a route runs; an id the path builder still
  // refuses gets the content scorer, never another directory.
  auto dir = model_dir_.empty() ? Result<std::string>(std::string()) : property::tenant_model_dir(model_dir_, tenant_id, "match");
  *match_dir = dir ? *dir : std::string();
  auto version = match_dir->empty() ? Result<std::string>(not_found("no model dir"))
                                    : property::model_dir_version(*match_dir, "match");
  return version ? *version : std::string("content");
}

void PropertyRoutes::attach_model(Inventory& inv, const std::string& match_dir, const std::string& wanted) {
  std::shared_ptr<const property::MatchModel> model;
  if (wanted != "content") {
    auto loaded = property::MatchModel::load(match_dir);
    if (loaded) model = std::make_shared<const property::MatchModel>(std::move(*loaded));
    // A model that does not load leaves the content scorer serving; the
    // version records what was tried so it is not reloaded every request.
  }
  inv.matcher = std::make_unique<const property::Matcher>(*inv.catalog, model);
  inv.model_version = wanted;
  inv.learned = model != nullptr;
}

void PropertyRoutes::maybe_queue_listings_check(TenantState& state, const std::string& tenant_id, bool now) {
  const auto t = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(state.mu);
    if (state.check_queued || (!now && t < state.next_check)) return;
    state.check_queued = true;
    state.next_check = t + listings_check_interval_;
  }
  Job job;
  job.tenant_id = tenant_id;
  job.check_listings = true;
  if (!enqueue(std::move(job))) {
    std::lock_guard lock(state.mu);
    state.check_queued = false;
  }
}

void PropertyRoutes::check_listings(const std::string& tenant_id) {
  auto state = tenant(tenant_id);
  // Cleared when done, so requests arriving during a load queue no more.
  struct ClearQueued {
    TenantState& state;
    ~ClearQueued() {
      std::lock_guard lock(state.mu);
      state.check_queued = false;
    }
  } clear_queued{*state};
  auto version = store_.listings_version(tenant_id);
  if (!version) return;  // the store is down: the next check retries
  std::string match_dir;
  const std::string wanted = wanted_match_model(tenant_id, &match_dir);
  std::shared_ptr<const Inventory> current;
  {
    std::lock_guard lock(state->mu);
    if (state->no_listings && state->no_listings_version == *version) return;
    current = state->inventory;
  }
  std::shared_ptr<Inventory> fresh;
  if (current && current->listings_version == *version) {
    if (current->model_version == wanted) {
      count_new_behaviour(tenant_id, *state, *current);  // behaviour stored by other instances too
      return;
    }
    fresh = std::make_shared<Inventory>();  // only the match model changed
    fresh->catalog = current->catalog;
    fresh->behaviour_sink = current->behaviour_sink;
    fresh->catalog_serial = current->catalog_serial;
    fresh->behaviour_cursor = current->behaviour_cursor;
    fresh->valuations = current->valuations;
    fresh->listings_version = current->listings_version;
  } else {
    // Built here, on the matching worker, while requests keep the old one.
    auto loaded = load_listings(tenant_id);
    if (!loaded) return;
    fresh = std::move(*loaded);
  }
  if (fresh->catalog) attach_model(*fresh, match_dir, wanted);
  auto installed = install(*state, std::move(fresh));
  if (installed) count_new_behaviour(tenant_id, *state, **installed);
}

void PropertyRoutes::count_new_behaviour(const std::string& tenant_id, TenantState& state, const Inventory& inv) {
  std::uint64_t issued = 0;
  {
    // Every job queued so far carries an event stored before it was queued:
    // the read below, which starts after this, sees them all.
    std::lock_guard lock(queue_mu_);
    issued = tickets_;
  }
  auto& read = state.behaviour;
  if (read.catalog_serial != inv.catalog_serial) read = {inv.catalog_serial, inv.behaviour_cursor, 0};
  property::ListingCatalog& catalog = *inv.behaviour_sink;
  const Status status = store_.read_new_events(tenant_id, read.cursor, [&](const Event& e) {
    if (e.property_id.empty() || !moves_matches(e.type)) return;
    const int i = catalog.find(e.property_id);
    if (i < 0) return;
    if (e.type == EventType::kPropertyView) catalog.add_live_view(static_cast<std::size_t>(i), e.ts);
    else catalog.add_live_interest(static_cast<std::size_t>(i), e.ts);
  });
  if (status.is_ok()) read.ticket = issued;
}

Result<std::shared_ptr<const PropertyRoutes::Inventory>> PropertyRoutes::install(TenantState& state,
                                                                                   std::shared_ptr<Inventory> inv) {
  const Status no_listings = not_found("no listings imported for this tenant (reai import listings)");
  std::lock_guard lock(state.mu);
  const std::int64_t have = state.inventory ? state.inventory->listings_version
                            : state.no_listings ? state.no_listings_version
                                                : -1;
  if (inv->listings_version < have) {  // a newer one won the race
    if (state.inventory) return state.inventory;
    return no_listings;
  }
  if (!inv->catalog) {
    state.inventory.reset();
    state.buyers.clear();
    state.no_listings = true;
    state.no_listings_version = inv->listings_version;
    return no_listings;
  }
  if (state.inventory && state.inventory->catalog != inv->catalog) state.buyers.clear();
  state.no_listings = false;
  state.inventory = inv;
  return std::shared_ptr<const Inventory>(inv);
}

Result<std::shared_ptr<const PropertyRoutes::Inventory>> PropertyRoutes::inventory(const std::string& tenant_id,
                                                                                     bool on_worker) {
  auto state = tenant(tenant_id);
  const Status no_listings = not_found("no listings imported for this tenant (reai import listings)");
  bool known_empty = false;
  {
    std::lock_guard lock(state->mu);
    known_empty = state->no_listings && !state->inventory;
  }
  if (known_empty) {
    // Answered before the model lookup below: its two stat() calls were most
    // of the matching worker's cost per property event of such a tenant.
    if (!on_worker) maybe_queue_listings_check(*state, tenant_id, false);
    return no_listings;
  }
  std::string match_dir;
  const std::string wanted = wanted_match_model(tenant_id, &match_dir);
  std::shared_ptr<const Inventory> current;
  bool installed = false;
  {
    std::lock_guard lock(state->mu);
    current = state->inventory;
    installed = current != nullptr || state->no_listings;
  }
  if (!on_worker) {
    // Nothing installed yet, or a retrained match model: the worker loads
    // it; this thread answers with what is installed.
    const bool model_moved = current && current->model_version != wanted;
    maybe_queue_listings_check(*state, tenant_id, !installed || model_moved);
    if (!installed) return unavailable("listings are loading");
    if (!current) return no_listings;
    return current;
  }
  if (installed && (!current || current->model_version == wanted)) {
    if (!current) return no_listings;
    return current;
  }
  check_listings(tenant_id);  // on the worker: load what is missing now
  std::lock_guard lock(state->mu);
  if (state->inventory) return state->inventory;
  if (state->no_listings) return no_listings;
  return unavailable("listings could not be loaded");
}

Result<property::BuyerPreferences> PropertyRoutes::preferences_from_store(const Inventory& inv,
                                                                          const std::string& tenant_id,
                                                                          const std::string& contact_id,
                                                                          std::string_view stop_before_event) {
  auto contact = store_.get_contact(tenant_id, contact_id);
  if (!contact) {
    if (contact.status().code() == StatusCode::kNotFound) return not_found("lead '" + contact_id + "' not found");
    return contact.status();
  }
  auto events = store_.events_for_contact(tenant_id, contact_id);
  if (!events) return events.status();
  property::BuyerPreferences prefs(*inv.catalog, property::stated_criteria(*contact));
  for (const Event& e : *events) {
    if (!stop_before_event.empty() && e.event_id == stop_before_event) break;
    if (!moves_matches(e.type) || e.property_id.empty()) continue;
    const int i = inv.catalog->find(e.property_id);
    if (i >= 0) prefs.observe(*inv.catalog, static_cast<std::size_t>(i), e.type, e.ts);
  }
  return prefs;
}

namespace {

using StoredValuations = std::vector<std::optional<StoredValuation>>;

const std::optional<StoredValuation>& valuation_of(const StoredValuations& valuations, const property::Match& m) {
  static const std::optional<StoredValuation> kNone;
  return m.listing < valuations.size() ? valuations[m.listing] : kNone;
}

// The market every valued match's valuation reflects when they all share
// one: said once per answer, not once per match. Empty when no match is
// valued, one's market is unknown, or they differ (listings imported under
// AVMs of different markets: each valuation then says its own).
std::string shared_market_as_of(const StoredValuations& valuations, const std::vector<property::Match>& matches) {
  std::string shared;
  for (const auto& m : matches) {
    const auto& v = valuation_of(valuations, m);
    if (!v) continue;
    if (v->market_as_of.empty() || (!shared.empty() && shared != v->market_as_of)) return {};
    shared = v->market_as_of;
  }
  return shared;
}

// The matches array shared by the routes and match_update messages. Each
// carries its listing's valuation (value, intervals, competitiveness, model)
// as GET /api/listings/{id} shows them, with the listing's own
// outside_training_range (absent when stored before it was kept), null when
// the listing was not valued. The market the valuations reflect is the
// answer's (shared_market); only without one does each valuation say its own.
json::array matches_json(const property::ListingCatalog& catalog, const StoredValuations& valuations,
                         const std::vector<property::Match>& matches, const std::string& shared_market) {
  json::array list;
  list.reserve(matches.size());
  for (std::size_t r = 0; r < matches.size(); ++r) {
    const auto& m = matches[r];
    const property::Listing& l = catalog.listing(m.listing);
    json::object o;
    o["rank"] = r + 1;
    o["property_id"] = l.id;
    o["match_score"] = m.match_score;
    o["predicted_interest"] = m.predicted_interest;
    json::array reasons;
    for (const auto& reason : m.reasons) reasons.emplace_back(reason);
    o["reasons"] = std::move(reasons);
    o["list_price"] = l.price;
    if (l.neighbourhood >= 0) o["neighbourhood"] = catalog.neighbourhood_name(l.neighbourhood);
    if (std::isfinite(l.beds)) o["beds"] = l.beds;
    const auto& v = valuation_of(valuations, m);
    if (v) {
      json::object valuation = v->shown ? *v->shown : shown_valuation(*v, l.price);
      if (shared_market.empty() && !v->market_as_of.empty()) valuation["market_as_of"] = v->market_as_of;
      o["valuation"] = std::move(valuation);
    } else {
      o["valuation"] = nullptr;
    }
    list.push_back(std::move(o));
  }
  return list;
}

// Sets `*out`'s "matches" and "valuation_market_as_of" (the market shared
// by the matches' valuations, null without one).
void add_matches(const property::ListingCatalog& catalog, const StoredValuations& valuations,
                 const std::vector<property::Match>& matches, json::object* out) {
  const std::string market = shared_market_as_of(valuations, matches);
  (*out)["matches"] = matches_json(catalog, valuations, matches, market);
  (*out)["valuation_market_as_of"] = market.empty() ? json::value(nullptr) : json::value(market);
}

std::vector<property::Match> rank(const property::Matcher& matcher, const property::BuyerPreferences& prefs,
                                  UnixSeconds now, std::size_t k) {
  property::MatchOptions options;
  options.k = k;
  return matcher.top_k(prefs, std::max(now, prefs.last_event()), options);
}

// The areas a buyer stated that no listing is in, as given ([] when none).
json::array unknown_areas_json(const property::BuyerPreferences& prefs) {
  const auto& unknown = prefs.unknown_areas();
  return json::array(unknown.begin(), unknown.end());
}

// The budget the first group of matches was held to, and why: null without
// a stated budget; {"stated","effective","follows":"statement"|"behaviour","why"}.
json::value budget_json(const property::BuyerPreferences& prefs) {
  const auto& budget = prefs.effective_budget();
  if (!budget) return nullptr;
  json::object o;
  o["stated"] = budget->stated;
  o["effective"] = budget->effective;
  o["follows"] = budget->follows_behaviour ? "behaviour" : "statement";
  o["why"] = property::effective_budget_why(*budget);
  return o;
}

// What a match_update says of the budget, compared to tell whether it moved
// (its why text alone, "saved" becoming "saved and toured", is not a move).
struct BudgetShown {
  bool stated = false;
  double stated_usd = 0, effective_usd = 0;
  bool follows_behaviour = false;
  bool operator==(const BudgetShown&) const = default;
};
BudgetShown budget_shown(const property::BuyerPreferences& prefs) {
  const auto& budget = prefs.effective_budget();
  if (!budget) return {};
  return {true, budget->stated, budget->effective, budget->follows_behaviour};
}

std::vector<std::uint32_t> top_ids(const std::vector<property::Match>& matches) {
  std::vector<std::uint32_t> ids;
  for (std::size_t i = 0; i < matches.size() && i < kTopChanged; ++i) ids.push_back(matches[i].listing);
  return ids;
}

}  // namespace

ApiResponse PropertyRoutes::lead_matches(const TokenClaims& claims, const std::string& lead_id, std::string_view query) {
  constexpr Route kRoute = Route::kLeadMatches;
  auto k = parse_k(query);
  if (!k) return error_response(k.status(), kRoute);
  auto inv = inventory(claims.tenant_id);
  if (!inv) return inventory_error(inv.status(), kRoute);
  std::optional<property::BuyerPreferences> prefs;
  {
    auto state = tenant(claims.tenant_id);
    std::lock_guard lock(state->mu);
    auto it = state->buyers.find(lead_id);
    if (it != state->buyers.end() && same_catalog(state->inventory, *inv)) prefs = it->second.preferences;
  }
  if (!prefs) {
    auto built = preferences_from_store(**inv, claims.tenant_id, lead_id);
    if (!built) return error_response(built.status(), kRoute);
    prefs = std::move(*built);
  }
  const auto matches = rank(*(*inv)->matcher, *prefs, clock_.now(), *k);
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["lead_id"] = lead_id;
  o["model"] = (*inv)->model_version;
  o["ranker"] = (*inv)->learned ? "learned" : "content";
  o["listings"] = (*inv)->catalog->size();
  add_matches(*(*inv)->catalog, *(*inv)->valuations, matches, &o);
  // The lead's stored area when no listing is in it: matched without it,
  // said rather than ignored (never a 400: the stored data is not the request).
  o["unknown_areas"] = unknown_areas_json(*prefs);
  o["budget"] = budget_json(*prefs);
  return answer(json_text(o), kRoute);
}

namespace {

// What POST /api/properties/match asks for: stated criteria, the lead whose
// behaviour they are ranked with (empty: none), and how many matches.
struct MatchCriteria {
  std::string lead_id;
  property::StatedCriteria stated;
  bool any_criterion = false;
  std::size_t k = 10;
};

Status read_criteria_field(const std::string& key, const json::value& v, const std::string& tenant_id,
                           MatchCriteria* criteria) {
  if (key == "lead_id") {
    if (!v.is_string() || v.get_string().empty()) return invalid_argument("field 'lead_id' must be a non-empty string");
    criteria->lead_id = std::string(v.get_string());
  } else if (key == "budget") {
    if (!v.is_number() || !(v.to_number<double>() > 0)) return invalid_argument("field 'budget' must be a positive number");
    criteria->stated.budget = v.to_number<double>();
    criteria->any_criterion = true;
  } else if (key == "beds") {
    if (!v.is_int64() || v.get_int64() < 0 || v.get_int64() > 20) return invalid_argument("field 'beds' must be an integer 0..20");
    criteria->stated.beds = static_cast<int>(v.get_int64());
    criteria->any_criterion = true;
  } else if (key == "area") {
    // One area or a list of them (a home in any will do).
    const json::array one{v};
    const json::array& areas = v.is_array() ? v.get_array() : one;
    constexpr const char* kWhat = "field 'area' must be an area name or a list of 1 to 100 of them";
    if (areas.empty() || areas.size() > kMaxAreas) return invalid_argument(kWhat);
    for (const auto& area : areas) {
      if (!area.is_string() || property::area_key(area.get_string()).empty()) return invalid_argument(kWhat);
      criteria->stated.areas.emplace_back(area.get_string());
    }
    criteria->any_criterion = true;
  } else if (key == "k") {
    if (!v.is_int64() || v.get_int64() < 1 || v.get_int64() > static_cast<std::int64_t>(kMaxK)) return invalid_argument("field 'k' must be an integer 1..100");
    criteria->k = static_cast<std::size_t>(v.get_int64());
  } else if (key == "tenant_id") {
    if (!v.is_string() || v.get_string() != tenant_id) return permission_denied("tenant_id does not match the token");
  } else {
    return invalid_argument("field '" + key + "' is not a known field");
  }
  return Status::ok();
}

Result<MatchCriteria> read_match_criteria(const json::object& body, const std::string& tenant_id) {
  MatchCriteria criteria;
  for (const auto& kv : body) REAI_RETURN_IF_ERROR(read_criteria_field(std::string(kv.key()), kv.value(), tenant_id, &criteria));
  if (!criteria.any_criterion && criteria.lead_id.empty()) {
    return invalid_argument("give at least one of budget, beds, area or lead_id");
  }
  return criteria;
}

// The lead's behaviour with the body's criteria in place of stored ones. A
// body budget is stated now (the request's): the lead's behaviour so far
// does not move it.
Result<property::BuyerPreferences> lead_preferences_with(store::Store& store, const property::ListingCatalog& catalog,
                                                         const std::string& tenant_id, const std::string& lead_id,
                                                         const property::StatedCriteria& stated, UnixSeconds now) {
  auto contact = store.get_contact(tenant_id, lead_id);
  if (!contact) {
    return contact.status().code() == StatusCode::kNotFound ? not_found("lead '" + lead_id + "' not found") : contact.status();
  }
  property::StatedCriteria merged = property::stated_criteria(*contact);
  if (stated.budget) merged.budget = stated.budget, merged.budget_stated_at = now;
  if (stated.beds) merged.beds = stated.beds;
  if (!stated.areas.empty()) merged.areas = stated.areas;
  auto events = store.events_for_contact(tenant_id, lead_id);
  if (!events) return events.status();
  property::BuyerPreferences prefs(catalog, merged);
  for (const Event& e : *events) {
    if (!moves_matches(e.type)) continue;
    if (const int i = catalog.find(e.property_id); i >= 0) prefs.observe(catalog, std::size_t(i), e.type, e.ts);
  }
  return prefs;
}

// 400 when none of the stated areas exists: "unknown area 'X': the
// tenant's listings are in A, B, C" (the names when at most
// kMaxAreasListed, else how many; each stated name cut at 64 bytes).
Status no_known_area(const property::ListingCatalog& catalog, const std::vector<std::string>& unknown) {
  std::string message = unknown.size() == 1 ? "unknown area " : "unknown areas ";
  for (std::size_t i = 0; i < unknown.size(); ++i) message += (i ? ", '" : "'") + unknown[i].substr(0, 64) + "'";
  std::vector<std::string> names;
  for (std::size_t k = 0; k < catalog.neighbourhood_levels(); ++k) names.push_back(catalog.neighbourhood_name(int(k)));
  std::sort(names.begin(), names.end());
  if (names.empty()) return invalid_argument(message + ": the tenant's listings name no areas");
  if (names.size() > kMaxAreasListed) {
    return invalid_argument(message + ": the tenant's listings are in " + std::to_string(names.size()) + " areas");
  }
  message += ": the tenant's listings are in ";
  for (std::size_t i = 0; i < names.size(); ++i) message += (i ? ", " : "") + names[i];
  return invalid_argument(message);
}

}  // namespace

ApiResponse PropertyRoutes::criteria_matches(const TokenClaims& claims, const ApiRequest& request) {
  constexpr Route kRoute = Route::kPropertiesMatch;
  auto body = parse_body_object(request.body);
  if (!body) return error_response(body.status(), kRoute);
  auto criteria = read_match_criteria(*body, claims.tenant_id);
  if (!criteria) return error_response(criteria.status(), kRoute);
  const std::string& lead_id = criteria->lead_id;
  auto inv = inventory(claims.tenant_id);
  if (!inv) return inventory_error(inv.status(), kRoute);
  const property::ListingCatalog& catalog = *(*inv)->catalog;
  // A misspelt area would otherwise be ignored without a word.
  property::BuyerPreferences stated(catalog, criteria->stated);
  if (const auto& unknown = stated.unknown_areas(); !unknown.empty() && unknown.size() == criteria->stated.areas.size()) {
    return error_response(no_known_area(catalog, unknown), kRoute);
  }
  auto prefs = lead_id.empty() ? Result<property::BuyerPreferences>(std::move(stated))
                               : lead_preferences_with(store_, catalog, claims.tenant_id, lead_id, criteria->stated,
                                                       clock_.now());
  if (!prefs) return error_response(prefs.status(), kRoute);
  const auto matches = rank(*(*inv)->matcher, *prefs, clock_.now(), criteria->k);
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  if (!lead_id.empty()) o["lead_id"] = lead_id;
  o["model"] = (*inv)->model_version;
  o["ranker"] = (*inv)->learned ? "learned" : "content";
  o["listings"] = catalog.size();
  add_matches(catalog, *(*inv)->valuations, matches, &o);
  o["unknown_areas"] = unknown_areas_json(*prefs);
  o["budget"] = budget_json(*prefs);
  return answer(json_text(o), kRoute);
}

namespace {

// What POST /api/properties/value asks for.
struct ValueRequest {
  const json::value* attributes = nullptr;  // an object, into the parsed body
  std::optional<double> list_price;
};

Result<ValueRequest> read_value_request(const json::object& body, const std::string& tenant_id) {
  ValueRequest request;
  for (const auto& kv : body) {
    const std::string key(kv.key());
    if (key == "attributes") {
      if (!kv.value().is_object()) return invalid_argument("field 'attributes' must be an object");
      request.attributes = &kv.value();
    } else if (key == "list_price") {
      // A budget's bound: no home is listed above it, and beyond it the
      // competitiveness percent stops being a number a person can read.
      if (!kv.value().is_number() || !(kv.value().to_number<double>() >= 1) ||
          kv.value().to_number<double>() > kMaxBudget) {
        return invalid_argument("field 'list_price' must be a price between 1 and 10000000000");
      }
      request.list_price = kv.value().to_number<double>();
    } else if (key == "tenant_id") {
      if (!kv.value().is_string() || kv.value().get_string() != tenant_id) {
        return permission_denied("tenant_id does not match the token");
      }
    } else {
      return invalid_argument("field '" + key + "' is not a known field");
    }
  }
  if (!request.attributes) return invalid_argument("field 'attributes' is required");
  if (request.attributes->as_object().size() > kMaxAttributes) return payload_too_large("at most 1000 attributes");
  return request;
}

// With a list price the valuation shows how competitive that price is;
// without one, the value and its intervals alone.
json::object valuation_answer(const property::Valuation& v, std::optional<double> list_price, const std::string& model) {
  json::object o;
  if (list_price) {
    o = json::parse(property::valuation_json(v, *list_price, model)).as_object();
    o["list_price"] = *list_price;
  } else {
    o["value"] = finite_or_null(v.predicted);
    o["lower80"] = finite_or_null(v.lower80);
    o["upper80"] = finite_or_null(v.upper80);
    o["lower90"] = finite_or_null(v.lower90);
    o["upper90"] = finite_or_null(v.upper90);
    o["model"] = model;
  }
  return o;
}

}  // namespace

ApiResponse PropertyRoutes::value_listing(const TokenClaims& claims, const ApiRequest& request) {
  constexpr Route kRoute = Route::kPropertiesValue;
  auto body = parse_body_object(request.body);
  if (!body) return error_response(body.status(), kRoute);
  auto wanted = read_value_request(*body, claims.tenant_id);
  if (!wanted) return error_response(wanted.status(), kRoute);
  auto table = property::attributes_table(json::serialize(*wanted->attributes), "attributes");
  if (!table) return error_response(table.status(), kRoute);
  std::string version;
  auto avm = valuation_model(claims.tenant_id, &version);
  if (!avm) return error_response(avm.status(), kRoute);
  if (const auto unknown = (*avm)->unknown_columns(table->header); !unknown.empty()) {
    return error_response(invalid_argument("unknown attribute " + unknown.front() + ": the valuation model has no such column"),
                          kRoute);
  }
  const std::vector<std::string> ignored = property::drop_ignored_columns(**avm, &*table);
  if (Status s = (*avm)->check_cells(*table); !s) return error_response(s, kRoute);
  auto values = (*avm)->predict(*table);
  if (!values) return error_response(values.status(), kRoute);
  json::object o = valuation_answer(values->at(0), wanted->list_price, version);
  property::add_training_context(**avm, *table, 0, &o);
  o["ignored_attributes"] = json::array(ignored.begin(), ignored.end());
  // Valued as if missing, so the caller is told rather than left to trust it.
  json::array unseen;
  for (const auto& u : (*avm)->unseen_categories(*table, 0)) {
    json::object e;
    e["attribute"] = u.attribute;
    e["value"] = u.value;
    if (u.differs_in_case_from.empty()) e["differs_in_case_from"] = nullptr;
    else e["differs_in_case_from"] = u.differs_in_case_from;
    unseen.emplace_back(std::move(e));
  }
  o["unseen_categories"] = std::move(unseen);
  o["tenant_id"] = claims.tenant_id;
  return answer(json_text(o), kRoute);
}

// The AVM, reloaded when it was retrained (model.json mtime).
Result<std::shared_ptr<const property::ValuationModel>> PropertyRoutes::valuation_model(const std::string& tenant_id,
                                                                                        std::string* version) {
  auto model_dir = model_dir_.empty() ? Result<std::string>(std::string())
                                      : property::tenant_model_dir(model_dir_, tenant_id, "value");
  if (!model_dir) return model_dir.status();
  const std::string& dir = *model_dir;
  auto dir_version = dir.empty() ? Result<std::string>(not_found("")) : property::model_dir_version(dir, "value");
  if (!dir_version) return not_found("no valuation model trained (reai value train --out MODEL_DIR/value)");
  *version = std::move(*dir_version);
  auto state = tenant(tenant_id);
  std::shared_ptr<const property::ValuationModel> avm;
  {
    std::lock_guard lock(state->mu);
    if (state->avm_version == *version) avm = state->avm;
  }
  if (!avm) {
    auto loaded = property::ValuationModel::load(dir);
    if (!loaded) return internal_error("valuation model: " + loaded.status().message());
    avm = std::make_shared<const property::ValuationModel>(std::move(*loaded));
    std::lock_guard lock(state->mu);
    state->avm = avm;
    state->avm_version = *version;
  }
  return avm;
}

ApiResponse PropertyRoutes::listing(const TokenClaims& claims, const std::string& listing_id) {
  constexpr Route kRoute = Route::kListing;
  auto l = store_.get_listing(claims.tenant_id, listing_id);
  if (!l) return error_response(l.status(), kRoute);
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["listing_id"] = l->listing_id;
  o["list_price"] = l->list_price;
  boost::system::error_code ec;
  json::value attrs = json::parse(l->attributes_json, ec);
  o["attributes"] = ec ? json::value(json::object()) : std::move(attrs);
  if (l->valuation_json.empty()) {
    o["valuation"] = nullptr;
    o["valuation_note"] = "not valued: no valuation model when the listing was imported";
  } else {
    json::value v = json::parse(l->valuation_json, ec);
    o["valuation"] = ec ? json::value(nullptr) : std::move(v);
  }
  o["updated_at"] = format_iso8601(l->updated_at);
  return answer(json_text(o), kRoute);
}

bool PropertyRoutes::enqueue(Job job) {
  std::lock_guard lock(queue_mu_);
  if (stopping_) return false;
  if (queue_.size() >= kMaxQueuedJobs) {
    ++dropped_;  // matching lags behind; scoring never waits for it
    return false;
  }
  job.ticket = ++tickets_;
  queue_.push_back(std::move(job));
  // Only an idle worker is woken; a busy or pausing one takes the job with
  // the rest (a wake-up per event was visible in the events profile).
  if (std::exchange(worker_idle_, false)) queue_cv_.notify_one();
  return true;
}

void PropertyRoutes::on_event(const Event& event) {
  if (!moves_matches(event.type) || event.property_id.empty()) return;
  (void)enqueue(Job{event.tenant_id, event.contact_id, event, false});
}

void PropertyRoutes::on_contact_changed(const std::string& tenant_id, const std::string& contact_id) {
  (void)enqueue(Job{tenant_id, contact_id, Event{}, false});
}

void PropertyRoutes::worker_loop() {
  std::unique_lock lock(queue_mu_);
  for (;;) {
    worker_idle_ = true;
    queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    worker_idle_ = false;
    if (queue_.empty()) break;  // stopping and drained
    while (!queue_.empty()) {
      Job job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      process(job);
      lock.lock();
    }
    // Jobs arriving in the next moment are taken together after it: under
    // an event stream the worker wakes a hundred times a second, not once
    // per property event.
    queue_cv_.wait_for(lock, kJobPause, [&] { return stopping_; });
  }
}

void PropertyRoutes::process(const Job& job) {
  if (job.preload_all) {
    preload_all();
    return;
  }
  if (job.check_listings) {
    check_listings(job.tenant_id);
    return;
  }
  auto inv = inventory(job.tenant_id, /*on_worker=*/true);
  if (!inv) return;  // no listings for this tenant (or they do not load): nothing to match
  auto state = tenant(job.tenant_id);
  const bool is_event = !job.event.event_id.empty();
  // The event, and what any instance stored before it, counts in popularity
  // before anyone is ranked again; one read covers every job queued before it.
  const bool read_since_queued =
      state->behaviour.catalog_serial == (*inv)->catalog_serial && state->behaviour.ticket >= job.ticket;
  if (is_event && !read_since_queued) count_new_behaviour(job.tenant_id, *state, **inv);
  std::optional<BuyerState> buyer = kept_buyer(*state, *inv, job.contact_id);
  const UnixSeconds now = clock_.now();
  if (!buyer) {
    // First time this buyer is seen: their state before this job, so the
    // comparison below tells whether the job changed their top 3.
    buyer = buyer_before(**inv, job, now);
    if (!buyer) return;
    if (!is_event) {
      // Criteria changed before any state was kept: nothing to compare with.
      remember_buyer(*state, *inv, job.contact_id, std::move(*buyer));
      return;
    }
  }
  const BudgetShown budget_before = budget_shown(buyer->preferences);
  if (!update_preferences(**inv, job, &buyer->preferences)) return;
  const auto matches = rank(*(*inv)->matcher, buyer->preferences, now, 10);
  auto top = top_ids(matches);
  const bool changed = top != buyer->top || budget_shown(buyer->preferences) != budget_before;
  buyer->top = std::move(top);
  std::shared_ptr<const std::string> update;
  if (changed) update = std::make_shared<const std::string>(match_update_message(job, **inv, buyer->preferences, matches));
  // Kept before it is published: a reader the message sends to the match
  // routes finds this state.
  remember_buyer(*state, *inv, job.contact_id, std::move(*buyer));
  if (!update) return;
  auto published = bus_.publish(job.tenant_id, "match_update", std::move(update));
  (void)published;  // a bus failure shows in /readyz; the next change publishes again
}

std::optional<PropertyRoutes::BuyerState> PropertyRoutes::kept_buyer(TenantState& state,
                                                                      const std::shared_ptr<const Inventory>& inv,
                                                                      const std::string& contact_id) {
  std::lock_guard lock(state.mu);
  auto it = state.buyers.find(contact_id);
  if (it != state.buyers.end() && same_catalog(state.inventory, inv)) return it->second;
  return std::nullopt;
}

void PropertyRoutes::remember_buyer(TenantState& state, const std::shared_ptr<const Inventory>& inv,
                                    const std::string& contact_id, BuyerState&& buyer) {
  std::lock_guard lock(state.mu);
  if (same_catalog(state.inventory, inv)) state.buyers[contact_id] = std::move(buyer);
}

std::optional<PropertyRoutes::BuyerState> PropertyRoutes::buyer_before(const Inventory& inv, const Job& job,
                                                                        UnixSeconds now) {
  const bool is_event = !job.event.event_id.empty();
  auto before = preferences_from_store(inv, job.tenant_id, job.contact_id, is_event ? job.event.event_id : "");
  if (!before) return std::nullopt;
  BuyerState buyer{std::move(*before), {}};
  buyer.top = top_ids(rank(*inv.matcher, buyer.preferences, now, 10));
  return buyer;
}

bool PropertyRoutes::update_preferences(const Inventory& inv, const Job& job, property::BuyerPreferences* prefs) {
  if (!job.event.event_id.empty()) {
    const property::ListingCatalog& catalog = *inv.catalog;
    const int i = catalog.find(job.event.property_id);
    if (i < 0) return true;  // not a listing the catalog holds: nothing moves
    if (job.event.ts >= prefs->last_event()) {
      prefs->observe(catalog, static_cast<std::size_t>(i), job.event.type, job.event.ts);
      return true;
    }
    // Out of time order: rebuilt from the store (which holds it) below.
  }
  auto rebuilt = preferences_from_store(inv, job.tenant_id, job.contact_id);
  if (!rebuilt) return false;
  *prefs = std::move(*rebuilt);
  return true;
}

std::string PropertyRoutes::match_update_message(const Job& job, const Inventory& inv,
                                                 const property::BuyerPreferences& prefs,
                                                 const std::vector<property::Match>& matches) {
  json::object o;
  o["tenant_id"] = job.tenant_id;
  o["lead_id"] = job.contact_id;
  if (!job.event.event_id.empty()) {
    o["event_type"] = event_type_name(job.event.type);
    o["property_id"] = job.event.property_id;
  } else {
    o["event_type"] = "criteria";
  }
  o["model"] = inv.model_version;
  o["ranker"] = inv.learned ? "learned" : "content";
  add_matches(*inv.catalog, *inv.valuations, matches, &o);
  o["unknown_areas"] = unknown_areas_json(prefs);
  o["budget"] = budget_json(prefs);
  return json_text(o);
}

}  // namespace reai::server
