// LeadSync: per-lead lease, shared snapshot with its stamp, rebuild from the store on miss.
#include "server/lead_sync.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>
#include <utility>

namespace reai::server {
namespace {

using SteadyClock = std::chrono::steady_clock;

// --- snapshot bytes: "LS1", then fixed-width little-endian fields ----------

constexpr std::string_view kMagic = "LS1";

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }  // exact: no text round trip
  void str(std::string_view s) {
    u64(s.size());
    out_.append(s);
  }
  void opt_f64(const std::optional<double>& v) {
    u8(v ? 1 : 0);
    if (v) f64(*v);
  }
  void opt_int(const std::optional<int>& v) {
    u8(v ? 1 : 0);
    if (v) i64(*v);
  }
  void opt_bool(const std::optional<bool>& v) { u8(v ? (*v ? 2 : 1) : 0); }
  std::string take() { return std::move(out_); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  std::uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  double f64() { return std::bit_cast<double>(u64()); }
  std::string str() {
    const std::uint64_t n = u64();
    if (!need(n)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::optional<double> opt_f64() {
    if (u8() == 0) return std::nullopt;
    return f64();
  }
  std::optional<int> opt_int() {
    if (u8() == 0) return std::nullopt;
    return static_cast<int>(i64());
  }
  std::optional<bool> opt_bool() {
    const std::uint8_t v = u8();
    if (v > 2) ok_ = false;
    if (v == 0) return std::nullopt;
    return v == 2;
  }

 private:
  bool need(std::uint64_t n) {
    if (!ok_ || n > in_.size() - pos_) ok_ = false;
    return ok_;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::string cache_key(std::string_view tenant_id, std::string_view lead_id) {
  // Length-prefixed: any tenant id (even one with ':') maps to its own key.
  std::string key = "lead:";
  key.append(std::to_string(tenant_id.size())).push_back(':');
  key.append(tenant_id).push_back(':');
  key.append(lead_id);
  return key;
}

std::uint64_t next_generation() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ (std::uint64_t(std::random_device{}()) << 32)};
  std::uint64_t g = 0;
  while (g == 0) g = rng();
  return g;
}

bool holds(const std::vector<Event>& events, std::string_view event_id) {
  // Newest first: an event folded by someone else's rebuild is a recent one.
  return std::any_of(events.rbegin(), events.rend(), [&](const Event& e) { return e.event_id == event_id; });
}

// Marks: "e" + event id for an event being stored (the same for a replay of
// it, which is harmless: the id is stored either way); "c" + a random number
// for a contact being written (unique: only its own writer can tell when the
// snapshot holds that write).
std::string event_mark(std::string_view event_id) {
  std::string mark = "e";
  mark.append(event_id);
  return mark;
}

std::string contact_mark() {
  std::string mark = std::to_string(next_generation());
  mark.insert(mark.begin(), 'c');
  return mark;
}

// Whether `local` holds the work `mark` names. A contact write is known held
// only to its writer (which passes its mark as its own).
bool marked_work_held(const LeadSnapshot& local, std::string_view mark) {
  return mark.size() > 1 && mark[0] == 'e' && holds(local.events, mark.substr(1));
}

// Stamps and marks live as long as the snapshot they describe.
constexpr std::chrono::milliseconds kShareTtl = std::chrono::seconds(bus::kFeatureSnapshotTtl);

}  // namespace

std::string encode_snapshot(const LeadSnapshot& s) {
  Writer w;
  w.out().append(kMagic);
  w.u64(s.generation);
  const Contact* c = s.contact ? &*s.contact : nullptr;
  w.u8(c ? 1 : 0);
  if (c) {
    w.str(c->tenant_id);
    w.str(c->contact_id);
    w.i64(c->created_at);
    w.str(c->source);
    w.u8(static_cast<std::uint8_t>(c->lead_type));
    w.str(c->assigned_agent_id);
    w.opt_f64(c->budget);
    w.opt_int(c->timeline_months);
    w.opt_bool(c->pre_approved);
    w.opt_int(c->beds_wanted);
    w.str(c->area_wanted);
    w.opt_bool(c->has_phone);
    w.opt_bool(c->has_email);
  }
  w.u64(s.events.size());
  for (const Event& e : s.events) {
    w.str(e.tenant_id);
    w.str(e.contact_id);
    w.str(e.event_id);
    w.i64(e.ts);
    w.u8(static_cast<std::uint8_t>(e.type));
    w.str(e.property_id);
    w.opt_f64(e.value);
  }
  return w.take();
}

std::optional<LeadSnapshot> decode_snapshot(std::string_view bytes, std::string_view tenant_id,
                                            std::string_view lead_id) {
  if (bytes.substr(0, kMagic.size()) != kMagic) return std::nullopt;
  Reader r(bytes.substr(kMagic.size()));
  LeadSnapshot s;
  s.generation = r.u64();
  const std::uint8_t has_contact = r.u8();
  if (has_contact > 1) return std::nullopt;
  if (has_contact) {
    Contact c;
    c.tenant_id = r.str();
    c.contact_id = r.str();
    c.created_at = r.i64();
    c.source = r.str();
    const std::uint8_t type = r.u8();
    if (type > static_cast<std::uint8_t>(LeadType::kInvestor)) return std::nullopt;
    c.lead_type = static_cast<LeadType>(type);
    c.assigned_agent_id = r.str();
    c.budget = r.opt_f64();
    c.timeline_months = r.opt_int();
    c.pre_approved = r.opt_bool();
    c.beds_wanted = r.opt_int();
    c.area_wanted = r.str();
    c.has_phone = r.opt_bool();
    c.has_email = r.opt_bool();
    if (c.tenant_id != tenant_id || c.contact_id != lead_id) return std::nullopt;
    s.contact = std::move(c);
  }
  const std::uint64_t n = r.u64();
  // An encoded event takes at least kMinEventBytes: a bad count cannot make
  // the reserve below large.
  constexpr std::uint64_t kMinEventBytes = 4 * 8 + 8 + 1 + 1;
  if (!r.ok() || n > bytes.size() / kMinEventBytes) return std::nullopt;
  s.events.reserve(n);
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    Event e;
    e.tenant_id = r.str();
    e.contact_id = r.str();
    e.event_id = r.str();
    e.ts = r.i64();
    const std::uint8_t type = r.u8();
    if (type >= kEventTypeCount || e.tenant_id != tenant_id || e.contact_id != lead_id) return std::nullopt;
    e.type = static_cast<EventType>(type);
    e.property_id = r.str();
    e.value = r.opt_f64();
    s.events.push_back(std::move(e));
  }
  if (!r.done() || s.generation == 0) return std::nullopt;
  return s;
}

// The lead's lease for the length of a scope; not taken when `ok()` is false.
// Given back with the update the scope arranged (stamp, done marks), unless
// handed over for a batched release (to_release).
class LeadSync::HeldLease {
 public:
  // Already taken (acquire_each): counted by the caller.
  HeldLease(LeadSync& sync, const std::string& key, bus::Lease taken)
      : sync_(sync), key_(key), lease_(std::move(taken)) {}
  HeldLease(LeadSync& sync, const std::string& key) : sync_(sync), key_(key) {
    const auto start = SteadyClock::now();
    auto lease = sync_.leases_->acquire(key_, sync_.options_.hold, sync_.options_.wait);
    asked_at_ = account(start);
    if (lease) {
      lease_ = std::move(*lease);
      sync_.leases_taken_.fetch_add(1, std::memory_order_relaxed);
      sync_.lease_down_.store(false, std::memory_order_relaxed);
    } else {
      sync_.lease_failures_.fetch_add(1, std::memory_order_relaxed);
      if (lease.status().code() == StatusCode::kUnavailable) sync_.lease_down_.store(true, std::memory_order_relaxed);
    }
  }
  ~HeldLease() {
    if (!lease_) return;
    const auto start = SteadyClock::now();
    if (asked_at_) sync_.note_overruns(*asked_at_, start, 1);
    sync_.leases_->release(key_, lease_->token, update_);
    account(start);
  }
  HeldLease(const HeldLease&) = delete;
  HeldLease& operator=(const HeldLease&) = delete;
  bool ok() const { return lease_.has_value(); }
  const bus::LeaseState& state() const { return lease_->state; }
  bus::LeaseUpdate& update() { return update_; }
  // Before the lead's next event in the same hold: the state as the release
  // so far would leave it (the published stamp, without the marks it drops),
  // those marks kept for the release.
  void carry_over() {
    if (update_.stamp != 0) lease_->state.stamp = update_.stamp;
    for (std::string& m : update_.done_marks) {
      std::erase(lease_->state.marks, m);
      done_so_far_.push_back(std::move(m));
    }
    update_.done_marks.clear();
  }
  // The release, for release_each; this no longer gives the lease back.
  bus::LeaseRelease to_release() {
    carry_over();
    bus::LeaseRelease r{key_, std::move(lease_->token), std::move(update_)};
    r.update.done_marks = std::move(done_so_far_);
    lease_.reset();
    return r;
  }

 private:
  // Adds the time since `start` to the lease time; answers `start`.
  SteadyClock::time_point account(SteadyClock::time_point start) {
    sync_.note_lease_time(start);
    return start;
  }
  LeadSync& sync_;
  const std::string& key_;
  std::optional<bus::Lease> lease_;
  // When this lease was asked for; none for a batch's (its caller counts their overruns).
  std::optional<SteadyClock::time_point> asked_at_;
  bus::LeaseUpdate update_;
  std::vector<std::string> done_so_far_;  // marks dropped by earlier events of a batch
};

LeadSync::LeadSync(store::Store& store, bus::Leases* leases, scoring::LeadScoringEngine& engine, Options options)
    : store_(store),
      leases_(leases),
      engine_(engine),
      options_(options),
      active_(leases != nullptr && leases->shared()),
      stripes_(new Stripe[kStripes]) {}

LeadSync::Stripe& LeadSync::stripe_for(const std::string& key) {
  return stripes_[std::hash<std::string>{}(key) % kStripes];
}

void LeadSync::will_store(std::span<const Event> events) {
  if (!active_ || events.empty()) return;
  std::vector<bus::LeaseMark> marks;
  marks.reserve(events.size());
  for (const Event& e : events) marks.push_back({cache_key(e.tenant_id, e.contact_id), event_mark(e.event_id)});
  note_marked(leases_->mark(marks, kShareTtl));
}

void LeadSync::refused(std::span<const Event> events) {
  if (!active_) return;
  for (const Event& e : events) {
    const std::string key = cache_key(e.tenant_id, e.contact_id);
    Stripe& stripe = stripe_for(key);
    std::lock_guard lock(stripe.mu);  // the lead's local lock first, as every call takes them
    HeldLease lease(*this, key);
    if (!lease.ok()) continue;
    const std::string mark = event_mark(e.event_id);
    if (std::find(lease.state().marks.begin(), lease.state().marks.end(), mark) == lease.state().marks.end()) continue;
    lease.update().done_marks.push_back(mark);
    refused_marks_.fetch_add(1, std::memory_order_relaxed);
  }
}

void LeadSync::leads_created(std::span<const Contact> created, std::span<const Event> events,
                             const std::vector<bool>& stored) {
  if (!active_ || created.empty()) return;
  const auto now = SteadyClock::now();
  std::unordered_map<std::string, Created> batch;
  batch.reserve(created.size());
  for (const Contact& c : created) batch[cache_key(c.tenant_id, c.contact_id)] = {LeadSnapshot{0, c, {}}, now};
  for (std::size_t k = 0; k < events.size() && k < stored.size(); ++k) {
    if (!stored[k]) continue;
    auto it = batch.find(cache_key(events[k].tenant_id, events[k].contact_id));
    if (it != batch.end()) it->second.state.events.push_back(events[k]);
  }
  for (auto& [key, lead] : batch) {
    // The store's order: time, then insertion (the batch's order).
    std::stable_sort(lead.state.events.begin(), lead.state.events.end(),
                     [](const Event& x, const Event& y) { return x.ts < y.ts; });
  }
  std::lock_guard lock(created_mu_);
  if (created_.size() + batch.size() > kMaxCreated) {
    // Leads whose first call never came (or came without taking theirs):
    // stale anyway, so they make room.
    std::erase_if(created_, [&](const auto& entry) { return now - entry.second.at >= kFreshFor; });
  }
  for (auto& [key, lead] : batch) {
    if (created_.size() >= kMaxCreated) break;  // only a shortcut: those leads read the store
    created_.insert_or_assign(key, std::move(lead));
  }
}

void LeadSync::take_created(Local& here, const std::string& key) {
  std::optional<Created> lead;
  {
    std::lock_guard lock(created_mu_);
    auto it = created_.find(key);
    if (it == created_.end()) return;
    lead = std::move(it->second);
    created_.erase(it);
  }
  if (SteadyClock::now() - lead->at < kFreshFor) here.created = std::move(lead->state);
}

bool LeadSync::fold_created(Local& here, LeadSnapshot& local, const std::string& tenant_id,
                            const std::string& lead_id, const bus::LeaseState& shared, std::string_view own_mark) {
  std::optional<LeadSnapshot> created = std::exchange(here.created, std::nullopt);
  if (!created || shared.stamp != 0) return false;  // a stamp: published since, adopt or read that
  for (const std::string& m : shared.marks) {
    if (m != own_mark && !marked_work_held(*created, m)) return false;  // someone else's write
  }
  local = std::move(*created);  // generation 0: not published yet
  engine_.rebuild_lead(tenant_id, lead_id, local.contact ? &*local.contact : nullptr, local.events);
  created_folds_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::string LeadSync::will_store_contact(const std::string& tenant_id, const std::string& contact_id) {
  if (!active_) return {};
  std::string mark = contact_mark();
  note_marked(leases_->mark({{cache_key(tenant_id, contact_id), mark}}, kShareTtl));
  return mark;
}

void LeadSync::note_marked(const Status& marked) {
  if (marked.is_ok()) return;
  mark_failures_.fetch_add(1, std::memory_order_relaxed);
  if (marked.code() == StatusCode::kUnavailable) lease_down_.store(true, std::memory_order_relaxed);
}

Status LeadSync::rebuild_from_store(LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id) {
  auto contact = store_.get_contact(tenant_id, lead_id);
  if (!contact && contact.status().code() != StatusCode::kNotFound) return contact.status();
  auto events = store_.events_for_contact(tenant_id, lead_id);
  if (!events) return events.status();
  local.contact = contact ? std::optional<Contact>(std::move(*contact)) : std::nullopt;
  local.events = std::move(*events);
  local.generation = 0;  // not published yet
  engine_.rebuild_lead(tenant_id, lead_id, local.contact ? &*local.contact : nullptr, local.events);
  rebuilds_.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

bool LeadSync::adopt_shared_locked(LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id,
                                   const std::string& key, std::uint64_t stamp, bool* adopted) {
  auto bytes = leases_->stamped_value(key);
  if (!bytes || bytes->empty()) return false;
  auto shared = decode_snapshot(*bytes, tenant_id, lead_id);
  // Another generation than the stamped one (a newer release between a
  // lease-less peek and this read): not what the caller checked. Not trusted.
  if (!shared || shared->generation != stamp) return false;
  engine_.rebuild_lead(tenant_id, lead_id, shared->contact ? &*shared->contact : nullptr, shared->events);
  local = std::move(*shared);
  *adopted = true;
  return true;
}

bool LeadSync::current_locked(LeadSnapshot& local, const std::string& tenant_id, const std::string& lead_id,
                              const std::string& key, const bus::LeaseState& shared, std::string_view own_mark,
                              bool* adopted) {
  if (shared.stamp == 0) return false;  // never published, or lapsed
  const bool from_stamp = local.generation != shared.stamp;
  if (from_stamp && !adopt_shared_locked(local, tenant_id, lead_id, key, shared.stamp, adopted)) return false;
  for (const std::string& m : shared.marks) {
    if (m != own_mark && !marked_work_held(local, m)) return false;
  }
  // Counted only now: a snapshot lacking a marked write is refolded from
  // the store, so it served nothing.
  snapshot_lookups_.count(tenant_id, true);
  if (from_stamp) adopted_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Status LeadSync::sync_locked(Local& here, const std::string& tenant_id, const std::string& lead_id,
                             const std::string& key, const bus::LeaseState& shared, std::string_view own_mark,
                             bool* adopted) {
  LeadSnapshot& local = here.state;
  const bool checked = !std::exchange(here.applied_alone, false);
  if (checked && current_locked(local, tenant_id, lead_id, key, shared, own_mark, adopted)) {
    here.created.reset();
    return Status::ok();
  }
  // The stamped state was at hand (here or adopted) but lacked a marked
  // write. Counted here, under the lease, once: a read's lease-less check
  // before it comes to the same answer.
  if (checked && shared.stamp != 0 && local.generation == shared.stamp) {
    marked_refolds_.fetch_add(1, std::memory_order_relaxed);
  }
  snapshot_lookups_.count(tenant_id, false);
  *adopted = true;
  if (fold_created(here, local, tenant_id, lead_id, shared, own_mark)) return Status::ok();
  return rebuild_from_store(local, tenant_id, lead_id);
}

void LeadSync::publish_locked(LeadSnapshot& local, HeldLease& lease, std::string_view own_mark) {
  local.generation = next_generation();
  lease.update().stamp = local.generation;
  lease.update().stamp_ttl = kShareTtl;
  lease.update().stamped_value = encode_snapshot(local);
  if (lease.update().stamped_value.size() > options_.max_shared_snapshot_bytes) {
    // The stamp alone: this copy stays current here; elsewhere the lead misses.
    lease.update().stamped_value.clear();
    unshared_.fetch_add(1, std::memory_order_relaxed);
  }
  drop_held_marks(local, lease, own_mark);
}

void LeadSync::drop_held_marks(const LeadSnapshot& local, HeldLease& lease, std::string_view own_mark) {
  std::vector<std::string>& done = lease.update().done_marks;
  done.clear();
  for (const std::string& m : lease.state().marks) {
    if (m == own_mark || marked_work_held(local, m)) done.push_back(m);
  }
}

Result<scoring::LeadScore> LeadSync::apply_alone(Local& local, const std::string& key, const OnScore& on_score,
                                                 const Apply& apply) {
  local.applied_alone = true;
  local.state.generation = 0;
  leases_->drop_stamp(key);
  auto score = apply();
  if (score && on_score) on_score(*score, true);
  return score;
}

Result<scoring::LeadScore> LeadSync::under_lease(const std::string& tenant_id, const std::string& lead_id,
                                                 const OnScore& on_score, const Apply& alone, const Synced& synced) {
  if (!active_) {
    auto score = alone();
    if (score && on_score) on_score(*score, false);
    return score;
  }
  const std::string key = cache_key(tenant_id, lead_id);
  Stripe& stripe = stripe_for(key);
  std::lock_guard lock(stripe.mu);
  Local& here = stripe.leads[key];
  take_created(here, key);
  HeldLease lease(*this, key);
  if (!lease.ok()) {
    here.created.reset();
    return apply_alone(here, key, on_score, alone);
  }
  auto score = synced(here, key, lease);
  here.created.reset();  // for this call only
  return score;
}

Result<scoring::LeadScore> LeadSync::apply_stored_event(const Event& event, UnixSeconds now,
                                                        const OnScore& on_score) {
  bool known = false;
  auto score = under_lease(
      event.tenant_id, event.contact_id, on_score, [&] { return engine_.apply_event(event, now, &known); },
      [&](Local& here, const std::string& key, HeldLease& lease) {
        return apply_synced_locked(here, key, lease, event, now, on_score);
      });
  // Alone by design, the engine's copy is the lead's state: a hit when it
  // held the lead. (Shared, sync_locked counted it; a call without the
  // lease is no lookup.)
  if (!active_ && score) note_local_lookup(event.tenant_id, known);
  return score;
}

std::vector<Result<scoring::LeadScore>> LeadSync::apply_stored_events(std::span<const Event> events,
                                                                       UnixSeconds now,
                                                                       const OnEventScore& on_score,
                                                                       const std::function<void()>& before_release) {
  auto score_of = [&on_score](std::size_t i) -> OnScore {
    if (!on_score) return nullptr;
    return [&on_score, i](const scoring::LeadScore& s, bool adopted) { on_score(i, s, adopted); };
  };
  std::vector<std::optional<Result<scoring::LeadScore>>> outcomes(events.size());
  // Each event's lead: its key once, in first-seen order.
  std::vector<std::string> keys;
  std::vector<std::size_t> lead_of(events.size());
  {
    std::unordered_map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < events.size(); ++i) {
      auto [it, fresh] = seen.try_emplace(cache_key(events[i].tenant_id, events[i].contact_id), keys.size());
      if (fresh) keys.push_back(it->first);
      lead_of[i] = it->second;
    }
  }
  if (active_) {
    apply_batched_locked(events, keys, lead_of, now, score_of, before_release, outcomes);
  } else if (before_release) {
    before_release();
  }
  // Alone, or the service unreachable: one at a time.
  std::vector<Result<scoring::LeadScore>> answers;
  answers.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!outcomes[i]) outcomes[i] = apply_stored_event(events[i], now, score_of(i));
    answers.push_back(std::move(*outcomes[i]));
  }
  return answers;
}

void LeadSync::apply_batched_locked(std::span<const Event> events, const std::vector<std::string>& keys,
                                    const std::vector<std::size_t>& lead_of, UnixSeconds now,
                                    const std::function<OnScore(std::size_t)>& score_of,
                                    const std::function<void()>& before_release,
                                    std::vector<std::optional<Result<scoring::LeadScore>>>& outcomes) {
  // The leads' local locks in stripe order, before any of their leases: a
  // single-lead call holds one stripe and then waits on its lease, so no
  // cycle (and acquire_each itself never waits).
  std::vector<std::size_t> stripe_ids;
  stripe_ids.reserve(keys.size());
  for (const std::string& key : keys) stripe_ids.push_back(std::hash<std::string>{}(key) % kStripes);
  std::sort(stripe_ids.begin(), stripe_ids.end());
  stripe_ids.erase(std::unique(stripe_ids.begin(), stripe_ids.end()), stripe_ids.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(stripe_ids.size());
  for (std::size_t id : stripe_ids) locks.emplace_back(stripes_[id].mu);

  const auto asked_at = SteadyClock::now();
  auto taken = leases_->acquire_each(keys, options_.hold);
  note_lease_time(asked_at);
  if (!taken) {  // each event then tries its own lease, as apply_stored_event does
    if (before_release) before_release();
    return;
  }
  lease_down_.store(false, std::memory_order_relaxed);
  std::vector<Local*> here(keys.size(), nullptr);
  std::vector<std::unique_ptr<HeldLease>> held(keys.size());
  scoring::HeldWarmScores warm;  // the batch's warm scores: one cache trip, below
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (!(*taken)[j]) continue;  // held elsewhere: left to the caller
    leases_taken_.fetch_add(1, std::memory_order_relaxed);
    here[j] = &stripe_for(keys[j]).leads[keys[j]];
    take_created(*here[j], keys[j]);
    held[j] = std::make_unique<HeldLease>(*this, keys[j], std::move(*(*taken)[j]));
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::size_t j = lead_of[i];
    if (!held[j]) {
      outcomes[i] = (*taken)[j].status();
      continue;
    }
    outcomes[i] = apply_synced_locked(*here[j], keys[j], *held[j], events[i], now, score_of(i), &warm);
    held[j]->carry_over();
  }
  std::vector<bus::LeaseRelease> releases;
  releases.reserve(keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (!held[j]) continue;
    here[j]->created.reset();  // for this call only
    releases.push_back(held[j]->to_release());
  }
  // Under the leases, as each score's own put would have been, so the cache
  // keeps a lead's latest warm score across instances.
  engine_.store_warm_scores(warm);
  if (before_release) before_release();  // the leads' scores leave under their leases
  const auto start = SteadyClock::now();
  note_overruns(asked_at, start, releases.size());
  leases_->release_each(releases);
  note_lease_time(start);
}

void LeadSync::note_lease_time(SteadyClock::time_point start) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - start).count();
  lease_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

void LeadSync::note_overruns(SteadyClock::time_point asked_at, SteadyClock::time_point releasing_at,
                             std::size_t leases) {
  if (releasing_at - asked_at >= options_.hold) lease_overruns_.fetch_add(leases, std::memory_order_relaxed);
}

void LeadSync::note_local_lookup(const std::string& tenant_id, bool known) {
  snapshot_lookups_.count(tenant_id, known);
}

Result<scoring::LeadScore> LeadSync::apply_synced_locked(Local& here, const std::string& key, HeldLease& lease,
                                                         const Event& event, UnixSeconds now,
                                                         const OnScore& on_score, scoring::HeldWarmScores* warm) {
  LeadSnapshot& local = here.state;
  bool adopted = false;
  const std::string own_mark = event_mark(event.event_id);
  REAI_RETURN_IF_ERROR(sync_locked(here, event.tenant_id, event.contact_id, key, lease.state(), own_mark, &adopted));
  if (holds(local.events, event.event_id)) {
    // Folded already (a rebuild read it from the store): nothing changes,
    // but a rebuild made here is shared; marks the shared state holds go.
    if (local.generation == 0) {
      publish_locked(local, lease, own_mark);
    } else {
      drop_held_marks(local, lease, own_mark);
    }
    auto score = engine_.score(event.tenant_id, event.contact_id, now, warm);
    if (score && on_score) on_score(*score, adopted);
    return score;
  }
  if (local.events.empty() || event.ts > local.events.back().ts) {
    // After everything folded in store order: it comes last there too.
    local.events.push_back(event);
    engine_.load_event(event);
  } else {
    // Older than (or as old as) the newest: its place in the store's order
    // decides, so fold again from the store (which holds it).
    REAI_RETURN_IF_ERROR(rebuild_from_store(local, event.tenant_id, event.contact_id));
  }
  publish_locked(local, lease, own_mark);
  auto score = engine_.score(event.tenant_id, event.contact_id, now, warm);
  if (score && on_score) on_score(*score, adopted);
  return score;
}

Result<scoring::LeadScore> LeadSync::contact_stored(const Contact& contact, UnixSeconds now,
                                                    const OnScore& on_score, const std::string& mark) {
  return under_lease(
      contact.tenant_id, contact.contact_id, on_score, [&] { return engine_.upsert_contact(contact, now); },
      [&](Local& here, const std::string&, HeldLease& lease) {
        return contact_synced_locked(here, lease, contact, mark, now, on_score);
      });
}

Result<scoring::LeadScore> LeadSync::contact_synced_locked(Local& here, HeldLease& lease, const Contact& contact,
                                                           const std::string& mark, UnixSeconds now,
                                                           const OnScore& on_score) {
  LeadSnapshot& local = here.state;
  here.applied_alone = false;
  // The contact goes before every event in the fold: rebuild, then share.
  REAI_RETURN_IF_ERROR(rebuild_from_store(local, contact.tenant_id, contact.contact_id));
  publish_locked(local, lease, mark);
  auto score = engine_.score(contact.tenant_id, contact.contact_id, now);
  if (score && on_score) on_score(*score, true);
  return score;
}

Status LeadSync::refresh(const std::string& tenant_id, const std::string& lead_id) {
  if (!active_) {
    note_local_lookup(tenant_id, engine_.has_lead(tenant_id, lead_id));
    return Status::ok();
  }
  const std::string key = cache_key(tenant_id, lead_id);
  Stripe& stripe = stripe_for(key);
  std::lock_guard lock(stripe.mu);
  Local& here = stripe.leads[key];
  take_created(here, key);
  Status s = refresh_locked(here, tenant_id, lead_id, key);
  here.created.reset();  // for this call only
  // Reads of unknown leads leave nothing behind.
  if (auto it = stripe.leads.find(key);
      it != stripe.leads.end() && !it->second.state.contact && it->second.state.events.empty()) {
    stripe.leads.erase(it);
  }
  return s;
}

Status LeadSync::refresh_locked(Local& here, const std::string& tenant_id, const std::string& lead_id,
                                const std::string& key) {
  LeadSnapshot& local = here.state;
  bool adopted = false;
  // Current without the lease: the stamped generation here or in the cache,
  // no mark it lacks. After applying alone, the lead is refolded below,
  // under the lease when it can be had.
  if (!here.applied_alone) {
    if (auto shared = leases_->peek(key); shared && current_locked(local, tenant_id, lead_id, key, *shared, {}, &adopted)) {
      return Status::ok();
    }
  }
  // Otherwise rebuild under the lease and share it, so the next read (here
  // or elsewhere) hits. Without the lease, rebuild for this read only.
  HeldLease lease(*this, key);
  if (!lease.ok()) {
    snapshot_lookups_.count(tenant_id, false);
    return rebuild_from_store(local, tenant_id, lead_id);
  }
  REAI_RETURN_IF_ERROR(sync_locked(here, tenant_id, lead_id, key, lease.state(), {}, &adopted));
  if (local.generation == 0) {
    if (local.contact || !local.events.empty()) publish_locked(local, lease, {});
  } else {
    drop_held_marks(local, lease, {});
  }
  return Status::ok();
}

LeadSyncStats LeadSync::stats() const {
  LeadSyncStats s;
  s.leases = leases_taken_.load(std::memory_order_relaxed);
  s.lease_ns = lease_ns_.load(std::memory_order_relaxed);
  s.lease_failures = lease_failures_.load(std::memory_order_relaxed);
  s.lease_overruns = lease_overruns_.load(std::memory_order_relaxed);
  const CacheLookups snapshots = snapshot_lookups_.total();
  s.snapshot_hits = snapshots.hits;
  s.snapshot_adopted = adopted_.load(std::memory_order_relaxed);
  s.snapshot_misses = snapshots.misses;
  s.marked_refolds = marked_refolds_.load(std::memory_order_relaxed);
  s.mark_failures = mark_failures_.load(std::memory_order_relaxed);
  s.refused_marks = refused_marks_.load(std::memory_order_relaxed);
  s.store_rebuilds = rebuilds_.load(std::memory_order_relaxed);
  s.unshared_snapshots = unshared_.load(std::memory_order_relaxed);
  s.created_folds = created_folds_.load(std::memory_order_relaxed);
  return s;
}

CacheLookups LeadSync::snapshot_lookups(std::string_view tenant_id) const { return snapshot_lookups_.of(tenant_id); }

Status LeadSync::health() const {
  if (!active_) return Status::ok();
  if (lease_down_.load(std::memory_order_relaxed)) {
    return unavailable("lead leases unavailable: each instance scores its leads alone (degraded)");
  }
  return leases_->health();
}

}  // namespace reai::server
