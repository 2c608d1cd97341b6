// LeadSync: one lead's state is the same on every instance.
//
// With shared leases (Redis), a lead's events are applied on one instance at
// a time: under the lead's lease, the instance brings its copy of the lead up
// to the shared snapshot (the value the lease's stamp carries, TTL 300 s), or
// rebuilds it from the store's events when there is none, applies the new
// event and publishes the next snapshot with the lease's release (one round
// trip for both). Every event is applied after it is stored, so a lead's state
// is always the fold of its stored events in the store's order (time, then
// insertion), exactly what a restarted instance rebuilds: two instances
// receiving a lead's events concurrently end with the score one instance
// would have. An event that another instance's rebuild already folded is not
// applied twice; an event older than the lead's newest triggers a rebuild.
//
// An instance can die between storing an event and publishing the snapshot
// that holds it. So before the write it marks the lead (will_store: the
// event's id beside the lead's lease, lapsing after the snapshot TTL), and
// the mark goes only with the release of a lease whose published snapshot
// holds the event. Whoever takes the lead next and finds a mark its state
// does not hold (another instance's event or contact being written, or
// written by an instance that died) refolds the lead from the store. The
// lease also carries the generation of the last snapshot published (its
// "stamp", which carries the snapshot): an instance whose copy is that
// generation skips reading the snapshot, and a snapshot of any other
// generation is not trusted. So after any instance dies at any
// point, the next synchronised call on the lead folds every event the store
// holds for it.
//
// A lead this instance's own commit created (its contact was absent from the
// store before it: leads_created) needs no store read on that first miss:
// the store then holds exactly the contact and that commit's events of it,
// and any later write by anyone shows under the lease as a mark (set before
// the write) or a stamp (set by the publish that dropped the mark). So with
// no stamp and no mark that state lacks, it is what a rebuild would read.
//
// Snapshots carry the lead's contact and stored events (in fold order), so
// adopting one is an exact refold, not a copy of derived numbers.
//
// Without shared leases (the in-process default), or while the lease cannot
// be taken (Redis down, or held past the wait), the engine's local state is
// used as is, the shared stamp and snapshot are dropped and the failure is counted
// (degraded: scores may differ across instances until the lead is refolded:
// at its next synchronised call here, or elsewhere on a snapshot miss or a
// mark, at most the snapshot TTL later). Without shared leases nothing here
// reads the store or the leases, and nothing locks.
//
// Thread-safe; calls for one lead queue on a local lock, then on the lease.
// Store, leases and engine must outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "core/cache_lookups.h"
#include "core/status.h"
#include "core/types.h"
#include "scoring/scoring.h"
#include "store/store.h"

namespace reai::server {

// A lead's shared state: what the engine folds it from, and the generation
// (random, changes with every published snapshot; 0 = not synchronised).
struct LeadSnapshot {
  std::uint64_t generation = 0;
  std::optional<Contact> contact;
  std::vector<Event> events;  // in fold (store) order
};
// Binary form the lease's stamp carries. decode answers nullopt for anything that is
// not exactly an encoded snapshot of (tenant_id, lead_id).
std::string encode_snapshot(const LeadSnapshot& snapshot);
std::optional<LeadSnapshot> decode_snapshot(std::string_view bytes, std::string_view tenant_id,
                                            std::string_view lead_id);

struct LeadSyncStats {
  std::uint64_t leases = 0;           // leases taken
  std::uint64_t lease_ns = 0;         // time spent taking and giving them back
  std::uint64_t lease_failures = 0;   // not taken (down or busy): applied alone
  // Leases given back later than their hold after they were asked for: the
  // lease may have lapsed meanwhile and another instance may have applied
  // the lead's events alongside (its release is then dropped, see
  // bus::Leases). An upper bound: the clock starts before the service set
  // the lease. A batch counts each of its leads.
  std::uint64_t lease_overruns = 0;
  // Feature-snapshot lookups: each event applied to a lead and each read of
  // a lead (refresh) first needs the lead's current state, and counts once,
  // by where that state came from, the same way with and without shared
  // leases. Not counted: contact writes (they always refold from the store)
  // and events applied without the lease (lease_failures: the engine's copy
  // is used unsynchronised); a read without the lease refolds from the
  // store and is a miss.
  // Hits: the state was at hand without the store: this instance's copy
  // (shared: it is the stamped generation and holds every mark; alone: the
  // engine holds the lead), or the snapshot the lease's stamp carries.
  std::uint64_t snapshot_hits = 0;
  std::uint64_t snapshot_adopted = 0; // of the hits, another instance's snapshot (from the stamp, in Redis)
  // Misses: not at hand: a lead new here, no snapshot (never published or
  // lapsed after 300 s), one not trusted, or one lacking a marked write; the
  // lead is then refolded from the store (shared) or starts empty (alone).
  std::uint64_t snapshot_misses = 0;
  std::uint64_t marked_refolds = 0;   // a mark named work the shared state lacked: refolded
  std::uint64_t mark_failures = 0;    // marks not set (lease service down): those writes unprotected
  std::uint64_t refused_marks = 0;    // marks of events refused as another lead's, dropped (refused)
  std::uint64_t store_rebuilds = 0;   // misses + marked refolds + events older than the lead's newest
  std::uint64_t unshared_snapshots = 0;  // published without the snapshot (over max_shared_snapshot_bytes)
  std::uint64_t created_folds = 0;    // misses folded from what created the lead, without a store read
  // Hits over lookups (0 before any).
  double hit_rate() const {
    const std::uint64_t n = snapshot_hits + snapshot_misses;
    return n ? double(snapshot_hits) / double(n) : 0.0;
  }
};

class LeadSync {
 public:
  struct Options {
    std::chrono::milliseconds hold{2000};  // a dead holder blocks its lead this long
    std::chrono::milliseconds wait{3000};  // > hold: a lapsed lease is always taken
    // A snapshot larger than this is not shared (the stamp goes without it:
    // other instances refold that lead from the store), which bounds what
    // one lead keeps in Redis and ships with every release. Snapshots grow
    // ~75 bytes per stored event: 256 KiB is ~3,400 events, over 10 times
    // the busiest lead of the shared CRM history (358 events, 26 KB).
    std::size_t max_shared_snapshot_bytes = 256 * 1024;
  };
  // Called under the lead's lease with the new score; `adopted` is true when
  // the lead's previous state came from elsewhere (another instance or the
  // store), so "changed since the last score here" is unknown.
  using OnScore = std::function<void(const scoring::LeadScore& score, bool adopted)>;

  // `leases` may be null (= not shared).
  LeadSync(store::Store& store, bus::Leases* leases, scoring::LeadScoringEngine& engine, Options options);
  LeadSync(store::Store& store, bus::Leases* leases, scoring::LeadScoringEngine& engine)
      : LeadSync(store, leases, engine, Options{}) {}

  // True when leases are shared, i.e. this instance synchronises lead state.
  bool active() const { return active_; }
  // Before `events` are written to the store (active: one lease-service round
  // trip for all, so not on an io thread; nothing otherwise): marks their
  // leads. A mark is never taken back by the writer (a failed write's mark
  // lapses, costing its lead store refolds until then), since a replay of
  // the same event id may be in flight elsewhere. A mark that cannot be set
  // (Redis down) is skipped, counted (stats().mark_failures) and shows in
  // health(): the lead is degraded anyway.
  void will_store(std::span<const Event> events);
  // After the store refused each of `events` because its id is stored for
  // another lead (409): drops the mark will_store set for it, under its
  // lead's lease (one lease trip each; not on an io thread). Such a mark
  // names work its lead can never hold (event ids are unique within a
  // tenant and never deleted), so left alone it would make every
  // synchronised call on the lead refold from the store until it lapses.
  // When the lease cannot be had the mark stays and lapses as before.
  // Nothing when not active.
  void refused(std::span<const Event> events);
  // After a commit that created `created` contacts (the store held nothing
  // of them before it; nothing happens when not active): the store then
  // holds of each such lead exactly that contact and its events among
  // `events` that were `stored` (one flag each). The lead's next synchronised
  // call folds that instead of reading the store back, unless its lease says
  // someone else wrote to the lead since (a stamp, or a mark that state does
  // not hold) or kFreshFor has passed. Cheap; never blocks on the leases.
  void leads_created(std::span<const Contact> created, std::span<const Event> events, const std::vector<bool>& stored);
  // Before `contact_id`'s contact is written: the same; answers the mark to
  // hand to contact_stored ("" when not active).
  std::string will_store_contact(const std::string& tenant_id, const std::string& contact_id);
  // After `event` was stored (never before: rebuilds read the store): applies
  // it to its lead and scores the lead at `now`; `on_score` runs before the
  // lease is given back, so a lead's scores leave in apply order. The
  // store's error when a needed rebuild cannot read it.
  Result<scoring::LeadScore> apply_stored_event(const Event& event, UnixSeconds now, const OnScore& on_score);
  // One per event of apply_stored_events: as OnScore, with the event's index.
  using OnEventScore = std::function<void(std::size_t index, const scoring::LeadScore& score, bool adopted)>;
  // apply_stored_event for each of `events` (all stored; a lead's events in
  // their store order), answering one outcome per event, in order. Active,
  // the leases of all their leads are taken in one round trip, the events
  // applied in order (each lead's scores leaving under its lease), their
  // warm scores stored in one cache call and the leases given back, with
  // their snapshots, in one round trip: three trips per call instead of
  // three per event; the local locks of all the leads are held meanwhile. Never waits for a lease: the events of a lead whose
  // lease is held elsewhere are not applied and answer ResourceExhausted,
  // for the caller to apply with apply_stored_event (which waits), in order
  // and before any later event of that lead. When the lease service cannot
  // be reached, each event is applied as apply_stored_event does (alone).
  // `before_release`, when given, runs once (on the calling thread) after
  // the events applied under the call's leases and before those leases are
  // given back (also when none was taken): what on_score collected for them
  // can leave under their leases there. Events applied after it (one at a
  // time: not active, or the service unreachable) each leave under their
  // own lease in on_score, as with apply_stored_event.
  std::vector<Result<scoring::LeadScore>> apply_stored_events(std::span<const Event> events, UnixSeconds now,
                                                              const OnEventScore& on_score,
                                                              const std::function<void()>& before_release = nullptr);
  // After `contact` was stored (`mark` from will_store_contact): rebuilds its
  // lead from the store (active) or sets it in the engine (not active) and
  // scores at `now`, as above.
  Result<scoring::LeadScore> contact_stored(const Contact& contact, UnixSeconds now, const OnScore& on_score,
                                            const std::string& mark);
  // Before a read: brings the local lead up to the shared state. OK at once
  // when not active (the lookup is counted all the same).
  Status refresh(const std::string& tenant_id, const std::string& lead_id);

  LeadSyncStats stats() const;
  // The tenant's feature-snapshot lookups, counted as LeadSyncStats counts
  // every tenant's.
  CacheLookups snapshot_lookups(std::string_view tenant_id) const;
  // Unavailable while the last lease attempt found the lease service down.
  Status health() const;

 private:
  // What the engine holds for one lead.
  struct Local {
    LeadSnapshot state;
    // An event was applied without the lease: the shared state may lack it,
    // so the next synchronised call refolds from the store.
    bool applied_alone = false;
    // What the store held when this instance's commit created the lead
    // (leads_created), taken for the next synchronised call only.
    std::optional<LeadSnapshot> created;
  };
  struct Created {
    LeadSnapshot state;
    std::chrono::steady_clock::time_point at;  // of the commit
  };
  // A created lead's state is trusted this long after its commit (the marks
  // of others' writes it relies on live kFeatureSnapshotTtl).
  static constexpr std::chrono::seconds kFreshFor{60};
  static constexpr std::size_t kMaxCreated = 65536;
  struct Stripe {
    std::mutex mu;
    std::unordered_map<std::string, Local> leads;
  };
  class HeldLease;

  Stripe& stripe_for(const std::string& key);
  // Moves the lead's leads_created state, if fresh, into `here.created`.
  void take_created(Local& here, const std::string& key);
  // True (and `local` set to it) when `here.created` may stand for a store
  // read under `shared`: no stamp and every mark but `own_mark` held.
  bool fold_created(Local& here, LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id,
                    const bus::LeaseState& shared, std::string_view own_mark);
  // Brings `local` (and the engine) to the lead's shared state as `shared`
  // (taken with the lease) describes it: its own copy when that is the
  // stamped generation, else the stamp's snapshot of that generation, else a
  // rebuild from the store; and a rebuild too when a mark (other than
  // `own_mark`) names work the result does not hold. Sets *adopted when the
  // state changed here.
  Status sync_locked(Local& here, const std::string& tenant_id, const std::string& lead_id, const std::string& key,
                     const bus::LeaseState& shared, std::string_view own_mark, bool* adopted);
  Status rebuild_from_store(LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id);
  // Takes over the stamp's snapshot when it is readable and of generation
  // `stamp` (true; *adopted set); false otherwise.
  bool adopt_shared_locked(LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id,
                           const std::string& key, std::uint64_t stamp, bool* adopted);
  // True when `local` is the shared state `shared` stamps and holds every
  // mark but `own_mark`; adopts the stamp's snapshot to get there if needed.
  // Counts the hit (and the adoption) when true, nothing otherwise.
  bool current_locked(LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id,
                      const std::string& key, const bus::LeaseState& shared, std::string_view own_mark,
                      bool* adopted);
  // Makes `local` the next generation and arranges for the lease's release
  // to stamp it, carry its snapshot and drop the marks it holds (and
  // `own_mark`).
  void publish_locked(LeadSnapshot& local, HeldLease& lease, std::string_view own_mark);
  // Counts a mark that could not be set; the service's being down shows in health().
  void note_marked(const Status& marked);
  // Without shared leases: a lookup of the engine's copy, a hit when it held the lead.
  void note_local_lookup(const std::string& tenant_id, bool known);
  // The release drops the marks of work `local` holds, and `own_mark`;
  // `local` must be the shared state (published or stamped).
  static void drop_held_marks(const LeadSnapshot& local, HeldLease& lease, std::string_view own_mark);
  // Without the lease: the engine's state as is, and the shared stamp
  // dropped (when the service still answers) so others refold from the store.
  using Apply = std::function<Result<scoring::LeadScore>()>;
  using Synced = std::function<Result<scoring::LeadScore>(Local& here, const std::string& key, HeldLease& lease)>;
  // The shared frame of every write: without shared leases `alone` scores on
  // this instance; else `synced` runs under the lead's stripe lock and lease,
  // or `alone` (through apply_alone) when the lease cannot be taken.
  Result<scoring::LeadScore> under_lease(const std::string& tenant_id, const std::string& lead_id,
                                         const OnScore& on_score, const Apply& alone, const Synced& synced);
  // apply_stored_events' shared part: under the local locks of all `keys`
  // (each event's lead: keys[lead_of[i]]), takes their leases in one trip,
  // applies the events of the leads taken (setting their outcomes; a lead
  // held elsewhere: ResourceExhausted) and gives those leases back in one
  // trip, running `before_release` (when given) just before. Sets no
  // outcome when the leases cannot be reached.
  void apply_batched_locked(std::span<const Event> events, const std::vector<std::string>& keys,
                            const std::vector<std::size_t>& lead_of, UnixSeconds now,
                            const std::function<OnScore(std::size_t)>& score_of,
                            const std::function<void()>& before_release,
                            std::vector<std::optional<Result<scoring::LeadScore>>>& outcomes);
  void note_lease_time(std::chrono::steady_clock::time_point start);
  // Counts `leases` overruns when they are given back a hold or more after
  // they were asked for.
  void note_overruns(std::chrono::steady_clock::time_point asked_at, std::chrono::steady_clock::time_point releasing_at,
                     std::size_t leases);
  // `warm` (the batched path) takes the score's warm score, for the caller
  // to store before the lease is given back; null: stored at once.
  Result<scoring::LeadScore> apply_synced_locked(Local& here, const std::string& key, HeldLease& lease,
                                                 const Event& event, UnixSeconds now, const OnScore& on_score,
                                                 scoring::HeldWarmScores* warm = nullptr);
  Result<scoring::LeadScore> contact_synced_locked(Local& here, HeldLease& lease, const Contact& contact,
                                                   const std::string& mark, UnixSeconds now, const OnScore& on_score);
  Result<scoring::LeadScore> apply_alone(Local& local, const std::string& key, const OnScore& on_score,
                                         const Apply& apply);
  Status refresh_locked(Local& local, const std::string& tenant_id, const std::string& lead_id,
                        const std::string& key);

  store::Store& store_;
  bus::Leases* leases_;
  scoring::LeadScoringEngine& engine_;
  const Options options_;
  const bool active_;
  static constexpr std::size_t kStripes = 256;
  std::unique_ptr<Stripe[]> stripes_;
  std::atomic<bool> lease_down_{false};
  std::atomic<std::uint64_t> leases_taken_{0}, lease_ns_{0}, lease_failures_{0}, lease_overruns_{0};
  TenantCacheLookups snapshot_lookups_;
  std::atomic<std::uint64_t> adopted_{0}, marked_refolds_{0}, rebuilds_{0};
  std::atomic<std::uint64_t> mark_failures_{0}, unshared_{0}, refused_marks_{0};
  std::atomic<std::uint64_t> created_folds_{0};
  std::mutex created_mu_;
  std::unordered_map<std::string, Created> created_;  // guarded by created_mu_
};

}  // namespace reai::server
