#include "server/model_reloads.h"

#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "scoring/synthetic_history.h"

namespace reai::server {
namespace {

namespace fs = std::filesystem;
using scoring::testing_support::kDay;
using scoring::testing_support::kStart;

// Sets the model's version in DIR/metadata.json: a retrained model, as far
// as a reload can tell.
void set_version(const fs::path& dir, const std::string& version) {
  std::string text;
  {
    std::ifstream in(dir / "metadata.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  boost::json::value meta = boost::json::parse(text);
  meta.as_object()["version"] = version;
  std::ofstream(dir / "metadata.json", std::ios::trunc) << boost::json::serialize(meta);
}

std::string version_of(const scoring::DirectoryModelRegistry& registry, const std::string& tenant) {
  auto model = registry.lead_model(tenant);
  return model ? scoring::lead_model_version(*model) : "fallback";
}

// One trained model for the whole suite; each test copies it around.
class ModelReloadsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    trained_ = new fs::path(fs::temp_directory_path() / ("reai_model_reloads_" + std::to_string(::getpid())));
    fs::remove_all(*trained_);
    const auto history = scoring::testing_support::make_history(600, kStart, 200 * kDay, 7, "c");
    scoring::TrainLeadOptions options;
    options.example_ages_hours = {1, 24};
    options.nthread = 2;
    options.progress = false;
    auto report = scoring::train_lead_model(history.contacts, history.events, history.stages, trained_->string(), options);
    ASSERT_TRUE(report) << report.status().to_string();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*trained_);
    delete trained_;
  }

  void SetUp() override {
    root_ = fs::path(trained_->string() + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "tenants" / "t1");
    fs::create_directories(root_ / "tenants" / "t2");
    fs::copy(*trained_, root_ / "leads", fs::copy_options::recursive);
    set_version(root_ / "leads", "leads-shared-1");
    place("t1", "leads-t1-1");
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes tenant T's own model at `version` (a retrain of T).
  void place(const std::string& tenant, const std::string& version) {
    const fs::path dir = root_ / "tenants" / tenant / "leads";
    fs::remove_all(dir);
    fs::copy(*trained_, dir, fs::copy_options::recursive);
    set_version(dir, version);
  }

  // Runs `reloads`' tenant reload and waits for its outcome.
  static ModelReloads::TenantReload reload(ModelReloads& reloads, const std::string& tenant) {
    std::promise<ModelReloads::TenantReload> done;
    auto future = done.get_future();
    EXPECT_TRUE(reloads.reload_tenant(tenant, [&done](ModelReloads::TenantReload r) { done.set_value(std::move(r)); }));
    return future.get();
  }

  static fs::path* trained_;
  fs::path root_;
};

fs::path* ModelReloadsTest::trained_ = nullptr;

TEST(ModelReloadNotice, RoundTripsAndRejectsBadInput) {
  auto origin = decode_reload_notice(encode_reload_notice("inst-\"1"));
  ASSERT_TRUE(origin) << origin.status().to_string();
  EXPECT_EQ(*origin, "inst-\"1");
  for (const char* bad : {"", "[]", "{", "{}", R"({"origin":7})", R"({"origin":""})"}) {
    EXPECT_EQ(decode_reload_notice(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// Two instances on one bus and one model directory: an admin's reload on A
// is announced, and B, which heard it, serves the retrained model too
// without being asked; A skips its own notice (it has just reloaded).
TEST_F(ModelReloadsTest, AReloadAnnouncedByAnotherInstanceServesTheNewVersionHere) {
  auto bus = bus::make_in_process_bus();
  scoring::DirectoryModelRegistry registry_a(root_.string()), registry_b(root_.string());
  ASSERT_TRUE(registry_a.reload());
  ASSERT_TRUE(registry_b.reload());
  ModelReloads a(*bus, registry_a, {}), b(*bus, registry_b, {});
  ASSERT_NE(a.instance_id(), b.instance_id());
  ASSERT_EQ(version_of(registry_b, "t1"), "leads-t1-1");
  ASSERT_EQ(version_of(registry_b, "t2"), "leads-shared-1");

  place("t1", "leads-t1-2");
  set_version(root_ / "leads", "leads-shared-2");
  place("t2", "leads-t2-1");  // another tenant's retrain: not t1's admin's to load
  const ModelReloads::TenantReload r = reload(a, "t1");
  ASSERT_TRUE(r.models.status) << r.models.status.to_string();
  EXPECT_EQ(r.models.reloaded, (std::vector<std::string>{"leads", "tenants/t1/leads"}));
  EXPECT_TRUE(r.announced) << r.announced.to_string();
  EXPECT_EQ(version_of(registry_a, "t1"), "leads-t1-2");

  b.wait_idle();
  EXPECT_EQ(version_of(registry_b, "t1"), "leads-t1-2");
  EXPECT_EQ(version_of(registry_b, "t3"), "leads-shared-2");  // a tenant on the shared model
  EXPECT_EQ(version_of(registry_b, "t2"), "leads-shared-2");  // its own was not t1's reload's to read
  EXPECT_EQ(b.stats().received, 1u);
  EXPECT_EQ(b.stats().own, 0u);
  EXPECT_EQ(a.stats().own, 1u);
  EXPECT_EQ(a.stats().received, 0u);
  EXPECT_EQ(a.stats().announced, 1u);
}

// A reload that fails (a model that does not load) announces nothing: the
// other instances keep what they serve.
TEST_F(ModelReloadsTest, AFailedReloadIsNotAnnounced) {
  auto bus = bus::make_in_process_bus();
  scoring::DirectoryModelRegistry registry_a(root_.string()), registry_b(root_.string());
  ASSERT_TRUE(registry_a.reload());
  ASSERT_TRUE(registry_b.reload());
  ModelReloads a(*bus, registry_a, {}), b(*bus, registry_b, {});
  std::ofstream(root_ / "tenants" / "t1" / "leads" / "model.json", std::ios::trunc) << "{not json";
  const ModelReloads::TenantReload r = reload(a, "t1");
  EXPECT_EQ(r.models.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.models.failed, std::vector<std::string>{"tenants/t1/leads"});
  EXPECT_EQ(r.announced.code(), StatusCode::kFailedPrecondition);
  b.wait_idle();
  EXPECT_EQ(b.stats().received, 0u);
  EXPECT_EQ(version_of(registry_a, "t1"), "leads-t1-1");
  EXPECT_EQ(version_of(registry_b, "t1"), "leads-t1-1");
}

// Notices this instance cannot act on are logged and dropped: no reload, no
// crash, and a good notice after them still works.
TEST_F(ModelReloadsTest, MalformedOrInvalidTenantNoticesAreIgnored) {
  auto bus = bus::make_in_process_bus();
  scoring::DirectoryModelRegistry registry(root_.string());
  ASSERT_TRUE(registry.reload());
  ModelReloads here(*bus, registry, {});
  place("t1", "leads-t1-2");
  auto text = [](const char* s) { return std::make_shared<const std::string>(s); };
  EXPECT_TRUE(bus->notify("t1", kModelReloadTopic, text("{not json")));
  EXPECT_TRUE(bus->notify("t1", kModelReloadTopic, text(R"({"from":"x"})")));
  EXPECT_TRUE(bus->notify("t1", kModelReloadTopic, nullptr));
  EXPECT_TRUE(bus->notify("../t1", kModelReloadTopic, text(R"({"origin":"inst-other"})")));
  EXPECT_TRUE(bus->notify("t1", "live_outcome", text(R"({"origin":"inst-other"})")));  // not ours: not counted
  here.wait_idle();
  EXPECT_EQ(here.stats().ignored, 4u);
  EXPECT_EQ(here.stats().received, 0u);
  EXPECT_EQ(version_of(registry, "t1"), "leads-t1-1");

  EXPECT_TRUE(bus->notify("t1", kModelReloadTopic, text(R"({"origin":"inst-other"})")));
  here.wait_idle();
  EXPECT_EQ(here.stats().received, 1u);
  EXPECT_EQ(version_of(registry, "t1"), "leads-t1-2");
}

// The operator's reload of everything reads every tenant directory, keeps
// the previous model of one that fails, and announces nothing.
TEST_F(ModelReloadsTest, ReloadAllReadsEveryTenantAndKeepsWhatFailed) {
  auto bus = bus::make_in_process_bus();
  scoring::DirectoryModelRegistry registry(root_.string()), other(root_.string());
  ASSERT_TRUE(registry.reload());
  ASSERT_TRUE(other.reload());
  ModelReloads here(*bus, registry, {}), elsewhere(*bus, other, {});
  place("t2", "leads-t2-1");
  std::ofstream(root_ / "tenants" / "t1" / "leads" / "model.json", std::ios::trunc) << "{not json";
  here.reload_all();
  here.wait_idle();
  EXPECT_EQ(here.stats().full_reloads, 1u);
  EXPECT_EQ(version_of(registry, "t2"), "leads-t2-1");
  EXPECT_EQ(version_of(registry, "t1"), "leads-t1-1");  // failed: the previous one serves
  EXPECT_FALSE(registry.last_reload());
  elsewhere.wait_idle();
  EXPECT_EQ(elsewhere.stats().received, 0u);
  EXPECT_EQ(version_of(other, "t2"), "leads-shared-1");
}

}  // namespace
}  // namespace reai::server
