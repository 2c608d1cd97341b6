#include "core/tenant_id.h"

#include <gtest/gtest.h>

#include <string>

namespace reai {
namespace {

TEST(TenantId, AcceptsTheIdsInUse) {
  for (const char* id : {"t1", "demo", "t_prairie", "tenant-a", "LOC8f2k1m9q0a7s6d5f4g", "ve9EPM428h8vShlRW1KT",
                         "a.b", "_x", "9"}) {
    EXPECT_TRUE(is_valid_tenant_id(id)) << id;
    EXPECT_TRUE(check_tenant_id(id).is_ok()) << id;
  }
  EXPECT_TRUE(is_valid_tenant_id(std::string(kMaxTenantIdLength, 'a')));
}

TEST(TenantId, RefusesWhatIsNotOneSafeDirectoryName) {
  for (const char* id : {"", ".", "..", ".hidden", "-rf", "bad tenant!", "a/b", "../etc", "a\\b", "caf\xc3\xa9",
                         "x y", "t\n1", "a:b", "t1*"}) {
    EXPECT_FALSE(is_valid_tenant_id(id)) << id;
    EXPECT_EQ(check_tenant_id(id).code(), StatusCode::kInvalidArgument) << id;
  }
  EXPECT_FALSE(is_valid_tenant_id(std::string(kMaxTenantIdLength + 1, 'a')));
  EXPECT_FALSE(is_valid_tenant_id(std::string_view("t\0x", 3)));
}

TEST(TenantId, MessageNamesTheIdAndTheRuleWithoutRawControlBytes) {
  const Status s = check_tenant_id("bad tenant!");
  EXPECT_NE(s.message().find("'bad tenant!'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("1-64 characters"), std::string::npos) << s.message();
  const Status nl = check_tenant_id("evil\nINFO forged");
  EXPECT_EQ(nl.message().find('\n'), std::string::npos) << nl.message();
  EXPECT_NE(nl.message().find("evil\\x0aINFO"), std::string::npos) << nl.message();
  const Status long_id = check_tenant_id(std::string(500, 'x') + "!");
  EXPECT_LT(long_id.message().size(), 200u);
}

TEST(TenantId, TenantDirIsUnderRootOrRefused) {
  auto dir = tenant_dir("/models", "t_a");
  ASSERT_TRUE(dir.has_value()) << dir.status().to_string();
  EXPECT_EQ(*dir, "/models/tenants/t_a");
  for (const char* id : {"", "..", "../../etc", "/etc", "a/b"}) {
    auto refused = tenant_dir("/models", id);
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << id;
  }
}

// Keys of ids unique only within their tenant: a tenant's key never equals
// another tenant's, whatever the ids hold, because tenant ids cannot hold
// the separator.
TEST(TenantId, ScopedKeysOfTwoTenantsNeverCollide) {
  EXPECT_EQ(tenant_scoped_key("t1", "c1"), std::string("t1\x1f" "c1"));
  EXPECT_EQ(tenant_scoped_key("t1", "ag|01", '|'), "t1|ag|01");
  EXPECT_NE(tenant_scoped_key("t1", "1c"), tenant_scoped_key("t11", "c"));
  EXPECT_NE(tenant_scoped_key("t1", "1|c", '|'), tenant_scoped_key("t11", "|c", '|'));
  // The only way to collide is a tenant id holding the separator, which is
  // never valid.
  EXPECT_EQ(tenant_scoped_key("a", "b|c", '|'), tenant_scoped_key("a|b", "c", '|'));
  EXPECT_FALSE(is_valid_tenant_id("a|b"));
  EXPECT_FALSE(is_valid_tenant_id("a\x1f" "b"));
  EXPECT_EQ(tenant_scoped_key("t1", ""), std::string("t1\x1f"));
}

}  // namespace
}  // namespace reai
