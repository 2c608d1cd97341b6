// Test and benchmark helper (not part of the library): a generated history
// of buyers with a latent taste (a favourite neighbourhood and a price level)
// who view listings that fit it in their first week and view and save more
// of them later. Deterministic for a seed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/types.h"
#include "property/matching.h"

namespace reai::property::testing {

struct SyntheticHistory {
  std::vector<Contact> contacts;
  std::vector<Event> events;  // sorted by ts
};

inline SyntheticHistory synthetic_history(const ListingCatalog& catalog, std::size_t buyers, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  SyntheticHistory h;
  const std::size_t levels = std::max<std::size_t>(1, catalog.neighbourhood_levels());
  std::vector<std::vector<std::uint32_t>> by_nb(levels);
  for (std::uint32_t i = 0; i < catalog.size(); ++i) {
    const int nb = catalog.listing(i).neighbourhood;
    by_nb[nb >= 0 ? nb : 0].push_back(i);
  }
  const UnixSeconds start = 1704067200;  // 2024-01-01
  int event_no = 0;
  for (std::size_t b = 0; b < buyers; ++b) {
    Contact c;
    c.tenant_id = "t1";
    char id[32];
    std::snprintf(id, sizeof id, "c%05zu", b + 1);
    c.contact_id = id;
    c.created_at = start + static_cast<UnixSeconds>(unit(rng) * 300 * 86400);
    c.lead_type = LeadType::kBuyer;
    // Taste: one favourite neighbourhood (with listings), a price level near its homes.
    std::size_t fav = rng() % levels;
    while (by_nb[fav].empty()) fav = (fav + 1) % levels;
    const auto& homes = by_nb[fav];
    const float level = catalog.listing(homes[rng() % homes.size()]).log_price;
    if (unit(rng) < 0.5) c.budget = std::exp(level) * (0.9 + 0.2 * unit(rng));
    if (unit(rng) < 0.3) c.area_wanted = catalog.neighbourhood_name(static_cast<int>(fav));
    h.contacts.push_back(c);
    const auto pick = [&]() -> std::uint32_t {
      // 80% in the favourite neighbourhood close to the price level.
      if (unit(rng) < 0.8) {
        std::uint32_t best = homes[rng() % homes.size()];
        for (int t = 0; t < 3; ++t) {
          const std::uint32_t o = homes[rng() % homes.size()];
          if (std::fabs(catalog.listing(o).log_price - level) < std::fabs(catalog.listing(best).log_price - level)) {
            best = o;
          }
        }
        return best;
      }
      return static_cast<std::uint32_t>(rng() % catalog.size());
    };
    const auto add = [&](std::uint32_t listing, EventType type, UnixSeconds ts) {
      Event e;
      e.tenant_id = "t1";
      char eid[32];
      std::snprintf(eid, sizeof eid, "e%d", ++event_no);
      e.event_id = eid;
      e.contact_id = c.contact_id;
      e.ts = ts;
      e.type = type;
      e.property_id = catalog.listing(listing).id;
      e.value = catalog.listing(listing).price;
      h.events.push_back(std::move(e));
    };
    const int early = 2 + static_cast<int>(rng() % 6);
    for (int v = 0; v < early; ++v) add(pick(), EventType::kPropertyView, c.created_at + 3600 + v * 80000);
    const int later = 3 + static_cast<int>(rng() % 6);
    for (int v = 0; v < later; ++v) {
      const std::uint32_t l = pick();
      const UnixSeconds ts = c.created_at + 8 * 86400 + v * 200000;
      add(l, EventType::kPropertyView, ts);
      if (unit(rng) < 0.3) add(l, unit(rng) < 0.8 ? EventType::kPropertySave : EventType::kTourRequest, ts + 600);
    }
  }
  std::stable_sort(h.events.begin(), h.events.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
  return h;
}

}  // namespace reai::property::testing
