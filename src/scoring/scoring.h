// Lead scoring: every CRM event updates the lead's features and its score
// (probability of signing within 90 days, 0-100 score, band, confidence, top
// reasons). The same LeadScoringEngine serves live traffic and history replay,
// so a score computed by `reai replay` equals the one the server pushed.
//
// Bands (documented thresholds on the calibrated probability):
//   hot  >= 0.50, warm >= 0.20, cold below. score = round(100 * probability).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "core/cache_lookups.h"
#include "core/status.h"
#include "core/types.h"
#include "features/features.h"

namespace reai::scoring {

enum class Band : std::uint8_t { kCold = 0, kWarm, kHot };
std::string_view band_name(Band band);
std::optional<Band> parse_band(std::string_view name);
Band band_for_probability(double probability);
inline constexpr double kHotThreshold = 0.50;
inline constexpr double kWarmThreshold = 0.20;

struct ScoreReason {
  std::string feature;  // schema name, e.g. "inbound_sms_7d"
  std::string text;     // plain words: "replied by SMS within 5 min"
  double impact = 0;    // SHAP contribution in log-odds; > 0 raises the score
};

// The score object returned by every scoring route and pushed over WebSocket.
struct LeadScore {
  std::string tenant_id;
  std::string lead_id;
  double probability = 0;
  int score = 0;  // 0..100
  Band band = Band::kCold;
  double confidence = 0;  // 0..1: how much evidence and model certainty back it
  std::uint32_t events_count = 0;
  std::vector<ScoreReason> reasons;  // at most 3, largest |impact| first
  std::string model_version;         // "fallback" when no model scored it
  // Why a fallback was used: "" (model scored), "no_model", "model_error",
  // "last_good_score" (the previous model score was kept).
  std::string fallback_reason;
  UnixSeconds scored_at = 0;  // the scoring instant
  std::int64_t latency_ns = 0;  // feature update + prediction + reasons
};

// A loaded lead model: compiled trees, calibration, feature schema, metadata.
class LeadModel;

// Where the engine gets each tenant's current model. A tenant-specific model
// wins over the shared one. Thread-safe; models are swapped atomically, so a
// scoring call sees either the old or the new model, never a mix.
class ModelRegistry {
 public:
  virtual ~ModelRegistry() = default;
  // nullptr when the tenant has no model (the engine then falls back).
  virtual std::shared_ptr<const LeadModel> lead_model(std::string_view tenant_id) const = 0;
};

// What a reload read. Model directories are named as under MODEL_DIR:
// "leads" (the shared model) and "tenants/T/leads" (tenant T's own).
struct ModelReloadReport {
  // OK, or FailedPrecondition naming each model read here that did not load
  // (its previous version, if any, stays in service).
  Status status;
  // Swapped: the model on disk has another version than the one serving
  // (or none was serving).
  std::vector<std::string> reloaded;
  // Read and found at the version serving: kept as it was, nothing swapped.
  // (With "leads" among `reloaded`, every tenant without its own model now
  // scores with the new shared one.)
  std::vector<std::string> unchanged;
  // Read and not loaded (the reason is in `status`): the previous version,
  // if any, still serves.
  std::vector<std::string> failed;
};

// Reads models from MODEL_DIR/leads (shared) and MODEL_DIR/tenants/T/leads.
// A model is swapped only when the one on disk has another version than the
// one serving; a directory that is absent keeps what serves (no models:
// fallback). Reloads run one at a time; lookups never wait for a load.
class DirectoryModelRegistry final : public ModelRegistry {
 public:
  explicit DirectoryModelRegistry(std::string model_dir);
  ~DirectoryModelRegistry() override;
  // (Re)loads every model under the directory (start-up). A model that fails
  // to load is reported in the returned status and the previous one (if any)
  // stays in service; an absent directory is not an error.
  Status reload();
  // reload() with what it did: every directory it read, by outcome (an
  // operator's reload of everything, e.g. on SIGHUP).
  ModelReloadReport reload_all();
  // A tenant admin's reload: rereads only the shared model and `tenant_id`'s
  // own, never another tenant's. InvalidArgument for an invalid tenant id.
  ModelReloadReport reload_tenant(std::string_view tenant_id);
  std::shared_ptr<const LeadModel> lead_model(std::string_view tenant_id) const override;
  // The models on disk that did not load when a reload last read them (OK
  // when none): each stays named here until a reload reads its directory
  // again and loads it (or finds it gone); reload() starts afresh.
  Status last_reload() const;
  // Version of the shared model, "" when none.
  std::string shared_version() const;
  // The directory given at construction (other models live beside `leads`).
  const std::string& model_dir() const { return model_dir_; }

 private:
  struct State;
  // Reads the shared model and each listed tenant's own; `forget_errors`
  // drops the load errors of directories not read (a full reload).
  ModelReloadReport reload_models(const std::vector<std::string>& tenant_ids, bool forget_errors);
  std::string model_dir_;
  std::unique_ptr<State> state_;
};

// Loads a model directory written by train_lead_model.
Result<std::shared_ptr<const LeadModel>> load_lead_model(const std::string& dir);
std::string lead_model_version(const LeadModel& model);

struct EngineOptions {
  std::size_t shards = 64;  // lock striping over (tenant, lead)
};

struct EngineStats {
  std::uint64_t events_applied = 0;
  std::uint64_t scores_computed = 0;
  std::uint64_t fallback_scores = 0;
  std::uint64_t leads = 0;
  std::uint64_t live_outcomes = 0;  // leads whose 90-day outcome was counted live
  // Warm-score lookups: a model-less (or failing) score of a lead with no
  // good score in memory asks the cache for its last good one (3600 s), once
  // per lead (again after the lead is rebuilt from another instance's
  // state, or after a miss while the cache was down). A hit is a readable
  // score found (then kept in memory); a miss is none (absent, expired,
  // unreadable, cache down). No cache: no lookups.
  std::uint64_t warm_score_hits = 0;
  std::uint64_t warm_score_misses = 0;
};

// One lead's contribution to the live track records, as the engine that
// folded the lead counted it: its matured 90-day outcome, or (first_outreach
// set) its speed-to-lead. What counts of `lead` are tenant_id, contact_id,
// assigned_agent_id, source and created_at. Identity: (tenant, lead, kind),
// so each lead gives at most one outcome and one speed item.
struct TrackOutcome {
  Contact lead;
  bool converted = false;                     // outcome: signed within the window
  std::optional<UnixSeconds> first_outreach;  // set: a speed item, not an outcome
};

// Warm scores held back by LeadScoringEngine::score(..., held) instead of
// going to the cache one by one; store_warm_scores sends them together.
struct HeldWarmScores {
  std::vector<bus::CachePut> puts;  // in score order
};

// Holds every lead's feature state in memory (sharded by tenant and lead) and
// scores it. All methods are thread-safe; work on different leads runs in
// parallel. Time is always explicit (`now`), so replay and tests control it.
class LeadScoringEngine {
 public:
  // `registry` must outlive the engine. `cache` (optional) receives the last
  // good score per lead (warm scores, 3600 s) for fallback across restarts.
  LeadScoringEngine(const ModelRegistry& registry, bus::Cache* cache, EngineOptions options = {});
  ~LeadScoringEngine();
  LeadScoringEngine(const LeadScoringEngine&) = delete;
  LeadScoringEngine& operator=(const LeadScoringEngine&) = delete;

  // Creates or replaces the lead's attributes (budget, timeline, source...)
  // and re-scores at `now`.
  Result<LeadScore> upsert_contact(const Contact& contact, UnixSeconds now);
  // Applies one event and re-scores at `now`. An event for an unknown lead
  // creates a minimal lead created at the event's time. Events may arrive
  // slightly out of order; features stay consistent. `known` (optional) is
  // set to whether the engine held the lead before this event.
  Result<LeadScore> apply_event(const Event& event, UnixSeconds now, bool* known = nullptr);
  // Whether the engine holds the lead (a contact or an event of it).
  bool has_lead(std::string_view tenant_id, std::string_view lead_id) const;
  // Pipeline rows feed the agent and source track records live: a `signed`
  // row marks its (known) lead as converted; the row's time advances its
  // tenant's pipeline clock, and every lead of that tenant whose 90-day window
  // closed by then counts once, converted or not, in its agent's, source's and
  // tenant's record. Tenants' clocks are their own: one tenant's pipeline
  // never closes another's windows.
  // Only leads the model's snapshot does not hold (window closing after the
  // training export end) count, so nothing is counted twice. Without stage
  // rows nothing changes (replay without stages scores as before). Rows
  // should come in time order; a signed row for an unknown lead is ignored.
  void apply_stage(const OpportunityStage& stage);
  // The agent's smoothed conversion rate as the tenant's model reads it now
  // (snapshot + live outcomes). NotFound when the tenant has no model.
  Result<double> agent_conversion_rate(std::string_view tenant_id, std::string_view agent_id);
  // The agent's record as the tenant's model reads it now (snapshot + live
  // outcomes and speeds-to-lead); an empty record for an unknown agent.
  // NotFound when the tenant has no model.
  Result<features::TrackRecord> agent_track_record(std::string_view tenant_id, std::string_view agent_id);
  // How many of the tenant's live outcomes (matured leads and first
  // outreaches, counted here or received) the engine holds; the instance's
  // total is stats().live_outcomes. Any thread.
  std::uint64_t live_outcomes(std::string_view tenant_id) const;
  // The lead's score at `at` from the events applied so far. NotFound for
  // an unknown lead. With `held`, its warm score (when it has one to keep)
  // is added there instead of going to the cache now.
  Result<LeadScore> score(std::string_view tenant_id, std::string_view lead_id, UnixSeconds at,
                          HeldWarmScores* held = nullptr);
  // Sends the warm scores `held` holds to the cache in one call (one round
  // trip for a remote cache) and empties it. Nothing without a cache.
  void store_warm_scores(HeldWarmScores& held);
  // The last score computed per lead, best first, optionally one band only.
  std::vector<LeadScore> top_leads(std::string_view tenant_id, std::optional<Band> band,
                                   std::size_t limit) const;
  // Rebuilding at start: apply history without scoring every event.
  void load_contact(const Contact& contact);
  void load_event(const Event& event);
  // Replaces one lead's feature state by a fresh fold of `contact` (when
  // given) and `events`, in the given order (the store's), as a rebuild at
  // start would make it; the lead's pipeline and score memory stay. Used when
  // another instance changed the lead. Nothing happens for a lead unknown
  // here without contact or events. `events` all belong to the lead.
  void rebuild_lead(std::string_view tenant_id, std::string_view lead_id, const Contact* contact,
                    std::span<const Event> events);
  EngineStats stats() const;
  // The tenant's warm-score lookups (EngineStats counts every tenant's).
  CacheLookups warm_score_lookups(std::string_view tenant_id) const;

  // Track records shared across instances. After share_outcomes(publish),
  // every outcome this engine counts from its own leads is handed to
  // `publish` (which may be empty: receive only), and outcomes from other
  // instances come in through add_outcome; each (tenant, lead, kind) counts
  // once however often, and from whichever side, it arrives (the first wins).
  // Without it nothing is kept or published, as before. A later call only
  // replaces the publisher (an empty one stops publishing); the identities
  // of the outcomes already counted are kept, so a server turns sharing on
  // with an empty publisher before its start-up replay (which every instance
  // does itself: nothing to send) and sets the real one after it.
  // Thread-safe; an outcome counted concurrently goes to the publisher in
  // place when it was counted. `publish` runs on the counting thread (the
  // one applying the event or stage row) with no engine lock held, so it may
  // do a network round trip; it may call any method of this engine but
  // share_outcomes.
  using OutcomePublisher = std::function<void(const TrackOutcome&)>;
  void share_outcomes(OutcomePublisher publish);
  // Counts an outcome another instance published, exactly as if this engine
  // had counted it (snapshot rules included: one the model's snapshot holds
  // changes nothing). true when counted, false when its identity was seen
  // before (a repeat or an echo of this engine's own publication).
  // InvalidArgument for an outcome without tenant or lead id, or a first
  // outreach before the lead's creation; FailedPrecondition before
  // share_outcomes. Thread-safe; never publishes.
  Result<bool> add_outcome(const TrackOutcome& outcome);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct TrainLeadOptions {
  // Ages (hours after created_at) at which training examples are taken.
  std::vector<double> example_ages_hours = {1, 6, 24, 72, 168, 336, 720};
  // Contacts created in the last `validation_fraction` of the span form the
  // time-based validation set (also used to fit the calibration).
  double validation_fraction = 0.2;
  // Isotonic map fitted on the validation period. Off by default: the
  // logloss-trained forest, refitted on all periods, is better calibrated on
  // later months than a map fitted on one season (lead_eval, 3 cutoffs).
  bool isotonic = false;
  // Log-odds level shift per example age for the drift of the conversion
  // rate since last year (see train.cc); the served probability is
  // sigmoid(logit(p) + shift(age)). Needs a year of history before the
  // latest cohorts, else the shift is 0.
  bool level_calibration = true;
  // Booster hyper-parameters (tuned with lead_eval on validation splits).
  int max_depth = 5;
  double eta = 0.05;
  double min_child_weight = 5;
  int nthread = 0;
  int seed = 42;
  bool progress = true;  // progress lines on stderr
};

struct TrainLeadReport {
  std::string version;
  std::size_t train_examples = 0;
  std::size_t validation_examples = 0;
  std::size_t censored_contacts = 0;
  // Validation metrics per age (hours) after calibration.
  struct AgeMetrics {
    double hours = 0;
    double auc = 0;
    double brier = 0;
    double ece = 0;
    std::size_t n = 0;
    double level_shift = 0;  // log-odds level calibration at this age
  };
  std::vector<AgeMetrics> validation;
  double seconds = 0;
};

// Trains the lead model on a history and writes MODEL_DIR (model.json,
// metadata.json with feature schema, data span, metrics, calibration and
// version). InvalidArgument when the history is too small or has one class.
Result<TrainLeadReport> train_lead_model(const std::vector<Contact>& contacts,
                                         const std::vector<Event>& events,
                                         const std::vector<OpportunityStage>& stages,
                                         const std::string& out_dir, const TrainLeadOptions& options);

struct ReplayRow {
  std::string contact_id;
  double hours = 0;
  double probability = 0;
  int score = 0;
};

// Pushes events in time order through a LeadScoringEngine using `model_dir`
// and records, per contact and offset, the score the engine held at
// created_at + hours (events up to that instant only). Stages, when given,
// feed the track records exactly as in serving. Rows are in contact file
// order, then offset order.
Result<std::vector<ReplayRow>> replay_scores(const std::string& model_dir,
                                             const std::vector<Contact>& contacts,
                                             const std::vector<Event>& events,
                                             const std::vector<OpportunityStage>& stages,
                                             const std::vector<double>& hours);

}  // namespace reai::scoring
