#include "analytics/deal_history.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "analytics/synthetic_deals.h"

namespace reai::analytics::detail {
namespace {

using testing::synthetic_history;

CrmHistory as_tenant(CrmHistory h, const std::string& tenant) {
  for (auto& c : h.contacts) c.tenant_id = tenant;
  for (auto& e : h.events) e.tenant_id = tenant;
  for (auto& s : h.stages) s.tenant_id = tenant;
  return h;
}

// Feature rows of every opportunity at `t`, by opportunity id.
std::map<std::string, std::vector<float>> rows_of(const DealHistory& h, const std::string& tenant, UnixSeconds t) {
  std::map<std::string, std::vector<float>> out;
  for (const Opportunity& o : h.opportunities()) {
    if (o.tenant_id == tenant) out[o.id] = deal_features(h, o, t);
  }
  return out;
}

void expect_same_rows(const std::map<std::string, std::vector<float>>& got,
                      const std::map<std::string, std::vector<float>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [id, row] : want) {
    const auto it = got.find(id);
    ASSERT_NE(it, got.end()) << id;
    ASSERT_EQ(it->second.size(), row.size());
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (std::isnan(row[i])) {
        EXPECT_TRUE(std::isnan(it->second[i])) << id << " column " << i;
      } else {
        EXPECT_EQ(it->second[i], row[i]) << id << " column " << i;
      }
    }
  }
}

// Two brokerages whose exports both number contacts, opportunities and
// agents from 1: each opportunity's features are the ones its own tenant's
// history gives, apart from the everyone-pooled prior of the agent rates.
TEST(DealHistory, TenantsReusingIdsKeepTheirOwnContactsAgentsAndDeals) {
  const CrmHistory a = as_tenant(synthetic_history(80, 400, 1), "t_a");
  const CrmHistory b = as_tenant(synthetic_history(80, 400, 2), "t_b");
  ASSERT_EQ(a.stages.front().opportunity_id, b.stages.front().opportunity_id);
  ASSERT_EQ(a.stages.front().agent_id, b.stages.front().agent_id);
  CrmHistory both = a;
  both.contacts.insert(both.contacts.end(), b.contacts.begin(), b.contacts.end());
  both.events.insert(both.events.end(), b.events.begin(), b.events.end());
  both.stages.insert(both.stages.end(), b.stages.begin(), b.stages.end());

  const DealHistory pooled(both), only_a(a), only_b(b);
  EXPECT_EQ(pooled.opportunities().size(), only_a.opportunities().size() + only_b.opportunities().size());
  const UnixSeconds t = testing::kHistoryStart + 200 * 86400;
  auto a_rows = rows_of(pooled, "t_a", t), b_rows = rows_of(pooled, "t_b", t);
  auto a_want = rows_of(only_a, "t_a", t), b_want = rows_of(only_b, "t_b", t);
  // The agent rates are shrunk towards the record of every deal in the
  // file; compare everything else exactly and the agent counts too.
  const std::size_t kAgentRate = 29, kAgentDays = 30;
  for (auto* rows : {&a_rows, &b_rows, &a_want, &b_want}) {
    for (auto& [id, row] : *rows) row[kAgentRate] = row[kAgentDays] = 0;
  }
  expect_same_rows(a_rows, a_want);
  expect_same_rows(b_rows, b_want);
}

}  // namespace
}  // namespace reai::analytics::detail
