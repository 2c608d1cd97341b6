// One suite, run unchanged against every Store implementation. To add a
// backend, write a factory like SqliteFactory and list it in StoreFactories.
//
// PostgreSQL: the server of scripts/pg-test-server (the ctest fixture
// `postgres` starts it); its URL comes from $REAI_TEST_POSTGRES_URL, else from
// $REAI_BUILD_DIR/pg-test/url. Without a server the PostgreSQL cases fail.
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/migrations.h"
#include "store/postgres_migrations.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "store/wal_test_support.h"
#include "support/temp_dir.h"

namespace reai::store {
namespace {

namespace fs = std::filesystem;

// Named after this suite, so a leftover directory says whose it is.
class TempDir : public reai::testing::TempDir {
 public:
  TempDir() : reai::testing::TempDir("reai_store_test") {}
};

// Factory contract: open() returns a store over the factory's backing; a
// second open() after the first store is destroyed sees the same data when
// kPersistent.
struct SqliteFactory {
  static constexpr bool kPersistent = true;
  // Reads run beside writes (store.h); the memory store serialises calls.
  static constexpr bool kConcurrentReads = true;
  static std::string name() { return "Sqlite"; }
  Result<std::unique_ptr<Store>> open() { return open_sqlite_store(dir.path().string()); }
  TempDir dir;
};

struct MemoryFactory {
  static constexpr bool kPersistent = false;
  // Reads run beside writes (store.h); the memory store serialises calls.
  static constexpr bool kConcurrentReads = false;
  static std::string name() { return "Memory"; }
  Result<std::unique_ptr<Store>> open() { return make_memory_store(); }
};

std::string postgres_test_url() {
  if (const char* url = std::getenv("REAI_TEST_POSTGRES_URL"); url != nullptr && *url != 0) return url;
  const char* build = std::getenv("REAI_BUILD_DIR");
  if (build == nullptr) return "";
  std::ifstream in(fs::path(build) / "pg-test" / "url");
  std::string url;
  std::getline(in, url);
  return url;
}

// Runs one statement on a connection of its own (schema setup, faults).
Status postgres_admin(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    status = unavailable(PQerrorMessage(conn));
  } else {
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
      status = internal_error(PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  PQfinish(conn);
  return status;
}

// A schema of its own per test (tests run in parallel processes on one
// server), selected through the URL's search_path; dropped at the end.
struct PostgresFactory {
  static constexpr bool kPersistent = true;
  // Reads run beside writes (store.h); the memory store serialises calls.
  static constexpr bool kConcurrentReads = true;
  static std::string name() { return "Postgres"; }

  PostgresFactory() : server_url(postgres_test_url()) {
    static std::atomic<int> counter{0};
    schema = "reai_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    if (server_url.empty()) return;
    setup = postgres_admin(server_url, "DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema);
    url = server_url + (server_url.find('?') == std::string::npos ? "?" : "&") +
          "options=-csearch_path%3D" + schema + "&application_name=" + schema;
  }
  ~PostgresFactory() {
    if (setup.is_ok() && !server_url.empty()) (void)postgres_admin(server_url, "DROP SCHEMA " + schema + " CASCADE");
  }

  Result<std::unique_ptr<Store>> open() {
    if (server_url.empty()) {
      return unavailable("no PostgreSQL test server: set REAI_TEST_POSTGRES_URL or run scripts/pg-test-server start");
    }
    if (!setup.is_ok()) return setup;
    return open_postgres_store(url);
  }

  std::string server_url;
  std::string schema;
  std::string url;
  Status setup;
};

using StoreFactories = ::testing::Types<SqliteFactory, MemoryFactory, PostgresFactory>;

struct FactoryNames {
  template <typename T>
  static std::string GetName(int) { return T::name(); }
};

// "e<i>" (appended, not "e" + ...: GCC 12 -Wrestrict false positive).
std::string numbered_id(int i) {
  std::string id = "e";
  id += std::to_string(i);
  return id;
}

Contact full_contact(const std::string& tenant, const std::string& id) {
  Contact c;
  c.tenant_id = tenant;
  c.contact_id = id;
  c.created_at = 1'704'067'200;
  c.source = "zillow";
  c.lead_type = LeadType::kBuyer;
  c.assigned_agent_id = "agent-7";
  c.budget = 325'000.5;
  c.timeline_months = 3;
  c.pre_approved = false;  // a set false must not read back as NULL
  c.beds_wanted = 0;
  c.area_wanted = "North_Ames";
  c.has_phone = true;
  c.has_email = false;
  c.budget_stated_at = 1'704'070'800;
  return c;
}

Contact bare_contact(const std::string& tenant, const std::string& id) {
  Contact c;
  c.tenant_id = tenant;
  c.contact_id = id;
  c.created_at = 1'704'067'200;
  return c;
}

Event make_event(const std::string& tenant, const std::string& id, const std::string& contact,
                 UnixSeconds ts, EventType type = EventType::kPageView) {
  Event e;
  e.tenant_id = tenant;
  e.event_id = id;
  e.contact_id = contact;
  e.ts = ts;
  e.type = type;
  return e;
}

OpportunityStage make_stage(const std::string& tenant, const std::string& opportunity,
                            UnixSeconds ts, Stage stage) {
  OpportunityStage o;
  o.tenant_id = tenant;
  o.opportunity_id = opportunity;
  o.contact_id = "c-" + opportunity;
  o.agent_id = "agent-1";
  o.monetary_value = 412'000;
  o.ts = ts;
  o.stage = stage;
  return o;
}

ScoreRecord make_score(const std::string& tenant, const std::string& contact, UnixSeconds ts,
                       int score) {
  return ScoreRecord{tenant, contact, ts, score / 100.0, score, "warm", "v1", "[]"};
}

void expect_contact_eq(const Contact& a, const Contact& b) {
  EXPECT_EQ(a.tenant_id, b.tenant_id);
  EXPECT_EQ(a.contact_id, b.contact_id);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.lead_type, b.lead_type);
  EXPECT_EQ(a.assigned_agent_id, b.assigned_agent_id);
  EXPECT_EQ(a.budget, b.budget);
  EXPECT_EQ(a.timeline_months, b.timeline_months);
  EXPECT_EQ(a.pre_approved, b.pre_approved);
  EXPECT_EQ(a.beds_wanted, b.beds_wanted);
  EXPECT_EQ(a.area_wanted, b.area_wanted);
  EXPECT_EQ(a.has_phone, b.has_phone);
  EXPECT_EQ(a.has_email, b.has_email);
  EXPECT_EQ(a.budget_stated_at, b.budget_stated_at);
}

void expect_event_eq(const Event& a, const Event& b) {
  EXPECT_EQ(a.tenant_id, b.tenant_id);
  EXPECT_EQ(a.event_id, b.event_id);
  EXPECT_EQ(a.contact_id, b.contact_id);
  EXPECT_EQ(a.ts, b.ts);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.property_id, b.property_id);
  EXPECT_EQ(a.value, b.value);
}

template <typename Factory>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = open(); }

  std::unique_ptr<Store> open() {
    auto store = factory_.open();
    if (!store) {
      ADD_FAILURE() << store.status().to_string();
      return nullptr;
    }
    return std::move(*store);
  }

  // Closes and reopens over the same backing; false when it has none.
  bool reopen() {
    if (!Factory::kPersistent) return false;
    store_.reset();
    store_ = open();
    return store_ != nullptr;
  }

  std::vector<Event> all_events(const std::string& tenant) {
    std::vector<Event> out;
    EXPECT_TRUE(store_->for_each_event(tenant, [&](const Event& e) {
      out.push_back(e);
      return true;
    }).is_ok());
    return out;
  }

  std::vector<OpportunityStage> all_stages(const std::string& tenant) {
    std::vector<OpportunityStage> out;
    EXPECT_TRUE(store_->for_each_stage(tenant, [&](const OpportunityStage& o) {
      out.push_back(o);
      return true;
    }).is_ok());
    return out;
  }

  std::vector<std::string> contact_ids(const std::string& tenant) {
    std::vector<std::string> out;
    EXPECT_TRUE(store_->for_each_contact(tenant, [&](const Contact& c) {
      out.push_back(c.contact_id);
      return true;
    }).is_ok());
    return out;
  }

  std::size_t events(const std::string& tenant) { return store_->count_events(tenant).value(); }
  std::size_t contacts(const std::string& tenant) { return store_->count_contacts(tenant).value(); }

  Factory factory_;
  std::unique_ptr<Store> store_;
};

TYPED_TEST_SUITE(StoreTest, StoreFactories, FactoryNames);

TYPED_TEST(StoreTest, HealthIsOk) { EXPECT_TRUE(this->store_->health().is_ok()); }

TYPED_TEST(StoreTest, TenantUpsertKeepsCreatedAtAndReplacesFields) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.upsert_tenant({"t_b", "Beta", 100, ""}).is_ok());
  ASSERT_TRUE(s.upsert_tenant({"t_a", "Alpha", 200, "loc-1"}).is_ok());
  ASSERT_TRUE(s.upsert_tenant({"t_a", "Alpha Realty", 999, ""}).is_ok());

  auto a = s.get_tenant("t_a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->name, "Alpha Realty");
  EXPECT_EQ(a->created_at, 200);
  EXPECT_EQ(a->ghl_location_id, "");

  auto all = s.list_tenants();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].tenant_id, "t_a");
  EXPECT_EQ((*all)[1].tenant_id, "t_b");

  EXPECT_EQ(s.get_tenant("t_zzz").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.upsert_tenant({"", "nameless", 0, ""}).code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, ContactOptionalFieldsRoundTripAsValueOrNull) {
  Store& s = *this->store_;
  Contact full = full_contact("t_a", "c1");
  Contact bare = bare_contact("t_a", "c2");
  ASSERT_TRUE(s.upsert_contact(full).is_ok());
  ASSERT_TRUE(s.upsert_contact(bare).is_ok());
  expect_contact_eq(s.get_contact("t_a", "c1").value(), full);
  Contact read_bare = s.get_contact("t_a", "c2").value();
  expect_contact_eq(read_bare, bare);
  EXPECT_FALSE(read_bare.budget.has_value());
  EXPECT_FALSE(read_bare.pre_approved.has_value());
  EXPECT_EQ(read_bare.lead_type, LeadType::kUnknown);

  // Replacing a contact clears fields the new version leaves empty.
  Contact cleared = bare_contact("t_a", "c1");
  ASSERT_TRUE(s.upsert_contact(cleared).is_ok());
  expect_contact_eq(s.get_contact("t_a", "c1").value(), cleared);
  EXPECT_EQ(this->contacts("t_a"), 2u);
}

// Contact::budget_stated_at: every replacing write keeps the stored time
// while the budget stays as it was, and takes the written one when it moves.
TYPED_TEST(StoreTest, BudgetStatedAtIsKeptWhileTheBudgetStaysAndTakenWhenItMoves) {
  Store& s = *this->store_;
  const auto stated_at = [&](const std::string& id) { return s.get_contact("t_a", id).value().budget_stated_at; };
  Contact c = full_contact("t_a", "c1");
  c.budget = 300'000.0;
  c.budget_stated_at = 500;
  ASSERT_TRUE(s.upsert_contact(c).is_ok());
  EXPECT_EQ(stated_at("c1"), 500);
  // The same budget with another field and a later time: the time stays.
  c.budget_stated_at = 900;
  c.timeline_months = 6;
  ASSERT_TRUE(s.upsert_contact(c).is_ok());
  EXPECT_EQ(stated_at("c1"), 500);
  EXPECT_EQ(s.get_contact("t_a", "c1").value().timeline_months, 6);
  c.budget = 320'000.0;
  ASSERT_TRUE(s.upsert_contact(c).is_ok());
  EXPECT_EQ(stated_at("c1"), 900);
  // A budget removed is a statement too; none again keeps it.
  c.budget.reset();
  c.budget_stated_at = 1000;
  ASSERT_TRUE(s.upsert_contact(c).is_ok());
  EXPECT_EQ(stated_at("c1"), 1000);
  c.budget_stated_at = 1100;
  ASSERT_TRUE(s.upsert_contact(c).is_ok());
  EXPECT_EQ(stated_at("c1"), 1000);

  // A lead write that replaces the contact follows the same rule.
  LeadWrite write;
  write.contact = c;
  write.contact.budget = 330'000.0;
  write.contact.budget_stated_at = 1200;
  write.replace_contact = true;
  ASSERT_TRUE(s.write_lead(write).has_value());
  EXPECT_EQ(stated_at("c1"), 1200);
  write.contact.budget_stated_at = 1300;
  ASSERT_TRUE(s.write_lead(write).has_value());
  EXPECT_EQ(stated_at("c1"), 1200);

  // History: a budget imported as it is stored keeps its time; another
  // one's time is unknown (0).
  Contact imported = write.contact;
  imported.budget_stated_at = 0;
  ASSERT_TRUE(s.import_history({imported}, {}, {}).has_value());
  EXPECT_EQ(stated_at("c1"), 1200);
  imported.budget = 340'000.0;
  ASSERT_TRUE(s.import_history({imported}, {}, {}).has_value());
  EXPECT_EQ(stated_at("c1"), 0);

  // A new contact keeps the time it was written with, wherever it comes from.
  Contact added = full_contact("t_a", "c2");
  ASSERT_TRUE(s.append_batch({}, {}, std::vector<Contact>{added}).has_value());
  EXPECT_EQ(stated_at("c2"), added.budget_stated_at);  // and it survives a reopen: DataSurvivesReopen

  Contact negative = full_contact("t_a", "c3");
  negative.budget_stated_at = -1;
  EXPECT_EQ(s.upsert_contact(negative).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.get_contact("t_a", "c3").status().code(), StatusCode::kNotFound);
}

TYPED_TEST(StoreTest, UnicodeQuotesAndNulBytesRoundTrip) {
  Store& s = *this->store_;
  Contact c = full_contact("t_ü", "c-'quoted' \"double\"");
  c.source = "Zoë's \"open house\"; DROP TABLE contacts; --";
  static constexpr char kArea[] = "東京 \xF0\x9F\x8F\xA0 a\0b";  // an emoji and a NUL byte
  c.area_wanted = std::string(kArea, sizeof(kArea) - 1);
  ASSERT_TRUE(s.upsert_contact(c).is_ok());
  expect_contact_eq(s.get_contact(c.tenant_id, c.contact_id).value(), c);

  Event e = make_event("t_ü", "ev-'1'", c.contact_id, 10, EventType::kPropertySave);
  e.property_id = "ames-0042 «ñ»";
  e.value = 189'900;
  ASSERT_TRUE(s.append_event(e).value());
  auto events = s.events_for_contact(c.tenant_id, c.contact_id).value();
  ASSERT_EQ(events.size(), 1u);
  expect_event_eq(events[0], e);
}

TYPED_TEST(StoreTest, MissingRowsAreNotFoundOrEmpty) {
  Store& s = *this->store_;
  EXPECT_EQ(s.get_contact("t_a", "nobody").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(s.events_for_contact("t_a", "nobody").value().empty());
  EXPECT_TRUE(s.score_history("t_a", "nobody", 10).value().empty());
  EXPECT_TRUE(s.list_models("t_a", "leads").value().empty());
  EXPECT_EQ(this->events("t_a"), 0u);
  EXPECT_EQ(this->contacts("t_a"), 0u);
}

TYPED_TEST(StoreTest, RejectsRowsWithoutIds) {
  Store& s = *this->store_;
  EXPECT_EQ(s.upsert_contact(bare_contact("", "c1")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.upsert_contact(bare_contact("t_a", "")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.append_event(make_event("", "e1", "c1", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.append_event(make_event("t_a", "", "c1", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.append_event(make_event("t_a", "e1", "", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.append_stage(make_stage("t_a", "", 1, Stage::kSigned)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.append_score(make_score("", "c1", 1, 50)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.record_model({"", "", "v1", "p", "{}", 1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.record_model({"", "leads", "", "p", "{}", 1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->events("t_a"), 0u);
  EXPECT_EQ(this->contacts("t_a"), 0u);
}

TYPED_TEST(StoreTest, EventsAreDedupedPerTenant) {
  Store& s = *this->store_;
  Event e = make_event("t_a", "e1", "c1", 100);
  EXPECT_TRUE(s.append_event(e).value());
  Event replay = e;
  replay.ts = 999;  // same id, different content: still a replay, first wins
  EXPECT_FALSE(s.append_event(replay).value());
  EXPECT_TRUE(s.append_event(make_event("t_b", "e1", "c1", 100)).value());
  EXPECT_EQ(this->events("t_a"), 1u);
  EXPECT_EQ(this->events("t_b"), 1u);
  EXPECT_EQ(this->all_events("t_a")[0].ts, 100);
}

TYPED_TEST(StoreTest, StagesAreDedupedOnOpportunityTimeAndStage) {
  Store& s = *this->store_;
  EXPECT_TRUE(s.append_stage(make_stage("t_a", "o1", 100, Stage::kSigned)).value());
  EXPECT_FALSE(s.append_stage(make_stage("t_a", "o1", 100, Stage::kSigned)).value());
  EXPECT_TRUE(s.append_stage(make_stage("t_a", "o1", 100, Stage::kActive)).value());
  EXPECT_TRUE(s.append_stage(make_stage("t_a", "o1", 101, Stage::kSigned)).value());
  EXPECT_TRUE(s.append_stage(make_stage("t_b", "o1", 100, Stage::kSigned)).value());
  auto stages = this->all_stages("t_a");
  ASSERT_EQ(stages.size(), 3u);
  EXPECT_EQ(stages[0].stage, Stage::kSigned);
  EXPECT_EQ(stages[1].stage, Stage::kActive);
  EXPECT_EQ(stages[2].ts, 101);
  EXPECT_EQ(stages[0].contact_id, "c-o1");
  EXPECT_EQ(stages[0].agent_id, "agent-1");
  EXPECT_DOUBLE_EQ(stages[0].monetary_value, 412'000);
}

TYPED_TEST(StoreTest, TenantBNeverSeesTenantARows) {
  Store& s = *this->store_;
  for (const std::string t : {"t_a", "t_b"}) {
    Contact c = full_contact(t, "shared-id");
    c.source = "source-of-" + t;
    ASSERT_TRUE(s.upsert_contact(c).is_ok());
    Event e = make_event(t, "shared-event", "shared-id", 10);
    e.property_id = "prop-of-" + t;
    ASSERT_TRUE(s.append_event(e).value());
    ASSERT_TRUE(s.append_stage(make_stage(t, "shared-opp", 10, Stage::kSigned)).value());
    ASSERT_TRUE(s.append_score(make_score(t, "shared-id", 10, t == "t_a" ? 90 : 10)).is_ok());
    ASSERT_TRUE(s.record_model({t, "leads", "v-" + t, "/m/" + t, "{}", 10}).is_ok());
  }
  ASSERT_TRUE(s.upsert_contact(full_contact("t_a", "only-a")).is_ok());
  ASSERT_TRUE(s.append_event(make_event("t_a", "only-a-event", "only-a", 20)).value());

  EXPECT_EQ(s.get_contact("t_b", "shared-id")->source, "source-of-t_b");
  EXPECT_EQ(s.get_contact("t_b", "only-a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->contact_ids("t_b"), std::vector<std::string>{"shared-id"});
  auto events = this->all_events("t_b");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].property_id, "prop-of-t_b");
  EXPECT_TRUE(s.events_for_contact("t_b", "only-a").value().empty());
  auto stages = this->all_stages("t_b");
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].tenant_id, "t_b");
  auto scores = s.score_history("t_b", "shared-id", 10).value();
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0].score, 10);
  auto models = s.list_models("t_b", "leads").value();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].version, "v-t_b");
  EXPECT_EQ(this->events("t_b"), 1u);
  EXPECT_EQ(this->contacts("t_b"), 1u);
  EXPECT_EQ(this->events("t_a"), 2u);
  EXPECT_EQ(this->contacts("t_a"), 2u);
  // A tenant with no rows sees nothing at all.
  EXPECT_TRUE(this->all_events("t_c").empty());
  EXPECT_TRUE(this->contact_ids("t_c").empty());
  EXPECT_TRUE(s.list_models("", "leads").value().empty());
}

TYPED_TEST(StoreTest, EventsAfterAPositionComeInInsertionOrderAndOnlyTheTenants) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "late", "c1", 300)).value());
  ASSERT_TRUE(s.append_event(make_event("t_b", "other", "c1", 150)).value());
  ASSERT_TRUE(s.append_event(make_event("t_a", "early", "c1", 100)).value());
  const auto read_after = [&](std::int64_t after, std::int64_t* last) {
    std::vector<std::string> ids;
    EXPECT_TRUE(s.for_each_event_after("t_a", after, [&](std::int64_t position, const Event& e) {
      EXPECT_GT(position, after);
      EXPECT_GT(position, *last);
      *last = position;
      ids.push_back(e.event_id);
      return true;
    }).is_ok());
    return ids;
  };
  std::int64_t last = 0;
  EXPECT_EQ(read_after(0, &last), (std::vector<std::string>{"late", "early"}));  // insertion, not time, order
  const std::int64_t seen = last;
  EXPECT_TRUE(read_after(seen, &last).empty());
  EXPECT_FALSE(s.append_event(make_event("t_a", "early", "c1", 100)).value());  // a replay is no new row
  ASSERT_TRUE(s.append_event(make_event("t_a", "next", "c2", 50)).value());
  EXPECT_EQ(read_after(seen, &last), std::vector<std::string>{"next"});
  std::int64_t none = 0;
  EXPECT_TRUE(s.for_each_event_after("t_c", 0, [&](std::int64_t, const Event&) { return ++none, true; }).is_ok());
  EXPECT_EQ(none, 0);
}

TYPED_TEST(StoreTest, NewEventsComeOnceEachAndOnlyTheTenants) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "late", "c1", 300)).value());
  ASSERT_TRUE(s.append_event(make_event("t_b", "other", "c1", 150)).value());
  ASSERT_TRUE(s.append_event(make_event("t_a", "early", "c1", 100)).value());
  EventCursor cursor;
  const auto read = [&] {
    std::vector<std::string> ids;
    EXPECT_TRUE(s.read_new_events("t_a", cursor, [&](const Event& e) { ids.push_back(e.event_id); }).is_ok());
    return ids;
  };
  EXPECT_EQ(read(), (std::vector<std::string>{"late", "early"}));  // insertion, not time, order
  EXPECT_GT(cursor.position, 0);
  EXPECT_TRUE(read().empty());
  EXPECT_TRUE(read().empty());  // margins re-read (PostgreSQL) return nothing twice
  EXPECT_FALSE(s.append_event(make_event("t_a", "early", "c1", 100)).value());  // a replay is no new row
  ASSERT_TRUE(s.append_event(make_event("t_a", "next", "c2", 50)).value());
  EXPECT_EQ(read(), std::vector<std::string>{"next"});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s.append_event(make_event("t_a", numbered_id(i), "c2", 60 + i)).value());
    EXPECT_EQ(read(), std::vector<std::string>{numbered_id(i)});
  }
  EXPECT_TRUE(read().empty());
  EventCursor other;
  std::size_t none = 0;
  EXPECT_TRUE(s.read_new_events("t_c", other, [&](const Event&) { ++none; }).is_ok());
  EXPECT_EQ(none, 0u);
}

TYPED_TEST(StoreTest, EventsComeBackInTimeThenInsertionOrder) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "late", "c1", 300)).value());
  ASSERT_TRUE(s.append_event(make_event("t_a", "tie-1", "c2", 200)).value());
  ASSERT_TRUE(s.append_event(make_event("t_a", "early", "c1", 100)).value());
  ASSERT_TRUE(s.append_event(make_event("t_a", "tie-2", "c1", 200)).value());
  ASSERT_TRUE(s.append_event(make_event("t_a", "a-tie-3", "c1", 200)).value());

  std::vector<std::string> ids;
  for (const Event& e : this->all_events("t_a")) ids.push_back(e.event_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"early", "tie-1", "tie-2", "a-tie-3", "late"}));

  std::vector<std::string> c1;
  auto contact_events = s.events_for_contact("t_a", "c1");
  for (const Event& e : contact_events.value()) c1.push_back(e.event_id);
  EXPECT_EQ(c1, (std::vector<std::string>{"early", "tie-2", "a-tie-3", "late"}));
}

TYPED_TEST(StoreTest, CallbackReturningFalseStopsScanWithoutError) {
  Store& s = *this->store_;
  for (int i = 0; i < 5; ++i) {
    std::string n = std::to_string(i);
    ASSERT_TRUE(s.upsert_contact(bare_contact("t_a", "c" + n)).is_ok());
    ASSERT_TRUE(s.append_event(make_event("t_a", "e" + n, "c" + n, i)).value());
    ASSERT_TRUE(s.append_stage(make_stage("t_a", "o" + n, i, Stage::kSigned)).value());
  }
  int seen = 0;
  auto two = [&seen](const auto&) { return ++seen < 2; };
  EXPECT_TRUE(s.for_each_contact("t_a", two).is_ok());
  EXPECT_EQ(seen, 2);
  seen = 0;
  EXPECT_TRUE(s.for_each_event("t_a", two).is_ok());
  EXPECT_EQ(seen, 2);
  seen = 0;
  EXPECT_TRUE(s.for_each_stage("t_a", two).is_ok());
  EXPECT_EQ(seen, 2);
  // The store is usable after an early stop.
  EXPECT_EQ(this->all_events("t_a").size(), 5u);
  EXPECT_EQ(this->contact_ids("t_a"), (std::vector<std::string>{"c0", "c1", "c2", "c3", "c4"}));
}

TYPED_TEST(StoreTest, ImportCountsWrittenAndDuplicateRows) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "e0", "c0", 1)).value());
  ASSERT_TRUE(s.append_stage(make_stage("t_a", "o0", 1, Stage::kSigned)).value());

  std::vector<Contact> contacts = {full_contact("t_a", "c0"), full_contact("t_a", "c1")};
  std::vector<Event> events = {make_event("t_a", "e0", "c0", 1),  // already stored
                               make_event("t_a", "e1", "c1", 2),
                               make_event("t_a", "e1", "c1", 2),  // repeated in the batch
                               make_event("t_b", "e0", "c0", 1)};
  std::vector<OpportunityStage> stages = {make_stage("t_a", "o0", 1, Stage::kSigned),
                                          make_stage("t_a", "o0", 2, Stage::kActive)};
  auto counts = s.import_history(contacts, events, stages);
  ASSERT_TRUE(counts.has_value()) << counts.status().to_string();
  EXPECT_EQ(counts->contacts_written, 2u);
  EXPECT_EQ(counts->events_written, 2u);
  EXPECT_EQ(counts->events_duplicate, 2u);
  EXPECT_EQ(counts->stages_written, 1u);
  EXPECT_EQ(counts->stages_duplicate, 1u);
  EXPECT_EQ(counts->contacts_added_bare, 1u);  // t_b's c0 has events only
  EXPECT_EQ(this->events("t_a"), 2u);
  EXPECT_EQ(this->events("t_b"), 1u);
  EXPECT_EQ(this->contacts("t_a"), 2u);

  // Importing the same history again writes no event or stage.
  auto again = s.import_history(contacts, events, stages);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->events_written, 0u);
  EXPECT_EQ(again->events_duplicate, 4u);
  EXPECT_EQ(again->stages_written, 0u);
}

TYPED_TEST(StoreTest, ImportAddsABareContactForEachLeadWithEventsButNoContact) {
  Store& s = *this->store_;
  Contact kept = bare_contact("t_a", "kept");
  kept.source = "original";
  kept.created_at = 3;
  ASSERT_TRUE(s.upsert_contact(kept).is_ok());

  std::vector<Contact> contacts = {full_contact("t_a", "c1")};
  std::vector<Event> events = {make_event("t_a", "e1", "c1", 5), make_event("t_a", "e2", "orphan", 30),
                               make_event("t_a", "e3", "orphan", 20), make_event("t_a", "e4", "kept", 7),
                               make_event("t_b", "e5", "orphan", 9)};
  auto counts = s.import_history(contacts, events, {});
  ASSERT_TRUE(counts.has_value()) << counts.status().to_string();
  EXPECT_EQ(counts->contacts_written, 1u);
  EXPECT_EQ(counts->contacts_added_bare, 2u);
  EXPECT_EQ(this->contact_ids("t_a"), (std::vector<std::string>{"c1", "kept", "orphan"}));
  EXPECT_EQ(this->contact_ids("t_b"), (std::vector<std::string>{"orphan"}));
  // Created at the lead's first event, not at the first one in file order.
  EXPECT_EQ(s.get_contact("t_a", "orphan")->created_at, 20);
  EXPECT_EQ(s.get_contact("t_a", "orphan")->source, "");
  EXPECT_EQ(s.get_contact("t_b", "orphan")->created_at, 9);
  // A stored contact is not replaced by a bare one.
  EXPECT_EQ(s.get_contact("t_a", "kept")->source, "original");
  EXPECT_EQ(s.get_contact("t_a", "kept")->created_at, 3);

  auto again = s.import_history(contacts, events, {});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->contacts_added_bare, 0u);
  EXPECT_EQ(this->contacts("t_a"), 3u);
}

// A history whose row `bad_event` (or its last stage) breaks a constraint,
// after many valid rows have already been handed to the store: the store must
// fail and leave every earlier row of the batch unwritten.
struct PoisonedHistory {
  std::vector<Contact> contacts;
  std::vector<Event> events;
  std::vector<OpportunityStage> stages;
};

PoisonedHistory poisoned_history(bool poison_event, bool poison_stage) {
  PoisonedHistory h;
  for (int i = 0; i < 50; ++i) h.contacts.push_back(full_contact("t_a", "new-c" + std::to_string(i)));
  Contact changed = bare_contact("t_a", "existing");
  changed.source = "overwritten";
  h.contacts.push_back(changed);
  for (int i = 0; i < 600; ++i) {
    h.events.push_back(make_event("t_a", "new-e" + std::to_string(i), "new-c1", 1000 + i));
  }
  h.events.push_back(make_event("t_a", "new-e-orphan", "no-contact-row", 2000));
  if (poison_event) h.events[400].contact_id = "";
  for (int i = 0; i < 20; ++i) {
    h.stages.push_back(make_stage("t_a", "new-o" + std::to_string(i), i, Stage::kSigned));
  }
  if (poison_stage) h.stages.back().opportunity_id = "";
  return h;
}

TYPED_TEST(StoreTest, ImportIsAllOrNothing) {
  Store& s = *this->store_;
  Contact existing = bare_contact("t_a", "existing");
  existing.source = "original";
  ASSERT_TRUE(s.upsert_contact(existing).is_ok());
  ASSERT_TRUE(s.append_event(make_event("t_a", "old-e", "existing", 1)).value());

  for (auto [poison_event, poison_stage] : {std::pair{true, false}, std::pair{false, true}}) {
    PoisonedHistory h = poisoned_history(poison_event, poison_stage);
    auto result = s.import_history(h.contacts, h.events, h.stages);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().to_string();

    EXPECT_EQ(this->contacts("t_a"), 1u);
    EXPECT_EQ(s.get_contact("t_a", "existing")->source, "original");
    EXPECT_EQ(this->events("t_a"), 1u);
    EXPECT_TRUE(this->all_stages("t_a").empty());
  }
  // The store still takes writes after a rolled-back import.
  PoisonedHistory clean = poisoned_history(false, false);
  auto counts = s.import_history(clean.contacts, clean.events, clean.stages);
  ASSERT_TRUE(counts.has_value()) << counts.status().to_string();
  EXPECT_EQ(counts->events_written, 601u);
  EXPECT_EQ(counts->contacts_added_bare, 1u);
  EXPECT_EQ(this->events("t_a"), 602u);
  EXPECT_EQ(s.get_contact("t_a", "existing")->source, "overwritten");
}

TYPED_TEST(StoreTest, ScoreHistoryIsNewestFirstAndLimited) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_score(make_score("t_a", "c1", 100, 10)).is_ok());
  ASSERT_TRUE(s.append_score(make_score("t_a", "c1", 300, 30)).is_ok());
  ASSERT_TRUE(s.append_score(make_score("t_a", "c1", 200, 20)).is_ok());
  ASSERT_TRUE(s.append_score(make_score("t_a", "c1", 300, 31)).is_ok());  // same ts, later
  ASSERT_TRUE(s.append_score(make_score("t_a", "c2", 400, 99)).is_ok());

  auto all = s.score_history("t_a", "c1", 100).value();
  std::vector<int> scores;
  for (const ScoreRecord& r : all) scores.push_back(r.score);
  EXPECT_EQ(scores, (std::vector<int>{31, 30, 20, 10}));
  EXPECT_EQ(all[0].band, "warm");
  EXPECT_EQ(all[0].model_version, "v1");
  EXPECT_EQ(all[0].reasons_json, "[]");
  EXPECT_DOUBLE_EQ(all[0].probability, 0.31);

  auto two = s.score_history("t_a", "c1", 2).value();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].score, 30);
  EXPECT_TRUE(s.score_history("t_a", "c1", 0).value().empty());
}

// Two instances score one lead within one second; their writers commit the
// rows in the opposite order (the later score, 7 events folded, first). The
// newest row is still the later score: the lead's order comes before time
// and insertion, which order rows of one lead_order (contact changes).
TYPED_TEST(StoreTest, ScoreHistoryFollowsTheLeadsOrderBeforeTimeAndInsertion) {
  Store& s = *this->store_;
  ScoreRecord later = make_score("t_a", "c1", 500, 40);
  later.lead_order = 7;
  ScoreRecord earlier = make_score("t_a", "c1", 500, 30);
  earlier.lead_order = 6;
  ASSERT_TRUE(s.append_score(later).is_ok());
  ASSERT_TRUE(s.append_score(earlier).is_ok());
  auto newest = s.score_history("t_a", "c1", 1).value();
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(newest[0].score, 40);
  EXPECT_EQ(newest[0].lead_order, 7);
  // The batch paths (the event writer's) keep it too; within lead_order 7,
  // time then insertion.
  ScoreRecord contact_change = make_score("t_a", "c1", 501, 41);
  contact_change.lead_order = 7;
  ScoreRecord stale = make_score("t_a", "c1", 502, 29);
  stale.lead_order = 5;
  const std::vector<ScoreRecord> rows = {contact_change, stale};
  ASSERT_TRUE(s.append_scores(rows).is_ok());
  ScoreRecord same_instant = make_score("t_a", "c1", 501, 42);
  same_instant.lead_order = 7;
  ASSERT_TRUE(s.append_batch({}, std::span<const ScoreRecord>(&same_instant, 1), {}).has_value());
  std::vector<int> scores;
  std::vector<std::int64_t> orders;
  const std::vector<ScoreRecord> history = s.score_history("t_a", "c1", 10).value();
  for (const ScoreRecord& r : history) {
    scores.push_back(r.score);
    orders.push_back(r.lead_order);
  }
  EXPECT_EQ(scores, (std::vector<int>{42, 41, 40, 30, 29}));
  EXPECT_EQ(orders, (std::vector<std::int64_t>{7, 7, 7, 6, 5}));
  ScoreRecord bad = make_score("t_a", "c1", 503, 50);
  bad.lead_order = -1;
  EXPECT_EQ(s.append_score(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.append_scores(std::vector<ScoreRecord>{bad}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.score_history("t_a", "c1", 10).value().size(), 5u);
}

TYPED_TEST(StoreTest, ContactsWithoutScoresAreTheTenantsUnscoredContacts) {
  Store& s = *this->store_;
  for (const char* id : {"c3", "c1", "c2"}) ASSERT_TRUE(s.upsert_contact(bare_contact("t_a", id)).is_ok());
  ASSERT_TRUE(s.upsert_contact(bare_contact("t_b", "c9")).is_ok());
  EXPECT_EQ(s.contacts_without_scores("t_a").value(), (std::vector<std::string>{"c1", "c2", "c3"}));
  ScoreRecord row;
  row.tenant_id = "t_a";
  row.contact_id = "c2";
  row.ts = 10;
  row.band = "cold";
  row.model_version = "m";
  ASSERT_TRUE(s.append_scores(std::span<const ScoreRecord>(&row, 1)).is_ok());
  EXPECT_EQ(s.contacts_without_scores("t_a").value(), (std::vector<std::string>{"c1", "c3"}));
  EXPECT_EQ(s.contacts_without_scores("t_b").value(), (std::vector<std::string>{"c9"}));
  EXPECT_TRUE(s.contacts_without_scores("t_none").value().empty());
}

// Instances starting together both find a lead unscored and both write its
// first row: one row is stored (the first committed), and a lead scored
// meanwhile gets none. The second writer is a store of its own over the same
// backing (the memory store: the same store, from another thread).
TYPED_TEST(StoreTest, FirstScoresOfTwoWritersAreOneRowPerLead) {
  Store& s = *this->store_;
  std::unique_ptr<Store> second = TypeParam::kPersistent ? this->open() : nullptr;
  Store& other = second ? *second : s;
  EXPECT_TRUE(s.append_first_scores({}).value().empty());
  // One after the other: c0 was scored by the other writer meanwhile; c1
  // given twice gets its first record.
  for (const char* id : {"c0", "c1"}) ASSERT_TRUE(s.upsert_contact(bare_contact("t_a", id)).is_ok());
  ASSERT_TRUE(other.append_score(make_score("t_a", "c0", 90, 5)).is_ok());
  const std::vector<ScoreRecord> firsts = {make_score("t_a", "c0", 100, 10), make_score("t_a", "c1", 100, 11),
                                           make_score("t_a", "c1", 101, 12)};
  EXPECT_EQ(s.append_first_scores(firsts).value(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(other.append_first_scores(firsts).value(), (std::vector<bool>{false, false, false}));
  ASSERT_EQ(s.score_history("t_a", "c0", 10).value().size(), 1u);
  EXPECT_EQ(s.score_history("t_a", "c0", 10).value()[0].score, 5);
  ASSERT_EQ(s.score_history("t_a", "c1", 10).value().size(), 1u);
  EXPECT_EQ(s.score_history("t_a", "c1", 10).value()[0].score, 11);
  ScoreRecord bad = make_score("t_a", "c2", 100, 10);
  bad.lead_order = -1;
  EXPECT_EQ(s.append_first_scores(std::vector<ScoreRecord>{make_score("t_a", "c3", 100, 10), bad}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.score_history("t_a", "c3", 10).value().empty());

  // At once: each lead one row, written by one of the two.
  constexpr int kLeads = 100;
  std::vector<ScoreRecord> mine, theirs;
  for (int i = 0; i < kLeads; ++i) {
    std::string id = "r";
    id += std::to_string(i);
    ASSERT_TRUE(s.upsert_contact(bare_contact("t_b", id)).is_ok());
    mine.push_back(make_score("t_b", id, 100, 10));
    theirs.push_back(make_score("t_b", id, 100, 20));
  }
  std::atomic<int> ready{0};
  std::vector<bool> mine_written, theirs_written;
  auto write_at_once = [&ready](Store& store, const std::vector<ScoreRecord>& rows, std::vector<bool>* out) {
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    auto written = store.append_first_scores(rows);
    ASSERT_TRUE(written.has_value()) << written.status().to_string();
    *out = std::move(*written);
  };
  std::thread a(write_at_once, std::ref(s), std::cref(mine), &mine_written);
  std::thread b(write_at_once, std::ref(other), std::cref(theirs), &theirs_written);
  a.join();
  b.join();
  ASSERT_EQ(mine_written.size(), std::size_t{kLeads});
  ASSERT_EQ(theirs_written.size(), std::size_t{kLeads});
  for (int i = 0; i < kLeads; ++i) {
    EXPECT_NE(mine_written[i], theirs_written[i]) << i;
    const auto rows = s.score_history("t_b", mine[i].contact_id, 10).value();
    ASSERT_EQ(rows.size(), 1u) << mine[i].contact_id;
    EXPECT_EQ(rows[0].score, mine_written[i] ? 10 : 20);
  }
  EXPECT_TRUE(s.contacts_without_scores("t_b").value().empty());
}

TYPED_TEST(StoreTest, ModelRegistryListsNewestFirstPerTenantAndKind) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.record_model({"", "leads", "v1", "/m/v1", R"({"auc":0.9})", 100}).is_ok());
  ASSERT_TRUE(s.record_model({"", "leads", "v2", "/m/v2", "{}", 200}).is_ok());
  ASSERT_TRUE(s.record_model({"", "value", "v1", "/m/value", "{}", 300}).is_ok());
  ASSERT_TRUE(s.record_model({"t_a", "leads", "t1", "/m/t1", "{}", 50}).is_ok());

  auto shared = s.list_models("", "leads").value();
  ASSERT_EQ(shared.size(), 2u);
  EXPECT_EQ(shared[0].version, "v2");
  EXPECT_EQ(shared[1].version, "v1");
  EXPECT_EQ(shared[1].metrics_json, R"({"auc":0.9})");
  EXPECT_EQ(shared[1].path, "/m/v1");
  EXPECT_EQ(shared[1].tenant_id, "");
  EXPECT_EQ(s.list_models("", "").value().size(), 3u);  // empty kind: every kind
  EXPECT_EQ(s.list_models("t_a", "leads").value().size(), 1u);

  // Recording a known version again updates it in place.
  ASSERT_TRUE(s.record_model({"", "leads", "v1", "/m/v1-retrained", "{}", 500}).is_ok());
  shared = s.list_models("", "leads").value();
  ASSERT_EQ(shared.size(), 2u);
  EXPECT_EQ(shared[0].version, "v1");
  EXPECT_EQ(shared[0].path, "/m/v1-retrained");
}

TYPED_TEST(StoreTest, AppendEventsAnswersEachEventInOrder) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "old", "c1", 5)).value());
  std::vector<Event> batch = {
      make_event("t_a", "new-1", "c1", 10),
      make_event("t_a", "old", "c1", 11),     // already stored
      make_event("t_a", "new-2", "c2", 12),
      make_event("t_a", "new-1", "c1", 13),   // earlier in this batch
      make_event("t_b", "new-1", "c1", 14),   // same id, other tenant
  };
  auto written = s.append_events(batch);
  ASSERT_TRUE(written.has_value()) << written.status().to_string();
  EXPECT_EQ(*written, (std::vector<bool>{true, false, true, false, true}));
  EXPECT_EQ(this->events("t_a"), 3u);
  EXPECT_EQ(this->events("t_b"), 1u);
  auto stored = this->all_events("t_a");
  ASSERT_EQ(stored.size(), 3u);
  expect_event_eq(stored[1], batch[0]);  // the first of the duplicates wins
  expect_event_eq(stored[2], batch[2]);
}

TYPED_TEST(StoreTest, AppendEventsOfAnEmptyBatchWritesNothing) {
  auto written = this->store_->append_events({});
  ASSERT_TRUE(written.has_value());
  EXPECT_TRUE(written->empty());
  EXPECT_EQ(this->events("t_a"), 0u);
}

TYPED_TEST(StoreTest, AppendEventsWithAnInvalidEventWritesNone) {
  Store& s = *this->store_;
  std::vector<Event> batch = {make_event("t_a", "e1", "c1", 1), make_event("t_a", "e2", "", 2),
                              make_event("t_a", "e3", "c3", 3)};
  EXPECT_EQ(s.append_events(batch).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->events("t_a"), 0u);
  // Nothing half-written: the valid ones still append afterwards.
  batch.erase(batch.begin() + 1);
  EXPECT_EQ(s.append_events(batch).value(), (std::vector<bool>{true, true}));
}

TYPED_TEST(StoreTest, AppendScoresWritesAllRowsOrNone) {
  Store& s = *this->store_;
  std::vector<ScoreRecord> rows = {make_score("t_a", "c1", 100, 10), make_score("t_a", "c1", 200, 20),
                                   make_score("t_a", "c2", 150, 90)};
  ASSERT_TRUE(s.append_scores(rows).is_ok());
  auto c1 = s.score_history("t_a", "c1", 10).value();
  ASSERT_EQ(c1.size(), 2u);
  EXPECT_EQ(c1[0].score, 20);
  EXPECT_EQ(c1[1].score, 10);
  EXPECT_EQ(s.score_history("t_a", "c2", 10).value().size(), 1u);

  std::vector<ScoreRecord> bad = {make_score("t_a", "c3", 1, 1), make_score("", "c3", 2, 2)};
  EXPECT_EQ(s.append_scores(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.score_history("t_a", "c3", 10).value().empty());
  EXPECT_TRUE(s.append_scores({}).is_ok());
}

TYPED_TEST(StoreTest, AppendBatchWritesEventsAndScoreRowsTogether) {
  Store& s = *this->store_;
  std::vector<Event> events = {make_event("t_a", "e1", "c1", 10), make_event("t_a", "e1", "c1", 11)};
  std::vector<ScoreRecord> rows = {make_score("t_a", "c1", 10, 42), make_score("t_b", "c9", 12, 7)};
  auto written = s.append_batch(events, rows, {});
  ASSERT_TRUE(written.has_value()) << written.status().to_string();
  EXPECT_EQ(*written, (std::vector<bool>{true, false}));
  EXPECT_EQ(this->events("t_a"), 1u);
  EXPECT_EQ(s.score_history("t_a", "c1", 10).value().at(0).score, 42);
  EXPECT_EQ(s.score_history("t_b", "c9", 10).value().at(0).score, 7);

  // One invalid score row refuses the events too: nothing half-written.
  std::vector<Event> more = {make_event("t_a", "e2", "c1", 20)};
  std::vector<ScoreRecord> bad = {make_score("t_a", "", 20, 50)};
  EXPECT_EQ(s.append_batch(more, bad, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->events("t_a"), 1u);
  EXPECT_EQ(s.score_history("t_a", "c1", 10).value().size(), 1u);
  // Rows alone are fine.
  ASSERT_TRUE(s.append_batch({}, rows, {}).has_value());
  EXPECT_EQ(s.score_history("t_a", "c1", 10).value().size(), 2u);
}

TYPED_TEST(StoreTest, AppendBatchInsertsNewContactsOnlyWhenAbsent) {
  Store& s = *this->store_;
  Contact stored = full_contact("t_a", "known");
  stored.created_at = 5;
  ASSERT_TRUE(s.upsert_contact(stored).is_ok());
  Contact fresh;
  fresh.tenant_id = "t_a";
  fresh.contact_id = "fresh";
  fresh.created_at = 30;
  Contact again = fresh;
  again.created_at = 31;  // the same contact twice in one batch: the first wins
  Contact known;
  known.tenant_id = "t_a";
  known.contact_id = "known";
  known.created_at = 40;  // already stored: left as it is
  std::vector<Contact> contacts = {fresh, again, known};
  std::vector<Event> events = {make_event("t_a", "n1", "fresh", 30), make_event("t_a", "n2", "known", 40)};
  std::vector<bool> created;
  auto written = s.append_batch(events, {}, contacts, &created);
  ASSERT_TRUE(written.has_value()) << written.status().to_string();
  EXPECT_EQ(*written, (std::vector<bool>{true, true}));
  // Created: only the first "fresh"; its repeat and the stored one were not.
  EXPECT_EQ(created, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(s.get_contact("t_a", "fresh").value().created_at, 30);
  EXPECT_EQ(s.get_contact("t_a", "known").value().source, "zillow");
  EXPECT_EQ(s.get_contact("t_a", "known").value().created_at, 5);
  EXPECT_EQ(s.count_contacts("t_a").value(), 2u);
  // Scoped by tenant: the same id in another tenant is another contact.
  Contact other = fresh;
  other.tenant_id = "t_b";
  ASSERT_TRUE(s.append_batch({}, {}, std::vector<Contact>{other, fresh}, &created).has_value());
  EXPECT_EQ(created, (std::vector<bool>{true, false}));
  EXPECT_EQ(s.count_contacts("t_b").value(), 1u);
  EXPECT_EQ(s.count_contacts("t_a").value(), 2u);

  // All or nothing: an invalid event keeps the batch's contacts out too.
  Contact lost = fresh;
  lost.contact_id = "lost";
  std::vector<Event> bad = {make_event("t_a", "", "lost", 50)};
  EXPECT_EQ(s.append_batch(bad, {}, std::vector<Contact>{lost}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.get_contact("t_a", "lost").status().code(), StatusCode::kNotFound);
  Contact invalid = fresh;
  invalid.contact_id = "";
  std::vector<Event> fine = {make_event("t_a", "n3", "fresh", 60)};
  EXPECT_EQ(s.append_batch(fine, {}, std::vector<Contact>{invalid}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->events("t_a"), 2u);
}

// A refused event writes nothing, its lead's contact included: an event id
// stored for another lead must not leave a bare contact for the new lead id
// (the server answers 409 for it).
TYPED_TEST(StoreTest, AppendBatchLeavesOutTheContactOfALeadWhoseEventsWereAllRefused) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_batch(std::vector<Event>{make_event("t_a", "taken", "owner", 10)}, {},
                             std::vector<Contact>{bare_contact("t_a", "owner")})
                  .has_value());
  std::vector<Event> events = {make_event("t_a", "taken", "thief", 20), make_event("t_a", "taken", "half", 21),
                               make_event("t_a", "fresh", "half", 22), make_event("t_a", "fresh", "late", 23)};
  std::vector<Contact> contacts = {bare_contact("t_a", "thief"), bare_contact("t_a", "half"),
                                   bare_contact("t_a", "late"), bare_contact("t_a", "alone")};
  std::vector<bool> created;
  auto written = s.append_batch(events, {}, contacts, &created);
  ASSERT_TRUE(written.has_value()) << written.status().to_string();
  EXPECT_EQ(*written, (std::vector<bool>{false, false, true, false}));
  // "thief" and "late" had only refused events; "half" one written; "alone"
  // (no event names it) is a contact on its own.
  EXPECT_EQ(created, (std::vector<bool>{false, true, false, true}));
  EXPECT_EQ(s.get_contact("t_a", "thief").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.get_contact("t_a", "late").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(s.get_contact("t_a", "half").has_value());
  EXPECT_TRUE(s.get_contact("t_a", "alone").has_value());
  EXPECT_EQ(this->contacts("t_a"), 3u);
  EXPECT_EQ(this->events("t_a"), 2u);
}

// An append answers false for an id already stored, whoever's it is; the
// server tells a replay from another lead's id by the lead the store names.
TYPED_TEST(StoreTest, StoredEventContactsNamesTheLeadEachIdIsStoredUnder) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "e1", "owner", 10)).value());
  ASSERT_TRUE(s.append_event(make_event("t_b", "e1", "other-tenant", 10)).value());
  // In one batch: the second "e2" (another lead) is refused by the first.
  auto written = s.append_events(std::vector<Event>{make_event("t_a", "e2", "first", 20),
                                                    make_event("t_a", "e2", "second", 21),
                                                    make_event("t_a", "e1", "thief", 22)});
  ASSERT_TRUE(written.has_value()) << written.status().to_string();
  EXPECT_EQ(*written, (std::vector<bool>{true, false, false}));
  std::vector<Event> asked = {make_event("t_a", "e1", "thief", 30), make_event("t_a", "e2", "second", 31),
                              make_event("t_a", "missing", "x", 32), make_event("t_b", "e1", "owner", 33),
                              make_event("t_c", "e1", "owner", 34), make_event("t_a", "e1", "owner", 35)};
  auto owners = s.stored_event_contacts(asked);
  ASSERT_TRUE(owners.has_value()) << owners.status().to_string();
  EXPECT_EQ(*owners, (std::vector<std::string>{"owner", "first", "", "other-tenant", "", "owner"}));
  auto none = s.stored_event_contacts({});
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

std::size_t stages_of(Store& s, const std::string& tenant) {
  std::size_t n = 0;
  EXPECT_TRUE(s.for_each_stage(tenant, [&](const OpportunityStage&) { return ++n, true; }).is_ok());
  return n;
}

LeadWrite lead_write(const Contact& contact, bool replace, std::vector<Event> events,
                     std::vector<OpportunityStage> stages = {}) {
  LeadWrite w;
  w.contact = contact;
  w.replace_contact = replace;
  w.events = std::move(events);
  w.stages = std::move(stages);
  return w;
}

// A lead's contact, events and stages go in one commit: a new lead is
// created with its fields, a known one's fields replaced (or kept when the
// write only needs the contact to exist), its own replayed ids answered false.
TYPED_TEST(StoreTest, WriteLeadStoresContactEventsAndStagesTogether) {
  Store& s = *this->store_;
  Contact lead = full_contact("t_a", "lead");
  OpportunityStage stage = make_stage("t_a", "o1", 40, Stage::kOffer);
  stage.contact_id = "lead";
  auto first = s.write_lead(lead_write(lead, true, {make_event("t_a", "e1", "lead", 10),
                                                    make_event("t_a", "e2", "lead", 20)}, {stage}));
  ASSERT_TRUE(first.has_value()) << first.status().to_string();
  EXPECT_TRUE(first->contact_created);
  EXPECT_EQ(first->events, (std::vector<bool>{true, true}));
  EXPECT_EQ(first->stages, (std::vector<bool>{true}));
  expect_contact_eq(s.get_contact("t_a", "lead").value(), lead);
  EXPECT_EQ(this->contacts("t_a"), 1u);
  EXPECT_EQ(this->events("t_a"), 2u);
  EXPECT_EQ(stages_of(s, "t_a"), 1u);

  lead.budget = 410'000;
  lead.source = "referral";
  auto again = s.write_lead(lead_write(lead, true, {make_event("t_a", "e2", "lead", 20),
                                                    make_event("t_a", "e3", "lead", 30)}, {stage}));
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  EXPECT_FALSE(again->contact_created);
  EXPECT_EQ(again->events, (std::vector<bool>{false, true}));
  EXPECT_EQ(again->stages, (std::vector<bool>{false}));
  expect_contact_eq(s.get_contact("t_a", "lead").value(), lead);
  EXPECT_EQ(this->events("t_a"), 3u);
  EXPECT_EQ(stages_of(s, "t_a"), 1u);

  // Without replace_contact a stored contact stays as it is; an absent one
  // is inserted.
  auto kept = s.write_lead(lead_write(bare_contact("t_a", "lead"), false, {make_event("t_a", "e4", "lead", 50)}));
  ASSERT_TRUE(kept.has_value()) << kept.status().to_string();
  EXPECT_FALSE(kept->contact_created);
  expect_contact_eq(s.get_contact("t_a", "lead").value(), lead);
  auto bare = s.write_lead(lead_write(bare_contact("t_a", "new"), false, {}));
  ASSERT_TRUE(bare.has_value()) << bare.status().to_string();
  EXPECT_TRUE(bare->contact_created);
  EXPECT_TRUE(bare->events.empty());
  expect_contact_eq(s.get_contact("t_a", "new").value(), bare_contact("t_a", "new"));
  EXPECT_EQ(this->contacts("t_a"), 2u);
  EXPECT_EQ(this->events("t_a"), 4u);
}

// One event id stored for another lead refuses the whole write, wherever it
// comes among the events: no contact, no event, no stage, no field changed.
TYPED_TEST(StoreTest, WriteLeadWithAnotherLeadsEventIdWritesNothing) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.append_event(make_event("t_a", "taken", "owner", 5)).value());
  ASSERT_TRUE(s.write_lead(lead_write(bare_contact("t_a", "owner"), false, {})).has_value());
  Contact known = full_contact("t_a", "known");
  ASSERT_TRUE(s.upsert_contact(known).is_ok());
  OpportunityStage stage = make_stage("t_a", "o1", 40, Stage::kOffer);
  for (const std::string lead : {"fresh", "known"}) {
    Contact changed = full_contact("t_a", lead);
    changed.budget = 999'000;
    stage.contact_id = lead;
    auto refused = s.write_lead(lead_write(changed, true, {make_event("t_a", "new-1", lead, 10),
                                                           make_event("t_a", "taken", lead, 11),
                                                           make_event("t_a", "new-2", lead, 12)}, {stage}));
    ASSERT_FALSE(refused.has_value()) << lead;
    EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists) << lead;
    EXPECT_EQ(refused.status().message(),
              "event_id 'taken' is stored for another lead (event ids are unique within a tenant)");
  }
  EXPECT_EQ(s.get_contact("t_a", "fresh").status().code(), StatusCode::kNotFound);
  expect_contact_eq(s.get_contact("t_a", "known").value(), known);
  EXPECT_EQ(this->contacts("t_a"), 2u);
  EXPECT_EQ(this->events("t_a"), 1u);
  EXPECT_EQ(stages_of(s, "t_a"), 0u);
  EXPECT_EQ(s.stored_event_contacts(std::vector<Event>{make_event("t_a", "new-1", "fresh", 10)}).value(),
            (std::vector<std::string>{""}));
}

// Two leads' writes racing for one event id: exactly one is stored, the
// other stores nothing at all (its contact and its own event included),
// whichever commits first. The check is inside the commit, so no interleaving
// lets both through or leaves half of the loser.
TYPED_TEST(StoreTest, WriteLeadRacingForOneEventIdStoresOneWholeWrite) {
  Store& s = *this->store_;
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    // Appended, not "x" + ...: the GCC 12 -Wrestrict false positive (numbered_id).
    auto named = [&](const char* prefix) {
      std::string id = prefix;
      id += std::to_string(round);
      return id;
    };
    const std::string shared = named("shared-");
    std::vector<Result<LeadWritten>> results;
    results.reserve(2);
    const std::vector<std::string> leads = {named("a"), named("b")};
    for (int k = 0; k < 2; ++k) results.emplace_back(unavailable("not run"));
    std::atomic<int> ready{0};
    std::vector<std::thread> writers;
    for (int k = 0; k < 2; ++k) {
      writers.emplace_back([&, k] {
        const std::string& lead = leads[static_cast<std::size_t>(k)];
        std::string own = "own-";
        own += lead;
        LeadWrite w = lead_write(full_contact("t_a", lead), true,
                                 {make_event("t_a", own, lead, 10), make_event("t_a", shared, lead, 11)});
        ready.fetch_add(1);
        while (ready.load() < 2) std::this_thread::yield();
        results[static_cast<std::size_t>(k)] = s.write_lead(w);
      });
    }
    for (auto& t : writers) t.join();
    int stored = 0;
    for (int k = 0; k < 2; ++k) {
      const auto& r = results[static_cast<std::size_t>(k)];
      const std::string& lead = leads[static_cast<std::size_t>(k)];
      if (r.has_value()) {
        ++stored;
        EXPECT_EQ(r->events, (std::vector<bool>{true, true})) << lead;
        EXPECT_TRUE(s.get_contact("t_a", lead).has_value()) << lead;
      } else {
        EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists) << lead << " " << r.status().to_string();
        EXPECT_EQ(s.get_contact("t_a", lead).status().code(), StatusCode::kNotFound) << lead;
        EXPECT_TRUE(s.events_for_contact("t_a", lead).value().empty()) << lead;
      }
    }
    EXPECT_EQ(stored, 1) << "round " << round;
  }
  EXPECT_EQ(this->contacts("t_a"), std::size_t(kRounds));
  EXPECT_EQ(this->events("t_a"), std::size_t(2 * kRounds));
}

// Rows of another lead or tenant, or invalid rows, are refused before
// anything is written.
TYPED_TEST(StoreTest, WriteLeadRefusesRowsNotOfItsLead) {
  Store& s = *this->store_;
  const Contact lead = bare_contact("t_a", "lead");
  OpportunityStage stage = make_stage("t_a", "o1", 40, Stage::kOffer);  // of "c-o1"
  const std::vector<LeadWrite> bad = {
      lead_write(lead, true, {make_event("t_a", "e1", "lead", 10), make_event("t_a", "e2", "other", 11)}),
      lead_write(lead, true, {make_event("t_b", "e1", "lead", 10)}),
      lead_write(lead, true, {make_event("t_a", "", "lead", 10)}),
      lead_write(lead, true, {make_event("t_a", "e1", "lead", 10)}, {stage}),
      lead_write(bare_contact("t_a", ""), true, {}),
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto r = s.write_lead(bad[i]);
    ASSERT_FALSE(r.has_value()) << i;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << i << " " << r.status().to_string();
  }
  EXPECT_EQ(this->contacts("t_a"), 0u);
  EXPECT_EQ(this->events("t_a"), 0u);
  EXPECT_EQ(this->events("t_b"), 0u);
  EXPECT_EQ(stages_of(s, "t_a"), 0u);
}

TYPED_TEST(StoreTest, AppendBatchNewContactsKeepEveryFieldAsValueOrNull) {
  // A batch's new contacts go in together (one statement on PostgreSQL):
  // set values (a false, a zero), NULLs and odd bytes come back as they went
  // in, whichever position each contact has in the batch.
  Store& s = *this->store_;
  Contact full = full_contact("t_a", "c-full");
  Contact bare = bare_contact("t_a", "c-bare");
  Contact mixed = full_contact("t_a", "c-'mixed'");
  mixed.budget.reset();
  mixed.timeline_months.reset();
  mixed.pre_approved = true;
  mixed.beds_wanted = 4;
  mixed.has_phone.reset();
  static constexpr char kArea[] = "a\0b \xF0\x9F\x8F\xA0";
  mixed.area_wanted = std::string(kArea, sizeof(kArea) - 1);
  std::vector<Contact> contacts = {bare, full, mixed};
  std::vector<Event> events = {make_event("t_a", "f1", "c-full", 10), make_event("t_a", "f2", "c-bare", 11),
                               make_event("t_a", "f3", "c-'mixed'", 12)};
  auto written = s.append_batch(events, {}, contacts);
  ASSERT_TRUE(written.has_value()) << written.status().to_string();
  EXPECT_EQ(*written, (std::vector<bool>{true, true, true}));
  for (const Contact& c : contacts) expect_contact_eq(s.get_contact("t_a", c.contact_id).value(), c);
  Contact read_bare = s.get_contact("t_a", "c-bare").value();
  EXPECT_FALSE(read_bare.budget.has_value());
  EXPECT_FALSE(read_bare.pre_approved.has_value());
  EXPECT_EQ(s.get_contact("t_a", "c-full").value().pre_approved, std::optional<bool>(false));
  EXPECT_EQ(s.get_contact("t_a", "c-'mixed'").value().has_phone, std::nullopt);
  EXPECT_EQ(this->contacts("t_a"), 3u);
}

TYPED_TEST(StoreTest, ConcurrentBatchesAndSingleAppendsAreAllStored) {
  Store& s = *this->store_;
  constexpr int kThreads = 4, kBatches = 50, kPerBatch = 8;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&s, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<Event> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          std::string id = "b";
          id += std::to_string((t * kBatches + b) * kPerBatch + i);
          batch.push_back(make_event("t_a", id, "c1", i));
        }
        auto written = s.append_events(batch);
        ASSERT_TRUE(written.has_value()) << written.status().to_string();
        EXPECT_EQ(*written, std::vector<bool>(kPerBatch, true));
        // The same ids one by one: all replays now.
        EXPECT_FALSE(s.append_event(batch.back()).value());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(this->events("t_a"), std::size_t{kThreads * kBatches * kPerBatch});
}

TYPED_TEST(StoreTest, ConcurrentAppendsAreAllStored) {
  Store& s = *this->store_;
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&s, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every event twice: exactly one of each pair may be written.
        std::string id = "e";
        id += std::to_string(i * kThreads + t);  // not "e" + ...: GCC 12 -Wrestrict false positive
        Event e = make_event("t_a", id, "c1", i);
        EXPECT_TRUE(s.append_event(e).has_value());
        EXPECT_FALSE(s.append_event(e).value());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(this->events("t_a"), std::size_t{kThreads * kPerThread});
}

TYPED_TEST(StoreTest, RacingReplaysOfOneEventWriteItOnce) {
  Store& s = *this->store_;
  constexpr int kThreads = 4, kEvents = 200;
  std::atomic<int> written{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&s, &written] {
      for (int i = 0; i < kEvents; ++i) {
        std::string id = "same-";
        id += std::to_string(i);
        auto result = s.append_event(make_event("t_a", id, "c1", i));
        ASSERT_TRUE(result.has_value()) << result.status().to_string();
        if (*result) ++written;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(written.load(), kEvents);
  EXPECT_EQ(this->events("t_a"), std::size_t{kEvents});
}

// A long scan (its callback blocked until an append finished) must not hold
// the lock appends need: the append and a point read complete while the scan
// is inside its callback. The scan answers from the snapshot it started
// with; the next scan sees the new row.
TYPED_TEST(StoreTest, AppendCompletesWhileAScanIsInProgress) {
  if (!TypeParam::kConcurrentReads) GTEST_SKIP() << "the memory store serialises calls";
  Store& s = *this->store_;
  ASSERT_TRUE(s.upsert_contact(full_contact("t_a", "c1")).is_ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.append_event(make_event("t_a", numbered_id(i), "c1", i)).value());

  std::mutex mu;
  std::condition_variable cv;
  bool in_scan = false, appended = false;
  bool appended_during_scan = false;
  std::size_t scanned = 0;
  std::thread scanner([&] {
    EXPECT_TRUE(s.for_each_event("t_a", [&](const Event&) {
      std::unique_lock lock(mu);
      if (scanned++ == 0) {
        in_scan = true;
        cv.notify_all();
        // A deadline only so that a store which blocks fails instead of hanging.
        appended_during_scan = cv.wait_for(lock, std::chrono::seconds(30), [&] { return appended; });
      }
      return true;
    }).is_ok());
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_scan; });
  }
  auto added = s.append_event(make_event("t_a", "during-scan", "c1", 10));
  auto contact = s.get_contact("t_a", "c1");
  {
    std::lock_guard lock(mu);
    appended = true;
  }
  cv.notify_all();
  scanner.join();
  ASSERT_TRUE(added.has_value()) << added.status().to_string();
  EXPECT_TRUE(*added);
  ASSERT_TRUE(contact.has_value()) << contact.status().to_string();
  EXPECT_EQ(contact->contact_id, "c1");
  EXPECT_TRUE(appended_during_scan) << "append_event waited for the scan to end";
  EXPECT_EQ(scanned, 3u);  // the scan's own snapshot
  auto after = this->all_events("t_a");
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(after.back().event_id, "during-scan");
}

// Read-your-writes across threads: once an append returned, every read that
// starts afterwards, on any thread (any reader connection), sees it.
TYPED_TEST(StoreTest, ReadsOnOtherThreadsSeeEveryAppendThatReturned) {
  Store& s = *this->store_;
  constexpr int kEvents = 300, kReaders = 3;
  std::atomic<int> returned{0};
  std::atomic<bool> stale{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      while (true) {
        const int before = returned.load();
        auto n = s.count_events("t_a");
        ASSERT_TRUE(n.has_value()) << n.status().to_string();
        if (*n < static_cast<std::size_t>(before)) stale = true;
        auto history = s.events_for_contact("t_a", "c1");
        ASSERT_TRUE(history.has_value()) << history.status().to_string();
        if (history->size() < static_cast<std::size_t>(before)) stale = true;
        if (before == kEvents) return;
      }
    });
  }
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_TRUE(s.append_event(make_event("t_a", numbered_id(i), "c1", i)).value());
    returned.store(i + 1);
  }
  for (auto& th : readers) th.join();
  EXPECT_FALSE(stale.load()) << "a read missed an append that had returned before it started";
  EXPECT_EQ(this->events("t_a"), std::size_t{kEvents});
}

TYPED_TEST(StoreTest, DataSurvivesReopen) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << "not a persistent store";
  Store* s = this->store_.get();
  ASSERT_TRUE(s->upsert_tenant({"t_a", "Alpha", 5, "loc"}).is_ok());
  ASSERT_TRUE(s->upsert_contact(full_contact("t_a", "c1")).is_ok());
  ASSERT_TRUE(s->append_event(make_event("t_a", "e1", "c1", 7, EventType::kCallIn)).value());
  ASSERT_TRUE(s->append_stage(make_stage("t_a", "o1", 8, Stage::kOffer)).value());
  ASSERT_TRUE(s->append_score(make_score("t_a", "c1", 9, 77)).is_ok());
  ASSERT_TRUE(s->record_model({"", "leads", "v1", "/m", "{}", 1}).is_ok());

  for (int round = 0; round < 3; ++round) {  // migrations must be idempotent
    ASSERT_TRUE(this->reopen());
    s = this->store_.get();
    EXPECT_EQ(s->get_tenant("t_a")->ghl_location_id, "loc");
    expect_contact_eq(s->get_contact("t_a", "c1").value(), full_contact("t_a", "c1"));
    auto events = this->all_events("t_a");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, EventType::kCallIn);
    EXPECT_FALSE(s->append_event(make_event("t_a", "e1", "c1", 7)).value());  // still deduped
    EXPECT_EQ(this->all_stages("t_a").at(0).stage, Stage::kOffer);
    EXPECT_EQ(s->score_history("t_a", "c1", 5)->at(0).score, 77);
    EXPECT_EQ(s->list_models("", "leads")->size(), 1u);
  }
}

GhlDelivery make_delivery(const std::string& tenant, const std::string& webhook_id, const std::string& body) {
  GhlDelivery d;
  d.tenant_id = tenant;
  d.location_id = tenant;
  d.location_id.insert(0, "loc-");
  d.webhook_id = webhook_id;
  d.kind = "webhook";
  d.received_at = 1'700'000'000;
  d.body = body;
  d.status = DeliveryStatus::kDone;  // ignored: a new delivery is always pending
  d.error = "ignored too";
  return d;
}

TYPED_TEST(StoreTest, GhlDeliveriesAreStoredOncePerWebhookIdAndTenant) {
  Store* s = this->store_.get();
  const std::string body = std::string("{\"type\":\"x\"}\0raw\xff", 17);
  auto first = s->record_ghl_delivery(make_delivery("t_a", "wh-1", body));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->has_value());
  auto again = s->record_ghl_delivery(make_delivery("t_a", "wh-1", "{}"));
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->has_value());
  auto other_tenant = s->record_ghl_delivery(make_delivery("t_b", "wh-1", "{}"));
  ASSERT_TRUE(other_tenant.has_value());
  EXPECT_TRUE(other_tenant->has_value());

  auto stored = s->get_ghl_delivery("t_a", **first);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->body, body);
  EXPECT_EQ(stored->status, DeliveryStatus::kPending);
  EXPECT_EQ(stored->error, "");
  EXPECT_EQ(stored->attempts, 0);
  EXPECT_EQ(stored->location_id, "loc-t_a");
  EXPECT_EQ(stored->received_at, 1'700'000'000);
  EXPECT_EQ(s->get_ghl_delivery("t_b", **first).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->record_ghl_delivery(make_delivery("", "wh-2", "{}")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->record_ghl_delivery(make_delivery("t_a", "", "{}")).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, GhlDeliveriesAreListedByStatusOldestFirstAndMarked) {
  Store* s = this->store_.get();
  std::vector<std::int64_t> ids;
  for (const char* w : {"w0", "w1", "w2", "w3"}) ids.push_back(s->record_ghl_delivery(make_delivery("t_a", w, "{}"))->value());
  ASSERT_TRUE(s->set_ghl_delivery_status("t_a", ids[1], DeliveryStatus::kFailed, "boom", true).is_ok());
  ASSERT_TRUE(s->set_ghl_delivery_status("t_a", ids[2], DeliveryStatus::kDone, "", true).is_ok());
  ASSERT_TRUE(s->set_ghl_delivery_status("t_a", ids[3], DeliveryStatus::kIgnored, "unknown type", true).is_ok());
  auto pending = s->list_ghl_deliveries("t_a", DeliveryStatus::kPending, 10).value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].delivery_id, ids[0]);
  auto failed = s->list_ghl_deliveries("t_a", DeliveryStatus::kFailed, 10).value();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].error, "boom");
  EXPECT_EQ(failed[0].attempts, 1);
  EXPECT_TRUE(s->list_ghl_deliveries("t_b", DeliveryStatus::kFailed, 10)->empty());
  // A retry puts it back to pending without counting an attempt.
  ASSERT_TRUE(s->set_ghl_delivery_status("t_a", ids[1], DeliveryStatus::kPending, "", false).is_ok());
  pending = s->list_ghl_deliveries("t_a", DeliveryStatus::kPending, 10).value();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].delivery_id, ids[0]);
  EXPECT_EQ(pending[1].delivery_id, ids[1]);
  EXPECT_EQ(pending[1].attempts, 1);
  EXPECT_EQ(s->list_ghl_deliveries("t_a", DeliveryStatus::kPending, 1)->size(), 1u);
  EXPECT_EQ(s->set_ghl_delivery_status("t_b", ids[0], DeliveryStatus::kDone, "", true).code(), StatusCode::kNotFound);
  EXPECT_EQ(s->set_ghl_delivery_status("t_a", 999999, DeliveryStatus::kDone, "", true).code(), StatusCode::kNotFound);
}

TYPED_TEST(StoreTest, AGhlLocationIsLinkedToOneTenantAtMost) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.upsert_tenant({"t_a", "Alpha", 5, "LOC1"}).is_ok());
  const Status taken = s.upsert_tenant({"t_b", "Beta", 5, "LOC1"});
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(taken.message().find("tenant 't_a'"), std::string::npos) << taken.message();
  EXPECT_EQ(s.get_tenant("t_b").status().code(), StatusCode::kNotFound);  // nothing written
  EXPECT_TRUE(s.upsert_tenant({"t_a", "Alpha Realty", 5, "LOC1"}).is_ok());  // its own link again
  ASSERT_TRUE(s.upsert_tenant({"t_b", "Beta", 5, ""}).is_ok());              // unlinked tenants are many
  ASSERT_TRUE(s.upsert_tenant({"t_c", "Gamma", 5, ""}).is_ok());
  ASSERT_TRUE(s.upsert_tenant({"t_a", "Alpha Realty", 5, ""}).is_ok());  // unlinked: the location is free
  ASSERT_TRUE(s.upsert_tenant({"t_b", "Beta", 5, "LOC1"}).is_ok());
  EXPECT_EQ(s.find_tenant_by_ghl_location("LOC1")->tenant_id, "t_b");
}

TYPED_TEST(StoreTest, LinkingAGhlLocationFindsCreatesOrAdoptsButNeverMovesALink) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.upsert_tenant({"t_a", "Alpha", 5, "LOCa"}).is_ok());
  ASSERT_TRUE(s.upsert_tenant({"LOCahead", "Made Ahead", 6, ""}).is_ok());
  ASSERT_TRUE(s.upsert_tenant({"LOCelse", "Linked Elsewhere", 7, "LOCother"}).is_ok());

  EXPECT_EQ(link_ghl_location(s, "LOCa", 50)->tenant_id, "t_a");  // already linked
  auto fresh = link_ghl_location(s, "LOCnew", 50);
  ASSERT_TRUE(fresh) << fresh.status().message();
  EXPECT_EQ(s.get_tenant("LOCnew")->ghl_location_id, "LOCnew");
  EXPECT_EQ(s.get_tenant("LOCnew")->created_at, 50);
  auto adopted = link_ghl_location(s, "LOCahead", 50);  // created by an operator, unlinked
  ASSERT_TRUE(adopted) << adopted.status().message();
  EXPECT_EQ(s.get_tenant("LOCahead")->name, "Made Ahead");
  EXPECT_EQ(s.get_tenant("LOCahead")->ghl_location_id, "LOCahead");

  EXPECT_EQ(link_ghl_location(s, "LOCelse", 50).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.get_tenant("LOCelse")->ghl_location_id, "LOCother");  // the link did not move
  EXPECT_EQ(link_ghl_location(s, "../evil", 50).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.get_tenant("../evil").status().code(), StatusCode::kNotFound);
}

TYPED_TEST(StoreTest, TenantIsFoundByGhlLocationAndSettingsRoundTrip) {
  Store* s = this->store_.get();
  ASSERT_TRUE(s->upsert_tenant({"t_a", "Alpha", 5, "LOC1"}).is_ok());
  ASSERT_TRUE(s->upsert_tenant({"t_b", "Beta", 5, ""}).is_ok());
  EXPECT_EQ(s->find_tenant_by_ghl_location("LOC1")->tenant_id, "t_a");
  EXPECT_EQ(s->find_tenant_by_ghl_location("LOC2").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->find_tenant_by_ghl_location("").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->get_ghl_settings("t_a").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.workflow_secret = "s3cret", .field_map_json = "{\"budget\":\"f1\"}"}));
  auto fresh = s->get_ghl_settings("t_a").value();
  EXPECT_EQ(fresh.tenant_id, "t_a");
  EXPECT_TRUE(fresh.active);  // the defaults fill what the first change leaves unset
  EXPECT_TRUE(fresh.hot_stage_id.empty());  // off by default
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.active = false}));
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.hot_stage = GhlSettingsChange::HotStage{"pipe-1", "stage-hot"}}));
  auto g = s->get_ghl_settings("t_a").value();
  EXPECT_EQ(g.workflow_secret, "s3cret");
  EXPECT_EQ(g.field_map_json, "{\"budget\":\"f1\"}");
  EXPECT_FALSE(g.active);
  EXPECT_EQ(g.hot_pipeline_id, "pipe-1");
  EXPECT_EQ(g.hot_stage_id, "stage-hot");
  EXPECT_EQ(s->get_ghl_settings("t_b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->update_ghl_settings("", {.active = true}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->update_ghl_settings("t_a", {}).code(), StatusCode::kInvalidArgument);
  // Half a hot stage is refused and changes nothing.
  EXPECT_EQ(s->update_ghl_settings("t_a", {.hot_stage = GhlSettingsChange::HotStage{"pipe-1", ""}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s->update_ghl_settings("t_a", {.hot_stage = GhlSettingsChange::HotStage{"", "stage-hot"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s->get_ghl_settings("t_a")->hot_stage_id, "stage-hot");
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.hot_stage = GhlSettingsChange::HotStage{}}));  // off again
  EXPECT_TRUE(s->get_ghl_settings("t_a")->hot_pipeline_id.empty());
}

// Each writer of the settings changes only its own fields: a stale copy of
// the row held by one writer never brings back what another just changed.
TYPED_TEST(StoreTest, GhlSettingsChangesKeepTheFieldsTheyDoNotSet) {
  Store* s = this->store_.get();
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.workflow_secret = "s3cret", .field_map_json = "{}"}));
  // An admin sets the hot stage while an UNINSTALL webhook turns the tenant off.
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.hot_stage = GhlSettingsChange::HotStage{"pipe-1", "stage-hot"}}));
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.active = false}));
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.workflow_secret = "rotated"}));
  auto g = s->get_ghl_settings("t_a").value();
  EXPECT_EQ(g.workflow_secret, "rotated");
  EXPECT_EQ(g.field_map_json, "{}");
  EXPECT_FALSE(g.active);
  EXPECT_EQ(g.hot_pipeline_id, "pipe-1");
  EXPECT_EQ(g.hot_stage_id, "stage-hot");
  // A first change sets its field; the rest are GhlSettings' defaults.
  ASSERT_TRUE(s->update_ghl_settings("t_b", {.active = false}));
  auto b = s->get_ghl_settings("t_b").value();
  const GhlSettings defaults;
  EXPECT_EQ(b.tenant_id, "t_b");
  EXPECT_FALSE(b.active);
  EXPECT_EQ(b.workflow_secret, defaults.workflow_secret);
  EXPECT_EQ(b.field_map_json, defaults.field_map_json);
  EXPECT_EQ(b.hot_pipeline_id, defaults.hot_pipeline_id);
  EXPECT_EQ(b.hot_stage_id, defaults.hot_stage_id);
  // An empty text is a value, not "unset".
  ASSERT_TRUE(s->update_ghl_settings("t_a", {.field_map_json = ""}));
  EXPECT_EQ(s->get_ghl_settings("t_a")->field_map_json, "");
  EXPECT_EQ(s->get_ghl_settings("t_a")->workflow_secret, "rotated");
}

TYPED_TEST(StoreTest, GhlTokensAreReplacedWholeAndSurviveReopen) {
  Store* s = this->store_.get();
  EXPECT_EQ(s->get_ghl_token("t_a").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s->put_ghl_token({"t_a", "oauth", "sealed-a1", "sealed-r1", 1000, 10}).is_ok());
  // A refresh rotates both tokens in one write.
  ASSERT_TRUE(s->put_ghl_token({"t_a", "oauth", "sealed-a2", "sealed-r2", 2000, 20}).is_ok());
  ASSERT_TRUE(s->put_ghl_token({"t_b", "private", "sealed-pit", "", 0, 30}).is_ok());
  if (TypeParam::kPersistent) {
    ASSERT_TRUE(this->reopen());
  }
  auto a = this->store_->get_ghl_token("t_a").value();
  EXPECT_EQ(a.kind, "oauth");
  EXPECT_EQ(a.sealed_access_token, "sealed-a2");
  EXPECT_EQ(a.sealed_refresh_token, "sealed-r2");
  EXPECT_EQ(a.expires_at, 2000);
  EXPECT_EQ(a.updated_at, 20);
  auto b = this->store_->get_ghl_token("t_b").value();
  EXPECT_EQ(b.kind, "private");
  EXPECT_EQ(b.sealed_refresh_token, "");
  EXPECT_EQ(this->store_->put_ghl_token({"", "oauth", "x", "", 0, 0}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store_->put_ghl_token({"t_c", "", "x", "", 0, 0}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store_->put_ghl_token({"t_c", "oauth", "", "", 0, 0}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store_->get_ghl_token("t_c").status().code(), StatusCode::kNotFound);
}

// GHL refusing a tenant's grant is marked on the stored token only when it is
// still the token the refresh used (another instance may have rotated it, or
// a new install replaced it), once; a new token clears it. The uninstall date
// sits in the settings. Both survive a restart, and ghl_install_of reads them.
TYPED_TEST(StoreTest, GhlRefusalAndUninstallAreStoredAndANewTokenClearsTheRefusal) {
  Store* s = this->store_.get();
  ASSERT_TRUE(s->upsert_tenant({"t_a", "A", 1, "LOC_A"}).is_ok());
  ASSERT_TRUE(s->upsert_tenant({"t_b", "B", 1, "LOC_B"}).is_ok());
  ASSERT_TRUE(s->upsert_tenant({"t_c", "C", 1, ""}).is_ok());
  ASSERT_TRUE(s->upsert_tenant({"t_d", "D", 1, "LOC_D"}).is_ok());
  ASSERT_TRUE(s->put_ghl_token({"t_a", "oauth", "sealed-a1", "sealed-r1", 1000, 10}).is_ok());
  ASSERT_TRUE(s->put_ghl_token({"t_b", "private", "sealed-pit", "", 0, 30}).is_ok());
  EXPECT_EQ(ghl_install_of(*s, s->get_tenant("t_a").value())->state, GhlInstallState::kOAuth);
  EXPECT_EQ(ghl_install_of(*s, s->get_tenant("t_b").value())->state, GhlInstallState::kPrivate);
  EXPECT_EQ(ghl_install_of(*s, s->get_tenant("t_c").value())->state, GhlInstallState::kNone);
  EXPECT_EQ(ghl_install_of(*s, s->get_tenant("t_d").value())->state, GhlInstallState::kLinked);
  // A refresh token rotated since (by another instance) is not marked.
  EXPECT_FALSE(s->mark_ghl_token_refused("t_a", "sealed-r0", 5000, "invalid_grant").value());
  EXPECT_EQ(s->get_ghl_token("t_a")->refused_at, 0);
  EXPECT_TRUE(s->mark_ghl_token_refused("t_a", "sealed-r1", 5000, "Invalid grant: refresh token is invalid").value());
  // Marked once: a second instance refused with the same token writes nothing.
  EXPECT_FALSE(s->mark_ghl_token_refused("t_a", "sealed-r1", 6000, "again").value());
  EXPECT_FALSE(s->mark_ghl_token_refused("t_none", "sealed-r1", 6000, "no token").value());
  EXPECT_EQ(s->mark_ghl_token_refused("", "sealed-r1", 6000, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->mark_ghl_token_refused("t_a", "sealed-r1", 0, "x").status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->update_ghl_settings("t_b", {.active = false, .uninstalled_at = 7000}));
  EXPECT_EQ(s->update_ghl_settings("t_b", {.uninstalled_at = -1}).code(), StatusCode::kInvalidArgument);
  if (TypeParam::kPersistent) {
    ASSERT_TRUE(this->reopen());
    s = this->store_.get();
  }
  auto a = s->get_ghl_token("t_a").value();
  EXPECT_EQ(a.refused_at, 5000);
  EXPECT_EQ(a.refused_error, "Invalid grant: refresh token is invalid");
  EXPECT_EQ(a.sealed_access_token, "sealed-a1");  // the token itself is kept
  auto install = ghl_install_of(*s, s->get_tenant("t_a").value()).value();
  EXPECT_EQ(install.state, GhlInstallState::kNeedsReauth);
  EXPECT_EQ(install.since, 5000);
  EXPECT_EQ(install.detail, "Invalid grant: refresh token is invalid");
  EXPECT_EQ(ghl_install_state_name(install.state), "needs_reauth");
  EXPECT_EQ(s->get_ghl_settings("t_b")->uninstalled_at, 7000);
  install = ghl_install_of(*s, s->get_tenant("t_b").value()).value();
  EXPECT_EQ(install.state, GhlInstallState::kUninstalled);
  EXPECT_EQ(install.since, 7000);
  // A new install: the settings active again, the date cleared; a new token
  // (whatever the caller copied into it) is usable.
  ASSERT_TRUE(s->update_ghl_settings("t_b", {.active = true, .uninstalled_at = 0}));
  EXPECT_EQ(ghl_install_of(*s, s->get_tenant("t_b").value())->state, GhlInstallState::kPrivate);
  GhlToken fresh = a;
  fresh.sealed_access_token = "sealed-a2";
  fresh.sealed_refresh_token = "sealed-r2";
  ASSERT_TRUE(s->put_ghl_token(fresh).is_ok());
  a = s->get_ghl_token("t_a").value();
  EXPECT_EQ(a.refused_at, 0);
  EXPECT_EQ(a.refused_error, "");
  EXPECT_EQ(ghl_install_of(*s, s->get_tenant("t_a").value())->state, GhlInstallState::kOAuth);
  // Other settings changes keep the uninstall date.
  ASSERT_TRUE(s->update_ghl_settings("t_d", {.active = false, .uninstalled_at = 8000}));
  ASSERT_TRUE(s->update_ghl_settings("t_d", {.workflow_secret = "w"}));
  EXPECT_EQ(s->get_ghl_settings("t_d")->uninstalled_at, 8000);
}

TYPED_TEST(StoreTest, PendingGhlDeliveriesSurviveReopen) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << "not a persistent store";
  auto id = this->store_->record_ghl_delivery(make_delivery("t_a", "wh-9", "{\"a\":1}"))->value();
  ASSERT_TRUE(this->reopen());
  auto pending = this->store_->list_ghl_deliveries("t_a", DeliveryStatus::kPending, 10).value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].delivery_id, id);
  EXPECT_EQ(pending[0].body, "{\"a\":1}");
  EXPECT_FALSE(this->store_->record_ghl_delivery(make_delivery("t_a", "wh-9", "{}"))->has_value());
}

GhlUpdate make_update(const std::string& tenant, const std::string& contact, UnixSeconds at) {
  GhlUpdate u;
  u.tenant_id = tenant;
  u.contact_id = contact;
  u.kind = "score";
  u.payload_json = R"({"score":87})";
  u.created_at = at;
  u.status = OutboxStatus::kSent;  // ignored: a new update is pending
  u.attempts = 9;                  // ignored too
  return u;
}

TYPED_TEST(StoreTest, OutboxUpdatesAreDueOldestFirstAndRetriedLater) {
  Store* s = this->store_.get();
  const auto a = s->enqueue_ghl_update(make_update("t_a", "c1", 100)).value();
  const auto b = s->enqueue_ghl_update(make_update("t_a", "c2", 100)).value();
  const auto c = s->enqueue_ghl_update(make_update("t_a", "c3", 200)).value();
  ASSERT_TRUE(s->enqueue_ghl_update(make_update("t_b", "c1", 100)).has_value());
  auto due = s->due_ghl_updates("t_a", 150, 10).value();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].update_id, a);
  EXPECT_EQ(due[1].update_id, b);
  EXPECT_EQ(due[0].status, OutboxStatus::kPending);
  EXPECT_EQ(due[0].attempts, 0);
  EXPECT_EQ(due[0].payload_json, R"({"score":87})");
  EXPECT_EQ(s->due_ghl_updates("t_a", 150, 1)->size(), 1u);

  // a: sent; b: GHL said 429, retry at 300; c: refused for good.
  ASSERT_TRUE(s->record_ghl_update_attempt("t_a", a, OutboxStatus::kSent, "", 100).is_ok());
  ASSERT_TRUE(s->record_ghl_update_attempt("t_a", b, OutboxStatus::kPending, "429", 300).is_ok());
  ASSERT_TRUE(s->record_ghl_update_attempt("t_a", c, OutboxStatus::kFailed, "422 bad field", 200).is_ok());
  EXPECT_TRUE(s->due_ghl_updates("t_a", 299, 10)->empty());
  due = s->due_ghl_updates("t_a", 300, 10).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].update_id, b);
  EXPECT_EQ(due[0].attempts, 1);
  EXPECT_EQ(due[0].error, "429");
  auto failed = s->list_ghl_updates("t_a", OutboxStatus::kFailed, 10).value();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].error, "422 bad field");
  EXPECT_EQ(s->list_ghl_updates("t_a", OutboxStatus::kSent, 10)->size(), 1u);
  EXPECT_EQ(s->due_ghl_updates("t_b", 1000, 10)->size(), 1u);
  EXPECT_EQ(s->record_ghl_update_attempt("t_b", a, OutboxStatus::kSent, "", 0).code(), StatusCode::kNotFound);
  EXPECT_EQ(s->enqueue_ghl_update(make_update("t_a", "", 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->enqueue_ghl_update(make_update("", "c1", 1)).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, OutboxSummaryCountsPendingUpdatesAndTheOldest) {
  Store* s = this->store_.get();
  EXPECT_EQ(s->ghl_outbox_summary("t_a").value().pending, 0u);
  EXPECT_EQ(s->ghl_outbox_summary("t_a").value().oldest_pending_at, 0);
  const auto first = s->enqueue_ghl_update(make_update("t_a", "c1", 100)).value();
  ASSERT_TRUE(s->enqueue_ghl_update(make_update("t_a", "c2", 150)).has_value());
  ASSERT_TRUE(s->enqueue_ghl_update(make_update("t_a", "c3", 170)).has_value());
  ASSERT_TRUE(s->enqueue_ghl_update(make_update("t_b", "c1", 50)).has_value());
  ASSERT_TRUE(s->record_ghl_update_attempt("t_a", first, OutboxStatus::kSent, "", 0).is_ok());
  auto a = s->ghl_outbox_summary("t_a").value();
  EXPECT_EQ(a.pending, 2u);
  EXPECT_EQ(a.oldest_pending_at, 150);
  EXPECT_EQ(s->ghl_outbox_summary("t_b").value().oldest_pending_at, 50);
}

TYPED_TEST(StoreTest, OutboxBatchesAreAllOrNothing) {
  Store* s = this->store_.get();
  EXPECT_TRUE(s->enqueue_ghl_updates({}).value().empty());
  std::vector<GhlUpdate> batch = {make_update("t_a", "c1", 100), make_update("t_a", "c2", 101)};
  auto ids = s->enqueue_ghl_updates(batch).value();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_LT(ids[0], ids[1]);
  auto due = s->due_ghl_updates("t_a", 200, 10).value();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].update_id, ids[0]);
  EXPECT_EQ(due[1].contact_id, "c2");
  batch.push_back(make_update("t_a", "", 102));  // invalid: nothing of the batch is written
  EXPECT_EQ(s->enqueue_ghl_updates(batch).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->list_ghl_updates("t_a", OutboxStatus::kPending, 10).value().size(), 2u);
}

TYPED_TEST(StoreTest, OutboxSurvivesReopen) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << "not a persistent store";
  const auto id = this->store_->enqueue_ghl_update(make_update("t_a", "c1", 100)).value();
  ASSERT_TRUE(this->reopen());
  auto due = this->store_->due_ghl_updates("t_a", 100, 10).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].update_id, id);
  EXPECT_EQ(due[0].kind, "score");
}

TYPED_TEST(StoreTest, WritebackStatesAreWrittenWithTheirOutboxRowsOrNotAtAll) {
  Store* s = this->store_.get();
  EXPECT_TRUE(s->list_ghl_contact_states("t_a").value().empty());
  std::vector<GhlUpdate> updates = {make_update("t_a", "c2", 100), make_update("t_a", "c1", 100)};
  std::vector<GhlContactState> states = {{"t_a", "c2", 81, "hot", 100}, {"t_a", "c1", 40, "warm", 100}};
  ASSERT_EQ(s->enqueue_ghl_writeback(updates, states).value().size(), 2u);
  // A newer state replaces the contact's row; another tenant's rows stay apart.
  std::vector<GhlContactState> newer = {{"t_a", "c1", 22, "cold", 200}, {"t_b", "c1", 90, "hot", 200}};
  ASSERT_EQ(s->enqueue_ghl_writeback(std::vector<GhlUpdate>{make_update("t_a", "c1", 200)}, newer).value().size(), 1u);
  // A bad state (unknown band) writes neither the rows nor the states.
  std::vector<GhlContactState> bad = {{"t_a", "c3", 50, "lukewarm", 300}};
  EXPECT_EQ(s->enqueue_ghl_writeback(std::vector<GhlUpdate>{make_update("t_a", "c3", 300)}, bad).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<GhlContactState> no_contact = {{"t_a", "", 50, "hot", 300}};
  EXPECT_EQ(s->enqueue_ghl_writeback({}, no_contact).status().code(), StatusCode::kInvalidArgument);
  if (TypeParam::kPersistent) {
    ASSERT_TRUE(this->reopen());
  }
  s = this->store_.get();
  EXPECT_EQ(s->list_ghl_updates("t_a", OutboxStatus::kPending, 10).value().size(), 3u);
  auto a = s->list_ghl_contact_states("t_a").value();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].contact_id, "c1");
  EXPECT_EQ(a[0].score, 22);
  EXPECT_EQ(a[0].band, "cold");
  EXPECT_EQ(a[0].updated_at, 200);
  EXPECT_EQ(a[1].contact_id, "c2");
  EXPECT_EQ(a[1].score, 81);
  EXPECT_EQ(a[1].band, "hot");
  auto b = s->list_ghl_contact_states("t_b").value();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].score, 90);
}

TYPED_TEST(StoreTest, GhlCustomFieldIdsAndSyncCursorsRoundTripPerTenant) {
  Store* s = this->store_.get();
  EXPECT_EQ(s->get_ghl_custom_field("t_a", "LOC1", "contact.reai_score").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s->put_ghl_custom_field({"t_a", "LOC1", "contact.reai_score", "fld-1"}).is_ok());
  ASSERT_TRUE(s->put_ghl_custom_field({"t_a", "LOC1", "contact.reai_score", "fld-2"}).is_ok());
  ASSERT_TRUE(s->put_ghl_custom_field({"t_b", "LOC1", "contact.reai_score", "fld-b"}).is_ok());
  EXPECT_EQ(s->put_ghl_custom_field({"t_a", "LOC1", "contact.reai_score", ""}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->put_ghl_custom_field({"t_a", "", "k", "f"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->get_ghl_sync_cursor("t_a", "contacts").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s->put_ghl_sync_cursor({"t_a", "contacts", "after-100", 100, false, 10}).is_ok());
  ASSERT_TRUE(s->put_ghl_sync_cursor({"t_a", "contacts", "after-200", 200, true, 20}).is_ok());
  EXPECT_EQ(s->put_ghl_sync_cursor({"t_a", "", "x", 1, false, 0}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->put_ghl_sync_cursor({"t_a", "contacts", "x", -1, false, 0}).code(), StatusCode::kInvalidArgument);
  if (TypeParam::kPersistent) {
    ASSERT_TRUE(this->reopen());
  }
  s = this->store_.get();
  EXPECT_EQ(s->get_ghl_custom_field("t_a", "LOC1", "contact.reai_score").value().field_id, "fld-2");
  EXPECT_EQ(s->get_ghl_custom_field("t_b", "LOC1", "contact.reai_score").value().field_id, "fld-b");
  EXPECT_EQ(s->get_ghl_custom_field("t_a", "LOC2", "contact.reai_score").status().code(), StatusCode::kNotFound);
  auto c = s->get_ghl_sync_cursor("t_a", "contacts").value();
  EXPECT_EQ(c.cursor, "after-200");
  EXPECT_EQ(c.fetched, 200);
  EXPECT_TRUE(c.done);
  EXPECT_EQ(c.updated_at, 20);
  EXPECT_EQ(s->get_ghl_sync_cursor("t_b", "contacts").status().code(), StatusCode::kNotFound);
}

ListingRecord make_listing(const std::string& tenant, const std::string& id, double price) {
  return ListingRecord{tenant, id, price, R"({"Neighborhood":"NAmes","Beds":"3"})", "", 100};
}

std::vector<std::string> listing_ids(Store& store, const std::string& tenant) {
  std::vector<std::string> out;
  EXPECT_TRUE(store.for_each_listing(tenant, [&](const ListingRecord& l) {
    out.push_back(l.listing_id);
    return true;
  }).is_ok());
  return out;
}

TYPED_TEST(StoreTest, ListingsUpsertByIdAndStayInTheirTenant) {
  Store& s = *this->store_;
  std::vector<ListingRecord> batch = {make_listing("t_a", "ames-0002", 200000), make_listing("t_a", "ames-0001", 150000),
                                      make_listing("t_b", "ames-0001", 999)};
  ASSERT_TRUE(s.upsert_listings(batch).is_ok());
  EXPECT_EQ(listing_ids(s, "t_a"), (std::vector<std::string>{"ames-0001", "ames-0002"}));
  EXPECT_EQ(s.get_listing("t_a", "ames-0001")->list_price, 150000);
  EXPECT_EQ(s.get_listing("t_b", "ames-0001")->list_price, 999);
  EXPECT_EQ(s.get_listing("t_b", "ames-0002").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.get_listing("t_c", "ames-0001").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(listing_ids(s, "t_c").empty());

  // Re-import: same id replaces price, attributes and valuation; no new row.
  ListingRecord changed = make_listing("t_a", "ames-0001", 140000);
  changed.attributes_json = R"({"Neighborhood":"OldTown"})";
  changed.valuation_json = R"({"value":151000})";
  changed.updated_at = 200;
  ASSERT_TRUE(s.upsert_listings(std::span(&changed, 1)).is_ok());
  auto got = s.get_listing("t_a", "ames-0001").value();
  EXPECT_EQ(got.list_price, 140000);
  EXPECT_EQ(got.attributes_json, changed.attributes_json);
  EXPECT_EQ(got.valuation_json, changed.valuation_json);
  EXPECT_EQ(got.updated_at, 200);
  EXPECT_EQ(listing_ids(s, "t_a").size(), 2u);
  EXPECT_TRUE(s.upsert_listings({}).is_ok());
}

// A server polls listings_version to notice listings imported by another
// process: it moves with every write of the tenant's listings, only theirs.
TYPED_TEST(StoreTest, ListingsVersionMovesWithEachWriteOfTheTenant) {
  Store& s = *this->store_;
  EXPECT_EQ(s.listings_version("t_a").value(), 0);
  std::vector<ListingRecord> batch = {make_listing("t_a", "a", 1), make_listing("t_a", "b", 2), make_listing("t_b", "a", 3)};
  ASSERT_TRUE(s.upsert_listings(batch).is_ok());
  const std::int64_t a1 = s.listings_version("t_a").value(), b1 = s.listings_version("t_b").value();
  EXPECT_GT(a1, 0);
  EXPECT_GT(b1, 0);
  ASSERT_TRUE(s.upsert_listings(std::span(batch.data(), 1)).is_ok());  // same row again still counts as a write
  EXPECT_GT(s.listings_version("t_a").value(), a1);
  EXPECT_EQ(s.listings_version("t_b").value(), b1);
  EXPECT_TRUE(s.upsert_listings({}).is_ok());
  std::vector<ListingRecord> bad = {make_listing("t_b", "c", 1), make_listing("t_b", "", 1)};
  EXPECT_EQ(s.upsert_listings(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.listings_version("t_b").value(), b1);  // nothing written, version unchanged
  EXPECT_EQ(s.listings_version("t_c").value(), 0);
}

TYPED_TEST(StoreTest, ListingBatchWithABadRowWritesNone) {
  Store& s = *this->store_;
  for (ListingRecord bad : {make_listing("", "x", 1), make_listing("t_a", "", 1), make_listing("t_a", "x", 0),
                            make_listing("t_a", "x", -5), ListingRecord{"t_a", "x", 1, "", "", 0}}) {
    std::vector<ListingRecord> batch = {make_listing("t_a", "good", 100), bad};
    EXPECT_EQ(s.upsert_listings(batch).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(listing_ids(s, "t_a").empty());
}

TYPED_TEST(StoreTest, ListingScanStopsWhenTheCallbackSaysSo) {
  Store& s = *this->store_;
  std::vector<ListingRecord> batch = {make_listing("t_a", "a", 1), make_listing("t_a", "b", 2),
                                      make_listing("t_a", "c", 3)};
  ASSERT_TRUE(s.upsert_listings(batch).is_ok());
  int seen = 0;
  EXPECT_TRUE(s.for_each_listing("t_a", [&](const ListingRecord&) { return ++seen < 2; }).is_ok());
  EXPECT_EQ(seen, 2);
  if (!TypeParam::kPersistent) return;
  ASSERT_TRUE(this->reopen());
  EXPECT_EQ(listing_ids(*this->store_, "t_a").size(), 3u);
}

// SQLite specifics: the file, its migrations and refusal of a newer schema.

int sqlite_query_int(const fs::path& db_file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(db_file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int value = -1;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) value = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

TEST(SqliteStoreTest, CreatesDirectoryAndWalDatabase) {
  TempDir tmp;
  fs::path dir = tmp.path() / "nested" / "data";
  {
    auto store = open_sqlite_store(dir.string());
    ASSERT_TRUE(store.has_value()) << store.status().to_string();
  }
  fs::path file = dir / "reai.db";
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(sqlite_query_int(file, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

TEST(SqliteStoreTest, MigrationsAreRecordedOnceAcrossReopens) {
  TempDir tmp;
  EXPECT_GE(schema_version(), 1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(open_sqlite_store(tmp.path().string()).has_value());
  fs::path file = tmp.path() / "reai.db";
  EXPECT_EQ(sqlite_query_int(file, "SELECT count(*) FROM schema_migrations"), schema_version());
  EXPECT_EQ(sqlite_query_int(file, "SELECT max(version) FROM schema_migrations"), schema_version());
}

// The three score rows both migration-10 tests write at version 9 read back
// in their old (time, insertion) order with lead_order 0, and a row written
// since (lead_order 1) is newest.
// The contact both migration-14 tests write at version 13 (budget 250,000)
// reads back with its budget stated at 0 (before any behaviour); the same
// budget written again keeps that, another one takes its time.
constexpr const char* kContactAtVersion13 =
    "INSERT INTO contacts (tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id, budget,"
    " timeline_months, pre_approved, beds_wanted, area_wanted, has_phone, has_email)"
    " VALUES ('t_old', 'c1', 100, 'zillow', 'buyer', '', 250000, NULL, NULL, NULL, '', NULL, NULL);";
void expect_contact_kept_by_migration_14(Store& store) {
  Contact c = store.get_contact("t_old", "c1").value();
  EXPECT_EQ(c.budget, 250000.0);
  EXPECT_EQ(c.source, "zillow");
  EXPECT_EQ(c.budget_stated_at, 0);
  c.budget_stated_at = 700;
  ASSERT_TRUE(store.upsert_contact(c).is_ok());
  EXPECT_EQ(store.get_contact("t_old", "c1").value().budget_stated_at, 0);
  c.budget = 260000.0;
  ASSERT_TRUE(store.upsert_contact(c).is_ok());
  EXPECT_EQ(store.get_contact("t_old", "c1").value().budget_stated_at, 700);
}

void expect_scores_kept_by_migration_10(Store& store) {
  auto old_rows = store.score_history("t_old", "c1", 10).value();
  ASSERT_EQ(old_rows.size(), 3u);
  EXPECT_EQ(old_rows[0].score, 31);
  EXPECT_EQ(old_rows[0].reasons_json, R"(["r"])");
  EXPECT_DOUBLE_EQ(old_rows[0].probability, 0.31);
  EXPECT_EQ(old_rows[1].score, 30);
  EXPECT_EQ(old_rows[2].score, 20);
  EXPECT_EQ(old_rows[2].ts, 100);
  for (const ScoreRecord& r : old_rows) EXPECT_EQ(r.lead_order, 0);
  ScoreRecord next = make_score("t_old", "c1", 150, 25);
  next.lead_order = 1;
  ASSERT_TRUE(store.append_score(next).is_ok());
  EXPECT_EQ(store.score_history("t_old", "c1", 1).value()[0].score, 25);
}

// A SQLite database at schema version `version` (its migrations applied by
// hand, as an older binary left it), then `extra_sql`.
void create_database_at_version(const fs::path& file, int version, const std::string& extra_sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  std::string sql = "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL);";
  for (int v = 1; v <= version; ++v) {
    sql += std::string(sqlite_migrations()[v - 1]);
    sql += "INSERT INTO schema_migrations VALUES (" + std::to_string(v) + ", 0);";
  }
  sql += extra_sql;
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

// Migration 9 adds the hot-stage columns to a database of version 8: its
// settings rows stay, with the hot stage off.
TEST(SqliteStoreTest, HotStageMigrationKeepsExistingSettingsOff) {
  TempDir tmp;
  fs::path file = tmp.path() / "reai.db";
  ASSERT_NO_FATAL_FAILURE(create_database_at_version(file, 8, "INSERT INTO ghl_settings VALUES ('t_old', 'wf', '', 1);"));
  auto store = open_sqlite_store(tmp.path().string());
  ASSERT_TRUE(store.has_value()) << store.status().to_string();
  EXPECT_EQ(sqlite_query_int(file, "SELECT max(version) FROM schema_migrations"), schema_version());
  auto g = (*store)->get_ghl_settings("t_old").value();
  EXPECT_EQ(g.workflow_secret, "wf");
  EXPECT_TRUE(g.active);
  EXPECT_TRUE(g.hot_pipeline_id.empty());
  EXPECT_TRUE(g.hot_stage_id.empty());
}

// Migration 10 on a database at version 9: its score rows stay, with
// lead_order 0, in their old (time, insertion) order, and come before rows
// written since.
TEST(SqliteStoreTest, ScoreLeadOrderMigrationKeepsExistingRows) {
  TempDir tmp;
  fs::path file = tmp.path() / "reai.db";
  ASSERT_NO_FATAL_FAILURE(create_database_at_version(file, 9,
                                                     "INSERT INTO scores VALUES ('t_old', 'c1', 100, 0.2, 20, 'warm', 'v1', '[]');"
           "INSERT INTO scores VALUES ('t_old', 'c1', 200, 0.3, 30, 'warm', 'v1', '[]');"
           "INSERT INTO scores VALUES ('t_old', 'c1', 200, 0.31, 31, 'warm', 'v1', '[\"r\"]');"));
  auto store = open_sqlite_store(tmp.path().string());
  ASSERT_TRUE(store.has_value()) << store.status().to_string();
  EXPECT_EQ(sqlite_query_int(file, "SELECT max(version) FROM schema_migrations"), schema_version());
  ASSERT_NO_FATAL_FAILURE(expect_scores_kept_by_migration_10(**store));
}

// Migration 14 on a database at version 13: its contacts stay, their budgets
// stated at 0.
TEST(SqliteStoreTest, BudgetStatedAtMigrationKeepsContactsStatedBeforeAnyBehaviour) {
  TempDir tmp;
  fs::path file = tmp.path() / "reai.db";
  ASSERT_NO_FATAL_FAILURE(create_database_at_version(file, 13, kContactAtVersion13));
  auto store = open_sqlite_store(tmp.path().string());
  ASSERT_TRUE(store.has_value()) << store.status().to_string();
  EXPECT_EQ(sqlite_query_int(file, "SELECT max(version) FROM schema_migrations"), schema_version());
  ASSERT_NO_FATAL_FAILURE(expect_contact_kept_by_migration_14(**store));
}

// Migration 11 on a database where two tenants name one GHL location: the
// store does not open (nothing changes), and the error names the index, so
// the operator knows to unlink one of them.
TEST(SqliteStoreTest, GhlLocationMigrationRefusesTwoTenantsOnOneLocation) {
  TempDir tmp;
  fs::path file = tmp.path() / "reai.db";
  ASSERT_NO_FATAL_FAILURE(create_database_at_version(file, 10,
                                                     "INSERT INTO tenants VALUES ('t_a', 'A', 1, 'LOC1');"
                                                     "INSERT INTO tenants VALUES ('t_b', 'B', 1, 'LOC1');"
                                                     "INSERT INTO tenants VALUES ('t_c', 'C', 1, '');"
                                                     "INSERT INTO tenants VALUES ('t_d', 'D', 1, '');"));
  auto refused = open_sqlite_store(tmp.path().string());
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.status().message().find("ghl_location"), std::string::npos) << refused.status().message();
  EXPECT_EQ(sqlite_query_int(file, "SELECT max(version) FROM schema_migrations"), 10);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  const int unlinked = sqlite3_exec(db, "UPDATE tenants SET ghl_location_id = '' WHERE tenant_id = 't_b'", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_EQ(unlinked, SQLITE_OK);
  auto store = open_sqlite_store(tmp.path().string());
  ASSERT_TRUE(store.has_value()) << store.status().to_string();
  EXPECT_EQ((*store)->find_tenant_by_ghl_location("LOC1")->tenant_id, "t_a");
}

TEST(SqliteStoreTest, RefusesDatabaseNewerThanBinary) {
  TempDir tmp;
  ASSERT_TRUE(open_sqlite_store(tmp.path().string()).has_value());
  fs::path file = tmp.path() / "reai.db";
  int future = schema_version() + 1;
  sqlite_query_int(file, "INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                             std::to_string(future) + ", 0)");
  auto store = open_sqlite_store(tmp.path().string());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(std::to_string(future)), std::string::npos);
}

// The store's own checkpointer, on the real schema: small thresholds so a few
// thousand appends restart the WAL several times, and every row survives.
TEST(SqliteStoreTest, AppendsPastCheckpointThresholdSurviveReopen) {
  TempDir tmp;
  constexpr int kEvents = 3000;  // ~13k WAL frames
  const fs::path file = tmp.path() / "reai.db";
  {
    auto store = open_sqlite_store(tmp.path().string(), {.background_frames = 256,
                                                         .restart_frames = 512,
                                                         .foreground_frames = 4096});
    ASSERT_TRUE(store.has_value());
    for (int i = 0; i < kEvents; ++i) {
      std::string id = "e";
      id += std::to_string(i);
      ASSERT_TRUE((*store)->append_event(make_event("t_a", id, "c1", i)).value());
    }
    EXPECT_GE(wal_restarts(file), 2u);
    EXPECT_TRUE((*store)->health().is_ok());
  }
  auto reopened = open_sqlite_store(tmp.path().string());
  ASSERT_TRUE(reopened.has_value());
  EXPECT_EQ((*reopened)->count_events("t_a").value(), std::size_t{kEvents});
  EXPECT_EQ(sqlite_query_int(file, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"), 1);
}

TEST(SqliteStoreTest, UnusableDirectoryIsAnError) {
  TempDir tmp;
  fs::path blocker = tmp.path() / "a-file";
  std::ofstream(blocker) << "not a directory";
  auto store = open_sqlite_store((blocker / "data").string());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(open_sqlite_store("").status().code(), StatusCode::kNotFound);
}

TEST(SqliteStoreTest, GarbageFileIsAnError) {
  TempDir tmp;
  std::ofstream(tmp.path() / "reai.db") << std::string(4096, 'x');
  auto store = open_sqlite_store(tmp.path().string());
  ASSERT_FALSE(store.has_value());
  EXPECT_NE(store.status().code(), StatusCode::kOk);
}

}  // namespace
}  // namespace reai::store

namespace reai::store {
namespace {

// PostgreSQL specifics (the shared suite above covers the Store contract).
class PostgresStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto store = factory_.open();
    if (!store) {
      ADD_FAILURE() << store.status().to_string();
      return nullptr;
    }
    return std::move(*store);
  }
  std::string query_text(const std::string& sql) {
    PGconn* conn = PQconnectdb(factory_.url.c_str());
    PGresult* r = PQexec(conn, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
                                                                                : PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
    return out;
  }
  // The schema as migrations 1..version left it, then `extra_sql` (rows an
  // older reai wrote), as create_database_at_version does on SQLite.
  void create_schema_at_version(int version, const std::string& extra_sql) {
    ASSERT_FALSE(factory_.server_url.empty()) << "no PostgreSQL test server";
    ASSERT_TRUE(factory_.setup.is_ok()) << factory_.setup.to_string();
    std::string sql = "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL);";
    for (int v = 1; v <= version; ++v) {
      sql += std::string(postgres_migrations()[v - 1]);
      sql += "INSERT INTO schema_migrations VALUES (" + std::to_string(v) + ", 0);";
    }
    ASSERT_TRUE(postgres_admin(factory_.url, sql + extra_sql).is_ok());
  }
  PostgresFactory factory_;
};

TEST_F(PostgresStoreTest, MigrationsAreRecordedOnceAcrossReopens) {
  for (int i = 0; i < 3; ++i) ASSERT_NE(open(), nullptr);
  EXPECT_EQ(query_text("SELECT count(*) FROM schema_migrations"), std::to_string(schema_version()));
  EXPECT_EQ(query_text("SELECT max(version) FROM schema_migrations"), std::to_string(schema_version()));
}

// As SqliteStoreTest.ScoreLeadOrderMigrationKeepsExistingRows, on PostgreSQL.
TEST_F(PostgresStoreTest, ScoreLeadOrderMigrationKeepsExistingRows) {
  ASSERT_NO_FATAL_FAILURE(create_schema_at_version(
      9, "INSERT INTO scores (tenant_id, contact_id, ts, probability, score, band, model_version, reasons_json) VALUES"
         " ('t_old', 'c1', 100, 0.2, 20, 'warm', 'v1', '[]'), ('t_old', 'c1', 200, 0.3, 30, 'warm', 'v1', '[]'),"
         " ('t_old', 'c1', 200, 0.31, 31, 'warm', 'v1', '[\"r\"]');"));
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(query_text("SELECT max(version) FROM schema_migrations"), std::to_string(schema_version()));
  ASSERT_NO_FATAL_FAILURE(expect_scores_kept_by_migration_10(*store));
}

// As SqliteStoreTest.BudgetStatedAtMigrationKeepsContactsStatedBeforeAnyBehaviour, on PostgreSQL.
TEST_F(PostgresStoreTest, BudgetStatedAtMigrationKeepsContactsStatedBeforeAnyBehaviour) {
  ASSERT_NO_FATAL_FAILURE(create_schema_at_version(13, kContactAtVersion13));
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(query_text("SELECT max(version) FROM schema_migrations"), std::to_string(schema_version()));
  ASSERT_NO_FATAL_FAILURE(expect_contact_kept_by_migration_14(*store));
}

TEST_F(PostgresStoreTest, RefusesDatabaseNewerThanBinary) {
  ASSERT_NE(open(), nullptr);
  ASSERT_TRUE(postgres_admin(factory_.url, "INSERT INTO schema_migrations VALUES (" +
                                               std::to_string(schema_version() + 1) + ", 0)").is_ok());
  auto store = factory_.open();
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().to_string();
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailable) {
  auto store = open_postgres_store("postgresql://postgres@/postgres?host=/nonexistent-reai-socket-dir&port=1");
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().to_string();
  EXPECT_EQ(open_postgres_store("/var/lib/reai").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PostgresStoreTest, ReconnectsAfterTheServerDroppedItsConnections) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->append_event(make_event("t_a", "before", "c1", 1)).value());
  // What a server restart does to idle pooled connections.
  ASSERT_TRUE(postgres_admin(factory_.server_url,
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" +
                                 factory_.schema + "'")
                  .is_ok());
  // Termination is asynchronous: wait until the backends are gone.
  for (int i = 0; i < 500; ++i) {
    std::string left = query_text("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                                  factory_.schema + "' AND pid <> pg_backend_pid()");
    if (left == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto after = store->append_event(make_event("t_a", "after", "c1", 2));
  ASSERT_TRUE(after.has_value()) << after.status().to_string();
  EXPECT_TRUE(*after);
  EXPECT_TRUE(store->health().is_ok());
  EXPECT_EQ(store->count_events("t_a").value(), 2u);
}

// Two writers at once: one draws a position, then another draws a later one
// and commits first. A read in between passes the first by; read_new_events
// returns it at the first read after its commit, and once only.
TEST_F(PostgresStoreTest, AnEventCommittedAfterALaterPositionIsReadOnce) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->append_event(make_event("t_a", "first", "c1", 1)).value());
  EventCursor cursor;
  std::vector<std::string> ids;
  const auto read = [&] {
    ids.clear();
    EXPECT_TRUE(store->read_new_events("t_a", cursor, [&](const Event& e) { ids.push_back(e.event_id); }).is_ok());
    return ids;
  };
  EXPECT_EQ(read(), std::vector<std::string>{"first"});

  // The slow writer: a transaction of its own, open across the reads below.
  PGconn* slow = PQconnectdb(factory_.url.c_str());
  ASSERT_EQ(PQstatus(slow), CONNECTION_OK) << PQerrorMessage(slow);
  const auto exec = [&](const char* sql) {
    PGresult* r = PQexec(slow, sql);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    EXPECT_TRUE(ok) << PQresultErrorMessage(r);
    PQclear(r);
    return ok;
  };
  ASSERT_TRUE(exec("BEGIN"));
  ASSERT_TRUE(exec("INSERT INTO events (tenant_id, event_id, contact_id, ts, type, property_id, value)"
                   " VALUES ('t_a', 'slow', 'c1', 2, 'property_save', 'p1', NULL)"));
  ASSERT_TRUE(store->append_event(make_event("t_a", "fast", "c2", 3)).value());  // a later position, committed
  EXPECT_EQ(read(), std::vector<std::string>{"fast"});
  std::int64_t past_slow = 0;  // what a reader by position alone stops at
  ASSERT_TRUE(store->for_each_event_after("t_a", 0, [&](std::int64_t p, const Event&) { return past_slow = p, true; }).is_ok());
  EXPECT_TRUE(read().empty());  // still running: nothing new
  ASSERT_TRUE(exec("COMMIT"));
  PQfinish(slow);

  std::vector<std::string> after_position;
  ASSERT_TRUE(store->for_each_event_after("t_a", past_slow, [&](std::int64_t, const Event& e) {
    return after_position.push_back(e.event_id), true;
  }).is_ok());
  EXPECT_TRUE(after_position.empty());  // the gap read_new_events closes
  EXPECT_EQ(read(), std::vector<std::string>{"slow"});
  EXPECT_TRUE(read().empty());
  ASSERT_TRUE(store->append_event(make_event("t_a", "then", "c2", 4)).value());
  EXPECT_EQ(read(), std::vector<std::string>{"then"});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(read().empty());
  EXPECT_LE(cursor.read_above.size(), 4u);  // the margin's bookkeeping stays small while nothing runs
}

TEST(OpenStoreTest, PicksTheBackendFromTheArgument) {
  TempDir dir;
  auto sqlite = open_store(dir.path().string());
  ASSERT_TRUE(sqlite.has_value()) << sqlite.status().to_string();
  EXPECT_TRUE(fs::exists(dir.path() / "reai.db"));
  auto pg = open_store("postgres://postgres@/postgres?host=/nonexistent-reai-socket-dir&port=1");
  EXPECT_EQ(pg.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace reai::store
