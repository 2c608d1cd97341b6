// LeadBoard: a map per tenant, sorted on read.
#include "server/lead_board.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

namespace reai::server {

namespace json = boost::json;

void LeadBoard::record(std::shared_ptr<const std::string> score_json, bool only_if_absent) {
  if (!score_json) return;
  boost::system::error_code ec;
  const json::value v = json::parse(*score_json, ec);
  if (ec || !v.is_object()) return;
  const auto& o = v.as_object();
  const auto* tenant = o.if_contains("tenant_id");
  const auto* lead = o.if_contains("lead_id");
  const auto* probability = o.if_contains("probability");
  const auto* band_name = o.if_contains("band");
  if (!tenant || !tenant->is_string() || !lead || !lead->is_string() || !probability || !probability->is_number() ||
      !band_name || !band_name->is_string()) {
    return;
  }
  const auto band = scoring::parse_band(std::string_view(band_name->as_string()));
  if (!band) return;
  const double p = probability->to_number<double>();
  const auto* points = o.if_contains("score");
  const int score = points && points->is_number() ? static_cast<int>(points->to_number<double>())
                                                  : static_cast<int>(std::lround(p * 100));
  Entry entry{p, score, *band, std::move(score_json)};
  std::lock_guard lock(mu_);
  auto& leads = tenants_[std::string(tenant->as_string())];
  if (only_if_absent) {
    leads.try_emplace(std::string(lead->as_string()), std::move(entry));
  } else {
    leads.insert_or_assign(std::string(lead->as_string()), std::move(entry));
  }
}

std::vector<std::shared_ptr<const std::string>> LeadBoard::top(std::string_view tenant_id,
                                                               std::optional<scoring::Band> band,
                                                               std::size_t limit) const {
  struct Row {
    double probability;
    const std::string* lead;
    std::shared_ptr<const std::string> json;
  };
  std::vector<Row> rows;
  std::vector<std::shared_ptr<const std::string>> out;
  std::lock_guard lock(mu_);
  auto it = tenants_.find(std::string(tenant_id));
  if (it == tenants_.end()) return out;
  rows.reserve(it->second.size());
  for (const auto& [lead, entry] : it->second) {
    if (band && entry.band != *band) continue;
    rows.push_back({entry.probability, &lead, entry.json});
  }
  auto better = [](const Row& a, const Row& b) {
    return a.probability != b.probability ? a.probability > b.probability : *a.lead < *b.lead;
  };
  const std::size_t n = std::min(limit, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n), rows.end(), better);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::move(rows[i].json));
  return out;
}

std::vector<LeadBoard::Standing> LeadBoard::standings(std::string_view tenant_id) const {
  std::vector<Standing> out;
  std::lock_guard lock(mu_);
  auto it = tenants_.find(std::string(tenant_id));
  if (it == tenants_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& [lead, entry] : it->second) out.push_back({lead, entry.score, entry.band});
  return out;
}

std::size_t LeadBoard::size() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [tenant, leads] : tenants_) n += leads.size();
  return n;
}

}  // namespace reai::server
