#include "ghl/contact_export.h"

#include <cctype>
#include <map>

#include "core/csv.h"
#include "core/time.h"

namespace reai::ghl {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ISO 8601, or the export's "YYYY-MM-DD HH:MM:SS" (taken as UTC).
std::optional<UnixSeconds> parse_created(std::string_view text) {
  if (auto t = parse_iso8601(text)) return t;
  if (text.size() == 19 && text[10] == ' ') {
    std::string iso(text);
    iso[10] = 'T';
    iso += 'Z';
    return parse_iso8601(iso);
  }
  if (text.size() == 10) return parse_iso8601(std::string(text) + "T00:00:00Z");
  return std::nullopt;
}

LeadType lead_type_from_tags(std::string_view tags) {
  bool buyer = false, seller = false, investor = false;
  std::size_t at = 0;
  while (at <= tags.size()) {
    const std::size_t comma = tags.find(',', at);
    const std::string tag = lower(trim(tags.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at)));
    buyer = buyer || tag == "buyer";
    seller = seller || tag == "seller";
    investor = investor || tag == "investor";
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  if (buyer && seller) return LeadType::kBoth;
  if (buyer) return LeadType::kBuyer;
  if (seller) return LeadType::kSeller;
  if (investor) return LeadType::kInvestor;
  return LeadType::kUnknown;
}

}  // namespace

Result<ContactExport> parse_contact_export(std::string text, const std::string& tenant_id) {
  auto reader = CsvReader::from_string(std::move(text), "GHL contact export");
  if (!reader) return reader.status();
  auto id_col = reader->require_column("Contact Id");
  if (!id_col) return id_col.status();
  const auto created_col = reader->column("Created");
  const auto phone_col = reader->column("Phone");
  const auto email_col = reader->column("Email");
  const auto source_col = reader->column("Source");
  const auto tags_col = reader->column("Tags");
  const auto agent_col = reader->column("Assigned To");
  ContactExport out;
  std::map<std::string, std::size_t> index;  // contact id -> position in out.contacts
  std::vector<std::string_view> f;
  Status row_error;
  auto field = [&](const std::optional<std::size_t>& col) {
    return col && *col < f.size() ? trim(f[*col]) : std::string_view();
  };
  while (reader->next(f, &row_error)) {
    const std::string where = "line " + std::to_string(reader->line()) + ": ";
    if (!row_error.is_ok()) {
      out.skipped.push_back(where + row_error.message());
      row_error = Status::ok();
      continue;
    }
    Contact c;
    c.tenant_id = tenant_id;
    c.contact_id = std::string(field(*id_col));
    if (c.contact_id.empty()) {
      out.skipped.push_back(where + "no Contact Id");
      continue;
    }
    if (const auto created = field(created_col); !created.empty()) {
      auto t = parse_created(created);
      if (!t) {
        out.skipped.push_back(where + "unreadable Created '" + std::string(created) + "'");
        continue;
      }
      c.created_at = *t;
    }
    if (phone_col) c.has_phone = !field(phone_col).empty();
    if (email_col) c.has_email = !field(email_col).empty();
    c.source = std::string(field(source_col));
    c.assigned_agent_id = std::string(field(agent_col));
    c.lead_type = lead_type_from_tags(field(tags_col));
    auto [it, fresh] = index.try_emplace(c.contact_id, out.contacts.size());
    if (fresh) {
      out.contacts.push_back(std::move(c));
    } else {
      out.contacts[it->second] = std::move(c);
    }
  }
  return out;
}

}  // namespace reai::ghl
