#include "core/types.h"

#include <algorithm>
#include <array>

namespace reai {
namespace {

constexpr std::array<std::string_view, kEventTypeCount> kEventTypeNames = {
    "page_view",   "property_view", "property_save", "tour_request", "saved_search",
    "email_open",  "email_click",   "sms_in",        "call_in",      "form_submit",
    "sms_out",     "call_out",      "email_out",     "appointment_booked",
    "appointment_showed",
};

constexpr std::array<std::string_view, 5> kLeadTypeNames = {"unknown", "buyer", "seller", "both",
                                                            "investor"};

constexpr std::array<std::string_view, 6> kStageNames = {"signed", "active",  "offer",
                                                         "under_contract", "closed", "lost"};

}  // namespace

std::string_view event_type_name(EventType type) {
  return kEventTypeNames[static_cast<std::size_t>(type)];
}

std::optional<EventType> parse_event_type(std::string_view name) {
  for (std::size_t i = 0; i < kEventTypeNames.size(); ++i) {
    if (kEventTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

bool is_outreach(EventType type) {
  return type == EventType::kSmsOut || type == EventType::kCallOut || type == EventType::kEmailOut;
}

bool is_inbound_contact(EventType type) {
  return type == EventType::kSmsIn || type == EventType::kCallIn || type == EventType::kFormSubmit;
}

bool is_property_event(EventType type) {
  return type == EventType::kPropertyView || type == EventType::kPropertySave ||
         type == EventType::kTourRequest;
}

std::string_view lead_type_name(LeadType type) {
  return kLeadTypeNames[static_cast<std::size_t>(type)];
}

LeadType parse_lead_type(std::string_view name) {
  for (std::size_t i = 1; i < kLeadTypeNames.size(); ++i) {
    if (kLeadTypeNames[i] == name) return static_cast<LeadType>(i);
  }
  return LeadType::kUnknown;
}

void note_budget_statement(const std::optional<double>& before, bool stored, UnixSeconds now, Contact* contact) {
  if (contact->budget != before) contact->budget_stated_at = stored ? now : std::max<UnixSeconds>(0, contact->created_at);
}

std::string_view stage_name(Stage stage) { return kStageNames[static_cast<std::size_t>(stage)]; }

std::optional<Stage> parse_stage(std::string_view name) {
  for (std::size_t i = 0; i < kStageNames.size(); ++i) {
    if (kStageNames[i] == name) return static_cast<Stage>(i);
  }
  return std::nullopt;
}

}  // namespace reai
