#include "ghl/ghl.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/time.h"
#include "support/ghl_signer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace reai::ghl {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in("tests/fixtures/ghl/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

FieldMapping test_mapping() {
  auto m = parse_field_mapping(R"({"budget":["fBudget01","Budget"],"timeline":["fTimeline01","Timeline"],
      "pre_approval":["fPreApp01","Pre-approved"],
      "stages":{"3f0c2b9e-5d1a-4c8e-9b7a-0e6d5c4b3a21":"offer"}})");
  EXPECT_TRUE(m.has_value()) << m.status().message();
  return *m;
}

Mapped map_fixture(const std::string& name) {
  auto m = map_webhook(fixture(name), "t1", test_mapping());
  EXPECT_TRUE(m.has_value()) << name << ": " << m.status().message();
  return m.has_value() ? *m : Mapped{};
}

// --- signatures ---------------------------------------------------------------

class VerifierTest : public ::testing::Test {
 protected:
  testing::GhlSigner signer_;
  testing::GhlSigner other_;
  SignatureVerifier verifier_ =
      SignatureVerifier::from_pem(signer_.ed25519_public_pem(), signer_.rsa_public_pem()).value();
  std::string body_ = fixture("inbound_sms.json");
};

TEST_F(VerifierTest, Ed25519SignatureOverTheRawBodyVerifies) {
  EXPECT_TRUE(verifier_.verify(body_, signer_.sign_ed25519(body_), "").is_ok());
}

TEST_F(VerifierTest, RsaSignatureIsTheFallback) {
  EXPECT_TRUE(verifier_.verify(body_, "", signer_.sign_rsa(body_)).is_ok());
}

TEST_F(VerifierTest, TamperedBodyIsRefusedUnderBothSchemes) {
  std::string tampered = body_;
  tampered[tampered.find("inbound")] = 'I';
  EXPECT_EQ(verifier_.verify(tampered, signer_.sign_ed25519(body_), "").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(verifier_.verify(tampered, "", signer_.sign_rsa(body_)).code(), StatusCode::kUnauthenticated);
  // One extra byte of whitespace is a different body.
  EXPECT_EQ(verifier_.verify(body_ + " ", signer_.sign_ed25519(body_), "").code(), StatusCode::kUnauthenticated);
}

TEST_F(VerifierTest, MissingSignatureIsRefused) {
  Status s = verifier_.verify(body_, "", "");
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("missing"), std::string::npos);
}

TEST_F(VerifierTest, SignatureOfAnotherKeyIsRefused) {
  EXPECT_EQ(verifier_.verify(body_, other_.sign_ed25519(body_), "").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(verifier_.verify(body_, "", other_.sign_rsa(body_)).code(), StatusCode::kUnauthenticated);
}

TEST_F(VerifierTest, WrongEd25519IsNotRescuedByAGoodRsaSignature) {
  EXPECT_EQ(verifier_.verify(body_, other_.sign_ed25519(body_), signer_.sign_rsa(body_)).code(),
            StatusCode::kUnauthenticated);
}

TEST_F(VerifierTest, GarbageSignaturesAreRefused) {
  const std::vector<std::string> sigs = {"not base64!", "====", "AAAA", "A", std::string("\0\0\0\0", 4)};
  for (const std::string& sig : sigs) {
    EXPECT_EQ(verifier_.verify(body_, sig, "").code(), StatusCode::kUnauthenticated) << sig;
    EXPECT_EQ(verifier_.verify(body_, "", sig).code(), StatusCode::kUnauthenticated) << sig;
  }
  EXPECT_EQ(verifier_.verify(body_, std::string(10000, 'A'), "").code(), StatusCode::kUnauthenticated);
}

TEST(Verifier, DefaultKeyIsGhlsPublishedKeyAndRsaIsOffWithoutAKey) {
  testing::GhlSigner signer;
  auto v = SignatureVerifier::from_pem("", "");
  ASSERT_TRUE(v.has_value()) << v.status().message();
  const std::string body = R"({"type":"x"})";
  EXPECT_EQ(v->verify(body, signer.sign_ed25519(body), "").code(), StatusCode::kUnauthenticated);
  Status rsa = v->verify(body, "", signer.sign_rsa(body));
  EXPECT_EQ(rsa.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(rsa.message().find("no RSA key"), std::string::npos);
}

TEST(Verifier, BadKeysAreInvalidArgumentAndMissingFilesNotFound) {
  testing::GhlSigner signer;
  EXPECT_EQ(SignatureVerifier::from_pem("not a pem", "").status().code(), StatusCode::kInvalidArgument);
  // An RSA key where the Ed25519 key belongs, and the reverse.
  EXPECT_EQ(SignatureVerifier::from_pem(signer.rsa_public_pem(), "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureVerifier::from_pem("", signer.ed25519_public_pem()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureVerifier::from_files("/nonexistent/ed.pem", "").status().code(), StatusCode::kNotFound);
}

// --- envelope, freshness ------------------------------------------------------

TEST(Envelope, ReadsRoutingFields) {
  auto e = parse_envelope(fixture("inbound_sms.json"));
  ASSERT_TRUE(e.has_value()) << e.status().message();
  EXPECT_EQ(e->type, "InboundMessage");
  EXPECT_EQ(e->location_id, "LOC8f2k1m9q0a7s6d5f4g");
  EXPECT_EQ(e->webhook_id, "9c1f4e2a-0d6b-4a8e-b7f3-2e5d8c1a9b70");
  EXPECT_EQ(e->timestamp, *parse_iso8601("2026-07-02T10:00:01Z"));
}

TEST(Envelope, RefusesMalformedIncompleteAndOversizeDeliveries) {
  const std::string base = R"("type":"ContactCreate","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z")";
  EXPECT_TRUE(parse_envelope("{" + base + "}").has_value());
  for (const std::string& bad : std::vector<std::string>{std::string("{"), std::string("[]"), std::string("null"),
                                std::string(R"({"locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z"})"),
                                std::string(R"({"type":"X","webhookId":"W","timestamp":"2026-07-02T10:00:01Z"})"),
                                std::string(R"({"type":"X","locationId":"L","timestamp":"2026-07-02T10:00:01Z"})"),
                                std::string(R"({"type":"X","locationId":"L","webhookId":"W"})"),
                                std::string(R"({"type":"X","locationId":"L","webhookId":"W","timestamp":"yesterday"})"),
                                std::string(R"({"type":7,"locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z"})")}) {
    EXPECT_EQ(parse_envelope(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // The message names the field and what it must be, also when it is there
  // with another type (a number is not a "missing" id).
  EXPECT_EQ(parse_envelope(R"({"type":"X","locationId":"L","webhookId":12,"timestamp":"2026-07-02T10:00:01Z"})")
                .status()
                .message(),
            "webhookId must be a non-empty string");
  EXPECT_EQ(parse_envelope(R"({"type":"X","webhookId":"W","timestamp":"2026-07-02T10:00:01Z"})").status().message(),
            "locationId must be a non-empty string");
  EXPECT_EQ(parse_envelope(R"({"type":"","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z"})")
                .status()
                .message(),
            "type must be a non-empty string");
  std::string big = "{" + base + R"(,"pad":")" + std::string(kMaxDeliveryBytes, 'x') + "\"}";
  EXPECT_EQ(parse_envelope(big).status().code(), StatusCode::kPayloadTooLarge);
  EXPECT_EQ(parse_envelope(std::string(100, '[')).status().code(), StatusCode::kInvalidArgument);
}

TEST(Freshness, OlderThanFiveMinutesOrFarFutureIsRefused) {
  const UnixSeconds now = 1'800'000'000;
  EXPECT_TRUE(check_fresh(now, now).is_ok());
  EXPECT_TRUE(check_fresh(now - 300, now).is_ok());
  EXPECT_EQ(check_fresh(now - 301, now).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(check_fresh(now - 86400, now).code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(check_fresh(now + 60, now).is_ok());
  EXPECT_EQ(check_fresh(now + 3600, now).code(), StatusCode::kUnauthenticated);
}

// --- field mapping ------------------------------------------------------------

TEST(FieldMappingParse, AcceptsStringsArraysAndStages) {
  FieldMapping m = test_mapping();
  EXPECT_EQ(m.budget, (std::vector<std::string>{"fBudget01", "Budget"}));
  EXPECT_EQ(m.stages.at("3f0c2b9e-5d1a-4c8e-9b7a-0e6d5c4b3a21"), Stage::kOffer);
  EXPECT_TRUE(parse_field_mapping("").value().budget.empty());
  EXPECT_EQ(parse_field_mapping(R"({"budget":"f1"})").value().budget, std::vector<std::string>{"f1"});
}

TEST(FieldMappingParse, RefusesUnknownKeysStagesAndShapes) {
  for (const char* bad : {"{", "[]", R"({"budgets":"f"})", R"({"budget":7})", R"({"budget":[7]})",
                          R"({"stages":{"s1":"escrow"}})", R"({"stages":[]})"}) {
    EXPECT_EQ(parse_field_mapping(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// --- every event type -----------------------------------------------------------

TEST(MapWebhook, ContactCreateMapsFieldsThroughTheTenantMapping) {
  Mapped m = map_fixture("contact_create.json");
  ASSERT_EQ(m.action, Action::kRecords);
  ASSERT_TRUE(m.contact.has_value());
  const ContactPatch& p = *m.contact;
  EXPECT_EQ(p.contact_id, "CONa1b2c3d4e5f6g7h8i9");
  EXPECT_EQ(p.created_at, parse_iso8601("2026-07-01T09:00:00Z"));
  EXPECT_EQ(p.source, "zillow");
  EXPECT_EQ(p.assigned_agent_id, "USRagent01");
  EXPECT_EQ(p.budget, 450000.0);
  EXPECT_EQ(p.timeline_months, 3);
  EXPECT_EQ(p.pre_approved, true);
  EXPECT_EQ(p.has_email, true);
  EXPECT_EQ(p.has_phone, true);
  EXPECT_TRUE(m.events.empty());
  EXPECT_TRUE(m.warnings.empty());
}

// A brokerage keeps buyer/seller in a GHL dropdown field: mapped through
// "lead_type" (by id for app webhooks, by label for workflow ones), read by
// its words; an unusable value is a warning, the rest of the delivery holds.
TEST(MapWebhook, LeadTypeFieldMapsDropdownLabels) {
  auto mapping = parse_field_mapping(R"({"lead_type":["fType01","Lead Type"]})");
  ASSERT_TRUE(mapping.has_value()) << mapping.status().message();
  auto contact = [&](const std::string& value) {
    return map_webhook(R"({"type":"ContactCreate","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z",)"
                       R"("id":"c1","customFields":[{"id":"fType01","value":")" + value + R"("}]})",
                       "t1", *mapping);
  };
  for (const auto& [value, expected] : {std::pair{"buyer", LeadType::kBuyer}, {"Home Buyer", LeadType::kBuyer},
                                        {"SELLER", LeadType::kSeller}, {"Buyer & Seller", LeadType::kBoth},
                                        {"both", LeadType::kBoth}, {"Real estate investor", LeadType::kInvestor}}) {
    auto m = contact(value);
    ASSERT_TRUE(m.has_value()) << value << ": " << m.status().message();
    ASSERT_TRUE(m->contact.has_value());
    EXPECT_EQ(m->contact->lead_type, expected) << value;
    EXPECT_TRUE(states_fields(*m->contact));
  }
  auto unusable = contact("renter");
  ASSERT_TRUE(unusable.has_value());
  EXPECT_FALSE(unusable->contact->lead_type.has_value());
  ASSERT_EQ(unusable->warnings.size(), 1u);
  EXPECT_NE(unusable->warnings[0].find("lead type field 'fType01'"), std::string::npos);

  Contact stored;
  stored.lead_type = LeadType::kSeller;
  apply_patch(*contact("buyer")->contact, &stored);
  EXPECT_EQ(stored.lead_type, LeadType::kBuyer);
  ContactPatch silent;
  apply_patch(silent, &stored);
  EXPECT_EQ(stored.lead_type, LeadType::kBuyer);

  auto workflow = map_workflow(R"({"contact_id":"c2","Lead Type":"Investor"})", "t1", *mapping, 1'800'000'000);
  ASSERT_TRUE(workflow.has_value()) << workflow.status().message();
  EXPECT_EQ(workflow->mapped.contact->lead_type, LeadType::kInvestor);
}

TEST(MapWebhook, ContactUpdateKeepsUnstatedFieldsAndWarnsOnUnusableValues) {
  Mapped m = map_fixture("contact_update.json");
  ASSERT_TRUE(m.contact.has_value());
  EXPECT_EQ(m.contact->budget, 610000.0);
  EXPECT_FALSE(m.contact->timeline_months.has_value());  // "soon"
  EXPECT_EQ(m.contact->pre_approved, false);
  EXPECT_EQ(m.contact->has_email, false);
  EXPECT_FALSE(m.contact->source.has_value());
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_NE(m.warnings[0].find("timeline"), std::string::npos);

  Contact c;
  c.source = "referral";
  c.budget = 1;
  c.timeline_months = 12;
  c.has_email = true;
  apply_patch(*m.contact, &c);
  EXPECT_EQ(c.source, "referral");
  EXPECT_EQ(c.budget, 610000.0);
  EXPECT_EQ(c.timeline_months, 12);
  EXPECT_EQ(c.has_email, false);
}

TEST(MapWebhook, TagAndDndUpdatesTouchTheContactOnly) {
  for (const char* name : {"contact_tag_update.json", "contact_dnd_update.json"}) {
    Mapped m = map_fixture(name);
    EXPECT_EQ(m.action, Action::kRecords) << name;
    ASSERT_TRUE(m.contact.has_value());
    EXPECT_EQ(m.contact->contact_id, "CONa1b2c3d4e5f6g7h8i9");
    EXPECT_FALSE(m.contact->budget.has_value());
    EXPECT_TRUE(m.events.empty());
  }
}

TEST(MapWebhook, DeletionsAreIgnoredWithAReason) {
  for (const char* name : {"contact_delete.json", "appointment_delete.json", "opportunity_delete.json"}) {
    Mapped m = map_fixture(name);
    EXPECT_EQ(m.action, Action::kIgnored) << name;
    EXPECT_NE(m.ignored_reason.find("deletion"), std::string::npos) << name;
    EXPECT_TRUE(m.events.empty());
  }
}

struct MessageCase {
  const char* fixture;
  EventType type;
  const char* event_id;
  const char* ts;
};

TEST(MapWebhook, MessagesBecomeEventsByChannelAndDirection) {
  const MessageCase cases[] = {
      {"inbound_sms.json", EventType::kSmsIn, "ghl-msg-MSGq1w2e3r4t5y6u7i8o9", "2026-07-02T10:00:00Z"},
      {"outbound_sms.json", EventType::kSmsOut, "ghl-msg-MSGsms0003", "2026-07-02T10:01:00Z"},
      {"outbound_call.json", EventType::kCallOut, "ghl-msg-MSGcall0001", "2026-07-02T10:05:00Z"},
      // Named OutboundMessage, but `direction` is what counts.
      {"inbound_call_misnamed.json", EventType::kCallIn, "ghl-msg-MSGcall0002", "2026-07-02T10:06:00Z"},
      {"outbound_email.json", EventType::kEmailOut, "ghl-msg-MSGemail0001", "2026-07-02T11:00:00Z"},
      {"inbound_email.json", EventType::kSmsIn, "ghl-msg-MSGemail0002", "2026-07-02T11:30:00Z"},
  };
  for (const auto& c : cases) {
    Mapped m = map_fixture(c.fixture);
    ASSERT_EQ(m.action, Action::kRecords) << c.fixture;
    ASSERT_EQ(m.events.size(), 1u) << c.fixture;
    const Event& e = m.events[0];
    EXPECT_EQ(e.type, c.type) << c.fixture;
    EXPECT_EQ(e.event_id, c.event_id);
    EXPECT_EQ(e.tenant_id, "t1");
    EXPECT_EQ(e.contact_id, "CONa1b2c3d4e5f6g7h8i9");
    EXPECT_EQ(e.ts, *parse_iso8601(c.ts)) << c.fixture;
  }
}

// A message or appointment names its contact only (the server then makes
// the contact exist without replacing it); a contact delivery states fields.
TEST(MapWebhook, OnlyContactDeliveriesStateContactFields) {
  for (const char* name : {"inbound_sms.json", "appointment_create.json", "opportunity_stage_update.json"}) {
    Mapped m = map_fixture(name);
    ASSERT_TRUE(m.contact.has_value()) << name;
    EXPECT_FALSE(states_fields(*m.contact)) << name;
  }
  for (const char* name : {"contact_create.json", "contact_update.json"}) {
    Mapped m = map_fixture(name);
    ASSERT_TRUE(m.contact.has_value()) << name;
    EXPECT_TRUE(states_fields(*m.contact)) << name;
  }
  ContactPatch only_phone;
  only_phone.contact_id = "c1";
  only_phone.has_phone = false;  // stated, even though false
  EXPECT_TRUE(states_fields(only_phone));
}

TEST(MapWebhook, UnscoredChannelsAndMissingDirectionAreIgnored) {
  const std::string head = R"({"type":"InboundMessage","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z","contactId":"C","messageId":"M",)";
  auto fax = map_webhook(head + R"("messageType":"FAX","direction":"inbound"})", "t1", {});
  ASSERT_TRUE(fax.has_value());
  EXPECT_EQ(fax->action, Action::kIgnored);
  auto no_direction = map_webhook(head + R"("messageType":"SMS"})", "t1", {});
  ASSERT_TRUE(no_direction.has_value());
  EXPECT_EQ(no_direction->action, Action::kIgnored);
  auto no_contact = map_webhook(
      R"({"type":"InboundMessage","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z","messageId":"M","messageType":"SMS","direction":"inbound"})",
      "t1", {});
  EXPECT_EQ(no_contact.status().code(), StatusCode::kInvalidArgument);
}

TEST(MapWebhook, AppointmentsAreBookedOnceAndShowedSeparately) {
  Mapped booked = map_fixture("appointment_create.json");
  ASSERT_EQ(booked.events.size(), 1u);
  EXPECT_EQ(booked.events[0].type, EventType::kAppointmentBooked);
  EXPECT_EQ(booked.events[0].event_id, "ghl-appt-APTz9y8x7w6v5");
  EXPECT_EQ(booked.events[0].ts, *parse_iso8601("2026-07-02T12:00:00Z"));
  Mapped showed = map_fixture("appointment_update_showed.json");
  ASSERT_EQ(showed.events.size(), 1u);
  EXPECT_EQ(showed.events[0].type, EventType::kAppointmentShowed);
  EXPECT_EQ(showed.events[0].event_id, "ghl-appt-APTz9y8x7w6v5-showed");
  EXPECT_EQ(showed.events[0].ts, *parse_iso8601("2026-07-04T15:00:00Z"));
}

TEST(MapWebhook, OpportunitiesBecomeStageRows) {
  Mapped open = map_fixture("opportunity_stage_update.json");
  ASSERT_EQ(open.stages.size(), 1u);
  const OpportunityStage& s = open.stages[0];
  EXPECT_EQ(s.stage, Stage::kOffer);  // through the tenant's stage mapping
  EXPECT_EQ(s.opportunity_id, "OPP77aa88bb");
  EXPECT_EQ(s.contact_id, "CONa1b2c3d4e5f6g7h8i9");
  EXPECT_EQ(s.agent_id, "USRagent01");
  EXPECT_EQ(s.monetary_value, 450000.0);
  EXPECT_EQ(s.ts, *parse_iso8601("2026-07-05T09:00:00Z"));
  EXPECT_EQ(s.tenant_id, "t1");

  Mapped won = map_fixture("opportunity_status_won.json");
  ASSERT_EQ(won.stages.size(), 1u);
  EXPECT_EQ(won.stages[0].stage, Stage::kClosed);
  EXPECT_EQ(won.stages[0].monetary_value, 455000.0);

  Mapped unmapped = map_fixture("opportunity_create_unmapped.json");
  EXPECT_EQ(unmapped.action, Action::kRecords);
  EXPECT_TRUE(unmapped.stages.empty());
  ASSERT_EQ(unmapped.warnings.size(), 1u);
  EXPECT_NE(unmapped.warnings[0].find("unmapped-stage"), std::string::npos);
}

TEST(MapWebhook, NotesAndTasksMakeTheContactKnownWithoutEvents) {
  for (const char* name : {"note_create.json", "task_create.json", "task_complete.json"}) {
    Mapped m = map_fixture(name);
    EXPECT_EQ(m.action, Action::kRecords) << name;
    ASSERT_TRUE(m.contact.has_value());
    EXPECT_EQ(m.contact->contact_id, "CONa1b2c3d4e5f6g7h8i9");
    EXPECT_TRUE(m.events.empty());
    EXPECT_TRUE(m.stages.empty());
  }
}

TEST(MapWebhook, OverlongIdsAreRefused) {
  const std::string id(129, 'x');
  const std::string head = R"({"locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z",)";
  EXPECT_EQ(map_webhook(head + R"("type":"ContactCreate","id":")" + id + "\"}", "t1", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(map_webhook(head + R"("type":"InboundMessage","contactId":"c","messageType":"SMS","direction":"inbound","messageId":")" +
                            id + "\"}",
                        "t1", {})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(map_workflow(R"({"contact_id":")" + id + "\"}", "t1", {}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(map_webhook(head + R"("type":"ContactCreate","id":")" + std::string(128, 'x') + "\"}", "t1", {}).has_value());
}

TEST(MapWebhook, InstallUninstallAndUnknownTypes) {
  EXPECT_EQ(map_fixture("install.json").action, Action::kInstall);
  EXPECT_EQ(map_fixture("uninstall.json").action, Action::kUninstall);
  Mapped unknown = map_fixture("unknown_type.json");
  EXPECT_EQ(unknown.action, Action::kIgnored);
  EXPECT_NE(unknown.ignored_reason.find("InvoicePaid"), std::string::npos);
}

// --- workflow webhooks ----------------------------------------------------------

TEST(MapWorkflow, SnakeCaseContactLabelsAndMessage) {
  const std::string body = fixture("workflow_inbound_sms.json");
  auto d = map_workflow(body, "t1", test_mapping(), 1'800'000'000);
  ASSERT_TRUE(d.has_value()) << d.status().message();
  EXPECT_EQ(d->secret, "wf-shared-secret");
  EXPECT_EQ(d->dedup_key, "wf:WF-inbound-sms:CONwf0001:" + sha256_hex(body));
  ASSERT_TRUE(d->mapped.contact.has_value());
  EXPECT_EQ(d->mapped.contact->budget, 350000.0);
  EXPECT_EQ(d->mapped.contact->timeline_months, 6);
  EXPECT_EQ(d->mapped.contact->pre_approved, false);
  EXPECT_EQ(d->mapped.contact->source, "facebook");
  EXPECT_EQ(d->mapped.contact->created_at, parse_iso8601("2026-06-30T08:00:00Z"));
  ASSERT_EQ(d->mapped.events.size(), 1u);
  EXPECT_EQ(d->mapped.events[0].type, EventType::kSmsIn);
  EXPECT_EQ(d->mapped.events[0].ts, 1'800'000'000);
  // The same body maps to the same event id (idempotent redelivery); another
  // body does not.
  auto again = map_workflow(body, "t1", test_mapping(), 1'800'000'100);
  EXPECT_EQ(again->mapped.events[0].event_id, d->mapped.events[0].event_id);
  std::string other = body;
  other.replace(other.find("Sunday"), 6, "Monday");
  EXPECT_NE(map_workflow(other, "t1", test_mapping(), 0)->dedup_key, d->dedup_key);
}

TEST(MapWorkflow, RefusesBodiesWithoutContact) {
  EXPECT_EQ(map_workflow(R"({"first_name":"x"})", "t1", {}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(map_workflow("[1]", "t1", {}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(map_workflow(std::string(kMaxDeliveryBytes + 1, ' '), "t1", {}, 0).status().code(),
            StatusCode::kPayloadTooLarge);
}

TEST(Secrets, CompareWholeValues) {
  EXPECT_TRUE(secrets_equal("abc", "abc"));
  EXPECT_FALSE(secrets_equal("abc", "abd"));
  EXPECT_FALSE(secrets_equal("abc", "ab"));
  EXPECT_FALSE(secrets_equal("", ""));  // an unset secret never authenticates
}

// --- fuzz corpus ------------------------------------------------------------------

TEST(GhlParserFuzz, NastyInputsDoNotCrash) {
  std::vector<std::string> corpus = {
      "", "{", "}", "null", "[]", "{}", "\"s\"", "1e999999",
      R"({"type":"ContactCreate","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z","id":"c","customFields":[1,null,{"id":"f-budget","value":[1,2]},{"id":"f-timeline","value":"9999999999999999999999"},{"id":"f-pre","value":{}}]})",
      R"({"type":"InboundMessage","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z","contactId":"c","messageId":"m","messageType":null,"direction":7})",
      R"({"type":"AppointmentCreate","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z","appointment":[]})",
      R"({"type":"OpportunityUpdate","locationId":"L","webhookId":"W","timestamp":"2026-07-02T10:00:01Z","id":"o","contactId":"c","monetaryValue":1e308,"status":"won"})",
      R"({"contact_id":"c","Budget":"$","Timeline":-5,"message":{"type":"SMS","direction":"sideways"},"workflow":7})",
      R"({"budget":[],"stages":{"":"offer"}})",
      "{\"type\":\"\xff\xfe\",\"locationId\":\"\\u0000\",\"webhookId\":\"\\ud800\",\"timestamp\":\"2026-02-30T00:00:00Z\"}",
      std::string(10000, '['), std::string(10000, '{'),
  };
  for (const char* name : {"contact_create.json", "inbound_sms.json", "workflow_inbound_sms.json"}) {
    std::string f = fixture(name);
    for (std::size_t cut = 0; cut < f.size(); cut += 7) corpus.push_back(f.substr(0, cut));
  }
  for (const auto& input : corpus) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()), 0);
  }
}

}  // namespace
}  // namespace reai::ghl
