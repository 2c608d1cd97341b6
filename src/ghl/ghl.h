// GoHighLevel webhooks in: signature verification and the mapping of GHL's
// payloads (marketplace app webhooks and the workflow "Webhook" action) onto
// reai's own records. Pure functions and immutable values: no HTTP, no SQL;
// every function is safe from any thread. Facts: shared/GHL.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace reai::ghl {

// GHL's published Ed25519 public key (SPKI, base64), the default when no key
// file is configured.
inline constexpr std::string_view kGhlEd25519PublicKeySpki = "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=";

// A delivery larger than this is refused before any parsing.
inline constexpr std::size_t kMaxDeliveryBytes = 256 * 1024;
// A delivery whose `timestamp` is further than this from now is refused.
inline constexpr UnixSeconds kMaxDeliveryAgeSeconds = 5 * 60;

// Verifies `X-GHL-Signature` (base64 Ed25519 over the raw body) when present,
// else `x-wh-signature` (base64 RSA-SHA256 over the raw body), with OpenSSL.
// Immutable after construction; copies share the keys.
class SignatureVerifier {
 public:
  // From PEM text (SubjectPublicKeyInfo, "-----BEGIN PUBLIC KEY-----").
  // An empty ed25519_pem means GHL's published key; an empty rsa_pem means
  // the legacy scheme is refused. InvalidArgument for a PEM that does not
  // hold a key of the right type.
  static Result<SignatureVerifier> from_pem(std::string_view ed25519_pem, std::string_view rsa_pem);
  // As from_pem, reading the files; an empty path means the default above.
  // NotFound when a named file cannot be read.
  static Result<SignatureVerifier> from_files(const std::string& ed25519_pem_file, const std::string& rsa_pem_file);

  // OK when the signature verifies over `body` exactly. Unauthenticated when
  // neither header is given, a signature is not base64, or it does not
  // verify (a present but wrong X-GHL-Signature is never rescued by the
  // legacy header).
  Status verify(std::string_view body, std::string_view ghl_signature, std::string_view wh_signature) const;

  struct Keys;

 private:
  explicit SignatureVerifier(std::shared_ptr<const Keys> keys) : keys_(std::move(keys)) {}
  std::shared_ptr<const Keys> keys_;
};

// The routing fields every marketplace delivery carries.
struct Envelope {
  std::string type;         // "ContactCreate", "INSTALL", ...
  std::string location_id;  // GHL sub-account = reai tenant
  std::string webhook_id;   // unique per delivery
  UnixSeconds timestamp = 0;
};

// Reads type, locationId, webhookId and timestamp. PayloadTooLarge beyond
// kMaxDeliveryBytes; InvalidArgument for malformed JSON, a non-object, or a
// missing/empty type, locationId or webhookId, or a missing/unparsable
// timestamp.
Result<Envelope> parse_envelope(std::string_view body);

// Unauthenticated when `timestamp` is more than kMaxDeliveryAgeSeconds before
// (or after: a clock cannot run that far ahead) `now`.
Status check_fresh(UnixSeconds timestamp, UnixSeconds now);

// Per-tenant meaning of GHL custom fields and pipeline stages. A key matches
// a custom field's id (app webhooks) or a top-level key, i.e. the field's
// label (workflow webhooks).
struct FieldMapping {
  std::vector<std::string> budget;        // USD; a number or numeric text ("$450,000" allowed)
  std::vector<std::string> timeline;      // months; number or text starting with a number
  std::vector<std::string> pre_approval;  // bool, "yes"/"no"/"true"/"false"
  // buyer/seller/both/investor, any case; dropdown labels such as "Home
  // Buyer", "Buyer & Seller" or "Investor" read by their words.
  std::vector<std::string> lead_type;
  std::map<std::string, Stage> stages;    // pipelineStageId -> reai stage (open opportunities)
};

// {"budget": "id" | ["id", "Label"], "timeline": ..., "pre_approval": ..., "lead_type": ...,
//  "stages": {"<pipelineStageId>": "offer", ...}}. Empty text is the empty
// mapping. InvalidArgument for malformed JSON, unknown keys or stage names.
Result<FieldMapping> parse_field_mapping(std::string_view json_text);

// Contact fields a delivery states; absent fields leave the stored contact
// unchanged.
struct ContactPatch {
  std::string contact_id;
  std::optional<UnixSeconds> created_at;
  std::optional<std::string> source;
  std::optional<std::string> assigned_agent_id;
  std::optional<double> budget;
  std::optional<int> timeline_months;
  std::optional<bool> pre_approved;
  std::optional<LeadType> lead_type;
  std::optional<bool> has_phone;
  std::optional<bool> has_email;
};

// Writes the patch's stated fields into `contact`.
void apply_patch(const ContactPatch& patch, Contact* contact);
// True when the patch states any field (not only the contact id).
bool states_fields(const ContactPatch& patch);

enum class Action : std::uint8_t {
  kRecords,    // apply contact/events/stages
  kInstall,    // create or re-enable the tenant of the location
  kUninstall,  // disable the tenant of the location
  kIgnored,    // nothing reai scores on (reason says why)
};

// What one delivery means for reai.
struct Mapped {
  Action action = Action::kIgnored;
  std::string ignored_reason;
  std::optional<ContactPatch> contact;
  std::vector<Event> events;
  std::vector<OpportunityStage> stages;
  // Fields present but unusable (e.g. a budget that is not a number): the
  // rest of the delivery still applies; these are kept with the delivery.
  std::vector<std::string> warnings;
};

// Maps a marketplace app webhook for `tenant_id`. Unknown types are
// kIgnored (never an error). Event ids derive from GHL ids (messageId,
// appointment id) so a redelivery appends nothing new. InvalidArgument for a
// known type missing the ids it needs (e.g. a message without contactId).
Result<Mapped> map_webhook(std::string_view body, const std::string& tenant_id, const FieldMapping& mapping);

// Maps one record of GHL's REST API (a contact from the contacts list, an
// opportunity from the opportunities search) as the `ContactCreate` /
// `OpportunityUpdate` webhook carrying it would be mapped. An opportunity's
// stage row is dated by its lastStageChangeAt, else updatedAt, else
// dateAdded, else `fallback_ts`. InvalidArgument for malformed JSON, a
// non-object or a record missing its ids.
Result<Mapped> map_api_contact(std::string_view record_json, const std::string& tenant_id, const FieldMapping& mapping);
Result<Mapped> map_api_opportunity(std::string_view record_json, const std::string& tenant_id,
                                   const FieldMapping& mapping, UnixSeconds fallback_ts);

// The workflow "Webhook" action's snake_case payload.
struct WorkflowDelivery {
  std::string dedup_key;  // "wf:" + workflow.id + ":" + contact_id + ":" + sha256(body) hex
  std::string secret;     // customData.secret (empty when absent)
  Mapped mapped;
};

// PayloadTooLarge beyond kMaxDeliveryBytes; InvalidArgument for malformed
// JSON, a non-object or a missing contact_id.
Result<WorkflowDelivery> map_workflow(std::string_view body, const std::string& tenant_id, const FieldMapping& mapping,
                                      UnixSeconds now);

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Constant-time comparison of secrets.
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace reai::ghl
