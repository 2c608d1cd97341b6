// Property intelligence routes: a lead's matches, matches for criteria in the
// body, one listing's valuation, and a stored listing with its value and
// price competitiveness. Tenant-scoped: the tenant always comes from the
// verified token. Private to src/server; owned by Api.
//
// State per tenant: the listings from the store as a ListingCatalog
// (popularity from the tenant's stored saves and tours), the match model from
// MODEL_DIR/tenants/T/match or MODEL_DIR/match (content scorer when none),
// the AVM from .../value (loaded on first use). Catalogs and match models are
// never loaded on a request (io) thread: the matching worker preloads every
// stored tenant's catalog at construction; until a
// tenant's catalog is installed its match routes answer 503 with
// Retry-After: 1 and {"error":"listings are loading"} (a request for a tenant
// the worker has not seen queues its load). A match model retrained into its
// directory (model.json mtime) is attached by the worker while requests keep
// the previous one. Listings imported while serving (by another process too)
// are picked up without a reload: a request queues a read of the store's
// per-tenant listings version at most once per check interval, and when it
// moved the worker rebuilds the catalog while requests keep using the old one.
//
// Matching never runs on the scoring path: behaviour (property view, save,
// tour request; a contact's criteria) is queued to one matching worker that
// updates the buyer's preference state, re-ranks, and publishes
// {"type":"match_update",...} on the bus when the buyer's top 3 change or
// the budget their first group is held to does (stated, effective, or
// whether it follows behaviour: a restated budget, saves that move it).
//
// Popularity follows behaviour as it is stored, by this instance or any
// other sharing the store: the worker reads the tenant's events stored since
// its last read (Store::read_new_events, one cursor per catalog) and adds each view,
// save and tour request of a known listing to the installed catalog
// (ListingCatalog::add_live_*), which requests read beside it without a
// lock. It reads before ranking a property event whose job was queued after
// its last read (so the event itself, and everything stored before it,
// counts), and on every listings check (so behaviour stored by other
// instances counts within a check interval of a request). One reader, one
// cursor per catalog: each stored event counts once (a replayed event_id
// is no new row), whichever instance stored it. A rebuilt catalog folds the
// stored events its own read returned, and its cursor goes on from there.
// On PostgreSQL an event whose transaction commits after one holding a
// later position (two instances appending at once) counts at the first read
// after its commit, still once (read_new_events re-reads a margin of
// positions and skips those it returned).
#pragma once

#include <boost/json/fwd.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <optional>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/types.h"
#include "property/property.h"
#include "server/api.h"

namespace reai::property {
class ListingCatalog;
class BuyerPreferences;
struct Match;
struct StatedCriteria;
}  // namespace reai::property

namespace reai::server {

// A listing's valuation as stored at import (value and intervals, the AVM
// version that made it, and its training context); matches embed it.
struct StoredValuation {
  property::Valuation valuation;
  std::string model;
  // property::add_training_context's "outside_training_range", parsed once
  // when the catalog is built (an array, or null: the AVM kept no ranges);
  // no pointer in a valuation stored by a reai before it was kept.
  std::shared_ptr<const boost::json::value> outside_training_range;
  // Its "market_as_of" ("2010-07"); empty when null or not stored.
  std::string market_as_of;
  // The valuation as a match shows it (value, intervals, competitiveness
  // against the listing's price, model, outside_training_range when kept),
  // built once when the catalog is built; null until then.
  std::shared_ptr<const boost::json::object> shown;
};

class PropertyRoutes {
 public:
  // All must outlive this object. `model_dir` may be empty (no models).
  // The store's listings version is read at most once per
  // `listings_check_interval` per tenant.
  PropertyRoutes(store::Store& store, bus::Bus& bus, const Clock& clock, std::string model_dir,
                 std::chrono::milliseconds listings_check_interval = std::chrono::seconds(2));
  // Stops the worker (as stop()).
  ~PropertyRoutes();
  PropertyRoutes(const PropertyRoutes&) = delete;
  PropertyRoutes& operator=(const PropertyRoutes&) = delete;

  // The route a path's decoded segments (path_segments) name when it is one
  // of these (GET /api/leads/{id}/matches, POST /api/properties/match,
  // POST /api/properties/value, GET /api/listings/{id}), with the lead or
  // listing id in *id; Route::kUnmatched otherwise.
  static Route route_of(std::span<const std::string> segments, std::string* id);
  // Answers a request routed by route_of (405 for another method). `id` is
  // the decoded lead or listing id. Any io thread.
  ApiResponse handle(Route route, const TokenClaims& claims, const ApiRequest& request, const std::string& id,
                     std::string_view query);

  // A stored event: queued for the matching worker when it is behaviour
  // that moves matches. Never blocks on matching (drops and counts when the
  // queue is full). Any thread.
  void on_event(const Event& event);
  // A contact's stated criteria may have changed (PUT /api/contacts).
  void on_contact_changed(const std::string& tenant_id, const std::string& contact_id);
  // What refresh() found. Names are model directories as under MODEL_DIR
  // ("match", "tenants/T/value": the one serving the tenant) and "listings"
  // (the tenant's catalog against the store's listings version).
  struct RefreshReport {
    std::vector<std::string> reloaded;   // differs from what this instance holds: being replaced
    std::vector<std::string> unchanged;  // the version held (or none held yet): nothing swapped
    // Other tenants whose match model or AVM falls back to a shared model
    // that now has another version on disk than the one they hold.
    std::size_t tenants_refreshed = 0;
  };
  // A tenant admin's reload. Nothing is dropped: the tenant's catalog is
  // rebuilt on the worker when the store's listings moved, its matcher when
  // its match model's version moved, while requests keep the old one; a
  // moved AVM loads on its next use. Another tenant is touched only when a
  // shared model it falls back to moved (the same rebuilds, queued now).
  // Any thread; reads the store's listings version and stats model files.
  RefreshReport refresh(const std::string& tenant_id);
  // Processes what is queued, then stops the worker. Idempotent.
  void stop();

 private:
  struct Inventory;
  static bool same_catalog(const std::shared_ptr<const Inventory>& a, const std::shared_ptr<const Inventory>& b);
  struct TenantState;
  struct BuyerState;
  struct Job {
    std::string tenant_id;
    std::string contact_id;
    Event event;           // empty event_id: criteria changed
    bool check_listings = false;  // instead: load the tenant's catalog, or rebuild it if the
                                  // store's listings version or the match model moved
    bool preload_all = false;     // instead: check_listings for every stored tenant
    std::uint64_t ticket = 0;     // enqueue order (enqueue sets it): the event was stored before
  };

  ApiResponse lead_matches(const TokenClaims& claims, const std::string& lead_id, std::string_view query);
  ApiResponse criteria_matches(const TokenClaims& claims, const ApiRequest& request);
  ApiResponse value_listing(const TokenClaims& claims, const ApiRequest& request);
  ApiResponse listing(const TokenClaims& claims, const std::string& listing_id);
  // The tenant's AVM and its version in *version (loaded on first use and
  // when retrained); NotFound when none is trained, Internal when it does
  // not load.
  Result<std::shared_ptr<const property::ValuationModel>> valuation_model(const std::string& tenant_id,
                                                                          std::string* version);

  // The tenant's state (created empty on first use).
  std::shared_ptr<TenantState> tenant(const std::string& tenant_id);
  // The tenant's installed inventory; NotFound when the tenant has no
  // listings. On a request thread (`on_worker` false) it never loads:
  // Unavailable ("listings are loading") until the worker has installed the
  // catalog, and a changed match model is queued for the worker while the
  // current one serves. On the worker it loads what is missing. Queues a
  // listings check when the interval has passed.
  Result<std::shared_ptr<const Inventory>> inventory(const std::string& tenant_id, bool on_worker = false);
  // The tenant's listings, valuations and popularity read from the store
  // (no matcher yet); an inventory without catalog when there are none.
  Result<std::shared_ptr<Inventory>> load_listings(const std::string& tenant_id);
  // "content" or the match model's version, and its directory.
  std::string wanted_match_model(const std::string& tenant_id, std::string* match_dir) const;
  static void attach_model(Inventory& inv, const std::string& match_dir, const std::string& wanted);
  // Makes `inv` the tenant's inventory unless a newer listings version is
  // already installed; NotFound when that inventory has no listings.
  Result<std::shared_ptr<const Inventory>> install(TenantState& state, std::shared_ptr<Inventory> inv);
  // Queues a check_listings job unless one is queued; `now` ignores the
  // check interval (nothing installed yet, or the match model changed).
  void maybe_queue_listings_check(TenantState& state, const std::string& tenant_id, bool now = false);
  // On the worker: loads the tenant's inventory when none is installed,
  // rebuilds it when the store's version moved, re-attaches the match model
  // when it changed.
  void check_listings(const std::string& tenant_id);
  // On the worker: check_listings for every tenant the store lists.
  void preload_all();
  // On the worker: adds the tenant's behaviour stored since the catalog's
  // read position to `inv`'s catalog (see the file comment). A store error
  // keeps what was read; the next call goes on from there.
  void count_new_behaviour(const std::string& tenant_id, TenantState& state, const Inventory& inv);
  // The version of the tenant's `kind` model on disk ("" when none) and its
  // name under MODEL_DIR in *name ("kind" when shared, "tenants/T/kind").
  std::string model_on_disk(const std::string& tenant_id, std::string_view kind, std::string* name) const;
  // refresh() for the asking tenant: its listings, match model and AVM
  // (tenants_refreshed stays 0).
  RefreshReport refresh_own(const std::string& tenant_id);
  // Whether a model the tenant holds falls back to a shared one that moved
  // on disk; a held AVM that did is dropped (it loads again on next use).
  bool holds_stale_shared_model(const std::string& tenant_id, TenantState& state);
  // False (and dropped) when stopping or the queue is full.
  bool enqueue(Job job);
  // A buyer's preferences from the stored contact and events; events after
  // `stop_before_event` (that one included) are left out when it is given.
  Result<property::BuyerPreferences> preferences_from_store(const Inventory& inv, const std::string& tenant_id,
                                                            const std::string& contact_id,
                                                            std::string_view stop_before_event = {});
  void worker_loop();
  void process(const Job& job);
  // Steps of process(). The buyer's state as the worker keeps it (nullopt
  // when none or kept for another catalog), and remembering it (dropped when
  // the catalog changed meanwhile).
  static std::optional<BuyerState> kept_buyer(TenantState& state, const std::shared_ptr<const Inventory>& inv,
                                              const std::string& contact_id);
  static void remember_buyer(TenantState& state, const std::shared_ptr<const Inventory>& inv,
                             const std::string& contact_id, BuyerState&& buyer);
  // A buyer first seen: their state from the store before `job`, with its
  // top listings; nullopt when the store cannot tell.
  std::optional<BuyerState> buyer_before(const Inventory& inv, const Job& job, UnixSeconds now);
  // Applies `job` to `prefs` (rebuilt from the store for criteria or an
  // event out of time order); false when the store cannot tell.
  bool update_preferences(const Inventory& inv, const Job& job, property::BuyerPreferences* prefs);
  // The match_update message of `job`'s buyer ranked `matches` with `prefs`.
  static std::string match_update_message(const Job& job, const Inventory& inv, const property::BuyerPreferences& prefs,
                                          const std::vector<property::Match>& matches);

  store::Store& store_;
  bus::Bus& bus_;
  const Clock& clock_;
  const std::string model_dir_;
  const std::chrono::milliseconds listings_check_interval_;

  std::mutex tenants_mu_;
  std::unordered_map<std::string, std::shared_ptr<TenantState>> tenants_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  bool worker_idle_ = false;  // the worker waits for a job: the next one wakes it
  std::uint64_t tickets_ = 0;  // the last Job::ticket given
  std::uint64_t dropped_ = 0;
  std::mutex stop_mu_;  // one joiner
  std::thread worker_;
};

}  // namespace reai::server
