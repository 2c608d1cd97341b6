#include "core/crm_csv.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/csv.h"
#include "core/tenant_id.h"
#include "core/time.h"

namespace reai {
namespace {

constexpr std::size_t kMaxReportedErrors = 100;

// Runs `parse_row` over every data row, applying the bad-row policy.
template <typename T>
Result<std::vector<T>> load_rows(
    const std::string& path, const CsvLoadOptions& options, CsvLoadReport* report,
    const std::function<Status(const CsvReader&)>& bind_columns,
    const std::function<Status(const std::vector<std::string_view>&, T&)>& parse_row,
    const std::function<const std::string&(const T&)>& tenant_of) {
  auto reader = CsvReader::open(path);
  if (!reader) return reader.status();
  REAI_RETURN_IF_ERROR(bind_columns(*reader));
  CsvLoadReport local;
  CsvLoadReport& rep = report ? *report : local;
  std::vector<T> rows;
  std::vector<std::string_view> fields;
  Status row_error;
  while (reader->next(fields, &row_error)) {
    T row;
    Status s = row_error;
    if (s.is_ok()) s = parse_row(fields, row);
    if (!s.is_ok()) {
      CsvRowError e{path, reader->line(), s.message()};
      if (!options.skip_bad_rows) return invalid_argument(e.to_string());
      ++rep.rows_skipped;
      if (rep.errors.size() < kMaxReportedErrors) rep.errors.push_back(std::move(e));
      continue;
    }
    ++rep.rows_read;
    if (!options.tenant_filter.empty() && tenant_of(row) != options.tenant_filter) continue;
    rows.push_back(std::move(row));
  }
  if (rep.rows_read == 0) return invalid_argument(path + ": no data rows");
  return rows;
}

struct Field {
  std::size_t index = 0;
  bool present = false;
};

Status bind(const CsvReader& r, std::string_view name, bool required, Field* f) {
  if (auto c = r.column(name)) {
    *f = {*c, true};
    return Status::ok();
  }
  if (required) return invalid_argument(r.path() + ": missing column '" + std::string(name) + "'");
  return Status::ok();
}

std::string_view get(const std::vector<std::string_view>& fields, const Field& f) {
  if (!f.present || f.index >= fields.size()) return {};
  return fields[f.index];
}

Status need_text(std::string_view v, std::string_view name, std::string* out) {
  if (v.empty()) return invalid_argument("empty " + std::string(name));
  out->assign(v);
  return Status::ok();
}

// A row's tenant id: it names a directory and a token's tenant later, so a bad
// one is a bad row here rather than a tenant no edge can reach.
Status need_tenant(std::string_view v, std::string* out) {
  if (v.empty()) return invalid_argument("empty tenant_id");
  REAI_RETURN_IF_ERROR(check_tenant_id(v));
  out->assign(v);
  return Status::ok();
}

Status need_time(std::string_view v, std::string_view name, UnixSeconds* out) {
  auto t = parse_iso8601(v);
  // A CRM export's local date format (03/15/2024) is the usual cause: say what reads.
  if (!t) {
    return invalid_argument("bad " + std::string(name) + " '" + std::string(v) +
                            "' (ISO 8601 expected, e.g. 2026-03-01T00:00:00Z)");
  }
  *out = *t;
  return Status::ok();
}

Status opt_double(std::string_view v, std::string_view name, std::optional<double>* out) {
  bool ok;
  *out = parse_optional_double(v, &ok);
  if (!ok || (*out && !std::isfinite(**out))) {
    return invalid_argument("bad " + std::string(name) + " '" + std::string(v) + "'");
  }
  return Status::ok();
}

Status opt_int(std::string_view v, std::string_view name, std::optional<int>* out) {
  std::optional<double> d;
  REAI_RETURN_IF_ERROR(opt_double(v, name, &d));
  if (d) {
    if (*d < -1e9 || *d > 1e9) return invalid_argument("bad " + std::string(name) + " '" + std::string(v) + "'");
    *out = static_cast<int>(std::lround(*d));
  } else {
    out->reset();
  }
  return Status::ok();
}

Status opt_bool(std::string_view v, std::string_view name, std::optional<bool>* out) {
  bool ok;
  *out = parse_optional_bool(v, &ok);
  if (!ok) return invalid_argument("bad " + std::string(name) + " '" + std::string(v) + "'");
  return Status::ok();
}

}  // namespace

std::string CsvRowError::to_string() const {
  return file + ":" + std::to_string(line) + ": " + message;
}

Result<std::vector<Contact>> load_contacts_csv(const std::string& path, const CsvLoadOptions& options,
                                               CsvLoadReport* report) {
  Field id, tenant, created, source, lead_type, agent, budget, timeline, pre, beds, area, phone, email;
  auto bind_columns = [&](const CsvReader& r) {
    REAI_RETURN_IF_ERROR(bind(r, "contact_id", true, &id));
    REAI_RETURN_IF_ERROR(bind(r, "tenant_id", true, &tenant));
    REAI_RETURN_IF_ERROR(bind(r, "created_at", true, &created));
    REAI_RETURN_IF_ERROR(bind(r, "source", false, &source));
    REAI_RETURN_IF_ERROR(bind(r, "lead_type", false, &lead_type));
    REAI_RETURN_IF_ERROR(bind(r, "assigned_agent_id", false, &agent));
    REAI_RETURN_IF_ERROR(bind(r, "budget", false, &budget));
    REAI_RETURN_IF_ERROR(bind(r, "timeline_months", false, &timeline));
    REAI_RETURN_IF_ERROR(bind(r, "pre_approved", false, &pre));
    REAI_RETURN_IF_ERROR(bind(r, "beds_wanted", false, &beds));
    REAI_RETURN_IF_ERROR(bind(r, "area_wanted", false, &area));
    REAI_RETURN_IF_ERROR(bind(r, "has_phone", false, &phone));
    REAI_RETURN_IF_ERROR(bind(r, "has_email", false, &email));
    return Status::ok();
  };
  auto parse_row = [&](const std::vector<std::string_view>& f, Contact& c) {
    REAI_RETURN_IF_ERROR(need_text(get(f, id), "contact_id", &c.contact_id));
    REAI_RETURN_IF_ERROR(need_tenant(get(f, tenant), &c.tenant_id));
    REAI_RETURN_IF_ERROR(need_time(get(f, created), "created_at", &c.created_at));
    c.source.assign(get(f, source));
    c.lead_type = parse_lead_type(get(f, lead_type));
    c.assigned_agent_id.assign(get(f, agent));
    REAI_RETURN_IF_ERROR(opt_double(get(f, budget), "budget", &c.budget));
    REAI_RETURN_IF_ERROR(opt_int(get(f, timeline), "timeline_months", &c.timeline_months));
    REAI_RETURN_IF_ERROR(opt_bool(get(f, pre), "pre_approved", &c.pre_approved));
    REAI_RETURN_IF_ERROR(opt_int(get(f, beds), "beds_wanted", &c.beds_wanted));
    c.area_wanted.assign(get(f, area));
    REAI_RETURN_IF_ERROR(opt_bool(get(f, phone), "has_phone", &c.has_phone));
    REAI_RETURN_IF_ERROR(opt_bool(get(f, email), "has_email", &c.has_email));
    return Status::ok();
  };
  return load_rows<Contact>(path, options, report, bind_columns, parse_row,
                            [](const Contact& c) -> const std::string& { return c.tenant_id; });
}

Result<std::vector<Event>> load_events_csv(const std::string& path, const CsvLoadOptions& options,
                                           CsvLoadReport* report) {
  Field id, tenant, contact, ts, type, property, value;
  auto bind_columns = [&](const CsvReader& r) {
    REAI_RETURN_IF_ERROR(bind(r, "event_id", true, &id));
    REAI_RETURN_IF_ERROR(bind(r, "tenant_id", true, &tenant));
    REAI_RETURN_IF_ERROR(bind(r, "contact_id", true, &contact));
    REAI_RETURN_IF_ERROR(bind(r, "ts", true, &ts));
    REAI_RETURN_IF_ERROR(bind(r, "type", true, &type));
    REAI_RETURN_IF_ERROR(bind(r, "property_id", false, &property));
    REAI_RETURN_IF_ERROR(bind(r, "value", false, &value));
    return Status::ok();
  };
  auto parse_row = [&](const std::vector<std::string_view>& f, Event& e) {
    REAI_RETURN_IF_ERROR(need_text(get(f, id), "event_id", &e.event_id));
    REAI_RETURN_IF_ERROR(need_tenant(get(f, tenant), &e.tenant_id));
    REAI_RETURN_IF_ERROR(need_text(get(f, contact), "contact_id", &e.contact_id));
    REAI_RETURN_IF_ERROR(need_time(get(f, ts), "ts", &e.ts));
    auto t = parse_event_type(get(f, type));
    if (!t) return invalid_argument("unknown event type '" + std::string(get(f, type)) + "'");
    e.type = *t;
    e.property_id.assign(get(f, property));
    REAI_RETURN_IF_ERROR(opt_double(get(f, value), "value", &e.value));
    return Status::ok();
  };
  auto rows = load_rows<Event>(path, options, report, bind_columns, parse_row,
                               [](const Event& e) -> const std::string& { return e.tenant_id; });
  if (rows) {
    std::stable_sort(rows->begin(), rows->end(),
                     [](const Event& a, const Event& b) { return a.ts < b.ts; });
  }
  return rows;
}

Result<std::vector<OpportunityStage>> load_stages_csv(const std::string& path,
                                                      const CsvLoadOptions& options,
                                                      CsvLoadReport* report) {
  Field id, tenant, contact, agent, value, ts, stage;
  auto bind_columns = [&](const CsvReader& r) {
    REAI_RETURN_IF_ERROR(bind(r, "opportunity_id", true, &id));
    REAI_RETURN_IF_ERROR(bind(r, "tenant_id", true, &tenant));
    REAI_RETURN_IF_ERROR(bind(r, "contact_id", true, &contact));
    REAI_RETURN_IF_ERROR(bind(r, "agent_id", false, &agent));
    REAI_RETURN_IF_ERROR(bind(r, "monetary_value", false, &value));
    REAI_RETURN_IF_ERROR(bind(r, "ts", true, &ts));
    REAI_RETURN_IF_ERROR(bind(r, "stage", true, &stage));
    return Status::ok();
  };
  auto parse_row = [&](const std::vector<std::string_view>& f, OpportunityStage& o) {
    REAI_RETURN_IF_ERROR(need_text(get(f, id), "opportunity_id", &o.opportunity_id));
    REAI_RETURN_IF_ERROR(need_tenant(get(f, tenant), &o.tenant_id));
    REAI_RETURN_IF_ERROR(need_text(get(f, contact), "contact_id", &o.contact_id));
    o.agent_id.assign(get(f, agent));
    std::optional<double> v;
    REAI_RETURN_IF_ERROR(opt_double(get(f, value), "monetary_value", &v));
    o.monetary_value = v.value_or(0.0);
    REAI_RETURN_IF_ERROR(need_time(get(f, ts), "ts", &o.ts));
    auto s = parse_stage(get(f, stage));
    if (!s) {
      return invalid_argument("unknown stage '" + std::string(get(f, stage)) +
                              "' (one of signed, active, offer, under_contract, closed, lost)");
    }
    o.stage = *s;
    return Status::ok();
  };
  auto rows = load_rows<OpportunityStage>(
      path, options, report, bind_columns, parse_row,
      [](const OpportunityStage& o) -> const std::string& { return o.tenant_id; });
  if (rows) {
    std::stable_sort(rows->begin(), rows->end(),
                     [](const OpportunityStage& a, const OpportunityStage& b) { return a.ts < b.ts; });
  }
  return rows;
}

}  // namespace reai
