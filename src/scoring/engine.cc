// LeadScoringEngine: sharded in-memory lead state, scoring with fallback, and
// replay of a history through the same engine.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include <boost/json.hpp>

#include "bus/bus.h"
#include "core/cache_lookups.h"
#include "core/json_text.h"
#include "core/tenant_id.h"
#include "scoring/lead_model.h"
#include "scoring/scoring.h"

namespace reai::scoring {
namespace {

std::string lead_key(std::string_view tenant_id, std::string_view lead_id) {
  return tenant_scoped_key(tenant_id, lead_id);
}

std::string cache_key(std::string_view tenant_id, std::string_view lead_id) {
  std::string key = "score:";
  key.append(tenant_id).push_back(':');
  key.append(lead_id);
  return key;
}

// Written on every scored event: spelled out with the plain writers (a
// Boost.JSON object and its serializer cost ~7k instructions per event, 5%
// of a POST /api/events request). Doubles in shortest round-trip form, so
// the score read back is the score written.
std::string score_to_cache_value(const LeadScore& s) {
  std::string out;
  // A non-finite number is no JSON number: null, which the reader refuses.
  auto number = [&out](double x) { std::isfinite(x) ? append_shortest_double(x, &out) : void(out.append("null")); };
  out.reserve(128 + s.model_version.size());
  out.append("{\"probability\":");
  number(s.probability);
  out.append(",\"score\":").append(std::to_string(s.score));
  out.append(",\"confidence\":");
  number(s.confidence);
  out.append(",\"events_count\":").append(std::to_string(s.events_count));
  out.append(",\"model_version\":");
  append_json_string(s.model_version, &out);
  out.append(",\"scored_at\":").append(std::to_string(s.scored_at));
  out.push_back('}');
  return out;
}

std::optional<LeadScore> score_from_cache_value(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  auto num = [&o](const char* k) -> std::optional<double> {
    const auto* x = o.if_contains(k);
    if (!x || !x->is_number()) return std::nullopt;
    return x->to_number<double>();
  };
  auto p = num("probability");
  const auto* version = o.if_contains("model_version");
  if (!p || !version || !version->is_string()) return std::nullopt;
  LeadScore s;
  s.probability = *p;
  s.score = static_cast<int>(std::lround(*p * 100));
  s.band = band_for_probability(*p);
  s.confidence = num("confidence").value_or(0);
  s.model_version = std::string(version->get_string());
  s.scored_at = static_cast<UnixSeconds>(num("scored_at").value_or(0));
  return s;
}

}  // namespace

struct LeadEntry {
  features::LeadFeatureState state;
  std::optional<UnixSeconds> signed_at;  // first `signed` pipeline row seen
  bool outcome_counted = false;          // its 90-day outcome is in the live records
  std::optional<LeadScore> last_score;  // the last score computed
  // The last model score is last_score when last_is_good (saves a copy per
  // event), else last_good_score.
  bool last_is_good = false;
  std::optional<LeadScore> last_good_score;
  // The warm-score cache was asked for this lead (so a lead without one
  // asks once, not at every fallback score); cleared when the lead is
  // rebuilt from elsewhere, where a model may have scored it since.
  bool warm_score_asked = false;
  const std::optional<LeadScore>& good_score() const { return last_is_good ? last_score : last_good_score; }
};

struct Shard {
  mutable std::mutex mu;
  std::unordered_map<std::string, LeadEntry> leads;
};

struct LeadScoringEngine::Impl {
  const ModelRegistry& registry;
  bus::Cache* cache;
  std::vector<Shard> shards;
  std::atomic<std::uint64_t> events_applied{0};
  std::atomic<std::uint64_t> scores_computed{0};
  std::atomic<std::uint64_t> fallback_scores{0};
  std::atomic<std::uint64_t> leads{0};
  TenantCacheLookups warm_lookups;

  // Live track records. Lock order: pending_mu -> shard.mu -> track_mu and
  // pending_mu -> track_mu; track_mu is never held while taking another lock.
  struct Pending {
    UnixSeconds matures_at;
    std::string key;
    bool operator>(const Pending& o) const { return matures_at > o.matures_at; }
  };
  // Outcomes mature on the tenant's pipeline clock (the latest stage row of
  // that tenant seen), so replay without stages and a tenant without pipeline
  // data change nothing, whatever the other tenants' pipelines say.
  struct Pipeline {
    std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending;
    UnixSeconds clock = std::numeric_limits<UnixSeconds>::min();
  };
  std::mutex pending_mu;
  std::unordered_map<std::string, Pipeline> pipelines;  // by tenant

  // A lead's matured 90-day outcome, or its speed-to-lead once its first
  // agent outreach is seen: what training adds to the track records, as it
  // happens.
  using LiveOutcome = TrackOutcome;
  // Outcomes to publish once every engine lock is released, and with what
  // (allocates only when sharing).
  struct Outgoing {
    std::shared_ptr<const OutcomePublisher> publisher;
    std::vector<LiveOutcome> outcomes;
  };
  struct MergedBook {
    const LeadModel* id;
    std::weak_ptr<const LeadModel> model;  // a reloaded-away model expires
    std::shared_ptr<const features::TrackRecordBook> book;  // null: the snapshot as is
    std::size_t applied = 0;  // outcomes looked at for `book`
  };
  mutable std::mutex track_mu;
  std::vector<LiveOutcome> outcomes;
  std::atomic<std::size_t> outcome_count{0};
  std::unordered_map<std::string, std::uint64_t> outcomes_by_tenant;  // guarded by track_mu
  std::vector<MergedBook> merged;
  // Sharing across instances (share_outcomes): identities of the outcomes
  // counted, local or received, so each counts once. Off: empty, unused.
  std::atomic<bool> sharing{false};
  // Guarded by track_mu; replaced by share_outcomes, copied out by whoever
  // counts an outcome (null: receive only).
  std::shared_ptr<const OutcomePublisher> publish;
  std::unordered_set<std::string> outcome_ids;

  static std::string outcome_id(const TrackOutcome& o) {
    std::string id;
    id.reserve(o.lead.tenant_id.size() + o.lead.contact_id.size() + 3);
    id.append(o.lead.tenant_id).push_back('\x1f');
    id.append(o.lead.contact_id).push_back('\x1f');
    id.push_back(o.first_outreach ? 's' : 'o');
    return id;
  }

  Impl(const ModelRegistry& r, bus::Cache* c, std::size_t n) : registry(r), cache(c), shards(std::max<std::size_t>(1, n)) {}

  Shard& shard_for(const std::string& key) { return shards[std::hash<std::string>{}(key) % shards.size()]; }

  LeadEntry& entry_locked(Shard& shard, const std::string& key, bool* inserted = nullptr) {
    auto [it, is_new] = shard.leads.try_emplace(key);
    if (is_new) leads.fetch_add(1, std::memory_order_relaxed);
    if (inserted) *inserted = is_new;
    return it->second;
  }

  // Queues the lead for counting once its window closes; call without the
  // shard lock. Duplicates are harmless (outcome_counted).
  // Folds `event` into its lead's state (an event before its contact makes
  // a minimal lead created at the event) and, given `score_at`, scores the
  // lead at that instant under the same lock.
  // Sets *known (when given) to whether the lead was held before.
  std::optional<LeadScore> fold_event(const Event& event, std::optional<UnixSeconds> score_at,
                                      bool* known = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    const std::string key = lead_key(event.tenant_id, event.contact_id);
    Shard& shard = shard_for(key);
    std::optional<LeadScore> s;
    bool inserted = false;
    UnixSeconds created_at = 0;
    Outgoing to_publish;
    {
      std::lock_guard lock(shard.mu);
      LeadEntry& entry = entry_locked(shard, key, &inserted);
      entry.state.set_created_if_unknown(event.ts);
      const bool reached_before = entry.state.first_outreach().has_value();
      entry.state.apply(event);
      created_at = entry.state.contact().created_at;
      if (!reached_before && entry.state.first_outreach()) {
        add_live_outcome({entry.state.contact(), false, entry.state.first_outreach()}, &to_publish);
      }
      events_applied.fetch_add(1, std::memory_order_relaxed);
      if (score_at) s = score_locked(entry, event.tenant_id, event.contact_id, *score_at, start);
    }
    if (inserted) track_lead(event.tenant_id, key, created_at);
    if (known) *known = !inserted;
    publish_all(to_publish);
    return s;
  }

  void track_lead(std::string_view tenant_id, const std::string& key, UnixSeconds created_at) {
    std::lock_guard lock(pending_mu);
    pipelines[std::string(tenant_id)].pending.push({created_at + kConversionWindowSeconds, key});
  }

  // Counts every queued lead of the tenant whose window closed by the
  // tenant's pipeline clock.
  void mature_until(std::string_view tenant_id, UnixSeconds clock) {
    std::vector<LiveOutcome> done;
    Outgoing to_publish;
    {
      std::lock_guard lock(pending_mu);
      Pipeline& pipeline = pipelines[std::string(tenant_id)];
      auto& pending = pipeline.pending;
      const UnixSeconds stage_clock = pipeline.clock = std::max(pipeline.clock, clock);
      while (!pending.empty() && pending.top().matures_at <= stage_clock) {
        Pending item = pending.top();
        pending.pop();
        Shard& shard = shard_for(item.key);
        std::optional<UnixSeconds> requeue;
        {
          std::lock_guard shard_lock(shard.mu);
          auto it = shard.leads.find(item.key);
          if (it == shard.leads.end() || it->second.outcome_counted) continue;
          LeadEntry& entry = it->second;
          const Contact& lead = entry.state.contact();
          const UnixSeconds window_end = lead.created_at + kConversionWindowSeconds;
          if (window_end > stage_clock) {
            requeue = window_end;  // created_at moved later (contact upsert)
          } else {
            entry.outcome_counted = true;
            done.push_back({lead, entry.signed_at && *entry.signed_at <= window_end, std::nullopt});
          }
        }
        if (requeue) pending.push({*requeue, std::move(item.key)});
      }
      if (done.empty()) return;
      for (auto& o : done) add_live_outcome(std::move(o), &to_publish);
    }
    publish_all(to_publish);
  }

  // An outcome this engine counted from its own leads. Any lock but
  // track_mu may be held; what must be published goes to `to_publish`, for
  // publish_all once every lock is released.
  void add_live_outcome(LiveOutcome o, Outgoing* to_publish) {
    std::lock_guard track_lock(track_mu);
    if (!sharing) {
      push_outcome(std::move(o));
      return;
    }
    // Already received from the instance that counted it first.
    if (!outcome_ids.insert(outcome_id(o)).second) return;
    push_outcome(o);
    // The publisher in place when it was counted: none during a start-up
    // replay, whose outcomes every instance counts from the store itself.
    if (publish) {
      to_publish->publisher = publish;
      to_publish->outcomes.push_back(std::move(o));
    }
  }

  // No engine lock held: the publisher may be slow (a network round trip).
  static void publish_all(const Outgoing& counted) {
    for (const auto& o : counted.outcomes) (*counted.publisher)(o);
  }

  // track_mu held.
  void push_outcome(LiveOutcome o) {
    ++outcomes_by_tenant[o.lead.tenant_id];
    outcomes.push_back(std::move(o));
    outcome_count.store(outcomes.size(), std::memory_order_release);
  }

  // The model's snapshot plus the live outcomes it does not hold yet.
  std::shared_ptr<const features::TrackRecordBook> live_book(const std::shared_ptr<const LeadModel>& model) {
    std::lock_guard lock(track_mu);
    auto it = std::find_if(merged.begin(), merged.end(), [&model](const MergedBook& m) {
      return m.id == model.get() && !m.model.expired();
    });
    if (it == merged.end()) {
      std::erase_if(merged, [](const MergedBook& m) { return m.model.expired(); });
      merged.push_back({model.get(), model, nullptr, 0});
      it = merged.end() - 1;
    }
    if (it->applied < outcomes.size()) {
      std::shared_ptr<features::TrackRecordBook> next;
      for (std::size_t i = it->applied; i < outcomes.size(); ++i) {
        const LiveOutcome& o = outcomes[i];
        // What the snapshot already holds: leads matured, or first reached,
        // by its end.
        const UnixSeconds at = o.first_outreach ? *o.first_outreach : o.lead.created_at + kConversionWindowSeconds;
        if (at <= model->track_records_end) continue;
        // Copy on write: scorers may still read the previous book.
        if (!next) next = std::make_shared<features::TrackRecordBook>(it->book ? *it->book : model->track_records);
        if (o.first_outreach) {
          next->add_speed(o.lead, double(*o.first_outreach - o.lead.created_at));
        } else {
          next->add_outcome(o.lead, o.converted);
        }
      }
      if (next) it->book = std::move(next);
      it->applied = outcomes.size();
    }
    if (it->book) return it->book;
    return std::shared_ptr<const features::TrackRecordBook>(model, &model->track_records);
  }

  const features::TrackRecordBook* book_for(const std::shared_ptr<const LeadModel>& model,
                                            std::shared_ptr<const features::TrackRecordBook>* hold) {
    if (!model) return nullptr;
    if (outcome_count.load(std::memory_order_acquire) == 0) return &model->track_records;
    *hold = live_book(model);
    return hold->get();
  }

  // Scores `entry` at `at`; the caller holds the shard lock. `start` is when
  // the caller began (latency covers the feature update too).
  LeadScore score_locked(LeadEntry& entry, std::string_view tenant_id, std::string_view lead_id, UnixSeconds at,
                         std::chrono::steady_clock::time_point start) {
    LeadScore s;
    s.tenant_id = std::string(tenant_id);
    s.lead_id = std::string(lead_id);
    s.scored_at = at;
    s.events_count = entry.state.events_count();
    float row[128];
    const auto model = registry.lead_model(tenant_id);
    std::shared_ptr<const features::TrackRecordBook> live;
    entry.state.write_features(at, book_for(model, &live), row);
    bool fallback = true;
    auto out = model ? evaluate_model(*model, row, Reasons::kPath) : Result<ModelOutput>(not_found("no model"));
    if (out) {
      s.probability = out->probability;
      s.reasons = std::move(out->reasons);
      s.model_version = model->version;
      s.confidence = score_confidence(s.probability, model->base_rate, s.events_count, false);
      fallback = false;
    } else {
      // Model missing or failing: the lead's last good score (memory, then
      // the warm-score cache), else the rule-based score.
      std::optional<LeadScore> good = entry.good_score();
      if (!good && cache && !entry.warm_score_asked) {
        if (auto text = cache->get(cache_key(tenant_id, lead_id))) good = score_from_cache_value(*text);
        warm_lookups.count(tenant_id, good.has_value());
        entry.last_good_score = good;  // memory serves the lead's next fallback scores
        // A miss while the cache is down says nothing: ask again once it is back.
        entry.warm_score_asked = good.has_value() || cache->health().is_ok();
      }
      if (good) {
        s.probability = good->probability;
        s.reasons = good->reasons;
        s.model_version = good->model_version;
        s.confidence = good->confidence;
        s.fallback_reason = "last_good_score";
      } else {
        auto rule = rule_based_score(row);
        s.probability = rule.probability;
        s.reasons = std::move(rule.reasons);
        s.model_version = "fallback";
        s.confidence = score_confidence(s.probability, 0.1, s.events_count, true);
        s.fallback_reason = model ? "model_error" : "no_model";
      }
    }
    s.score = static_cast<int>(std::lround(s.probability * 100));
    s.band = band_for_probability(s.probability);
    scores_computed.fetch_add(1, std::memory_order_relaxed);
    if (fallback) fallback_scores.fetch_add(1, std::memory_order_relaxed);
    s.latency_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    if (fallback && entry.last_is_good) entry.last_good_score = std::move(entry.last_score);
    if (!fallback) entry.last_good_score.reset();
    entry.last_is_good = !fallback;
    entry.last_score = s;
    return s;
  }

  // Keeps a model score as the lead's warm score: in the cache now, or in
  // `held` (when given) for store_warm_scores.
  void remember(const LeadScore& s, HeldWarmScores* held = nullptr) {
    if (!cache || !s.fallback_reason.empty()) return;
    if (held) {
      held->puts.push_back({cache_key(s.tenant_id, s.lead_id), score_to_cache_value(s), bus::kWarmScoreTtl});
    } else {
      cache->put(cache_key(s.tenant_id, s.lead_id), score_to_cache_value(s), bus::kWarmScoreTtl);
    }
  }
};

LeadScoringEngine::LeadScoringEngine(const ModelRegistry& registry, bus::Cache* cache, EngineOptions options)
    : impl_(std::make_unique<Impl>(registry, cache, options.shards)) {}
LeadScoringEngine::~LeadScoringEngine() = default;

Result<LeadScore> LeadScoringEngine::upsert_contact(const Contact& contact, UnixSeconds now) {
  if (contact.tenant_id.empty() || contact.contact_id.empty()) {
    return invalid_argument("contact needs tenant_id and contact_id");
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string key = lead_key(contact.tenant_id, contact.contact_id);
  Shard& shard = impl_->shard_for(key);
  LeadScore s;
  {
    std::lock_guard lock(shard.mu);
    LeadEntry& entry = impl_->entry_locked(shard, key);
    entry.state.set_contact(contact);
    s = impl_->score_locked(entry, contact.tenant_id, contact.contact_id, now, start);
  }
  impl_->track_lead(contact.tenant_id, key, contact.created_at);
  impl_->remember(s);
  return s;
}

Result<LeadScore> LeadScoringEngine::apply_event(const Event& event, UnixSeconds now, bool* known) {
  if (event.tenant_id.empty() || event.contact_id.empty()) {
    return invalid_argument("event needs tenant_id and contact_id");
  }
  LeadScore s = *impl_->fold_event(event, now, known);
  impl_->remember(s);
  return s;
}

void LeadScoringEngine::apply_stage(const OpportunityStage& stage) {
  if (stage.stage == Stage::kSigned && !stage.tenant_id.empty() && !stage.contact_id.empty()) {
    const std::string key = lead_key(stage.tenant_id, stage.contact_id);
    Shard& shard = impl_->shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.leads.find(key);
    if (it != shard.leads.end() && (!it->second.signed_at || stage.ts < *it->second.signed_at)) {
      it->second.signed_at = stage.ts;
    }
  }
  if (!stage.tenant_id.empty()) impl_->mature_until(stage.tenant_id, stage.ts);
}

Result<double> LeadScoringEngine::agent_conversion_rate(std::string_view tenant_id, std::string_view agent_id) {
  const auto model = impl_->registry.lead_model(tenant_id);
  if (!model) return not_found("no lead model for tenant " + std::string(tenant_id));
  std::shared_ptr<const features::TrackRecordBook> live;
  const features::TrackRecordBook* book = impl_->book_for(model, &live);
  return book->smoothed_rate(book->find_agent(std::string(tenant_id), std::string(agent_id)));
}

Result<features::TrackRecord> LeadScoringEngine::agent_track_record(std::string_view tenant_id,
                                                                    std::string_view agent_id) {
  const auto model = impl_->registry.lead_model(tenant_id);
  if (!model) return not_found("no lead model for tenant " + std::string(tenant_id));
  std::shared_ptr<const features::TrackRecordBook> live;
  const features::TrackRecord* record =
      impl_->book_for(model, &live)->find_agent(std::string(tenant_id), std::string(agent_id));
  return record ? *record : features::TrackRecord{};
}

std::uint64_t LeadScoringEngine::live_outcomes(std::string_view tenant_id) const {
  std::lock_guard lock(impl_->track_mu);
  auto it = impl_->outcomes_by_tenant.find(std::string(tenant_id));
  return it == impl_->outcomes_by_tenant.end() ? 0 : it->second;
}

Result<LeadScore> LeadScoringEngine::score(std::string_view tenant_id, std::string_view lead_id, UnixSeconds at,
                                           HeldWarmScores* held) {
  const auto start = std::chrono::steady_clock::now();
  const std::string key = lead_key(tenant_id, lead_id);
  Shard& shard = impl_->shard_for(key);
  LeadScore s;
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.leads.find(key);
    // Quoted as the other routes' 404s: an id may hold spaces.
    if (it == shard.leads.end()) return not_found("lead '" + std::string(lead_id) + "' not found");
    s = impl_->score_locked(it->second, tenant_id, lead_id, at, start);
  }
  impl_->remember(s, held);
  return s;
}

void LeadScoringEngine::store_warm_scores(HeldWarmScores& held) {
  if (impl_->cache && !held.puts.empty()) impl_->cache->put_each(held.puts);
  held.puts.clear();
}

bool LeadScoringEngine::has_lead(std::string_view tenant_id, std::string_view lead_id) const {
  const std::string key = lead_key(tenant_id, lead_id);
  const Shard& shard = impl_->shard_for(key);
  std::lock_guard lock(shard.mu);
  return shard.leads.contains(key);
}

std::vector<LeadScore> LeadScoringEngine::top_leads(std::string_view tenant_id, std::optional<Band> band,
                                                    std::size_t limit) const {
  std::vector<LeadScore> out;
  const std::string prefix = lead_key(tenant_id, "");
  for (const Shard& shard : impl_->shards) {
    std::lock_guard lock(shard.mu);
    for (const auto& [key, entry] : shard.leads) {
      if (!entry.last_score || key.compare(0, prefix.size(), prefix) != 0) continue;
      if (band && entry.last_score->band != *band) continue;
      out.push_back(*entry.last_score);
    }
  }
  auto better = [](const LeadScore& a, const LeadScore& b) {
    return a.probability != b.probability ? a.probability > b.probability : a.lead_id < b.lead_id;
  };
  if (out.size() > limit) {
    std::partial_sort(out.begin(), out.begin() + limit, out.end(), better);
    out.resize(limit);
  } else {
    std::sort(out.begin(), out.end(), better);
  }
  return out;
}

void LeadScoringEngine::load_contact(const Contact& contact) {
  const std::string key = lead_key(contact.tenant_id, contact.contact_id);
  Shard& shard = impl_->shard_for(key);
  {
    std::lock_guard lock(shard.mu);
    impl_->entry_locked(shard, key).state.set_contact(contact);
  }
  impl_->track_lead(contact.tenant_id, key, contact.created_at);
}

void LeadScoringEngine::load_event(const Event& event) { impl_->fold_event(event, std::nullopt); }

void LeadScoringEngine::rebuild_lead(std::string_view tenant_id, std::string_view lead_id, const Contact* contact,
                                     std::span<const Event> events) {
  const std::string key = lead_key(tenant_id, lead_id);
  Shard& shard = impl_->shard_for(key);
  std::optional<UnixSeconds> track_from;
  Impl::Outgoing to_publish;
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.leads.find(key);
    if (it == shard.leads.end() && !contact && events.empty()) return;
    bool inserted = false;
    LeadEntry& entry = impl_->entry_locked(shard, key, &inserted);
    const UnixSeconds created_before = entry.state.contact().created_at;
    const bool reached_before = entry.state.first_outreach().has_value();
    features::LeadFeatureState fresh;
    if (contact) fresh.set_contact(*contact);
    for (const Event& e : events) {
      fresh.set_created_if_unknown(e.ts);
      fresh.apply(e);
    }
    entry.state = std::move(fresh);
    entry.warm_score_asked = false;
    // Counted once per instance, as when the outreach arrives here live.
    if (!reached_before && entry.state.first_outreach()) {
      impl_->add_live_outcome({entry.state.contact(), false, entry.state.first_outreach()}, &to_publish);
    }
    if (inserted || entry.state.contact().created_at != created_before) track_from = entry.state.contact().created_at;
  }
  if (track_from) impl_->track_lead(tenant_id, key, *track_from);
  impl_->publish_all(to_publish);
}

void LeadScoringEngine::share_outcomes(OutcomePublisher publish) {
  auto publisher = publish ? std::make_shared<const OutcomePublisher>(std::move(publish)) : nullptr;
  std::lock_guard lock(impl_->track_mu);
  if (!impl_->sharing) {
    // Outcomes counted before sharing began keep their identity too.
    for (const auto& o : impl_->outcomes) impl_->outcome_ids.insert(Impl::outcome_id(o));
    impl_->sharing = true;
  }
  impl_->publish = std::move(publisher);
}

Result<bool> LeadScoringEngine::add_outcome(const TrackOutcome& outcome) {
  if (outcome.lead.tenant_id.empty() || outcome.lead.contact_id.empty()) {
    return invalid_argument("track outcome without tenant or lead id");
  }
  if (outcome.first_outreach && *outcome.first_outreach < outcome.lead.created_at) {
    return invalid_argument("track outcome: first outreach before the lead was created");
  }
  std::lock_guard lock(impl_->track_mu);
  if (!impl_->sharing) return failed_precondition("outcome sharing is off (share_outcomes not called)");
  if (!impl_->outcome_ids.insert(Impl::outcome_id(outcome)).second) return false;
  impl_->push_outcome(outcome);
  return true;
}

EngineStats LeadScoringEngine::stats() const {
  EngineStats s;
  s.events_applied = impl_->events_applied.load();
  s.scores_computed = impl_->scores_computed.load();
  s.fallback_scores = impl_->fallback_scores.load();
  s.leads = impl_->leads.load();
  s.live_outcomes = impl_->outcome_count.load();
  const CacheLookups warm = impl_->warm_lookups.total();
  s.warm_score_hits = warm.hits;
  s.warm_score_misses = warm.misses;
  return s;
}

CacheLookups LeadScoringEngine::warm_score_lookups(std::string_view tenant_id) const {
  return impl_->warm_lookups.of(tenant_id);
}

// ---------------------------------------------------------------------------
// Replay

namespace {

class SingleModelRegistry final : public ModelRegistry {
 public:
  explicit SingleModelRegistry(std::shared_ptr<const LeadModel> model) : model_(std::move(model)) {}
  std::shared_ptr<const LeadModel> lead_model(std::string_view) const override { return model_; }

 private:
  std::shared_ptr<const LeadModel> model_;
};

}  // namespace

Result<std::vector<ReplayRow>> replay_scores(const std::string& model_dir, const std::vector<Contact>& contacts,
                                             const std::vector<Event>& events,
                                             const std::vector<OpportunityStage>& stages,
                                             const std::vector<double>& hours) {
  auto model = load_lead_model(model_dir);
  if (!model) return model.status();
  for (double h : hours) {
    if (!std::isfinite(h) || h < 0) return invalid_argument("replay offsets must be hours >= 0");
  }
  SingleModelRegistry registry(std::move(*model));
  LeadScoringEngine engine(registry, nullptr);

  // One timeline; at equal instants contacts come first, then events and
  // stages, then the score queries (a query sees every event up to its
  // instant, inclusive).
  enum Kind : std::uint8_t { kContact = 0, kEvent = 1, kStage = 2, kQuery = 3 };
  struct Item {
    UnixSeconds t;
    Kind kind;
    std::uint32_t index;
    std::uint32_t sub;
  };
  std::vector<Item> items;
  items.reserve(contacts.size() * (1 + hours.size()) + events.size() + stages.size());
  for (std::uint32_t i = 0; i < contacts.size(); ++i) {
    items.push_back({contacts[i].created_at, kContact, i, 0});
    for (std::uint32_t h = 0; h < hours.size(); ++h) {
      items.push_back({contacts[i].created_at + static_cast<UnixSeconds>(std::llround(hours[h] * 3600)), kQuery, i, h});
    }
  }
  for (std::uint32_t i = 0; i < events.size(); ++i) items.push_back({events[i].ts, kEvent, i, 0});
  for (std::uint32_t i = 0; i < stages.size(); ++i) items.push_back({stages[i].ts, kStage, i, 0});
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.t != b.t ? a.t < b.t : a.kind < b.kind;
  });
  std::vector<ReplayRow> rows(contacts.size() * hours.size());
  for (const Item& item : items) {
    switch (item.kind) {
      case kContact:
        engine.load_contact(contacts[item.index]);
        break;
      case kEvent:
        engine.load_event(events[item.index]);
        break;
      case kStage:
        engine.apply_stage(stages[item.index]);
        break;
      case kQuery: {
        const Contact& c = contacts[item.index];
        auto s = engine.score(c.tenant_id, c.contact_id, item.t);
        if (!s) return s.status();
        ReplayRow& row = rows[std::size_t(item.index) * hours.size() + item.sub];
        row.contact_id = c.contact_id;
        row.hours = hours[item.sub];
        row.probability = s->probability;
        row.score = s->score;
        break;
      }
    }
  }
  return rows;
}

}  // namespace reai::scoring
