// Domain types shared by every module: contacts (leads), CRM events and
// opportunity pipeline rows. Plain value types; they know nothing of storage,
// transport or models. Field meanings follow shared/data/README.md (crm/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace reai {

// Seconds since the Unix epoch, UTC. CRM timestamps have second resolution.
using UnixSeconds = std::int64_t;

// CRM activity types. Inbound types are the lead acting; outreach types are the
// agent acting. Values are stable: they index feature arrays and are persisted.
enum class EventType : std::uint8_t {
  kPageView = 0,
  kPropertyView,
  kPropertySave,
  kTourRequest,
  kSavedSearch,
  kEmailOpen,
  kEmailClick,
  kSmsIn,
  kCallIn,
  kFormSubmit,
  kSmsOut,
  kCallOut,
  kEmailOut,
  kAppointmentBooked,
  kAppointmentShowed,
};
inline constexpr int kEventTypeCount = 15;

// "property_view" <-> EventType::kPropertyView. parse returns nullopt for an
// unknown name.
std::string_view event_type_name(EventType type);
std::optional<EventType> parse_event_type(std::string_view name);

// The agent's outreach (sms_out, call_out, email_out).
bool is_outreach(EventType type);
// The lead reaching out in person: sms_in, call_in, form_submit.
bool is_inbound_contact(EventType type);
// Events that carry a listing (property_view, property_save, tour_request).
bool is_property_event(EventType type);

enum class LeadType : std::uint8_t { kUnknown = 0, kBuyer, kSeller, kBoth, kInvestor };
std::string_view lead_type_name(LeadType type);
// Unknown or empty names map to kUnknown (never an error: CRMs vary).
LeadType parse_lead_type(std::string_view name);

struct Contact {
  std::string tenant_id;
  std::string contact_id;
  UnixSeconds created_at = 0;
  std::string source;  // zillow, referral, ... free text: brokerages differ
  LeadType lead_type = LeadType::kUnknown;
  std::string assigned_agent_id;
  std::optional<double> budget;  // USD
  std::optional<int> timeline_months;
  std::optional<bool> pre_approved;
  std::optional<int> beds_wanted;
  std::string area_wanted;
  std::optional<bool> has_phone;
  std::optional<bool> has_email;
  // When the budget was last stated (a budget's change, or its removal),
  // >= 0; 0 when unknown: a contact imported from history, whose budget
  // counts as stated before any behaviour. Matching holds saves and tours
  // after it against the budget (property::StatedCriteria). A store keeps
  // the stored time on a write that leaves the budget as it was.
  UnixSeconds budget_stated_at = 0;
};

// A contact's fields stated live at `now` (an API call, a CRM update) over
// the stored contact whose budget was `before` (`stored` false: none was
// stored): when the budget moved, it counts as stated at `now`, or for a
// new contact at its created_at (a lead arriving with its history states
// its budget when it began); otherwise its statement time stays.
void note_budget_statement(const std::optional<double>& before, bool stored, UnixSeconds now, Contact* contact);

struct Event {
  std::string tenant_id;
  std::string event_id;
  std::string contact_id;
  UnixSeconds ts = 0;
  EventType type = EventType::kPageView;
  std::string property_id;      // property events only
  std::optional<double> value;  // list price of property_id, USD
};

enum class Stage : std::uint8_t { kSigned = 0, kActive, kOffer, kUnderContract, kClosed, kLost };
std::string_view stage_name(Stage stage);
std::optional<Stage> parse_stage(std::string_view name);

struct OpportunityStage {
  std::string tenant_id;
  std::string opportunity_id;
  std::string contact_id;
  std::string agent_id;
  double monetary_value = 0;
  UnixSeconds ts = 0;
  Stage stage = Stage::kSigned;
};

// A lead converts when its opportunity reaches `signed` within this window of
// created_at (shared/data/README.md "Label conventions").
inline constexpr UnixSeconds kConversionWindowSeconds = 90 * 24 * 3600;

}  // namespace reai
