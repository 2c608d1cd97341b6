// The paged pull's pure half: calls, page reading, cursors, and the mapping
// of API records.
#include "ghl/sync.h"

#include <gtest/gtest.h>

#include "ghl/ghl.h"

namespace reai::ghl {
namespace {

TEST(GhlSyncTest, PageCallsCarryTheLocationLimitAndCursor) {
  auto first = page_call(SyncResource::kContacts, "LOC 1", 100, "");
  EXPECT_EQ(first.method, "GET");
  EXPECT_EQ(first.target, "/contacts/?locationId=LOC%201&limit=100");
  auto next = page_call(SyncResource::kOpportunities, "LOC1", 500, "1751450400000|opp&9");
  EXPECT_EQ(next.target, "/opportunities/search?location_id=LOC1&limit=100&startAfter=1751450400000&startAfterId=opp%269");
  EXPECT_EQ(page_call(SyncResource::kContacts, "L", 0, "").target, "/contacts/?locationId=L&limit=1");
}

TEST(GhlSyncTest, AFullPageNamesTheNextCursorAShortPageIsTheLast) {
  auto full = parse_page(SyncResource::kContacts,
                         R"({"contacts":[{"id":"c1"},{"id":"c2"}],"meta":{"startAfter":1751450400000,"startAfterId":"c2","total":5}})",
                         2);
  ASSERT_TRUE(full.has_value()) << full.status().message();
  ASSERT_EQ(full->records.size(), 2u);
  EXPECT_EQ(full->records[1], R"({"id":"c2"})");
  EXPECT_FALSE(full->last);
  EXPECT_EQ(full->next_cursor, "1751450400000|c2");
  // Without meta, the last record's id is the cursor.
  auto bare = parse_page(SyncResource::kOpportunities, R"({"opportunities":[{"id":"o1"}]})", 1);
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->next_cursor, "|o1");
  auto short_page = parse_page(SyncResource::kContacts, R"({"contacts":[{"id":"c3"}],"meta":{"startAfterId":"c3"}})", 2);
  ASSERT_TRUE(short_page.has_value());
  EXPECT_TRUE(short_page->last);
  EXPECT_EQ(short_page->next_cursor, "");
  EXPECT_TRUE(parse_page(SyncResource::kContacts, R"({"contacts":[]})", 100)->last);
}

TEST(GhlSyncTest, MalformedPagesAreRefused) {
  for (const char* body : {"", "[]", "{", R"({"contacts":{}})", R"({"opportunities":[]})", R"({"contacts":[1]})",
                           R"({"contacts":[{"name":"no id"}]})"}) {
    EXPECT_EQ(parse_page(SyncResource::kContacts, body, 1).status().code(), StatusCode::kInvalidArgument) << body;
  }
}

TEST(GhlSyncTest, ApiRecordsMapAsTheirWebhooksWould) {
  FieldMapping mapping = parse_field_mapping(R"({"budget":"fldBudget","stages":{"stg-offer":"offer"}})").value();
  auto contact = map_api_contact(
      R"({"id":"c1","locationId":"L","email":"a@b.c","phone":"","dateAdded":"2026-07-01T10:00:00.000Z",
          "source":"zillow","customFields":[{"id":"fldBudget","value":"$450,000"}]})",
      "t1", mapping);
  ASSERT_TRUE(contact.has_value()) << contact.status().message();
  ASSERT_TRUE(contact->contact.has_value());
  EXPECT_EQ(contact->contact->contact_id, "c1");
  EXPECT_EQ(contact->contact->budget.value(), 450000);
  EXPECT_EQ(contact->contact->source.value(), "zillow");
  EXPECT_TRUE(contact->contact->has_email.value());
  EXPECT_FALSE(contact->contact->has_phone.value());
  EXPECT_EQ(contact->contact->created_at.value(), 1782900000);

  auto opp = map_api_opportunity(
      R"({"id":"o1","contactId":"c1","status":"open","pipelineStageId":"stg-offer","monetaryValue":5000,
          "lastStageChangeAt":"2026-07-02T10:00:00.000Z","dateAdded":"2026-07-01T10:00:00.000Z"})",
      "t1", mapping, 7);
  ASSERT_TRUE(opp.has_value()) << opp.status().message();
  ASSERT_EQ(opp->stages.size(), 1u);
  EXPECT_EQ(opp->stages[0].stage, Stage::kOffer);
  EXPECT_EQ(opp->stages[0].ts, 1782986400);
  EXPECT_EQ(opp->stages[0].monetary_value, 5000);
  auto undated = map_api_opportunity(R"({"id":"o2","contactId":"c1","status":"won"})", "t1", mapping, 7);
  ASSERT_TRUE(undated.has_value());
  EXPECT_EQ(undated->stages.at(0).ts, 7);
  EXPECT_EQ(map_api_contact(R"({"email":"x"})", "t1", mapping).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(map_api_opportunity(R"({"id":"o3"})", "t1", mapping, 7).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(map_api_contact("[1]", "t1", mapping).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace reai::ghl
