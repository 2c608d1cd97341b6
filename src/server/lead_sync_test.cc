// LeadSync with fakes: two engines ("instances") share one memory store and
// a fake shared lease service, and must end every lead
// in the state a single instance rebuilds from the store.
#include "server/lead_sync.h"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/time.h"
#include "scoring/synthetic_history.h"

namespace reai::server {
namespace {

using namespace std::chrono_literals;

class NoModels final : public scoring::ModelRegistry {
 public:
  std::shared_ptr<const scoring::LeadModel> lead_model(std::string_view) const override { return nullptr; }
};

// Shared leases as Redis gives them (one holder per name, lapsing holds,
// marks and stamps: the in-process implementation's), said to be shared, with
// a switch that makes the service unreachable.
class FakeSharedLeases final : public bus::Leases {
 public:
  Result<bus::Lease> acquire(std::string_view name, std::chrono::milliseconds hold,
                             std::chrono::milliseconds wait) override {
    ++acquires;
    if (down) return unavailable("fake lease service down");
    return leases_->acquire(name, hold, wait);
  }
  void release(std::string_view name, std::string_view token, const bus::LeaseUpdate& update) override {
    ++releases;
    if (!down) leases_->release(name, token, update);
  }
  Result<std::vector<Result<bus::Lease>>> acquire_each(std::span<const std::string> names,
                                                       std::chrono::milliseconds hold) override {
    ++acquire_eachs;
    if (down) return unavailable("fake lease service down");
    return leases_->acquire_each(names, hold);
  }
  void release_each(std::span<const bus::LeaseRelease> releases) override {
    ++release_eachs;
    if (!down) leases_->release_each(releases);
  }
  Status mark(const std::vector<bus::LeaseMark>& marks, std::chrono::milliseconds ttl) override {
    if (down) return unavailable("fake lease service down");
    return leases_->mark(marks, ttl);
  }
  Result<bus::LeaseState> peek(std::string_view name) override {
    if (down) return unavailable("fake lease service down");
    return leases_->peek(name);
  }
  Result<std::string> stamped_value(std::string_view name) override {
    if (down) return unavailable("fake lease service down");
    return leases_->stamped_value(name);
  }
  void drop_stamp(std::string_view name) override {
    if (!down) leases_->drop_stamp(name);
  }
  bool shared() const override { return true; }
  Status health() override { return down ? unavailable("fake lease service down") : Status::ok(); }

  std::atomic<bool> down{false};
  // Calls (round trips, with Redis), down or not.
  std::atomic<int> acquires{0}, releases{0}, acquire_eachs{0}, release_eachs{0};

 private:
  std::unique_ptr<bus::Leases> leases_ = bus::make_in_process_leases();
};

// One instance's view of the shared lease service that can "die" while
// publishing a lead: its lease release, which carries the snapshot and the
// stamp, is lost (a SIGKILLed process never makes it), and its lease lapses
// by itself.
class Dying {
 public:
  enum class Step { kNone, kBeforeRelease };
  explicit Dying(bus::Leases& leases) : leases_(leases) {}
  bus::Leases& leases() { return leases_view_; }
  std::atomic<Step> dies_at{Step::kNone};

 private:
  class LeasesView final : public bus::Leases {
   public:
    explicit LeasesView(Dying& d) : d_(d) {}
    Result<bus::Lease> acquire(std::string_view name, std::chrono::milliseconds hold,
                               std::chrono::milliseconds wait) override {
      return d_.leases_.acquire(name, hold, wait);
    }
    void release(std::string_view name, std::string_view token, const bus::LeaseUpdate& update) override {
      if (d_.dies_at == Step::kNone) d_.leases_.release(name, token, update);
    }
    Result<std::vector<Result<bus::Lease>>> acquire_each(std::span<const std::string> names,
                                                         std::chrono::milliseconds hold) override {
      return d_.leases_.acquire_each(names, hold);
    }
    void release_each(std::span<const bus::LeaseRelease> releases) override {
      if (d_.dies_at == Step::kNone) d_.leases_.release_each(releases);
    }
    Status mark(const std::vector<bus::LeaseMark>& marks, std::chrono::milliseconds ttl) override {
      return d_.leases_.mark(marks, ttl);
    }
    Result<bus::LeaseState> peek(std::string_view name) override { return d_.leases_.peek(name); }
    Result<std::string> stamped_value(std::string_view name) override { return d_.leases_.stamped_value(name); }
    void drop_stamp(std::string_view name) override { d_.leases_.drop_stamp(name); }
    bool shared() const override { return true; }
    Status health() override { return d_.leases_.health(); }

   private:
    Dying& d_;
  };
  bus::Leases& leases_;
  LeasesView leases_view_{*this};
};

constexpr UnixSeconds kT0 = 1'700'000'000;


Event make_event(const std::string& lead, int n, UnixSeconds ts, EventType type) {
  Event e;
  e.tenant_id = "t_sync";
  e.contact_id = lead;
  e.event_id = lead + "-e" + std::to_string(n);
  e.ts = ts;
  e.type = type;
  if (is_property_event(type)) {
    e.property_id = "p" + std::to_string(n % 7);
    e.value = 400000 + 1000 * (n % 7);
  }
  return e;
}

Contact make_contact(const std::string& lead) {
  Contact c;
  c.tenant_id = "t_sync";
  c.contact_id = lead;
  c.created_at = kT0;
  c.source = "zillow";
  c.budget = 500000;
  c.has_phone = true;
  return c;
}

class LeadSyncTest : public ::testing::Test {
 protected:
  std::unique_ptr<store::Store> store_ = store::make_memory_store();
  FakeSharedLeases leases_;
  NoModels models_;
  scoring::LeadScoringEngine engine_a_{models_, nullptr};
  scoring::LeadScoringEngine engine_b_{models_, nullptr};
  LeadSync a_{*store_, &leases_, engine_a_};
  LeadSync b_{*store_, &leases_, engine_b_};

  void store_contact(const std::string& lead) { ASSERT_TRUE(store_->upsert_contact(make_contact(lead)).is_ok()); }
  void store_event(const Event& e) { ASSERT_TRUE(store_->append_event(e).value()); }
  // What an instance does before it applies an event (Api::apply_event).
  void store_event_on(LeadSync& sync, const Event& e) {
    sync.will_store(std::span<const Event>(&e, 1));
    store_event(e);
  }
  // The lead's marks left with the leases.
  std::vector<std::string> marks_of(const std::string& lead) {
    return leases_.peek("lead:6:t_sync:" + lead).value().marks;
  }

  // Lead l1: e1 applied on `behind`, e2 on `published_last`; then A stores
  // e3 and dies (never applied, never shared, as after a SIGKILL between the
  // commit and the publish), and B stores e4 and applies it.
  Result<scoring::LeadScore> apply_after_a_died_after_its_commit(LeadSync& published_last, LeadSync& behind) {
    store_contact("l1");
    const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kSmsOut);
    store_event(e1);
    EXPECT_TRUE(behind.apply_stored_event(e1, kT0 + 100, nullptr));
    const Event e2 = make_event("l1", 2, kT0 + 20, EventType::kSmsIn);
    store_event(e2);
    EXPECT_TRUE(published_last.apply_stored_event(e2, kT0 + 100, nullptr));
    store_event_on(a_, make_event("l1", 3, kT0 + 30, EventType::kPropertySave));
    const Event e4 = make_event("l1", 4, kT0 + 40, EventType::kPageView);
    store_event_on(b_, e4);
    return b_.apply_stored_event(e4, kT0 + 100, nullptr);
  }

  // An instance that applies its events but dies inside every publish,
  // before the release (whose snapshot, stamp and mark removal never come);
  // its lease lapses after 50 ms.
  struct InstanceDyingMidPublish {
    explicit InstanceDyingMidPublish(LeadSyncTest& t)
        : dying(t.leases_),
          engine(t.models_, nullptr),
          sync(*t.store_, &dying.leases(), engine, LeadSync::Options{.hold = 50ms, .wait = 3000ms}) {
      dying.dies_at = Dying::Step::kBeforeRelease;
    }
    Dying dying;
    scoring::LeadScoringEngine engine;
    LeadSync sync;
  };
  // `lead`: B stores e1, applies and publishes it; `dead` then stores e2 and
  // dies publishing it. Answers `dead`'s own score of e2.
  Result<scoring::LeadScore> b_publishes_then_one_dies_mid_publish(InstanceDyingMidPublish& dead,
                                                                    const std::string& lead) {
    store_contact(lead);
    const Event e1 = make_event(lead, 1, kT0 + 10, EventType::kSmsOut);
    store_event_on(b_, e1);
    EXPECT_TRUE(b_.apply_stored_event(e1, kT0 + 100, nullptr));  // B published last
    const Event e2 = make_event(lead, 2, kT0 + 20, EventType::kSmsIn);
    store_event_on(dead.sync, e2);
    return dead.sync.apply_stored_event(e2, kT0 + 100, nullptr);
  }

  // `count` events over `leads` (stored as contacts first), interleaved,
  // partly out of order and with equal instants: outreach and replies, so the
  // fold order matters (reply detection).
  std::vector<Event> interleaved_events(const std::vector<std::string>& leads, int count, std::uint32_t seed) {
    for (const auto& l : leads) store_contact(l);
    const EventType types[] = {EventType::kSmsOut, EventType::kSmsIn, EventType::kPropertyView, EventType::kCallOut,
                               EventType::kCallIn, EventType::kPageView, EventType::kPropertySave};
    std::vector<Event> events;
    std::mt19937 rng(seed);
    for (int n = 0; n < count; ++n) {
      const std::string& lead = leads[rng() % leads.size()];
      const UnixSeconds ts = kT0 + 60 * static_cast<UnixSeconds>(n) - static_cast<UnixSeconds>(rng() % 4) * 120;
      events.push_back(make_event(lead, n, ts, types[rng() % 7]));
    }
    return events;
  }
  // Each lead scores on A and on B as one instance started on the store
  // does, and no mark is left (every event's mark went with its publish).
  void expect_both_score_as_one_instance(const std::vector<std::string>& leads, UnixSeconds at) {
    for (const auto& l : leads) {
      const auto one = single_instance_score(l, at);
      const auto on_a = score_on(a_, engine_a_, l, at);
      const auto on_b = score_on(b_, engine_b_, l, at);
      EXPECT_EQ(on_a.probability, one.probability) << l;
      EXPECT_EQ(on_b.probability, one.probability) << l;
      EXPECT_EQ(on_a.events_count, one.events_count) << l;
      EXPECT_EQ(on_b.events_count, one.events_count) << l;
      EXPECT_GT(one.events_count, 0u) << l;
      EXPECT_TRUE(marks_of(l).empty()) << l;
    }
  }

  // What one instance started on the store holds (Api::rebuild's order).
  scoring::LeadScore single_instance_score(const std::string& lead, UnixSeconds at) {
    scoring::LeadScoringEngine one(models_, nullptr);
    EXPECT_TRUE(store_->for_each_contact("t_sync", [&](const Contact& c) { one.load_contact(c); return true; }).is_ok());
    EXPECT_TRUE(store_->for_each_event("t_sync", [&](const Event& e) { one.load_event(e); return true; }).is_ok());
    return one.score("t_sync", lead, at).value();
  }
  scoring::LeadScore score_on(LeadSync& sync, scoring::LeadScoringEngine& engine, const std::string& lead,
                              UnixSeconds at) {
    EXPECT_TRUE(sync.refresh("t_sync", lead).is_ok());
    return engine.score("t_sync", lead, at).value();
  }
};

TEST_F(LeadSyncTest, TwoInstancesApplyingOneLeadConcurrentlyEndAsOneInstanceRebuilt) {
  const std::vector<std::string> leads = {"l1", "l2", "l3"};
  const std::vector<Event> events = interleaved_events(leads, 120, 7);
  std::atomic<std::size_t> next{0};
  std::atomic<int> failures{0};
  auto instance = [&](LeadSync& sync) {
    for (std::size_t i; (i = next.fetch_add(1)) < events.size();) {
      sync.will_store(std::span<const Event>(&events[i], 1));
      if (!store_->append_event(events[i]).value()) failures.fetch_add(1);
      if (!sync.apply_stored_event(events[i], kT0 + 86400, nullptr)) failures.fetch_add(1);
    }
  };
  std::thread ta(instance, std::ref(a_));
  std::thread tb(instance, std::ref(b_));
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);
  expect_both_score_as_one_instance(leads, kT0 + 2 * 86400);
  const auto sa = a_.stats(), sb = b_.stats();
  EXPECT_GE(sa.leases + sb.leases, events.size());
  EXPECT_EQ(sa.lease_failures + sb.lease_failures, 0u);
  EXPECT_GT(sa.snapshot_adopted + sb.snapshot_adopted, 0u);  // they did take turns
}

// As above, each instance applying batches of up to 5 events (its
// appender's commits), with the leases of a batch's leads taken together.
TEST_F(LeadSyncTest, TwoInstancesApplyingBatchesOfOneLeadConcurrentlyEndAsOneInstanceRebuilt) {
  const std::vector<std::string> leads = {"l1", "l2", "l3", "l4"};
  const std::vector<Event> events = interleaved_events(leads, 200, 11);
  std::mutex taking;
  std::size_t next = 0;
  std::atomic<int> failures{0};
  auto instance = [&](LeadSync& sync, std::uint32_t seed) {
    std::mt19937 sizes(seed);
    for (;;) {
      std::vector<Event> batch;
      {
        std::lock_guard lock(taking);
        const std::size_t n = std::min<std::size_t>(1 + sizes() % 5, events.size() - next);
        batch.assign(events.begin() + static_cast<std::ptrdiff_t>(next),
                     events.begin() + static_cast<std::ptrdiff_t>(next + n));
        next += n;
      }
      if (batch.empty()) return;
      sync.will_store(batch);
      for (const Event& e : batch) {
        if (!store_->append_event(e).value()) failures.fetch_add(1);
      }
      const auto outcomes = sync.apply_stored_events(batch, kT0 + 86400, nullptr);
      for (std::size_t k = 0; k < batch.size(); ++k) {
        if (outcomes[k]) continue;
        // Held by the other instance: left to the caller, who waits for it.
        if (outcomes[k].status().code() != StatusCode::kResourceExhausted ||
            !sync.apply_stored_event(batch[k], kT0 + 86400, nullptr)) {
          failures.fetch_add(1);
        }
      }
    }
  };
  std::thread ta(instance, std::ref(a_), 1u);
  std::thread tb(instance, std::ref(b_), 2u);
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(leases_.acquire_eachs.load(), 0);
  expect_both_score_as_one_instance(leads, kT0 + 2 * 86400);
  EXPECT_EQ(a_.stats().lease_failures + b_.stats().lease_failures, 0u);
}

// Several leads, one with two events: one trip for the leases, one for
// giving them back with the snapshots; scores leave in the batch's order and
// are what one instance rebuilt from the store gives; the other instance
// adopts every snapshot.
TEST_F(LeadSyncTest, ABatchTakesAndGivesBackItsLeadsLeasesInOneTripEach) {
  for (const char* l : {"l1", "l2", "l3"}) store_contact(l);
  const std::vector<Event> batch = {make_event("l1", 1, kT0 + 10, EventType::kSmsOut),
                                    make_event("l2", 2, kT0 + 20, EventType::kPropertyView),
                                    make_event("l1", 3, kT0 + 30, EventType::kSmsIn),
                                    make_event("l3", 4, kT0 + 40, EventType::kCallIn)};
  a_.will_store(batch);
  for (const Event& e : batch) store_event(e);
  std::vector<std::size_t> order;
  const auto outcomes = a_.apply_stored_events(
      batch, kT0 + 100, [&](std::size_t i, const scoring::LeadScore& s, bool) {
        order.push_back(i);
        EXPECT_EQ(s.lead_id, batch[i].contact_id);
      });
  ASSERT_EQ(outcomes.size(), 4u);
  for (const auto& o : outcomes) ASSERT_TRUE(o) << o.status().message();
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_EQ(leases_.acquire_eachs.load(), 1);
  EXPECT_EQ(leases_.release_eachs.load(), 1);
  EXPECT_EQ(leases_.acquires.load(), 0);
  EXPECT_EQ(leases_.releases.load(), 0);
  // l1's first lookup read both its events from the store; its second found
  // that state current under the same hold.
  EXPECT_EQ(outcomes[0]->events_count, 2u);
  EXPECT_EQ(outcomes[2]->events_count, 2u);
  EXPECT_EQ(a_.stats().leases, 3u);
  EXPECT_EQ(a_.stats().store_rebuilds, 3u);  // each lead's first lookup; l1's second is a hit
  EXPECT_EQ(a_.stats().snapshot_hits, 1u);
  for (const char* l : {"l1", "l2", "l3"}) {
    EXPECT_TRUE(marks_of(l).empty()) << l;
    const auto one = single_instance_score(l, kT0 + 100);
    const auto on_b = score_on(b_, engine_b_, l, kT0 + 100);
    EXPECT_EQ(on_b.probability, one.probability) << l;
    EXPECT_EQ(on_b.events_count, one.events_count) << l;
  }
  EXPECT_EQ(outcomes[2]->probability, single_instance_score("l1", kT0 + 100).probability);
  EXPECT_EQ(b_.stats().snapshot_adopted, 3u);
  EXPECT_EQ(b_.stats().store_rebuilds, 0u);
}

// The caller's hook for a batch's scores (the batch worker publishes them
// together there): once, after every score applied under the batch's leases
// and before those leases are given back; events applied alone come after.
TEST_F(LeadSyncTest, BeforeReleaseRunsOnceBetweenTheBatchsScoresAndTheLeasesRelease) {
  for (const char* l : {"l1", "l2"}) store_contact(l);
  const std::vector<Event> batch = {make_event("l1", 1, kT0 + 10, EventType::kSmsOut),
                                    make_event("l2", 2, kT0 + 20, EventType::kPropertyView),
                                    make_event("l1", 3, kT0 + 30, EventType::kSmsIn)};
  a_.will_store(batch);
  for (const Event& e : batch) store_event(e);
  std::vector<std::string> steps;
  auto on_score = [&](std::size_t i, const scoring::LeadScore&, bool) { steps.push_back(std::to_string(i)); };
  auto before_release = [&] {
    steps.push_back("before_release");
    EXPECT_EQ(leases_.release_eachs.load(), 0);
  };
  const auto outcomes = a_.apply_stored_events(batch, kT0 + 100, on_score, before_release);
  for (const auto& o : outcomes) ASSERT_TRUE(o) << o.status().message();
  EXPECT_EQ(steps, (std::vector<std::string>{"0", "1", "2", "before_release"}));
  EXPECT_EQ(leases_.release_eachs.load(), 1);

  // The lease service down: nothing is applied under the batch's leases, so
  // the hook runs first and each event then leaves under its own lease.
  const std::vector<Event> more = {make_event("l1", 4, kT0 + 40, EventType::kCallIn),
                                   make_event("l2", 5, kT0 + 50, EventType::kSmsIn)};
  for (const Event& e : more) store_event(e);
  leases_.down = true;
  steps.clear();
  const auto alone = a_.apply_stored_events(more, kT0 + 100, on_score, [&] { steps.push_back("before_release"); });
  for (const auto& o : alone) ASSERT_TRUE(o) << o.status().message();
  EXPECT_EQ(steps, (std::vector<std::string>{"before_release", "0", "1"}));
}

// A hold that outlasts the lease (here 50 ms) may have lapsed before the
// release: each lead of such a batch, and such a single hold, is counted;
// quick ones (well within the default 2 s) are not.
TEST_F(LeadSyncTest, HoldsLongerThanTheLeaseAreCountedAsOverruns) {
  for (const char* l : {"l1", "l2"}) store_contact(l);
  const std::vector<Event> batch = {make_event("l1", 1, kT0 + 10, EventType::kSmsOut),
                                    make_event("l2", 2, kT0 + 20, EventType::kPropertyView)};
  a_.will_store(batch);
  for (const Event& e : batch) store_event(e);
  const auto quick = a_.apply_stored_events(batch, kT0 + 100, nullptr);
  for (const auto& o : quick) ASSERT_TRUE(o) << o.status().message();
  EXPECT_EQ(a_.stats().lease_overruns, 0u);

  scoring::LeadScoringEngine engine(models_, nullptr);
  LeadSync slow(*store_, &leases_, engine, LeadSync::Options{.hold = 50ms, .wait = 3000ms});

  const std::vector<Event> more = {make_event("l1", 3, kT0 + 30, EventType::kSmsIn),
                                   make_event("l2", 4, kT0 + 40, EventType::kCallIn)};
  slow.will_store(more);
  for (const Event& e : more) store_event(e);
  const auto late = slow.apply_stored_events(more, kT0 + 100, nullptr, [] { std::this_thread::sleep_for(60ms); });
  for (const auto& o : late) ASSERT_TRUE(o) << o.status().message();
  EXPECT_EQ(slow.stats().lease_overruns, 2u);

  const Event last = make_event("l1", 5, kT0 + 50, EventType::kPageView);
  store_event_on(slow, last);
  auto one = slow.apply_stored_event(last, kT0 + 100, [](const scoring::LeadScore&, bool) {
    std::this_thread::sleep_for(60ms);
  });
  ASSERT_TRUE(one) << one.status().message();
  EXPECT_EQ(slow.stats().lease_overruns, 3u);
}

// A lead held by another instance neither blocks nor fails the batch's
// other leads: they are applied and given back without waiting; its event
// is left to the caller, who applies it alone (waiting for the lease).
TEST_F(LeadSyncTest, ALeadHeldElsewhereIsLeftToTheCallerAndHoldsUpNoneOfItsBatch) {
  for (const char* l : {"l1", "l2", "l3"}) store_contact(l);
  const std::vector<Event> batch = {make_event("l1", 1, kT0 + 10, EventType::kSmsOut),
                                    make_event("l2", 2, kT0 + 20, EventType::kPropertyView),
                                    make_event("l3", 3, kT0 + 30, EventType::kCallIn)};
  a_.will_store(batch);
  for (const Event& e : batch) store_event(e);
  auto elsewhere = leases_.acquire("lead:6:t_sync:l2", 100ms, 0ms);  // lapses after 100 ms
  ASSERT_TRUE(elsewhere);
  std::vector<std::size_t> order;
  const auto outcomes =
      a_.apply_stored_events(batch, kT0 + 100, [&](std::size_t i, const scoring::LeadScore&, bool) { order.push_back(i); });
  ASSERT_EQ(outcomes.size(), 3u);
  ASSERT_TRUE(outcomes[0]) << outcomes[0].status().message();
  ASSERT_TRUE(outcomes[2]) << outcomes[2].status().message();
  ASSERT_FALSE(outcomes[1]);
  EXPECT_EQ(outcomes[1].status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(leases_.acquires.load(), 1);  // the other holder's: nobody waited
  EXPECT_EQ(marks_of("l2").size(), 1u);  // its event: still to be applied
  auto late = a_.apply_stored_event(batch[1], kT0 + 100, nullptr);  // waits for the hold to lapse
  ASSERT_TRUE(late) << late.status().message();
  EXPECT_EQ(leases_.acquire_eachs.load(), 1);
  EXPECT_EQ(a_.stats().lease_failures, 0u);
  EXPECT_EQ(a_.stats().leases, 3u);
  for (const char* l : {"l1", "l2", "l3"}) {
    EXPECT_TRUE(marks_of(l).empty()) << l;
    EXPECT_EQ(score_on(b_, engine_b_, l, kT0 + 100).probability, single_instance_score(l, kT0 + 100).probability)
        << l;
  }
}

TEST_F(LeadSyncTest, ABatchWithTheLeasesDownIsScoredAloneAndSaysDegraded) {
  for (const char* l : {"l1", "l2"}) store_contact(l);
  const std::vector<Event> batch = {make_event("l1", 1, kT0 + 10, EventType::kSmsOut),
                                    make_event("l2", 2, kT0 + 20, EventType::kPropertyView),
                                    make_event("l1", 3, kT0 + 30, EventType::kSmsIn)};
  for (const Event& e : batch) store_event(e);
  leases_.down = true;
  const auto outcomes = a_.apply_stored_events(batch, kT0 + 100, nullptr);
  ASSERT_EQ(outcomes.size(), 3u);
  for (const auto& o : outcomes) ASSERT_TRUE(o) << o.status().message();
  EXPECT_EQ(outcomes[2]->events_count, 2u);
  EXPECT_EQ(a_.stats().lease_failures, 3u);
  EXPECT_EQ(a_.health().code(), StatusCode::kUnavailable);
  leases_.down = false;
  // Back: the next synchronised call refolds from the store and shares it.
  EXPECT_EQ(score_on(a_, engine_a_, "l1", kT0 + 100).events_count, 2u);
  EXPECT_EQ(score_on(b_, engine_b_, "l1", kT0 + 100).probability, single_instance_score("l1", kT0 + 100).probability);
}

TEST_F(LeadSyncTest, AnEventAnotherInstanceAlreadyFoldedIsNotAppliedTwice) {
  store_contact("l1");
  const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kSmsOut);
  const Event e2 = make_event("l1", 2, kT0 + 20, EventType::kSmsIn);
  store_event(e1);  // stored on A, not applied yet
  store_event(e2);  // stored on B
  // B's lead has no snapshot: rebuilt from the store, which holds e1 too.
  auto on_b = b_.apply_stored_event(e2, kT0 + 30, nullptr);
  ASSERT_TRUE(on_b);
  EXPECT_EQ(on_b->events_count, 2u);
  EXPECT_EQ(b_.stats().snapshot_misses, 1u);
  // A applies e1 late: already folded, the state does not change.
  bool adopted = false;
  auto on_a = a_.apply_stored_event(e1, kT0 + 30, [&](const scoring::LeadScore&, bool a) { adopted = a; });
  ASSERT_TRUE(on_a);
  EXPECT_EQ(on_a->events_count, 2u);
  EXPECT_EQ(on_a->probability, on_b->probability);
  EXPECT_TRUE(adopted);  // the state came from B: A cannot tell whether the score changed
  EXPECT_EQ(a_.stats().snapshot_hits, 1u);
  EXPECT_EQ(a_.stats().snapshot_adopted, 1u);
}

// A's commit creates lead l1 with two events (out of time order) and l2 with
// one: what Api does through the appender's batch.
struct CreatedBatch {
  std::vector<Event> events;
  std::vector<Contact> contacts;
};
CreatedBatch create_leads_on(LeadSync& sync, store::Store& store) {
  CreatedBatch b;
  b.events = {make_event("l1", 1, kT0 + 50, EventType::kSmsOut), make_event("l2", 2, kT0 + 10, EventType::kPageView),
              make_event("l1", 3, kT0 + 20, EventType::kSmsIn)};
  for (const char* lead : {"l1", "l2"}) {
    Contact c;
    c.tenant_id = "t_sync";
    c.contact_id = lead;
    c.created_at = kT0;
    b.contacts.push_back(c);
  }
  sync.will_store(b.events);
  std::vector<bool> created;
  auto stored = store.append_batch(b.events, {}, b.contacts, &created);
  EXPECT_EQ(stored.value(), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(created, (std::vector<bool>{true, true}));
  sync.leads_created(b.contacts, b.events, stored.value());
  return b;
}

TEST_F(LeadSyncTest, LeadsThisInstanceCreatedAreFoldedWithoutReadingTheStore) {
  const CreatedBatch b = create_leads_on(a_, *store_);
  for (const Event& e : b.events) ASSERT_TRUE(a_.apply_stored_event(e, kT0 + 100, nullptr));
  const auto s = a_.stats();
  EXPECT_EQ(s.created_folds, 2u);
  EXPECT_EQ(s.store_rebuilds, 0u);
  EXPECT_EQ(s.snapshot_misses, 2u);
  const UnixSeconds at = kT0 + 200;
  for (const char* lead : {"l1", "l2"}) {
    const auto one = single_instance_score(lead, at);
    const auto on_a = engine_a_.score("t_sync", lead, at).value();
    EXPECT_EQ(on_a.probability, one.probability) << lead;
    EXPECT_EQ(on_a.events_count, one.events_count) << lead;
    // Shared as a rebuild would have been: B adopts it, no store read either.
    const auto on_b = score_on(b_, engine_b_, lead, at);
    EXPECT_EQ(on_b.probability, one.probability) << lead;
    EXPECT_TRUE(marks_of(lead).empty()) << lead;
  }
  EXPECT_EQ(single_instance_score("l1", at).events_count, 2u);
  EXPECT_EQ(b_.stats().store_rebuilds, 0u);
  EXPECT_EQ(b_.stats().snapshot_adopted, 2u);
}

TEST_F(LeadSyncTest, AnotherInstancesWriteToALeadItDidNotCreateMakesTheCreatorReadTheStore) {
  const CreatedBatch b = create_leads_on(a_, *store_);
  // B stores an event of l1 after A's commit and has not applied it yet: its
  // mark is what tells A the store holds more than A's batch.
  const Event other = make_event("l1", 4, kT0 + 30, EventType::kPropertySave);
  store_event_on(b_, other);
  ASSERT_TRUE(a_.apply_stored_event(b.events[0], kT0 + 100, nullptr));
  EXPECT_EQ(a_.stats().created_folds, 0u);
  EXPECT_EQ(a_.stats().store_rebuilds, 1u);
  const UnixSeconds at = kT0 + 200;
  EXPECT_EQ(engine_a_.score("t_sync", "l1", at).value().events_count, 3u);
  EXPECT_EQ(engine_a_.score("t_sync", "l1", at).value().probability, single_instance_score("l1", at).probability);

  // l2: B published it first (a stamp): A adopts that, not its own batch.
  const Event l2_more = make_event("l2", 5, kT0 + 40, EventType::kCallIn);
  store_event_on(b_, l2_more);
  ASSERT_TRUE(b_.apply_stored_event(l2_more, kT0 + 100, nullptr));
  ASSERT_TRUE(a_.apply_stored_event(b.events[1], kT0 + 100, nullptr));
  EXPECT_EQ(a_.stats().created_folds, 0u);
  EXPECT_EQ(engine_a_.score("t_sync", "l2", at).value().events_count, 2u);
  EXPECT_EQ(engine_a_.score("t_sync", "l2", at).value().probability, single_instance_score("l2", at).probability);
}

TEST_F(LeadSyncTest, InOrderEventsApplyIncrementallyAndOlderOnesRefoldFromTheStore) {
  store_contact("l1");
  for (int n = 0; n < 3; ++n) {
    const Event e = make_event("l1", n, kT0 + 100 * n, EventType::kPageView);
    store_event(e);
    ASSERT_TRUE(a_.apply_stored_event(e, kT0 + 1000, nullptr));
  }
  EXPECT_EQ(a_.stats().store_rebuilds, 1u);  // the first: no snapshot yet
  EXPECT_EQ(a_.stats().snapshot_hits, 2u);   // then its own snapshot, current here
  EXPECT_EQ(a_.stats().snapshot_adopted, 0u);
  const Event late = make_event("l1", 9, kT0 + 50, EventType::kSmsIn);
  store_event(late);
  auto s = a_.apply_stored_event(late, kT0 + 1000, nullptr);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->events_count, 4u);
  EXPECT_EQ(a_.stats().store_rebuilds, 2u);
  EXPECT_EQ(s->probability, single_instance_score("l1", kT0 + 1000).probability);
}

// An event whose id is stored for another lead is refused (409) after its
// lead was marked. Dropping that mark at once keeps the lead's next event
// from refolding it from the store; a mark left alone refolds every
// synchronised call until it lapses.
TEST_F(LeadSyncTest, ARefusedEventsMarkGoesSoTheLeadsNextEventDoesNotRefold) {
  for (const std::string lead : {"l1", "l2", "other"}) store_contact(lead);
  Event taken = make_event("other", 1, kT0 + 5, EventType::kPageView);
  store_event(taken);
  for (const std::string lead : {"l1", "l2"}) {
    const Event e1 = make_event(lead, 1, kT0 + 10, EventType::kSmsOut);
    store_event_on(a_, e1);
    ASSERT_TRUE(a_.apply_stored_event(e1, kT0 + 100, nullptr));
  }
  const auto refuse = [&](const std::string& lead) {
    Event e = taken;
    e.contact_id = lead;  // the id of `other`'s event, sent for this lead
    a_.will_store(std::span<const Event>(&e, 1));
    EXPECT_FALSE(store_->append_event(e).value());
    EXPECT_EQ(marks_of(lead).size(), 1u);
    return e;
  };
  const Event on_l1 = refuse("l1");
  a_.refused(std::span<const Event>(&on_l1, 1));
  EXPECT_TRUE(marks_of("l1").empty());
  EXPECT_EQ(a_.stats().refused_marks, 1u);
  (void)refuse("l2");  // left alone, as before

  const LeadSyncStats before = a_.stats();
  const Event next1 = make_event("l1", 2, kT0 + 20, EventType::kSmsIn);
  store_event_on(a_, next1);
  ASSERT_TRUE(a_.apply_stored_event(next1, kT0 + 100, nullptr));
  EXPECT_EQ(a_.stats().store_rebuilds, before.store_rebuilds);  // its own snapshot served
  EXPECT_EQ(a_.stats().snapshot_hits, before.snapshot_hits + 1);
  EXPECT_EQ(a_.stats().marked_refolds, before.marked_refolds);
  const Event next2 = make_event("l2", 2, kT0 + 20, EventType::kSmsIn);
  store_event_on(a_, next2);
  ASSERT_TRUE(a_.apply_stored_event(next2, kT0 + 100, nullptr));
  EXPECT_EQ(a_.stats().store_rebuilds, before.store_rebuilds + 1);  // the stale mark refolded it
  EXPECT_EQ(a_.stats().marked_refolds, before.marked_refolds + 1);
  EXPECT_EQ(marks_of("l2").size(), 1u);  // and stays until it lapses
  // A refusal on an instance without shared leases does nothing.
  scoring::LeadScoringEngine alone_engine(models_, nullptr);
  LeadSync alone(*store_, nullptr, alone_engine);
  alone.refused(std::span<const Event>(&on_l1, 1));
  EXPECT_EQ(alone.stats().refused_marks, 0u);
  EXPECT_EQ(alone.stats().leases, 0u);
}

TEST_F(LeadSyncTest, ContactChangesReachTheOtherInstance) {
  store_contact("l1");
  const Event e = make_event("l1", 1, kT0 + 10, EventType::kPropertySave);
  store_event(e);
  ASSERT_TRUE(a_.apply_stored_event(e, kT0 + 100, nullptr));
  Contact changed = make_contact("l1");
  changed.pre_approved = true;
  changed.timeline_months = 1;
  ASSERT_TRUE(store_->upsert_contact(changed).is_ok());
  ASSERT_TRUE(b_.contact_stored(changed, kT0 + 100, nullptr, b_.will_store_contact("t_sync", "l1")));
  const auto on_a = score_on(a_, engine_a_, "l1", kT0 + 100);
  EXPECT_EQ(on_a.probability, single_instance_score("l1", kT0 + 100).probability);
  EXPECT_EQ(on_a.events_count, 1u);
}

TEST_F(LeadSyncTest, LeasesDownAppliesAloneSaysDegradedAndResyncsAfter) {
  store_contact("l1");
  const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kSmsOut);
  store_event(e1);
  ASSERT_TRUE(a_.apply_stored_event(e1, kT0 + 100, nullptr));
  leases_.down = true;
  const Event e2 = make_event("l1", 2, kT0 + 20, EventType::kSmsIn);
  store_event(e2);
  bool adopted = false;
  auto alone = b_.apply_stored_event(e2, kT0 + 100, [&](const scoring::LeadScore&, bool a) { adopted = a; });
  ASSERT_TRUE(alone);  // still scored
  EXPECT_TRUE(adopted);
  EXPECT_EQ(b_.health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(b_.stats().lease_failures, 1u);
  leases_.down = false;
  const Event e3 = make_event("l1", 3, kT0 + 30, EventType::kCallOut);
  store_event(e3);
  auto back = b_.apply_stored_event(e3, kT0 + 100, nullptr);
  ASSERT_TRUE(back);
  EXPECT_TRUE(b_.health().is_ok());
  // B refolded from the store (it had applied e2 alone); A adopts that.
  EXPECT_EQ(back->events_count, 3u);
  const auto one = single_instance_score("l1", kT0 + 100);
  EXPECT_EQ(back->probability, one.probability);
  const auto on_a = score_on(a_, engine_a_, "l1", kT0 + 100);
  EXPECT_EQ(on_a.events_count, 3u);
  EXPECT_EQ(on_a.probability, one.probability);
  // Lookups: the event applied alone is none; back, B's copy (applied alone)
  // is refolded from the store: a miss. A missed the new lead, then read
  // B's snapshot from the stamp.
  EXPECT_EQ(b_.stats().snapshot_hits, 0u);
  EXPECT_EQ(b_.stats().snapshot_misses, 1u);
  EXPECT_EQ(a_.stats().snapshot_misses, 1u);
  EXPECT_EQ(a_.stats().snapshot_hits, 1u);
  EXPECT_EQ(a_.stats().snapshot_adopted, 1u);
  EXPECT_DOUBLE_EQ(a_.stats().hit_rate(), 0.5);
}

// A mark that cannot be set leaves that write unprotected against the
// writer's death: never silent, it is counted and health says the service
// is down (until a lease is taken again).
TEST_F(LeadSyncTest, AMarkThatCannotBeSetIsCountedAndShowsInHealth) {
  store_contact("l1");
  leases_.down = true;
  const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kSmsOut);
  a_.will_store(std::span<const Event>(&e1, 1));
  EXPECT_EQ(a_.will_store_contact("t_sync", "l2").substr(0, 1), "c");
  EXPECT_EQ(a_.stats().mark_failures, 2u);
  EXPECT_EQ(a_.health().code(), StatusCode::kUnavailable);
  leases_.down = false;
  store_event(e1);
  ASSERT_TRUE(a_.apply_stored_event(e1, kT0 + 100, nullptr));
  EXPECT_TRUE(a_.health().is_ok());
  EXPECT_EQ(a_.stats().mark_failures, 2u);
  EXPECT_EQ(b_.stats().mark_failures, 0u);
}

// An instance SIGKILLed after its event was committed and before it shared
// the lead's new state: it never applies the event. The event stays in the
// store; the next synchronised apply anywhere must fold it.
TEST_F(LeadSyncTest, AnInstanceDyingAfterItsCommitLosesNoEventWhenAnotherPublishedLast) {
  auto on_b = apply_after_a_died_after_its_commit(/*published_last=*/b_, /*behind=*/a_);
  ASSERT_TRUE(on_b);
  const auto one = single_instance_score("l1", kT0 + 100);
  EXPECT_EQ(one.events_count, 4u);
  EXPECT_EQ(on_b->events_count, one.events_count);
  EXPECT_EQ(on_b->probability, one.probability);
}

TEST_F(LeadSyncTest, AnInstanceDyingAfterItsCommitLosesNoEventWhenItPublishedLast) {
  auto on_b = apply_after_a_died_after_its_commit(/*published_last=*/a_, /*behind=*/b_);
  ASSERT_TRUE(on_b);
  const auto one = single_instance_score("l1", kT0 + 100);
  EXPECT_EQ(on_b->events_count, 4u);
  EXPECT_EQ(on_b->probability, one.probability);
  // And a read on the dead instance's successor serves the same.
  const auto on_b_read = score_on(b_, engine_b_, "l1", kT0 + 100);
  EXPECT_EQ(on_b_read.events_count, 4u);
}

TEST_F(LeadSyncTest, AReadAfterAnInstanceDiedAfterItsCommitServesTheStoredEvents) {
  store_contact("l1");
  const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kSmsOut);
  store_event(e1);
  ASSERT_TRUE(b_.apply_stored_event(e1, kT0 + 100, nullptr));  // B published last
  const Event e2 = make_event("l1", 2, kT0 + 20, EventType::kSmsIn);
  store_event_on(a_, e2);  // and A dies
  const auto on_b = score_on(b_, engine_b_, "l1", kT0 + 100);
  const auto one = single_instance_score("l1", kT0 + 100);
  EXPECT_EQ(on_b.events_count, 2u);
  EXPECT_EQ(on_b.probability, one.probability);
}

// Dying while publishing: after taking the lease and applying, before the
// release (whose snapshot, stamp and mark removal never come). The lease
// lapses; the next apply must fold the event.
TEST_F(LeadSyncTest, AnInstanceDyingMidPublishLeavesNoStaleStateBehind) {
  {
    const std::string lead = "l1";
    InstanceDyingMidPublish dead(*this);
    auto on_dead = b_publishes_then_one_dies_mid_publish(dead, lead);
    ASSERT_TRUE(on_dead);
    EXPECT_EQ(on_dead->events_count, 2u);  // its own state had it: it is the sharing that died
    const Event e3 = make_event(lead, 3, kT0 + 30, EventType::kCallOut);
    store_event_on(b_, e3);
    auto on_b = b_.apply_stored_event(e3, kT0 + 100, nullptr);  // waits out the dead lease
    ASSERT_TRUE(on_b);
    const auto one = single_instance_score(lead, kT0 + 100);
    EXPECT_EQ(one.events_count, 3u);
    EXPECT_EQ(on_b->events_count, one.events_count);
    EXPECT_EQ(on_b->probability, one.probability);
    EXPECT_TRUE(marks_of(lead).empty());
  }
  EXPECT_EQ(b_.stats().marked_refolds, 1u);
  // Its own snapshot lacked the dead instance's marked event: refolded from
  // the store, so a miss, not a hit (nor was the new lead's first event).
  EXPECT_EQ(b_.stats().snapshot_hits, 0u);
  EXPECT_EQ(b_.stats().snapshot_misses, 2u);
}

// The same death seen by a read: the lease-less check and the check under
// the lease both find the marked write missing; it is one refold, counted once.
TEST_F(LeadSyncTest, AReadRefoldingForAMarkedWriteCountsItOnce) {
  const std::string lead = "l1";
  InstanceDyingMidPublish dead(*this);
  ASSERT_TRUE(b_publishes_then_one_dies_mid_publish(dead, lead));
  const std::uint64_t before = b_.stats().marked_refolds;

  ASSERT_TRUE(b_.refresh("t_sync", lead).is_ok());
  auto on_b = engine_b_.score("t_sync", lead, kT0 + 100);
  ASSERT_TRUE(on_b);
  EXPECT_EQ(on_b->events_count, 2u);
  EXPECT_EQ(b_.stats().marked_refolds, before + 1);
  EXPECT_TRUE(marks_of(lead).empty());
}

TEST_F(LeadSyncTest, AContactWrittenByAnInstanceThatDiedIsInTheNextApply) {
  store_contact("l1");
  const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kPropertySave);
  store_event_on(b_, e1);
  ASSERT_TRUE(b_.apply_stored_event(e1, kT0 + 100, nullptr));  // B published last
  Contact changed = make_contact("l1");
  changed.pre_approved = true;
  changed.timeline_months = 1;
  const std::string mark = a_.will_store_contact("t_sync", "l1");
  EXPECT_FALSE(mark.empty());
  ASSERT_TRUE(store_->upsert_contact(changed).is_ok());  // and A dies before contact_stored
  const Event e2 = make_event("l1", 2, kT0 + 20, EventType::kPageView);
  store_event_on(b_, e2);
  auto on_b = b_.apply_stored_event(e2, kT0 + 100, nullptr);
  ASSERT_TRUE(on_b);
  const auto one = single_instance_score("l1", kT0 + 100);
  EXPECT_EQ(on_b->events_count, 2u);
  EXPECT_EQ(on_b->probability, one.probability);
  scoring::LeadScoringEngine stale(models_, nullptr);  // what the old contact scores
  stale.load_contact(make_contact("l1"));
  stale.load_event(e1);
  stale.load_event(e2);
  EXPECT_NE(one.probability, stale.score("t_sync", "l1", kT0 + 100).value().probability);
  // Only a contact's writer knows when the shared state holds its write: the
  // dead writer's mark stays until it lapses (each apply refolds till then).
  EXPECT_EQ(marks_of("l1"), (std::vector<std::string>{mark}));
}

TEST_F(LeadSyncTest, WithoutSharedLeasesTheEngineAloneServesAndNothingIsShared) {
  auto in_process = bus::make_in_process_leases();
  LeadSync alone(*store_, in_process.get(), engine_a_);
  EXPECT_FALSE(alone.active());
  LeadSync none(*store_, nullptr, engine_a_);
  EXPECT_FALSE(none.active());
  const Event e = make_event("l1", 1, kT0 + 10, EventType::kSmsIn);
  auto s = alone.apply_stored_event(e, kT0 + 100, nullptr);  // not even stored: no store read
  ASSERT_TRUE(s);
  EXPECT_EQ(s->events_count, 1u);
  EXPECT_TRUE(alone.refresh("t_sync", "l1").is_ok());
  // Nothing is marked either.
  alone.will_store(std::span<const Event>(&e, 1));
  EXPECT_EQ(alone.will_store_contact("t_sync", "l1"), "");
  EXPECT_TRUE(in_process->peek("lead:6:t_sync:l1").value().marks.empty());
  EXPECT_EQ(in_process->peek("lead:6:t_sync:l1").value().stamp, 0u);
  EXPECT_EQ(in_process->stamped_value("lead:6:t_sync:l1").value(), "");
  EXPECT_EQ(alone.stats().leases, 0u);
}

// A snapshot over the size bound goes without its state: its publisher
// stays current, the other instance refolds the lead from the store, and
// both score as one instance would.
TEST_F(LeadSyncTest, ASnapshotOverTheSizeBoundIsNotSharedAndOthersRefoldFromTheStore) {
  store_contact("l1");
  const Event e1 = make_event("l1", 1, kT0 + 10, EventType::kSmsOut);
  // The bound: the contact and e1 fit, one more event does not.
  const std::size_t one_event = encode_snapshot({1, make_contact("l1"), {e1}}).size();
  LeadSync big_a(*store_, &leases_, engine_a_, LeadSync::Options{.max_shared_snapshot_bytes = one_event + 10});
  store_event(e1);
  ASSERT_TRUE(big_a.apply_stored_event(e1, kT0 + 100, nullptr));
  EXPECT_EQ(big_a.stats().unshared_snapshots, 0u);
  EXPECT_FALSE(leases_.stamped_value("lead:6:t_sync:l1").value().empty());
  for (int n = 2; n <= 4; ++n) {
    const Event e = make_event("l1", n, kT0 + 10 * n, EventType::kPropertyView);
    store_event(e);
    ASSERT_TRUE(big_a.apply_stored_event(e, kT0 + 100, nullptr));
  }
  EXPECT_EQ(big_a.stats().unshared_snapshots, 3u);
  EXPECT_NE(leases_.peek("lead:6:t_sync:l1").value().stamp, 0u);  // the stamp still names the state
  EXPECT_EQ(leases_.stamped_value("lead:6:t_sync:l1").value(), "");
  EXPECT_EQ(big_a.stats().snapshot_hits, 3u);  // its own copy, current
  const auto on_b = score_on(b_, engine_b_, "l1", kT0 + 100);
  EXPECT_EQ(b_.stats().snapshot_misses, 1u);
  EXPECT_EQ(b_.stats().snapshot_adopted, 0u);
  const auto one = single_instance_score("l1", kT0 + 100);
  EXPECT_EQ(on_b.events_count, 4u);
  EXPECT_EQ(on_b.probability, one.probability);
}

// The engine's copy is the lead's state: lookups count as with shared
// leases, a hit when the engine held the lead, a miss for a lead new here.
TEST_F(LeadSyncTest, WithoutSharedLeasesLookupsOfTheEnginesCopyAreCountedTheSameWay) {
  LeadSync alone(*store_, nullptr, engine_a_);
  ASSERT_TRUE(alone.apply_stored_event(make_event("l1", 1, kT0 + 10, EventType::kSmsIn), kT0 + 100, nullptr));
  EXPECT_EQ(alone.stats().snapshot_misses, 1u);  // new here
  EXPECT_EQ(alone.stats().snapshot_hits, 0u);
  ASSERT_TRUE(alone.apply_stored_event(make_event("l1", 2, kT0 + 20, EventType::kSmsOut), kT0 + 100, nullptr));
  EXPECT_TRUE(alone.refresh("t_sync", "l1").is_ok());
  EXPECT_EQ(alone.stats().snapshot_hits, 2u);
  EXPECT_TRUE(alone.refresh("t_sync", "nobody").is_ok());  // a read of an unknown lead
  EXPECT_TRUE(alone.refresh("other_tenant", "l1").is_ok());
  const LeadSyncStats s = alone.stats();
  EXPECT_EQ(s.snapshot_hits, 2u);
  EXPECT_EQ(s.snapshot_misses, 3u);
  EXPECT_EQ(s.snapshot_adopted, 0u);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.4);
  EXPECT_EQ(s.store_rebuilds, 0u);
  // A contact write is no lookup.
  ASSERT_TRUE(alone.contact_stored(make_contact("l2"), kT0 + 100, nullptr, ""));
  EXPECT_EQ(alone.stats().snapshot_hits + alone.stats().snapshot_misses, 5u);
}

TEST(LeadSnapshot, RoundTripsExactlyAndRefusesAnythingElse) {
  LeadSnapshot s;
  s.generation = 42;
  Contact c = make_contact("l1");
  c.budget = 0.1 + 0.2;  // not exact in decimal: must survive bit for bit
  c.pre_approved = false;
  c.beds_wanted = 3;
  s.contact = c;
  s.events.push_back(make_event("l1", 1, kT0, EventType::kPropertyView));
  s.events.push_back(make_event("l1", 2, kT0 + 1, EventType::kSmsIn));
  const std::string bytes = encode_snapshot(s);
  auto back = decode_snapshot(bytes, "t_sync", "l1");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->generation, 42u);
  ASSERT_TRUE(back->contact);
  EXPECT_EQ(*back->contact->budget, 0.1 + 0.2);
  EXPECT_EQ(back->contact->pre_approved, std::optional<bool>(false));
  EXPECT_EQ(back->contact->beds_wanted, std::optional<int>(3));
  EXPECT_EQ(back->contact->has_email, std::nullopt);
  ASSERT_EQ(back->events.size(), 2u);
  EXPECT_EQ(back->events[0].event_id, "l1-e1");
  EXPECT_EQ(back->events[0].value, s.events[0].value);
  EXPECT_EQ(back->events[1].type, EventType::kSmsIn);
  // Another lead's key, truncation, trailing bytes, garbage: refused.
  EXPECT_FALSE(decode_snapshot(bytes, "t_sync", "l2"));
  EXPECT_FALSE(decode_snapshot(bytes, "t_other", "l1"));
  EXPECT_FALSE(decode_snapshot(bytes.substr(0, bytes.size() - 1), "t_sync", "l1"));
  EXPECT_FALSE(decode_snapshot(bytes + "x", "t_sync", "l1"));
  EXPECT_FALSE(decode_snapshot("", "t_sync", "l1"));
  EXPECT_FALSE(decode_snapshot("LS1\xff\xff\xff\xff\xff\xff\xff\xff", "t_sync", "l1"));
  std::string huge = bytes;
  huge[3 + 8 + 1] = '\x7f';  // first string length of the contact: absurd
  EXPECT_FALSE(decode_snapshot(huge, "t_sync", "l1"));
}


// The in-process cache, counting how warm scores reach it; `on_put_each`
// runs as each put_each arrives.
class CountingCache final : public bus::Cache {
 public:
  explicit CountingCache(const Clock& clock) : cache_(bus::make_in_process_cache(clock)) {}
  std::optional<std::string> get(std::string_view key) override { return cache_->get(key); }
  void put(std::string_view key, std::string value, UnixSeconds ttl) override {
    ++puts;
    cache_->put(key, std::move(value), ttl);
  }
  void put_each(std::span<const bus::CachePut> entries) override {
    ++put_eachs;
    entries_put_together += entries.size();
    if (on_put_each) on_put_each();
    cache_->put_each(entries);
  }
  void erase(std::string_view key) override { cache_->erase(key); }
  bus::CacheStats stats() const override { return cache_->stats(); }
  Status health() override { return cache_->health(); }

  std::atomic<int> puts{0}, put_eachs{0};
  std::atomic<std::size_t> entries_put_together{0};
  std::function<void()> on_put_each;

 private:
  std::unique_ptr<bus::Cache> cache_;
};

class OneModel final : public scoring::ModelRegistry {
 public:
  explicit OneModel(std::shared_ptr<const scoring::LeadModel> m) : m_(std::move(m)) {}
  std::shared_ptr<const scoring::LeadModel> lead_model(std::string_view) const override { return m_; }

 private:
  std::shared_ptr<const scoring::LeadModel> m_;
};

// A model trained on a small synthetic history (warm scores are kept for
// model scores only).
std::shared_ptr<const scoring::LeadModel> small_model() {
  namespace fs = std::filesystem;
  const std::string dir = (fs::temp_directory_path() / ("reai_lead_sync_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  const auto history = scoring::testing_support::make_history(600, scoring::testing_support::kStart,
                                                              200 * scoring::testing_support::kDay, 7, "c");
  scoring::TrainLeadOptions options;
  options.example_ages_hours = {1, 24, 168};
  options.nthread = 2;
  options.progress = false;
  EXPECT_TRUE(scoring::train_lead_model(history.contacts, history.events, history.stages, dir, options));
  auto model = scoring::load_lead_model(dir);
  fs::remove_all(dir);
  EXPECT_TRUE(model) << model.status().to_string();
  return model ? *model : nullptr;
}

// A batch's warm scores reach the cache in one call, under the batch's
// leases (before they are given back), holding each lead's latest score;
// an event applied alone puts its own at once.
TEST_F(LeadSyncTest, ABatchsWarmScoresReachTheCacheInOneCallBeforeTheLeasesGoBack) {
  auto model = small_model();
  ASSERT_TRUE(model);
  OneModel registry(model);
  ManualClock clock(kT0);
  CountingCache cache(clock);
  scoring::LeadScoringEngine engine(registry, &cache);
  LeadSync sync(*store_, &leases_, engine);
  for (const char* l : {"l1", "l2"}) store_contact(l);
  const std::vector<Event> batch = {make_event("l1", 1, kT0 + 10, EventType::kSmsOut),
                                    make_event("l2", 2, kT0 + 20, EventType::kPropertyView),
                                    make_event("l1", 3, kT0 + 30, EventType::kSmsIn)};
  sync.will_store(batch);
  for (const Event& e : batch) store_event(e);
  int released_before_put = -1;
  cache.on_put_each = [&] { released_before_put = leases_.release_eachs.load(); };
  const auto outcomes = sync.apply_stored_events(batch, kT0 + 100, nullptr);
  for (const auto& o : outcomes) {
    ASSERT_TRUE(o) << o.status().message();
    ASSERT_TRUE(o->fallback_reason.empty()) << o->fallback_reason;
  }
  EXPECT_EQ(cache.put_eachs.load(), 1);
  EXPECT_EQ(cache.entries_put_together.load(), 3u);
  EXPECT_EQ(cache.puts.load(), 0);
  EXPECT_EQ(released_before_put, 0);
  EXPECT_EQ(leases_.release_eachs.load(), 1);
  // l1's latest (its second event's) is the one kept.
  const std::string l1_warm = cache.get("score:t_sync:l1").value_or("");
  EXPECT_NE(l1_warm.find("\"events_count\":" + std::to_string(outcomes[2]->events_count)), std::string::npos)
      << l1_warm;

  const Event alone = make_event("l2", 4, kT0 + 40, EventType::kCallIn);
  store_event_on(sync, alone);
  ASSERT_TRUE(sync.apply_stored_event(alone, kT0 + 100, nullptr));
  EXPECT_EQ(cache.puts.load(), 1);
  EXPECT_EQ(cache.put_eachs.load(), 1);
}

}  // namespace
}  // namespace reai::server
