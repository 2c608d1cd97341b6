#include <gtest/gtest.h>

#include "ghl/secret_box.h"
#include "ghl/writeback.h"

namespace reai::ghl {
namespace {

TEST(WritebackTest, ScoreChangeRoundTripsAndRefusesBadPayloads) {
  auto c = parse_score_change(score_change_json({87, "hot", true})).value();
  EXPECT_EQ(c.score, 87);
  EXPECT_EQ(c.band, "hot");
  EXPECT_TRUE(c.band_changed);
  EXPECT_FALSE(parse_score_change("{").has_value());
  EXPECT_FALSE(parse_score_change("[]").has_value());
  EXPECT_FALSE(parse_score_change(R"({"score":1,"band":"lukewarm","band_changed":false})").has_value());
  EXPECT_FALSE(parse_score_change(R"({"score":"1","band":"hot","band_changed":false})").has_value());
}

TEST(WritebackTest, CallsFollowGhlApi) {
  auto put = put_score_call("CON 1/x", "fld9", 42);
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.target, "/contacts/CON%201%2Fx");
  EXPECT_EQ(put.body, R"({"customFields":[{"id":"fld9","field_value":42}]})");
  EXPECT_EQ(put.body.find("tags"), std::string::npos);
  auto add = tags_call(true, "c1", {band_tag("hot")});
  EXPECT_EQ(add.method, "POST");
  EXPECT_EQ(add.target, "/contacts/c1/tags");
  EXPECT_EQ(add.body, R"({"tags":["hot-lead"]})");
  auto remove = tags_call(false, "c1", other_band_tags("hot"));
  EXPECT_EQ(remove.method, "DELETE");
  EXPECT_EQ(remove.body, R"({"tags":["warm-lead","cold-lead"]})");
  EXPECT_EQ(list_custom_fields_call("LOC1").target, "/locations/LOC1/customFields");
  EXPECT_EQ(create_score_field_call("LOC1").method, "POST");
  auto grant = token_from_code_call({"cid", "s&cret"}, "abc", "");
  EXPECT_EQ(grant.content_type, "application/x-www-form-urlencoded");
  EXPECT_EQ(grant.body, "client_id=cid&client_secret=s%26cret&grant_type=authorization_code&code=abc&user_type=Location");
  EXPECT_NE(token_from_refresh_call({"cid", "s"}, "r1").body.find("grant_type=refresh_token&refresh_token=r1"),
            std::string::npos);
}

TEST(WritebackTest, ReadsGhlAnswers) {
  EXPECT_EQ(find_score_field(R"({"customFields":[{"id":"a","name":"Budget"},{"id":"b","name":"reai score"}]})")
                .value()
                .value(),
            "b");
  EXPECT_EQ(find_score_field(R"({"customFields":[{"id":"k","fieldKey":"contact.reai_score"}]})").value().value(), "k");
  EXPECT_FALSE(find_score_field(R"({"customFields":[]})").value().has_value());
  EXPECT_FALSE(find_score_field(R"({"fields":[]})").has_value());
  EXPECT_EQ(parse_created_field(R"({"customField":{"id":"n1"}})").value(), "n1");
  EXPECT_FALSE(parse_created_field(R"({"customField":{}})").has_value());
  auto g = parse_token_grant(R"({"access_token":"a","refresh_token":"r","expires_in":86399,"locationId":"L"})").value();
  EXPECT_EQ(g.access_token, "a");
  EXPECT_EQ(g.refresh_token, "r");
  EXPECT_EQ(g.expires_in, 86399);
  EXPECT_EQ(g.location_id, "L");
  EXPECT_FALSE(parse_token_grant(R"({"refresh_token":"r"})").has_value());
  EXPECT_EQ(error_message(R"({"statusCode":422,"message":["a bad","b bad"]})"), "a bad; b bad");
  EXPECT_EQ(error_message(R"({"statusCode":400,"message":"Contact not found"})"), "Contact not found");
  EXPECT_EQ(error_message("oops"), "oops");
}

// Only GHL refusing the grant itself (invalid_grant) stops the write-back
// for a new install; outages and reai's own misconfiguration do not.
TEST(WritebackTest, TellsARefusedGrantFromOtherRefreshFailures) {
  const std::string invalid_grant = R"({"error":"invalid_grant","error_description":"Invalid grant: refresh token is invalid"})";
  EXPECT_TRUE(refresh_refused(400, invalid_grant));
  EXPECT_TRUE(refresh_refused(401, R"({"error":"invalid_grant"})"));
  EXPECT_FALSE(refresh_refused(503, invalid_grant));
  EXPECT_FALSE(refresh_refused(429, invalid_grant));
  EXPECT_FALSE(refresh_refused(403, invalid_grant));
  EXPECT_FALSE(refresh_refused(401, R"({"error":"invalid_client","error_description":"bad secret"})"));
  EXPECT_FALSE(refresh_refused(401, R"({"statusCode":401,"message":"invalid_grant"})"));
  EXPECT_FALSE(refresh_refused(400, "invalid_grant"));
  EXPECT_FALSE(refresh_refused(400, R"({"error":["invalid_grant"]})"));
  EXPECT_EQ(oauth_error_message(invalid_grant), "Invalid grant: refresh token is invalid");
  EXPECT_EQ(oauth_error_message(R"({"error":"invalid_grant"})"), "invalid_grant");
  EXPECT_EQ(oauth_error_message(R"({"statusCode":400,"message":"Location is not active"})"), "Location is not active");
  EXPECT_EQ(oauth_error_message("Bad Gateway"), "Bad Gateway");
}

TEST(WritebackTest, ClassifiesAndDelaysRetries) {
  EXPECT_EQ(classify(200), Verdict::kOk);
  EXPECT_EQ(classify(429), Verdict::kRetry);
  EXPECT_EQ(classify(503), Verdict::kRetry);
  EXPECT_EQ(classify(0), Verdict::kRetry);
  EXPECT_EQ(classify(401), Verdict::kRefresh);
  EXPECT_EQ(classify(422), Verdict::kFail);
  EXPECT_EQ(classify(404), Verdict::kFail);
  EXPECT_DOUBLE_EQ(retry_delay_seconds(1, {}, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(retry_delay_seconds(4, {}, 0.5), 4.0);
  EXPECT_DOUBLE_EQ(retry_delay_seconds(30, {}, 1.0), 300.0);
  EXPECT_DOUBLE_EQ(retry_delay_seconds(1, {7.0, std::nullopt, std::nullopt}, 0.0), 7.0);
  EXPECT_DOUBLE_EQ(retry_delay_seconds(1, {std::nullopt, 0, std::nullopt}, 0.0), 10.0);
  EXPECT_DOUBLE_EQ(retry_delay_seconds(1, {std::nullopt, 0, 2000.0}, 0.0), 2.0);
}

TEST(WritebackTest, RequestWindowNeverExceedsCapacityInAnyWindow) {
  RequestWindow w(3, 10);
  EXPECT_EQ(w.take(0), 0);
  EXPECT_EQ(w.take(1), 0);
  EXPECT_EQ(w.take(2), 0);
  EXPECT_DOUBLE_EQ(w.take(5), 5);  // the first leaves the window at 10
  EXPECT_DOUBLE_EQ(w.take(10), 0);
  EXPECT_DOUBLE_EQ(w.take(10.5), 0.5);
  EXPECT_DOUBLE_EQ(w.wait_for(1, 10.5), 0.5);
  EXPECT_DOUBLE_EQ(w.wait_for(2, 10.5), 1.5);  // the ones at 1 and 2 must leave
  w.block_until(20);
  EXPECT_DOUBLE_EQ(w.take(15), 5);
  EXPECT_EQ(w.take(20), 0);
}

TEST(SecretBoxTest, SealsAndOpensOnlyWithItsKey) {
  auto box = SecretBox::from_key(std::string(64, 'a')).value();
  auto other = SecretBox::from_key(std::string(32, 'k')).value();
  const std::string sealed = box.seal("pit-123");
  EXPECT_EQ(sealed.find("pit-123"), std::string::npos);
  EXPECT_NE(box.seal("pit-123"), sealed);  // fresh nonce
  EXPECT_EQ(box.open(sealed).value(), "pit-123");
  EXPECT_EQ(box.open(box.seal("")).value(), "");
  EXPECT_EQ(other.open(sealed).status().code(), StatusCode::kUnauthenticated);
  std::string altered = sealed;
  altered[10] = altered[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(box.open(altered).has_value());
  EXPECT_EQ(box.open("!!").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(box.open("AAAA").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SecretBox::from_key("short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SecretBox::from_key_file("/nonexistent/key").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace reai::ghl

#include "ghl/contact_export.h"

namespace reai::ghl {
namespace {

TEST(ContactExportTest, ReadsGhlExportColumnsAndReportsBadRows) {
  const std::string csv =
      "Contact Id,First Name,Last Name,Name,Phone,Email,Created,Last Activity,Tags,Source\n"
      "c1,Dana,Reyes,Dana Reyes,+15125550101,dana@example.com,2026-07-01 09:00:00,,\"buyer, vip\",zillow\n"
      "c2,Lee,Ng,Lee Ng,,lee@example.com,2026-07-02T10:00:00Z,,seller,\n"
      ",No,Id,,,,,,,\n"
      "c3,Bad,Date,,,,yesterday,,,\n"
      "c1,Dana,Reyes,Dana Reyes,,dana@example.com,2026-07-01,,,referral\n";
  auto e = parse_contact_export(csv, "t1").value();
  ASSERT_EQ(e.contacts.size(), 2u);
  EXPECT_EQ(e.contacts[0].contact_id, "c1");  // the later row wins
  EXPECT_EQ(e.contacts[0].source, "referral");
  EXPECT_EQ(e.contacts[0].has_phone, std::optional<bool>(false));
  EXPECT_EQ(e.contacts[0].created_at, 1782864000);  // 2026-07-01T00:00:00Z
  EXPECT_EQ(e.contacts[1].tenant_id, "t1");
  EXPECT_EQ(e.contacts[1].lead_type, LeadType::kSeller);
  EXPECT_EQ(e.contacts[1].has_phone, std::optional<bool>(false));
  EXPECT_EQ(e.contacts[1].has_email, std::optional<bool>(true));
  ASSERT_EQ(e.skipped.size(), 2u);
  EXPECT_NE(e.skipped[0].find("line 4"), std::string::npos);
  EXPECT_NE(e.skipped[1].find("yesterday"), std::string::npos);
  EXPECT_EQ(parse_contact_export("Name,Email\nx,y\n", "t1").status().code(), StatusCode::kInvalidArgument);
  auto first = parse_contact_export(
                   "Contact Id,Created,Tags\nc9,2026-07-01 09:00:00,Buyer\n", "t1")
                   .value();
  EXPECT_EQ(first.contacts[0].created_at, 1782896400);
  EXPECT_EQ(first.contacts[0].lead_type, LeadType::kBuyer);
}

}  // namespace
}  // namespace reai::ghl
