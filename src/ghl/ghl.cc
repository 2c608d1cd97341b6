#include "ghl/ghl.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/json_text.h"
#include "core/time.h"

namespace reai::ghl {
namespace json = boost::json;

struct SignatureVerifier::Keys {
  EVP_PKEY* ed25519 = nullptr;
  EVP_PKEY* rsa = nullptr;
  ~Keys() {
    EVP_PKEY_free(ed25519);
    EVP_PKEY_free(rsa);
  }
};

namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  std::string clean;
  clean.reserve(in.size());
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    clean.push_back(c);
  }
  if (clean.empty() || clean.size() % 4 != 0 || clean.size() > 4096) return std::nullopt;
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()), int(clean.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (clean.back() == '=') ++pad;
  if (clean[clean.size() - 2] == '=') ++pad;
  out.resize(std::size_t(n) - pad);
  return out;
}

Result<EVP_PKEY*> read_pem_key(std::string_view pem, int expected_type, const char* what) {
  BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  if (!bio) return internal_error("out of memory");
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return invalid_argument(std::string(what) + ": not a PEM public key");
  if (EVP_PKEY_base_id(key) != expected_type) {
    EVP_PKEY_free(key);
    return invalid_argument(std::string(what) + ": wrong key type");
  }
  return key;
}

bool verify_with(EVP_PKEY* key, const EVP_MD* md, std::string_view body, const std::string& sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(body.data()), body.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A delivery's body: one JSON object, bounded in size and depth. A key named
// twice keeps its last value, unlike a reai client's body: GHL authored it
// (signed, or sent with the tenant's workflow secret), its JavaScript reads
// duplicates that way, and refusing would lose a delivery nobody can correct
// (GHL retries only 429s). The route and the worker that re-reads the stored
// body both come here, so they always agree.
Result<json::value> parse_delivery_json(std::string_view body) {
  if (body.size() > kMaxDeliveryBytes) {
    return payload_too_large("delivery larger than " + std::to_string(kMaxDeliveryBytes) + " bytes");
  }
  json::parse_options opts;
  opts.max_depth = 32;
  auto parsed = reai::parse_json(body, opts, {}, DuplicateKeys::kLastWins);
  if (!parsed) return parsed.status();
  json::value& v = *parsed;
  if (!v.is_object()) return invalid_argument("delivery must be a JSON object");
  return v;
}

// The string at `key`, or "" when absent / not a string.
std::string str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return std::string(it->value().as_string());
}

const json::object* obj(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_object()) return nullptr;
  return &it->value().as_object();
}

std::optional<UnixSeconds> time_field(const json::object& o, std::string_view key) {
  const std::string s = str(o, key);
  if (s.empty()) return std::nullopt;
  return parse_iso8601(s);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<double> number_of(const json::value& v) {
  if (v.is_double()) return std::isfinite(v.as_double()) ? std::optional(v.as_double()) : std::nullopt;
  if (v.is_int64()) return double(v.as_int64());
  if (v.is_uint64()) return double(v.as_uint64());
  if (!v.is_string()) return std::nullopt;
  std::string digits;
  bool seen_digit = false;
  for (char c : v.as_string()) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
      seen_digit = true;
    } else if (c == '.') {
      digits.push_back(c);
    } else if (c == ',' || c == '$' || c == ' ') {
      continue;
    } else if (seen_digit) {
      break;  // "3 months", "6-12"
    } else {
      return std::nullopt;
    }
  }
  if (!seen_digit || digits.size() > 20) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(digits.c_str(), &end);
  if (!end || *end != '\0' || !std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<bool> bool_of(const json::value& v) {
  if (v.is_bool()) return v.as_bool();
  if (v.is_int64()) return v.as_int64() != 0;
  if (!v.is_string()) return std::nullopt;
  const std::string s = lower(v.as_string());
  if (s == "yes" || s == "true" || s == "y" || s == "1" || s == "pre-approved" || s == "preapproved") return true;
  if (s == "no" || s == "false" || s == "n" || s == "0") return false;
  return std::nullopt;
}

ContactPatch patch_for(const std::string& contact_id) {
  ContactPatch p;
  p.contact_id = contact_id;
  return p;
}

bool matches(const std::vector<std::string>& keys, std::string_view key) {
  for (const auto& k : keys)
    if (k == key) return true;
  return false;
}

// A lead type from a custom field's text: reai's names, or a dropdown label
// read by its words ("Home Buyer", "Buyer & Seller", "Investor"); nullopt
// when it names none.
std::optional<LeadType> lead_type_of(const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string t = lower(v.as_string());
  const bool buy = t.find("buy") != std::string::npos, sell = t.find("sell") != std::string::npos;
  if (t.find("invest") != std::string::npos) return LeadType::kInvestor;
  if (t == "both" || (buy && sell)) return LeadType::kBoth;
  if (buy) return LeadType::kBuyer;
  if (sell) return LeadType::kSeller;
  return std::nullopt;
}

// Applies one custom field value (by id or label) through the mapping.
void apply_custom_field(const FieldMapping& mapping, std::string_view key, const json::value& value, ContactPatch* patch,
                        std::vector<std::string>* warnings) {
  if (matches(mapping.budget, key)) {
    auto n = number_of(value);
    if (n && *n >= 0) patch->budget = *n;
    else warnings->push_back("budget field '" + std::string(key) + "' is not a number");
  } else if (matches(mapping.timeline, key)) {
    auto n = number_of(value);
    if (n && *n >= 0 && *n <= 600) patch->timeline_months = int(*n);
    else warnings->push_back("timeline field '" + std::string(key) + "' is not a number of months");
  } else if (matches(mapping.pre_approval, key)) {
    auto b = bool_of(value);
    if (b) patch->pre_approved = *b;
    else warnings->push_back("pre-approval field '" + std::string(key) + "' is not yes/no");
  } else if (matches(mapping.lead_type, key)) {
    auto t = lead_type_of(value);
    if (t) patch->lead_type = *t;
    else warnings->push_back("lead type field '" + std::string(key) + "' is not buyer/seller/both/investor");
  }
}

Result<Mapped> map_contact(const json::object& o, const std::string& type, const FieldMapping& mapping) {
  Mapped m;
  if (type == "ContactDelete") {
    m.ignored_reason = "contact deletion is not applied (history is kept)";
    return m;
  }
  ContactPatch p;
  p.contact_id = str(o, "id");
  if (p.contact_id.empty()) return invalid_argument(type + ": missing id");
  if (auto t = time_field(o, "dateAdded")) p.created_at = *t;
  if (auto it = o.find("source"); it != o.end() && it->value().is_string()) p.source = std::string(it->value().as_string());
  if (auto it = o.find("assignedTo"); it != o.end() && it->value().is_string()) {
    p.assigned_agent_id = std::string(it->value().as_string());
  }
  if (auto it = o.find("email"); it != o.end()) p.has_email = it->value().is_string() && !it->value().as_string().empty();
  if (auto it = o.find("phone"); it != o.end()) p.has_phone = it->value().is_string() && !it->value().as_string().empty();
  if (auto it = o.find("customFields"); it != o.end() && it->value().is_array()) {
    for (const auto& f : it->value().as_array()) {
      if (!f.is_object()) continue;
      const std::string id = str(f.as_object(), "id");
      auto v = f.as_object().find("value");
      if (id.empty() || v == f.as_object().end()) continue;
      apply_custom_field(mapping, id, v->value(), &p, &m.warnings);
    }
  }
  m.action = Action::kRecords;
  m.contact = std::move(p);
  return m;
}

// A message's reai event type from its channel and direction; nullopt for a
// channel reai does not score.
std::optional<EventType> message_event_type(std::string_view message_type, bool inbound) {
  const std::string t = lower(message_type);
  if (t == "call" || t == "type_call" || t == "voicemail" || t == "type_voicemail") {
    return inbound ? EventType::kCallIn : EventType::kCallOut;
  }
  if (t == "email" || t == "type_email") return inbound ? EventType::kSmsIn : EventType::kEmailOut;
  // Written conversations: SMS, WhatsApp, GMB, FB, IG, Live Chat.
  if (t == "sms" || t == "type_sms" || t == "gmb" || t == "fb" || t == "ig" || t == "live chat" || t == "live_chat" ||
      t == "whatsapp" || t == "type_live_chat") {
    return inbound ? EventType::kSmsIn : EventType::kSmsOut;
  }
  return std::nullopt;
}

Result<Mapped> map_message(const json::object& o, const std::string& type, UnixSeconds delivered_at,
                           const std::string& tenant_id) {
  Mapped m;
  const std::string contact_id = str(o, "contactId");
  const std::string message_id = str(o, "messageId");
  if (contact_id.empty() || message_id.empty()) return invalid_argument(type + ": missing contactId or messageId");
  const std::string direction = lower(str(o, "direction"));
  if (direction != "inbound" && direction != "outbound") {
    m.ignored_reason = "message without inbound/outbound direction";
    return m;
  }
  auto event_type = message_event_type(str(o, "messageType"), direction == "inbound");
  if (!event_type) {
    m.ignored_reason = "message type '" + str(o, "messageType") + "' is not scored";
    return m;
  }
  Event e;
  e.tenant_id = tenant_id;
  e.event_id = "ghl-msg-" + message_id;
  e.contact_id = contact_id;
  e.ts = time_field(o, "dateAdded").value_or(delivered_at);
  e.type = *event_type;
  m.action = Action::kRecords;
  m.contact = patch_for(contact_id);
  m.events.push_back(std::move(e));
  return m;
}

Result<Mapped> map_appointment(const json::object& o, const std::string& type, UnixSeconds delivered_at,
                               const std::string& tenant_id) {
  Mapped m;
  const json::object* a = obj(o, "appointment");
  if (!a) return invalid_argument(type + ": missing appointment object");
  const std::string id = str(*a, "id");
  const std::string contact_id = str(*a, "contactId");
  if (id.empty() || contact_id.empty()) return invalid_argument(type + ": missing appointment id or contactId");
  if (type == "AppointmentDelete") {
    m.ignored_reason = "appointment deletion is not applied";
    return m;
  }
  const std::string status = lower(str(*a, "appointmentStatus"));
  Event e;
  e.tenant_id = tenant_id;
  e.contact_id = contact_id;
  if (status == "showed") {
    e.type = EventType::kAppointmentShowed;
    e.event_id = "ghl-appt-" + id + "-showed";
    e.ts = time_field(*a, "startTime").value_or(delivered_at);
  } else if (status.empty() || status == "booked" || status == "confirmed" || status == "new") {
    // One booking per appointment id, whatever the number of updates.
    e.type = EventType::kAppointmentBooked;
    e.event_id = "ghl-appt-" + id;
    e.ts = delivered_at;
  } else {
    m.ignored_reason = "appointment status '" + status + "' is not scored";
    return m;
  }
  m.action = Action::kRecords;
  m.contact = patch_for(contact_id);
  m.events.push_back(std::move(e));
  return m;
}

Result<Mapped> map_opportunity(const json::object& o, const std::string& type, UnixSeconds delivered_at,
                               const std::string& tenant_id, const FieldMapping& mapping) {
  Mapped m;
  const std::string id = str(o, "id");
  const std::string contact_id = str(o, "contactId");
  if (id.empty() || contact_id.empty()) return invalid_argument(type + ": missing id or contactId");
  if (type == "OpportunityDelete") {
    m.ignored_reason = "opportunity deletion is not applied";
    return m;
  }
  const std::string status = lower(str(o, "status"));
  std::optional<Stage> stage;
  if (status == "won") stage = Stage::kClosed;
  else if (status == "lost" || status == "abandoned") stage = Stage::kLost;
  else if (auto it = mapping.stages.find(str(o, "pipelineStageId")); it != mapping.stages.end()) stage = it->second;
  m.contact = patch_for(contact_id);
  m.action = Action::kRecords;
  if (!stage) {
    m.warnings.push_back("pipeline stage '" + str(o, "pipelineStageId") + "' has no reai stage in the mapping");
    return m;
  }
  OpportunityStage s;
  s.tenant_id = tenant_id;
  s.opportunity_id = id;
  s.contact_id = contact_id;
  s.agent_id = str(o, "assignedTo");
  if (auto it = o.find("monetaryValue"); it != o.end()) {
    if (auto n = number_of(it->value()); n && *n >= 0) s.monetary_value = *n;
  }
  s.ts = delivered_at;
  s.stage = *stage;
  m.stages.push_back(std::move(s));
  return m;
}

// GHL ids are ~20-40 characters; anything far longer is not a GHL id and
// would only bloat the store.
constexpr std::size_t kMaxIdLength = 128;

Status check_id_lengths(const Mapped& m) {
  auto too_long = [](const std::string& id) { return id.size() > kMaxIdLength; };
  bool bad = m.contact && too_long(m.contact->contact_id);
  for (const auto& e : m.events) bad = bad || too_long(e.contact_id) || too_long(e.event_id);
  for (const auto& s : m.stages) bad = bad || too_long(s.opportunity_id) || too_long(s.agent_id);
  if (m.contact && m.contact->assigned_agent_id) bad = bad || too_long(*m.contact->assigned_agent_id);
  if (bad) return invalid_argument("an id is longer than " + std::to_string(kMaxIdLength) + " characters");
  return {};
}

Result<Mapped> checked(Result<Mapped> m) {
  if (!m) return m;
  REAI_RETURN_IF_ERROR(check_id_lengths(*m));
  return m;
}

}  // namespace

Result<SignatureVerifier> SignatureVerifier::from_pem(std::string_view ed25519_pem, std::string_view rsa_pem) {
  auto keys = std::make_shared<Keys>();
  if (ed25519_pem.empty()) {
    auto der = base64_decode(kGhlEd25519PublicKeySpki);
    if (!der) return internal_error("GHL default key is not base64");
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
    keys->ed25519 = d2i_PUBKEY(nullptr, &p, long(der->size()));
    if (!keys->ed25519) return internal_error("GHL default key does not parse");
  } else {
    auto key = read_pem_key(ed25519_pem, EVP_PKEY_ED25519, "Ed25519 key");
    if (!key) return key.status();
    keys->ed25519 = *key;
  }
  if (!rsa_pem.empty()) {
    auto key = read_pem_key(rsa_pem, EVP_PKEY_RSA, "RSA key");
    if (!key) return key.status();
    keys->rsa = *key;
  }
  return SignatureVerifier(std::move(keys));
}

Result<SignatureVerifier> SignatureVerifier::from_files(const std::string& ed25519_pem_file,
                                                        const std::string& rsa_pem_file) {
  std::string ed, rsa;
  if (!ed25519_pem_file.empty()) {
    auto text = read_file(ed25519_pem_file);
    if (!text) return text.status();
    ed = std::move(*text);
  }
  if (!rsa_pem_file.empty()) {
    auto text = read_file(rsa_pem_file);
    if (!text) return text.status();
    rsa = std::move(*text);
  }
  return from_pem(ed, rsa);
}

Status SignatureVerifier::verify(std::string_view body, std::string_view ghl_signature,
                                 std::string_view wh_signature) const {
  if (!ghl_signature.empty()) {
    auto sig = base64_decode(ghl_signature);
    if (!sig) return unauthenticated("X-GHL-Signature is not base64");
    if (!verify_with(keys_->ed25519, nullptr, body, *sig)) return unauthenticated("X-GHL-Signature does not verify");
    return {};
  }
  if (!wh_signature.empty()) {
    if (!keys_->rsa) return unauthenticated("x-wh-signature given but no RSA key is configured");
    auto sig = base64_decode(wh_signature);
    if (!sig) return unauthenticated("x-wh-signature is not base64");
    if (!verify_with(keys_->rsa, EVP_sha256(), body, *sig)) return unauthenticated("x-wh-signature does not verify");
    return {};
  }
  return unauthenticated("missing X-GHL-Signature");
}

Result<Envelope> parse_envelope(std::string_view body) {
  auto v = parse_delivery_json(body);
  if (!v) return v.status();
  const auto& o = v->as_object();
  Envelope e;
  e.type = str(o, "type");
  e.location_id = str(o, "locationId");
  e.webhook_id = str(o, "webhookId");
  // "missing" would mislead about a field that is there with a number in it.
  if (e.type.empty()) return invalid_argument("type must be a non-empty string");
  if (e.location_id.empty()) return invalid_argument("locationId must be a non-empty string");
  if (e.webhook_id.empty()) return invalid_argument("webhookId must be a non-empty string");
  if (e.location_id.size() > 128 || e.webhook_id.size() > 128 || e.type.size() > 64) {
    return invalid_argument("type, locationId or webhookId too long");
  }
  auto ts = time_field(o, "timestamp");
  if (!ts) return invalid_argument("missing or malformed timestamp");
  e.timestamp = *ts;
  return e;
}

Status check_fresh(UnixSeconds timestamp, UnixSeconds now) {
  if (timestamp < now - kMaxDeliveryAgeSeconds) return unauthenticated("delivery timestamp is older than 5 minutes");
  if (timestamp > now + kMaxDeliveryAgeSeconds) return unauthenticated("delivery timestamp is in the future");
  return {};
}

Result<FieldMapping> parse_field_mapping(std::string_view json_text) {
  FieldMapping m;
  if (json_text.find_first_not_of(" \t\r\n") == std::string_view::npos) return m;
  boost::system::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec) return invalid_argument("field mapping: malformed JSON: " + ec.message());
  if (!v.is_object()) return invalid_argument("field mapping must be a JSON object");
  auto keys_of = [](const json::value& x, std::vector<std::string>* out) -> Status {
    if (x.is_string()) {
      out->push_back(std::string(x.as_string()));
      return {};
    }
    if (!x.is_array()) return invalid_argument("field mapping: a field is a string or an array of strings");
    for (const auto& k : x.as_array()) {
      if (!k.is_string()) return invalid_argument("field mapping: a field is a string or an array of strings");
      out->push_back(std::string(k.as_string()));
    }
    return {};
  };
  for (const auto& kv : v.as_object()) {
    if (kv.key() == "budget") REAI_RETURN_IF_ERROR(keys_of(kv.value(), &m.budget));
    else if (kv.key() == "timeline") REAI_RETURN_IF_ERROR(keys_of(kv.value(), &m.timeline));
    else if (kv.key() == "pre_approval") REAI_RETURN_IF_ERROR(keys_of(kv.value(), &m.pre_approval));
    else if (kv.key() == "lead_type") REAI_RETURN_IF_ERROR(keys_of(kv.value(), &m.lead_type));
    else if (kv.key() == "stages") {
      if (!kv.value().is_object()) return invalid_argument("field mapping: stages must be an object");
      for (const auto& s : kv.value().as_object()) {
        auto stage = s.value().is_string() ? parse_stage(s.value().as_string()) : std::nullopt;
        if (!stage) return invalid_argument("field mapping: stage of '" + std::string(s.key()) + "' is not a reai stage");
        m.stages[std::string(s.key())] = *stage;
      }
    } else {
      return invalid_argument("field mapping: unknown key '" + std::string(kv.key()) + "'");
    }
  }
  return m;
}

void apply_patch(const ContactPatch& p, Contact* c) {
  if (p.created_at) c->created_at = *p.created_at;
  if (p.source) c->source = *p.source;
  if (p.assigned_agent_id) c->assigned_agent_id = *p.assigned_agent_id;
  if (p.budget) c->budget = p.budget;
  if (p.timeline_months) c->timeline_months = p.timeline_months;
  if (p.pre_approved) c->pre_approved = p.pre_approved;
  if (p.lead_type) c->lead_type = *p.lead_type;
  if (p.has_phone) c->has_phone = p.has_phone;
  if (p.has_email) c->has_email = p.has_email;
}

bool states_fields(const ContactPatch& p) {
  return p.created_at || p.source || p.assigned_agent_id || p.budget || p.timeline_months || p.pre_approved ||
         p.lead_type || p.has_phone || p.has_email;
}

Result<Mapped> map_webhook(std::string_view body, const std::string& tenant_id, const FieldMapping& mapping) {
  auto envelope = parse_envelope(body);
  if (!envelope) return envelope.status();
  auto v = parse_delivery_json(body);
  if (!v) return v.status();
  const auto& o = v->as_object();
  const std::string& type = envelope->type;
  const UnixSeconds at = envelope->timestamp;
  if (type.rfind("Contact", 0) == 0 &&
      (type == "ContactCreate" || type == "ContactUpdate" || type == "ContactDelete" || type == "ContactTagUpdate" ||
       type == "ContactDndUpdate")) {
    return checked(map_contact(o, type, mapping));
  }
  if (type == "InboundMessage" || type == "OutboundMessage") return checked(map_message(o, type, at, tenant_id));
  if (type == "AppointmentCreate" || type == "AppointmentUpdate" || type == "AppointmentDelete") {
    return checked(map_appointment(o, type, at, tenant_id));
  }
  if (type == "OpportunityCreate" || type == "OpportunityUpdate" || type == "OpportunityStatusUpdate" ||
      type == "OpportunityStageUpdate" || type == "OpportunityMonetaryValueUpdate" ||
      type == "OpportunityAssignedToUpdate" || type == "OpportunityDelete") {
    return checked(map_opportunity(o, type, at, tenant_id, mapping));
  }
  Mapped m;
  if (type == "INSTALL") {
    m.action = Action::kInstall;
  } else if (type == "UNINSTALL") {
    m.action = Action::kUninstall;
  } else if (type == "NoteCreate" || type == "TaskCreate" || type == "TaskComplete") {
    // reai has no event type for an agent's notes and tasks; the contact
    // still becomes known.
    const std::string contact_id = str(o, "contactId");
    if (contact_id.empty()) return invalid_argument(type + ": missing contactId");
    m.action = Action::kRecords;
    m.contact = patch_for(contact_id);
  } else {
    m.ignored_reason = "event type '" + type + "' is not handled";
  }
  return checked(std::move(m));
}

Result<Mapped> map_api_contact(std::string_view record_json, const std::string& tenant_id, const FieldMapping& mapping) {
  (void)tenant_id;  // contacts carry no tenant-scoped rows beyond the patch
  auto v = parse_delivery_json(record_json);
  if (!v) return v.status();
  return checked(map_contact(v->as_object(), "ContactCreate", mapping));
}

Result<Mapped> map_api_opportunity(std::string_view record_json, const std::string& tenant_id,
                                   const FieldMapping& mapping, UnixSeconds fallback_ts) {
  auto v = parse_delivery_json(record_json);
  if (!v) return v.status();
  const auto& o = v->as_object();
  UnixSeconds at = fallback_ts;
  for (const char* key : {"lastStageChangeAt", "updatedAt", "dateAdded"}) {
    if (auto t = time_field(o, key)) {
      at = *t;
      break;
    }
  }
  return checked(map_opportunity(o, "OpportunityUpdate", at, tenant_id, mapping));
}

Result<WorkflowDelivery> map_workflow(std::string_view body, const std::string& tenant_id, const FieldMapping& mapping,
                                      UnixSeconds now) {
  auto v = parse_delivery_json(body);
  if (!v) return v.status();
  const auto& o = v->as_object();
  WorkflowDelivery d;
  const std::string contact_id = str(o, "contact_id");
  if (contact_id.empty()) return invalid_argument("missing contact_id");
  if (contact_id.size() > 128) return invalid_argument("contact_id too long");
  std::string workflow_id;
  if (const json::object* w = obj(o, "workflow")) workflow_id = str(*w, "id");
  d.dedup_key = "wf:" + workflow_id + ":" + contact_id + ":" + sha256_hex(body);
  if (const json::object* custom = obj(o, "customData")) d.secret = str(*custom, "secret");

  ContactPatch p;
  p.contact_id = contact_id;
  if (auto t = time_field(o, "date_created")) p.created_at = *t;
  if (auto it = o.find("email"); it != o.end()) p.has_email = it->value().is_string() && !it->value().as_string().empty();
  if (auto it = o.find("phone"); it != o.end()) p.has_phone = it->value().is_string() && !it->value().as_string().empty();
  if (auto it = o.find("contact_source"); it != o.end() && it->value().is_string()) {
    p.source = std::string(it->value().as_string());
  }
  for (const auto& kv : o) apply_custom_field(mapping, kv.key(), kv.value(), &p, &d.mapped.warnings);
  d.mapped.action = Action::kRecords;
  d.mapped.contact = std::move(p);
  if (const json::object* msg = obj(o, "message")) {
    const std::string direction = lower(str(*msg, "direction"));
    auto type = message_event_type(str(*msg, "type"), direction == "inbound");
    if ((direction == "inbound" || direction == "outbound") && type) {
      Event e;
      e.tenant_id = tenant_id;
      e.event_id = "ghl-wf-" + d.dedup_key.substr(d.dedup_key.size() - 32);
      e.contact_id = contact_id;
      e.ts = now;
      e.type = *type;
      d.mapped.events.push_back(std::move(e));
    } else {
      d.mapped.warnings.push_back("message without a scored type and direction");
    }
  }
  REAI_RETURN_IF_ERROR(check_id_lengths(d.mapped));
  return d;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

bool secrets_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace reai::ghl
