// Lead features: per-lead state updated incrementally per CRM event, and the
// agent/source track records. The same code builds training examples, replays
// history and serves live traffic, so a feature means the same thing in all
// three. Time-decayed features are evaluated at the scoring instant `at`,
// never at the last event.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/types.h"

namespace reai::features {

// How a feature value reads in plain words (reason texts).
enum class Unit : std::uint8_t { kCount, kHours, kMinutes, kDollars, kRatio, kShare, kFlag, kCode, kNumber };

struct FeatureSpec {
  std::string_view name;
  // Reason text with "{v}" for the formatted value, e.g. "sent {v} SMS".
  std::string_view text;
  // Reason text when the value is missing (NaN), e.g. "no agent outreach yet".
  std::string_view missing_text;
  Unit unit;
};

// The fixed, ordered feature schema; row layouts follow it.
std::span<const FeatureSpec> feature_schema();
std::size_t feature_count();
// Index of a feature by name; nullopt when unknown.
std::optional<std::size_t> feature_index(std::string_view name);
// Stable hash of the ordered names ("fnv1a64:<16 hex>"): models store it and
// refuse to load against a different schema.
std::string schema_hash();
// Plain-words reason for feature `index` having `value` (NaN = missing).
std::string reason_text(std::size_t index, float value);

// Half-lives of the decayed activity features.
inline constexpr std::array<double, 3> kHalfLivesHours = {1.0, 24.0, 168.0};
// An inbound sms_in/call_in within this long after agent outreach is a reply.
inline constexpr UnixSeconds kReplyWindowSeconds = 48 * 3600;

// Conversion record of an agent or a source: leads whose 90-day window had
// matured, how many of them signed, and speed-to-lead of first outreach.
struct TrackRecord {
  double matured = 0;
  double converted = 0;
  double speed_count = 0;       // leads with a first outreach
  double speed_log_sum = 0;     // sum of log1p(speed-to-lead minutes)
  void add_outcome(bool signed_within_window) {
    matured += 1;
    converted += signed_within_window ? 1 : 0;
  }
  void add_speed(double seconds);
};

// The agent_typical_speed_min feature of an agent's record: its typical
// speed-to-lead in minutes (from the mean of log1p), once at least 3 of its
// leads were reached; nullopt before (the feature is missing then).
std::optional<double> typical_speed_minutes(const TrackRecord& record);

// As-of track records keyed by "tenant|agent" and by "tenant|source" (tenant
// ids cannot hold '|'). Agents are per tenant because agent ids are each
// brokerage's own: two tenants both naming an agent "ag01" are two agents, and
// one tenant must never see or be scored by the other's numbers. Value type;
// not thread-safe (the engine guards it). Unknown keys fall back to the prior
// (the global rate, weight kPriorWeight).
class TrackRecordBook {
 public:
  static constexpr double kPriorWeight = 20;

  TrackRecord& agent(const std::string& tenant_id, const std::string& agent_id);
  TrackRecord& source(const std::string& tenant_id, const std::string& source);
  TrackRecord& global() { return global_; }
  // nullptr when the tenant has no record of that agent.
  const TrackRecord* find_agent(const std::string& tenant_id, const std::string& agent_id) const;
  const TrackRecord* find_source(const std::string& tenant_id, const std::string& source) const;
  const TrackRecord& global() const { return global_; }
  const std::unordered_map<std::string, TrackRecord>& agents() const { return agents_; }
  const std::unordered_map<std::string, TrackRecord>& sources() const { return sources_; }
  // A lead's 90-day outcome once its window has closed: global, agent (when
  // assigned), "tenant|source" and "tenant|*" records. Training and live
  // serving both count outcomes through this.
  void add_outcome(const Contact& lead, bool signed_within_window);
  // A lead's speed-to-lead (seconds from created_at to the first agent
  // outreach): global, agent (when assigned) and "tenant|source" records.
  void add_speed(const Contact& lead, double seconds);
  // Rate smoothed towards the global rate.
  double smoothed_rate(const TrackRecord* record) const;

  // {"global":{...},"agents":{"tenant|agent":{...}},"sources":{"tenant|source":{...}}}.
  std::string to_json() const;
  // Fails (nullopt) on malformed JSON, and on an agent or source key without
  // a valid tenant before its '|' (a book written before agents were kept
  // per tenant cannot say whose agent a key is).
  static std::optional<TrackRecordBook> from_json(std::string_view json);

 private:
  TrackRecord global_;
  std::unordered_map<std::string, TrackRecord> agents_;
  std::unordered_map<std::string, TrackRecord> sources_;
};

// One lead's incremental state. Memory: a few hundred bytes plus one entry per
// distinct listing touched (bounded by kMaxListings). Update is O(1) apart
// from the distinct-listing lookup. Not thread-safe; callers serialise per
// lead. Events may arrive out of order: counts, decayed sums and recency do
// not depend on arrival order; reply detection uses the order seen.
class LeadFeatureState {
 public:
  static constexpr std::size_t kMaxListings = 256;

  // Sets the lead's attributes (created_at, stated criteria, source...).
  void set_contact(const Contact& contact);
  // Lead created implicitly by an event for an unknown contact.
  void set_created_if_unknown(UnixSeconds created_at);
  void apply(const Event& event);

  // Writes feature_count() values at instant `at` into `out`. `book` may be
  // null (track-record features then take the prior / NaN).
  void write_features(UnixSeconds at, const TrackRecordBook* book, float* out) const;
  // Only the track-record features (training fills them in a second pass).
  void write_track_features(const TrackRecordBook* book, float* out) const;

  const Contact& contact() const { return contact_; }
  bool has_contact() const { return has_contact_; }
  std::uint32_t events_count() const { return events_count_; }
  // First agent outreach at or after created_at; nullopt when none yet.
  std::optional<UnixSeconds> first_outreach() const;

 private:
  struct Decayed {
    double value = 0;
    UnixSeconds at = 0;  // value is as of this instant
    void add(UnixSeconds ts, double half_life_seconds);
    double read(UnixSeconds at, double half_life_seconds) const;
  };
  struct Listing {
    std::uint64_t id_hash;
    float price;  // NaN when unknown
    bool saved;
  };
  enum Group { kInbound = 0, kProperty, kOutreach, kGroupCount };

  // Steps of apply().
  void count_event(EventType type, UnixSeconds ts);
  void note_event_time(EventType type, UnixSeconds ts);
  void note_outreach(UnixSeconds ts);
  void note_inbound_contact(EventType type, UnixSeconds ts);
  void note_property_event(const Event& event);
  Listing* find_or_add_listing(std::uint64_t id_hash, float price);
  // Steps of write_features(), each filling its own columns.
  void write_activity(UnixSeconds at, float* out) const;
  void write_recency(UnixSeconds at, float* out) const;
  void write_conversation(UnixSeconds at, float* out) const;
  void write_homes_viewed(float* out) const;
  void write_stated_profile(float* out) const;
  void write_creation_time(float* out) const;
  void write_milestones(float* out) const;

  Contact contact_;
  bool has_contact_ = false;
  std::uint32_t events_count_ = 0;
  std::array<std::uint32_t, kEventTypeCount> counts_{};
  std::array<std::array<Decayed, kHalfLivesHours.size()>, kGroupCount> decayed_{};
  std::optional<UnixSeconds> first_event_, last_event_, last_inbound_, last_property_, last_outreach_;
  std::optional<UnixSeconds> first_inbound_contact_, first_appointment_;
  std::vector<UnixSeconds> early_events_;    // event times, smallest few kept
  std::vector<UnixSeconds> early_outreach_;  // outreach times, smallest few kept
  std::uint32_t replies_ = 0;                // sms_in/call_in within window after outreach
  std::optional<double> first_reply_delay_s_, min_reply_delay_s_;
  std::uint32_t outreach_since_inbound_ = 0;
  std::vector<Listing> listings_;
  double price_sum_ = 0;
  std::uint32_t price_n_ = 0;
};

// Categorical codes (stable: persisted in models).
int source_code(std::string_view source);

}  // namespace reai::features
