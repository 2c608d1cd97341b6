#include "property/matching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <string_view>

#include "property/synthetic_matching.h"

namespace reai::property {
namespace {

const char* const kAmes = "tests/fixtures/ames_small/ames.csv";
constexpr UnixSeconds kT0 = 1704067200;

ListingCatalog ames() {
  auto c = ListingCatalog::load(kAmes, {"Sale_Price", ""});
  EXPECT_TRUE(c.has_value()) << c.status().to_string();
  return std::move(*c);
}

std::vector<std::uint32_t> ids(const std::vector<Match>& ms) {
  std::vector<std::uint32_t> out;
  for (const auto& m : ms) out.push_back(m.listing);
  return out;
}

int first_in(const ListingCatalog& c, const std::string& nb, std::size_t skip = 0) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c.neighbourhood_name(c.listing(i).neighbourhood) == nb && skip-- == 0) return static_cast<int>(i);
  }
  return -1;
}

// Share of the top k in neighbourhood `nb`.
double share_in(const ListingCatalog& c, const std::vector<Match>& ms, const std::string& nb) {
  if (ms.empty()) return 0;
  double n = 0;
  for (const auto& m : ms) n += c.neighbourhood_name(c.listing(m.listing).neighbourhood) == nb;
  return n / ms.size();
}

TEST(ListingCatalog, ReadsAmesWithFileStemIds) {
  auto c = ames();
  ASSERT_EQ(c.size(), 200u);
  EXPECT_EQ(c.listing(11).id, "ames-0012");
  EXPECT_EQ(c.find("ames-0012"), 11);
  EXPECT_EQ(c.find("ames-0201"), -1);
  EXPECT_EQ(c.listing(0).price, 215000);
  EXPECT_EQ(c.neighbourhood_name(c.listing(0).neighbourhood), "North_Ames");
  EXPECT_EQ(c.listing(0).beds, 3.0f);
  EXPECT_FALSE(std::isnan(c.listing(0).x_km));
  EXPECT_FALSE(std::isnan(c.listing(0).log_value));
  EXPECT_NE(c.describe().find("neighbourhood: Neighborhood"), std::string::npos);
  EXPECT_NE(c.describe().find("beds: Bedroom_AbvGr"), std::string::npos);
  // Price index is sorted and price_range selects a band.
  const auto& order = c.by_price();
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_LE(c.listing(order[i - 1]).log_price, c.listing(order[i]).log_price);
  }
  const auto [b, e] = c.price_range(std::log(150000.0f), std::log(200000.0f));
  ASSERT_LT(b, e);
  for (std::size_t r = b; r < e; ++r) {
    EXPECT_GE(c.listing(order[r]).price, 149999);
    EXPECT_LE(c.listing(order[r]).price, 200001);
  }
}

TEST(ListingCatalog, IdColumnAndBadInput) {
  const std::string header = "mls,zip,beds,sqft,price\n";
  auto ok = parse_sales_csv(header + "A1,50010,3,1500,\"$250,000\"\nA2,50011,2,900,NA\nA3,50010,4,2100,310000\n",
                            "x.csv");
  ASSERT_TRUE(ok.has_value());
  auto c = ListingCatalog::build(*ok, {"price", "mls"});
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_EQ(c->size(), 2u);  // NA price skipped
  EXPECT_EQ(c->skipped_rows(), 1u);
  EXPECT_EQ(c->find("A3"), 1);
  EXPECT_EQ(c->listing(0).price, 250000);
  EXPECT_EQ(c->listing(1).row, 3u);

  auto missing_price = ListingCatalog::build(*ok, {"Sale_Price", ""});
  ASSERT_FALSE(missing_price.has_value());
  EXPECT_EQ(missing_price.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing_price.status().message().find("Sale_Price"), std::string::npos);
  EXPECT_FALSE(ListingCatalog::build(*ok, {"price", "listing_id"}).has_value());
  EXPECT_FALSE(ListingCatalog::build(*ok, {"", ""}).has_value());

  auto bad = parse_sales_csv(header + "A1,50010,3,1500,250000\nA2,50011,2,900,cheap\n", "bad.csv");
  ASSERT_TRUE(bad.has_value());
  auto r = ListingCatalog::build(*bad, {"price", "mls"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("line 3"), std::string::npos) << r.status().message();

  auto dup = parse_sales_csv(header + "A1,50010,3,1500,250000\nA1,50011,2,900,200000\n", "dup.csv");
  auto d = ListingCatalog::build(*dup, {"price", "mls"});
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.status().message().find("repeats"), std::string::npos);

  auto negative = parse_sales_csv(header + "A1,50010,3,1500,-5\n", "neg.csv");
  EXPECT_FALSE(ListingCatalog::build(*negative, {"price", "mls"}).has_value());
  auto none = parse_sales_csv(header + "A1,50010,3,1500,NA\n", "none.csv");
  EXPECT_FALSE(ListingCatalog::build(*none, {"price", "mls"}).has_value());
  EXPECT_EQ(ListingCatalog::load("tests/fixtures/no_such.csv", {"price", ""}).status().code(), StatusCode::kNotFound);
}

// The import command and ListingCatalog read listings files through these,
// so both give a file's rows the same ids and prices.
TEST(ListingFile, KeyColumnsPricesAndRowIds) {
  auto table = parse_sales_csv("mls,price\nA1,250000\n", "/data/x.csv");
  ASSERT_TRUE(table.has_value());
  auto keys = find_listing_key_columns(*table, {"price", "mls"});
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->price, 1);
  EXPECT_EQ(keys->id, 0);
  EXPECT_EQ(find_listing_key_columns(*table, {"price", ""})->id, -1);
  auto no_id = find_listing_key_columns(*table, {"price", "listing_id"});
  ASSERT_FALSE(no_id.has_value());
  EXPECT_EQ(no_id.status().message(), "/data/x.csv: missing id column 'listing_id'");
  EXPECT_EQ(find_listing_key_columns(*table, {"", ""}).status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(parse_listing_price("$350,000"), 350000.0);
  EXPECT_EQ(parse_listing_price("1250.5"), 1250.5);
  for (std::string_view bad : {"", "$", "0", "-5", "cheap", "12abc", "inf", "nan", "1e999"}) {
    EXPECT_FALSE(parse_listing_price(bad).has_value()) << bad;
  }

  EXPECT_EQ(listing_row_id("/data/ames.csv", 12), "ames-0012");
  EXPECT_EQ(listing_row_id("ames.csv", 12345), "ames-12345");
}

TEST(BuyerPreferences, StatedCriteriaAndWeights) {
  auto c = ames();
  BuyerPreferences p(c, {180000.0, 3, {"old_town"}});
  EXPECT_NEAR(p.price_level(), std::log(180000.0), 1e-4);
  EXPECT_EQ(p.beds_wanted(), 3);
  ASSERT_EQ(p.areas_wanted().size(), 1u);
  EXPECT_EQ(c.neighbourhood_name(p.areas_wanted()[0]), "Old_Town");  // case-insensitive
  // Spaces for underscores (as reasons show names), surrounding spaces, and
  // several areas; an unknown one names nothing.
  BuyerPreferences two(c, {std::nullopt, std::nullopt, {"  OLD  town ", "Gilbert", "Atlantis"}});
  ASSERT_EQ(two.areas_wanted().size(), 2u);
  EXPECT_EQ(c.neighbourhood_name(two.areas_wanted()[0]), "Old_Town");
  EXPECT_EQ(c.neighbourhood_name(two.areas_wanted()[1]), "Gilbert");
  EXPECT_TRUE(two.wants_area(two.areas_wanted()[1]));
  EXPECT_EQ(two.unknown_areas(), std::vector<std::string>{"Atlantis"});  // as given
  EXPECT_TRUE(p.unknown_areas().empty());
  EXPECT_FALSE(two.wants_area(-1));
  EXPECT_TRUE(c.neighbourhoods_named("Atlantis").empty());
  EXPECT_TRUE(c.neighbourhoods_named(" _ ").empty());
  EXPECT_EQ(area_key("  North__Ames "), "north ames");
  BuyerPreferences none(c, {});
  EXPECT_TRUE(std::isnan(none.price_level()));
  EXPECT_TRUE(none.unknown_areas().empty());
  // A save weighs three views.
  const int a = first_in(c, "Gilbert"), b = first_in(c, "Somerset");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  BuyerPreferences q(c, {});
  q.observe(c, a, EventType::kPropertyView, kT0);
  q.observe(c, b, EventType::kPropertySave, kT0 + 1);
  EXPECT_NEAR(q.neighbourhood_share(c.listing(b).neighbourhood), 0.75, 1e-3);
  EXPECT_EQ(q.views(), 1);
  EXPECT_EQ(q.saves(), 1);
  EXPECT_TRUE(q.saved(b));
  EXPECT_FALSE(q.saved(a));
  EXPECT_TRUE(q.seen(a));
  // Other event types are ignored.
  q.observe(c, a, EventType::kEmailOpen, kT0 + 2);
  EXPECT_EQ(q.views(), 1);
}

TEST(BuyerPreferences, TastesShiftWithTime) {
  auto c = ames();
  const int old_nb = first_in(c, "Gilbert"), new_nb = first_in(c, "Somerset");
  BuyerPreferences p(c, {});
  for (int i = 0; i < 4; ++i) p.observe(c, first_in(c, "Gilbert", i), EventType::kPropertyView, kT0 + i);
  p.observe(c, new_nb, EventType::kPropertyView, kT0 + 90 * 86400);
  // One recent view outweighs four from three months ago (21-day half-life).
  EXPECT_GT(p.neighbourhood_share(c.listing(new_nb).neighbourhood),
            p.neighbourhood_share(c.listing(old_nb).neighbourhood));
}

TEST(BuyerPreferences, KeptHomesCountDistinctHomesByWhatTheBuyerDid) {
  auto c = ames();
  const int g0 = first_in(c, "Gilbert", 0), g1 = first_in(c, "Gilbert", 1), g2 = first_in(c, "Gilbert", 2);
  const int s0 = first_in(c, "Somerset");
  ASSERT_GE(g2, 0);
  ASSERT_GE(s0, 0);
  const int gilbert = c.listing(g0).neighbourhood;
  BuyerPreferences p(c, {});
  EXPECT_EQ(p.kept_in_neighbourhood(c, gilbert).homes, 0);
  p.observe(c, g0, EventType::kPropertySave, kT0);
  p.observe(c, g0, EventType::kPropertySave, kT0 + 1);  // the same home again: one home
  p.observe(c, g1, EventType::kTourRequest, kT0 + 2);
  p.observe(c, g2, EventType::kPropertyView, kT0 + 3);  // viewed only: not kept
  p.observe(c, s0, EventType::kTourRequest, kT0 + 4);
  const KeptHomes k = p.kept_in_neighbourhood(c, gilbert);
  EXPECT_EQ(k.homes, 2);
  EXPECT_EQ(k.saved, 1);
  EXPECT_EQ(k.toured, 1);
  EXPECT_EQ(p.kept_in_neighbourhood(c, c.listing(s0).neighbourhood).toured, 1);
  EXPECT_EQ(p.kept_in_neighbourhood(c, -1).homes, 0);
  EXPECT_EQ(p.how_kept(g0).saved, 1);
  EXPECT_EQ(p.how_kept(g0).toured, 0);
  EXPECT_EQ(p.how_kept(g2).homes, 0);
  p.observe(c, g0, EventType::kTourRequest, kT0 + 5);  // saved, then toured
  EXPECT_EQ(p.how_kept(g0).toured, 1);
  EXPECT_EQ(p.kept_in_neighbourhood(c, gilbert).toured, 2);
  EXPECT_EQ(p.kept_in_neighbourhood(c, gilbert).homes, 2);
}

// The neighbourhood reason of the first match in `nb` ("" when none has one).
std::string neighbourhood_reason(const ListingCatalog& c, const std::vector<Match>& top, const std::string& nb) {
  for (const auto& m : top) {
    if (c.neighbourhood_name(c.listing(m.listing).neighbourhood) != nb) continue;
    for (const auto& r : m.reasons) {
      if (r.rfind("in ", 0) == 0) return r;
    }
  }
  return "";
}

TEST(Matcher, ReasonsSayWhetherTheBuyerSavedOrTouredAndHowMany) {
  auto c = ames();
  const Matcher m(c, nullptr);
  MatchOptions opt;
  auto reason_after = [&](std::initializer_list<std::pair<int, EventType>> kept) {
    BuyerPreferences p(c, {170000.0, std::nullopt, {}});
    UnixSeconds t = kT0;
    for (auto [i, type] : kept) p.observe(c, first_in(c, "Gilbert", i), type, t++);
    return neighbourhood_reason(c, m.top_k(p, t + 10, opt), "Gilbert");
  };
  EXPECT_EQ(reason_after({{0, EventType::kTourRequest}}), "in Gilbert like 1 home you toured");
  EXPECT_EQ(reason_after({{0, EventType::kTourRequest}, {1, EventType::kTourRequest}, {1, EventType::kTourRequest}}),
            "in Gilbert like 2 homes you toured");
  EXPECT_EQ(reason_after({{0, EventType::kPropertySave}, {1, EventType::kPropertySave}, {2, EventType::kPropertySave}}),
            "in Gilbert like 3 homes you saved");
  EXPECT_EQ(reason_after({{0, EventType::kPropertySave}, {1, EventType::kTourRequest}}),
            "in Gilbert like 2 homes you saved or toured");
  EXPECT_EQ(reason_after({{0, EventType::kPropertySave}, {0, EventType::kTourRequest}}),
            "in Gilbert like 1 home you saved and toured");
  // Views alone are no "home you saved".
  const std::string viewed = reason_after({{0, EventType::kPropertyView}, {1, EventType::kPropertyView}});
  EXPECT_EQ(viewed.find("you saved"), std::string::npos) << viewed;
  EXPECT_EQ(viewed.find("you toured"), std::string::npos) << viewed;
}

TEST(Matcher, PreferenceUpdatesMoveRankingsTheExpectedWay) {
  auto c = ames();
  const Matcher m(c, nullptr);
  MatchOptions opt;
  BuyerPreferences p(c, {170000.0, std::nullopt, {}});
  const auto before = m.top_k(p, kT0, opt);
  ASSERT_EQ(before.size(), 10u);
  const double gilbert_before = share_in(c, before, "Gilbert");
  for (int i = 0; i < 3; ++i) p.observe(c, first_in(c, "Gilbert", i), EventType::kPropertySave, kT0 + i);
  const auto after = m.top_k(p, kT0 + 10, opt);
  EXPECT_GT(share_in(c, after, "Gilbert"), gilbert_before);
  // Saves at higher prices raise the price level and the recommended prices
  // (of a buyer who stated no budget: a stated one binds, below).
  const auto& order = c.by_price();
  BuyerPreferences cheap(c, {});
  for (int i = 0; i < 3; ++i) cheap.observe(c, order[i], EventType::kPropertyView, kT0 + i);
  double mean_before = 0, mean_after = 0;
  for (const auto& x : m.top_k(cheap, kT0 + 5, opt)) mean_before += c.listing(x.listing).log_price;
  for (int i = 0; i < 6; ++i) cheap.observe(c, order[order.size() - 1 - i], EventType::kPropertySave, kT0 + 10 + i);
  for (const auto& x : m.top_k(cheap, kT0 + 20, opt)) mean_after += c.listing(x.listing).log_price;
  EXPECT_GT(mean_after, mean_before + 0.5);
  // One save far above a stated budget does not move it (Matcher.BudgetFollowsConsistentBehaviour).
  BuyerPreferences stated(c, {120000.0, std::nullopt, {}});
  stated.observe(c, order[order.size() - 1], EventType::kPropertySave, kT0);
  for (const auto& x : m.top_k(stated, kT0 + 10, opt)) EXPECT_LE(c.listing(x.listing).price, 120000 * 1.05);
}

// The listing priced closest to `usd` that is not in `taken` (which it joins).
std::uint32_t priced_near(const ListingCatalog& c, double usd, std::vector<std::uint32_t>* taken) {
  std::uint32_t best = 0;
  double gap = 1e300;
  for (std::uint32_t i = 0; i < c.size(); ++i) {
    if (std::find(taken->begin(), taken->end(), i) != taken->end()) continue;
    if (std::fabs(c.listing(i).price - usd) < gap) gap = std::fabs(c.listing(i).price - usd), best = i;
  }
  taken->push_back(best);
  return best;
}

TEST(BuyerPreferences, EffectiveBudgetFollowsConsistentSavesAbove) {
  auto c = ames();
  std::vector<std::uint32_t> taken;
  const std::uint32_t at150 = priced_near(c, 150000, &taken), at160 = priced_near(c, 160000, &taken),
                      at170 = priced_near(c, 170000, &taken), at118 = priced_near(c, 118000, &taken),
                      at110 = priced_near(c, 110000, &taken);
  ASSERT_NEAR(c.listing(at160).price, 160000, 3000);
  ASSERT_NEAR(c.listing(at150).price, 150000, 3000);
  ASSERT_NEAR(c.listing(at170).price, 170000, 3000);

  BuyerPreferences none(c, {});
  EXPECT_FALSE(none.effective_budget().has_value());

  BuyerPreferences p(c, {120000.0, std::nullopt, {}});
  ASSERT_TRUE(p.effective_budget().has_value());
  EXPECT_EQ(p.effective_budget()->effective, 120000);
  EXPECT_EQ(effective_budget_why(*p.effective_budget()), "as stated");
  // One save above: not yet a pattern. Views above never count.
  p.observe(c, at160, EventType::kPropertySave, kT0);
  for (int i = 0; i < 5; ++i) p.observe(c, at170, EventType::kPropertyView, kT0 + 1 + i);
  EXPECT_FALSE(p.effective_budget()->follows_behaviour);
  EXPECT_EQ(p.effective_budget()->effective, 120000);
  EXPECT_EQ(p.effective_budget()->above.homes, 1);
  // Three homes at 150-170k: the budget follows them (their median).
  p.observe(c, at150, EventType::kPropertySave, kT0 + 10);
  p.observe(c, at170, EventType::kTourRequest, kT0 + 11);
  const EffectiveBudget b = *p.effective_budget();
  EXPECT_TRUE(b.follows_behaviour);
  EXPECT_EQ(b.stated, 120000);
  EXPECT_EQ(b.effective, c.listing(at160).price);
  EXPECT_EQ(b.above.homes, 3);
  EXPECT_EQ(b.kept_since, 3);
  EXPECT_EQ(effective_budget_why(b), "you saved or toured 3 homes at " + short_price(c.listing(at150).price) + "-" +
                                         short_price(c.listing(at170).price) + " since stating 120k");
  EXPECT_NEAR(p.log_effective_budget(), std::log(c.listing(at160).price), 1e-5);
  EXPECT_EQ(p.log_budget(), static_cast<float>(std::log(120000.0)));  // the statement itself is kept

  // Restating the budget starts over from the statement; earlier saves no longer count.
  p.restate_budget(120000.0, kT0 + 20);
  EXPECT_FALSE(p.effective_budget()->follows_behaviour);
  EXPECT_EQ(p.effective_budget()->effective, 120000);
  EXPECT_EQ(p.effective_budget()->kept_since, 0);
  // A save in the statement's own second came before it; saving again a
  // home kept before the statement counts from then on.
  p.observe(c, at150, EventType::kPropertySave, kT0 + 20);
  EXPECT_EQ(p.effective_budget()->kept_since, 0);
  p.observe(c, at160, EventType::kPropertySave, kT0 + 30);
  EXPECT_EQ(p.effective_budget()->kept_since, 1);
  EXPECT_FALSE(p.effective_budget()->follows_behaviour);

  // Saves inside the budget weigh against: 2 above of 4 kept is not two thirds.
  BuyerPreferences mixed(c, {120000.0, std::nullopt, {}});
  mixed.observe(c, at150, EventType::kPropertySave, kT0);
  mixed.observe(c, at170, EventType::kPropertySave, kT0 + 1);
  mixed.observe(c, at118, EventType::kPropertySave, kT0 + 2);
  mixed.observe(c, at110, EventType::kPropertySave, kT0 + 3);
  EXPECT_FALSE(mixed.effective_budget()->follows_behaviour);
  EXPECT_EQ(mixed.effective_budget()->above.homes, 2);
  EXPECT_EQ(mixed.effective_budget()->kept_since, 4);

  // Behaviour before a budget's statement time does not move it.
  StatedCriteria later{120000.0, std::nullopt, {}};
  later.budget_stated_at = kT0 + 100;
  BuyerPreferences q(c, later);
  q.observe(c, at150, EventType::kPropertySave, kT0);
  q.observe(c, at160, EventType::kPropertySave, kT0 + 1);
  q.observe(c, at170, EventType::kPropertySave, kT0 + 2);
  EXPECT_FALSE(q.effective_budget()->follows_behaviour);
}

// A stored contact's criteria carry when its budget was stated: a budget
// restated through the API or the CRM starts over from then, one imported
// from history (0) counts as stated before every save.
TEST(BuyerPreferences, AStoredContactsBudgetCountsFromItsStatement) {
  auto c = ames();
  std::vector<std::uint32_t> taken;
  const std::uint32_t at150 = priced_near(c, 150000, &taken), at160 = priced_near(c, 160000, &taken),
                      at170 = priced_near(c, 170000, &taken), at180 = priced_near(c, 180000, &taken);
  Contact contact;
  contact.tenant_id = "t";
  contact.contact_id = "buyer";
  contact.budget = 120000.0;
  contact.beds_wanted = 3;
  contact.area_wanted = "North_Ames";
  contact.budget_stated_at = kT0 + 100;
  const StatedCriteria stated = stated_criteria(contact);
  EXPECT_EQ(stated.budget, 120000.0);
  EXPECT_EQ(stated.beds, 3);
  EXPECT_EQ(stated.areas, std::vector<std::string>{"North_Ames"});
  EXPECT_EQ(stated.budget_stated_at, kT0 + 100);

  BuyerPreferences restated(c, stated);
  restated.observe(c, at150, EventType::kPropertySave, kT0);
  restated.observe(c, at170, EventType::kPropertySave, kT0 + 1);
  restated.observe(c, at180, EventType::kTourRequest, kT0 + 100);  // the statement's own second
  EXPECT_FALSE(restated.effective_budget()->follows_behaviour);
  EXPECT_EQ(restated.effective_budget()->kept_since, 0);
  EXPECT_EQ(restated.effective_budget()->effective, 120000);
  restated.observe(c, at160, EventType::kPropertySave, kT0 + 101);
  EXPECT_FALSE(restated.effective_budget()->follows_behaviour);  // one home is not a pattern
  restated.observe(c, at170, EventType::kTourRequest, kT0 + 102);
  EXPECT_TRUE(restated.effective_budget()->follows_behaviour);
  EXPECT_EQ(restated.effective_budget()->kept_since, 2);
  EXPECT_EQ(restated.effective_budget()->effective, (c.listing(at160).price + c.listing(at170).price) / 2);

  contact.budget_stated_at = 0;  // imported from history
  BuyerPreferences imported(c, stated_criteria(contact));
  imported.observe(c, at150, EventType::kPropertySave, kT0);
  imported.observe(c, at170, EventType::kPropertySave, kT0 + 1);
  EXPECT_TRUE(imported.effective_budget()->follows_behaviour);
  EXPECT_EQ(imported.effective_budget()->kept_since, 2);
}

TEST(BuyerPreferences, ShortPricesReadAsPeopleSayThem) {
  EXPECT_EQ(short_price(120000), "120k");
  EXPECT_EQ(short_price(159499), "159k");
  EXPECT_EQ(short_price(1250000), "1.25M");
  EXPECT_EQ(short_price(999999), "1M");
  EXPECT_EQ(short_price(950), "950");
}

TEST(Matcher, BudgetFollowsConsistentBehaviour) {
  auto c = ames();
  const Matcher m(c, nullptr);
  MatchOptions opt;
  std::vector<std::uint32_t> taken;
  const std::uint32_t at150 = priced_near(c, 150000, &taken), at160 = priced_near(c, 160000, &taken),
                      at170 = priced_near(c, 170000, &taken);
  const double ceiling = 120000 * (1 + kBudgetTolerance);
  auto over_stated = [&](const std::vector<Match>& top) {
    int n = 0;
    for (const auto& x : top) n += c.listing(x.listing).price > ceiling;
    return n;
  };

  BuyerPreferences p(c, {120000.0, std::nullopt, {}});
  p.observe(c, at160, EventType::kPropertySave, kT0);
  // One save above: every match is still within the stated 120k (+5%).
  const auto one = m.top_k(p, kT0 + 5, opt);
  ASSERT_EQ(one.size(), 10u);
  EXPECT_EQ(over_stated(one), 0);

  p.observe(c, at150, EventType::kPropertySave, kT0 + 10);
  p.observe(c, at170, EventType::kPropertySave, kT0 + 11);
  const auto three = m.top_k(p, kT0 + 20, opt);
  ASSERT_EQ(three.size(), 10u);
  // Homes at their level now meet the budget: they come in the first group
  // and say why, in the buyer's own numbers.
  const std::string why = "over your stated 120k, like the 3 homes you saved at " +
                          short_price(c.listing(at150).price) + "-" + short_price(c.listing(at170).price);
  int near_160 = 0;
  for (const auto& x : three) {
    const double price = c.listing(x.listing).price;
    EXPECT_LE(price, c.listing(at160).price * (1 + kBudgetTolerance)) << c.listing(x.listing).id;
    ASSERT_FALSE(x.reasons.empty());
    if (price > 120000 * 1.02) {
      EXPECT_EQ(x.reasons[0], why) << c.listing(x.listing).id;
    } else {
      EXPECT_EQ(x.reasons[0], "within budget");
    }
    near_160 += price >= 145000;
  }
  EXPECT_GE(near_160, 3);
  EXPECT_GT(over_stated(three), 0);

  // The buyer states 120k again: back to the statement.
  p.restate_budget(120000.0, kT0 + 30);
  const auto restated = m.top_k(p, kT0 + 40, opt);
  ASSERT_EQ(restated.size(), 10u);
  EXPECT_EQ(over_stated(restated), 0);
  for (const auto& x : restated) EXPECT_EQ(x.reasons[0].find("over your stated"), std::string::npos);
}

TEST(Matcher, SavedListingsAreExcludedAndScoresAreBounded) {
  auto c = ames();
  const Matcher m(c, nullptr);
  BuyerPreferences p(c, {200000.0, 3, {"North_Ames"}});
  auto top = m.top_k(p, kT0, {});
  ASSERT_FALSE(top.empty());
  const auto best = top[0].listing;
  p.observe(c, best, EventType::kPropertySave, kT0 + 5);
  p.observe(c, top[1].listing, EventType::kTourRequest, kT0 + 6);
  const auto again = m.top_k(p, kT0 + 10, {});
  for (const auto& x : again) {
    EXPECT_NE(x.listing, best);
    EXPECT_NE(x.listing, top[1].listing);
    EXPECT_GE(x.match_score, 0.0);
    EXPECT_LE(x.match_score, 1.0);
    EXPECT_GT(x.predicted_interest, 0.0);
    EXPECT_LT(x.predicted_interest, 1.0);
    EXPECT_FALSE(x.reasons.empty());
  }
  for (std::size_t i = 1; i < again.size(); ++i) EXPECT_GE(again[i - 1].match_score, again[i].match_score);
  // A reason names the neighbourhood of the saved home.
  bool named = false;
  for (const auto& x : again) {
    for (const auto& r : x.reasons) {
      named |= r.find("you saved") != std::string::npos || r.find("you toured") != std::string::npos ||
               r == "within budget";
    }
  }
  EXPECT_TRUE(named);
}

bool has_reason(const Match& m, std::string_view words) {
  return std::any_of(m.reasons.begin(), m.reasons.end(),
                     [&](const std::string& r) { return r.find(words) != std::string::npos; });
}

// "Its estimated value" is only ever the AVM valuation a listing carries; the
// catalog's comparables estimate is called what it is.
TEST(Matcher, ValueReasonsNameTheEstimateTheyComeFrom) {
  auto c = ames();
  BuyerPreferences p(c, {250000.0, std::nullopt, {}});
  MatchOptions opt;
  opt.k = 60;
  const auto plain = Matcher(c, nullptr).top_k(p, kT0, opt);
  ASSERT_EQ(plain.size(), 60u);
  int comparables = 0;
  for (const auto& m : plain) {
    EXPECT_FALSE(has_reason(m, "estimated value")) << c.listing(m.listing).id;
    if (!has_reason(m, "under comparable homes")) continue;
    ++comparables;
    const Listing& l = c.listing(m.listing);
    EXPECT_LT(l.log_price - l.log_value, -0.05f) << l.id;
  }
  EXPECT_GT(comparables, 0);

  // With AVM valuations stored, every listing is at its value except one
  // priced 15% under it: only that one has a value reason, in the AVM's words.
  const std::uint32_t bargain = plain[0].listing;
  for (std::size_t i = 0; i < c.size(); ++i) c.set_appraisal(i, c.listing(i).price);
  c.set_appraisal(bargain, c.listing(bargain).price / 0.85);
  const auto valued = Matcher(c, nullptr).top_k(p, kT0, opt);
  bool seen = false;
  for (const auto& m : valued) {
    EXPECT_FALSE(has_reason(m, "comparable homes")) << c.listing(m.listing).id;
    if (m.listing == bargain) {
      seen = true;
      EXPECT_TRUE(has_reason(m, "priced 15% under its estimated value")) << ::testing::PrintToString(m.reasons);
    } else {
      EXPECT_FALSE(has_reason(m, "estimated value")) << c.listing(m.listing).id;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(Matcher, NearCopiesDoNotFillTheList) {
  std::ostringstream csv;
  csv << "Neighborhood,House_Style,Bedrooms,Living_Area,Price\n";
  for (int i = 0; i < 15; ++i) csv << "Copyville,Ranch,3,1500,200000\n";
  for (int i = 0; i < 15; ++i) csv << "Elsewhere,TwoStory," << 2 + i % 3 << "," << 1000 + 60 * i << "," << 150000 + 7000 * i << "\n";
  auto table = parse_sales_csv(csv.str(), "copies.csv");
  ASSERT_TRUE(table.has_value());
  auto c = ListingCatalog::build(*table, {"Price", ""});
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_EQ(c->listing(0).id, "copies-0001");
  const Matcher m(*c, nullptr);
  BuyerPreferences p(*c, {200000.0, 3, {}});
  p.observe(*c, 0, EventType::kPropertyView, kT0);
  const auto top = m.top_k(p, kT0 + 1, {});
  ASSERT_EQ(top.size(), 10u);
  EXPECT_LE(share_in(*c, top, "Copyville"), 0.5);
  MatchOptions plain;
  plain.diversify = false;
  EXPECT_EQ(share_in(*c, m.top_k(p, kT0 + 1, plain), "Copyville"), 1.0);
  // A stated area outweighs variety: near-copies in it before any home
  // outside it.
  BuyerPreferences there(*c, {200000.0, 3, {"Copyville"}});
  there.observe(*c, 0, EventType::kPropertyView, kT0);
  EXPECT_EQ(share_in(*c, m.top_k(there, kT0 + 1, {}), "Copyville"), 1.0);
}

// The candidate index stops reading once no remaining row can enter the
// pool: its pool must be the first rows of the complete ranking of the band
// (a pool as large as the catalog reads every row), for buyers with and
// without stated budget, area, beds and behaviour.
TEST(Matcher, CandidateIndexPoolEqualsTheTopOfTheWholeBand) {
  ListingCatalog c = ListingCatalog::generate(20000, 5);
  const auto history = testing::synthetic_history(c, 400, 9);
  auto buyers = build_match_history(c, history.contacts, history.events, 7 * 86400, {}, nullptr);
  const Matcher matcher(c, nullptr);
  std::vector<BuyerPreferences> cases;
  for (std::size_t i = 0; i < buyers.size(); i += 7) cases.push_back(buyers[i].preferences);
  cases.emplace_back(c, StatedCriteria{250000.0, std::nullopt, {}});
  cases.emplace_back(c, StatedCriteria{250000.0, 3, {"nb7"}});
  cases.emplace_back(c, StatedCriteria{std::nullopt, 5, {}});
  cases.emplace_back(c, StatedCriteria{std::nullopt, std::nullopt, {"nb3", "nb11"}});
  cases.emplace_back(c, StatedCriteria{});
  cases.emplace_back(c, StatedCriteria{5e7, 9, {}});  // nothing near: the widened search fills the pool
  int with_behaviour = 0;
  for (const auto& b : cases) {
    with_behaviour += b.has_centroid();
    const auto pool = matcher.candidates(b, kT0 + 400 * 86400, 300);
    const auto all = matcher.candidates(b, kT0 + 400 * 86400, c.size());
    ASSERT_EQ(pool.size(), 300u);
    ASSERT_GE(all.size(), pool.size());
    EXPECT_TRUE(std::equal(pool.begin(), pool.end(), all.begin()));
    for (auto id : pool) EXPECT_FALSE(b.saved(id));
  }
  EXPECT_GT(with_behaviour, 10);
}

// The demo's Ames listings (2,930, list prices): North Ames has 443 homes,
// 439 of them at most 5% over 250,000; Green Hills two (230,000 and 330,000).
const char* const kDemoListings = "fixtures/demo/listings.csv";

ListingCatalog demo_listings() {
  auto c = ListingCatalog::load(kDemoListings, {"List_Price", "listing_id"});
  EXPECT_TRUE(c.has_value()) << c.status().to_string();
  return std::move(*c);
}

bool has_reason_ending(const Match& m, std::string_view tail) {
  return std::any_of(m.reasons.begin(), m.reasons.end(), [&](const std::string& r) { return r.ends_with(tail); });
}

// "North Ames, 250k, 3 beds": every home shown is in North Ames and at most
// 5% over budget, as long as North Ames has enough of them.
void expect_stated_area_and_budget_bind(const ListingCatalog& c, const Matcher& m) {
  BuyerPreferences p(c, {250000.0, 3, {"north ames"}});
  MatchOptions opt;
  opt.k = 10;
  const auto top = m.top_k(p, kT0, opt);
  ASSERT_EQ(top.size(), 10u);
  for (const auto& x : top) {
    const Listing& l = c.listing(x.listing);
    EXPECT_EQ(c.neighbourhood_name(l.neighbourhood), "North_Ames") << l.id;
    EXPECT_LE(l.price, 250000 * 1.05) << l.id;
    EXPECT_EQ(x.reasons.size() > 0 && (x.reasons[0] == "within budget" || x.reasons[0].ends_with("% over budget")), true)
        << l.id;
    EXPECT_FALSE(has_reason(x, "outside North Ames")) << l.id;
  }
}

// A thin area: Green Hills has one home within 250,000 and one 32% over.
// The one that meets both comes first; the rest fill and say what they miss.
void expect_thin_area_fills_and_says_why(const ListingCatalog& c, const Matcher& m) {
  BuyerPreferences p(c, {250000.0, 3, {"Green Hills"}});
  const auto top = m.top_k(p, kT0, {});
  ASSERT_EQ(top.size(), 10u);
  EXPECT_EQ(c.listing(top[0].listing).price, 230000);
  EXPECT_EQ(c.neighbourhood_name(c.listing(top[0].listing).neighbourhood), "Green_Hills");
  EXPECT_TRUE(has_reason(top[0], "within budget"));
  for (std::size_t i = 1; i < top.size(); ++i) {
    const Listing& l = c.listing(top[i].listing);
    const bool outside = has_reason(top[i], "outside Green Hills");
    const bool over = has_reason_ending(top[i], "% over budget") && l.price > 250000 * 1.05;
    EXPECT_TRUE(outside || over) << l.id << " " << l.price;
    EXPECT_EQ(outside, c.neighbourhood_name(l.neighbourhood) != "Green_Hills") << l.id;
    if (l.price == 330000) {
      EXPECT_TRUE(has_reason(top[i], "32% over budget"));
    }
  }
  // Fillers that miss one criterion come before those that miss both.
  bool missed_both = false;
  for (std::size_t i = 1; i < top.size(); ++i) {
    const Listing& l = c.listing(top[i].listing);
    const bool both = c.neighbourhood_name(l.neighbourhood) != "Green_Hills" && l.price > 250000 * 1.05;
    EXPECT_FALSE(missed_both && !both) << "a home missing both criteria ranked above " << l.id;
    missed_both = missed_both || both;
  }
}

TEST(Matcher, StatedAreaAndBudgetComeFirstWithTheContentScorer) {
  const auto c = demo_listings();
  const Matcher m(c, nullptr);
  expect_stated_area_and_budget_bind(c, m);
  expect_thin_area_fills_and_says_why(c, m);
  // The scorer still ranks within them: most have the three bedrooms asked for.
  BuyerPreferences north_ames(c, {250000.0, 3, {"north ames"}});
  int three = 0;
  for (const auto& x : m.top_k(north_ames, kT0, {})) three += c.listing(x.listing).beds == 3.0f;
  EXPECT_GE(three, 6);
  // Budget alone: homes over the tolerance only when too few fit.
  BuyerPreferences budget(c, {250000.0, std::nullopt, {}});
  for (const auto& x : m.top_k(budget, kT0, {})) EXPECT_LE(c.listing(x.listing).price, 250000 * 1.05);
  // Area alone: all in the area, at any price.
  BuyerPreferences area(c, {std::nullopt, std::nullopt, {"Northridge"}});
  for (const auto& x : m.top_k(area, kT0, {})) {
    EXPECT_EQ(c.neighbourhood_name(c.listing(x.listing).neighbourhood), "Northridge");
  }
  // An area unknown to the catalog is not matched on (unknown_areas), and no
  // home is said to be outside it; the budget still binds.
  BuyerPreferences unknown(c, {250000.0, 3, {"Atlantis"}});
  EXPECT_EQ(unknown.unknown_areas(), std::vector<std::string>{"Atlantis"});
  EXPECT_TRUE(unknown.areas_wanted().empty());
  const auto top = m.top_k(unknown, kT0, {});
  ASSERT_EQ(top.size(), 10u);
  for (const auto& x : top) {
    EXPECT_LE(c.listing(x.listing).price, 250000 * 1.05);
    EXPECT_FALSE(has_reason_ending(x, "Atlantis"));
  }
  // Two stated areas: a home in either will do.
  BuyerPreferences two(c, {250000.0, 3, {"Green Hills", "Landmark"}});
  const auto both = m.top_k(two, kT0, {});
  ASSERT_EQ(both.size(), 10u);
  EXPECT_TRUE(std::any_of(both.begin() + 2, both.end(),
                          [](const Match& x) { return has_reason(x, "outside Green Hills and Landmark"); }));
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& name = c.neighbourhood_name(c.listing(both[i].listing).neighbourhood);
    EXPECT_TRUE(name == "Green_Hills" || name == "Landmark") << name;
  }
}

TEST(Matcher, StatedAreaAndBudgetComeFirstWithTheLearnedRanker) {
  // A small ranker trained on a generated history, applied to the Ames
  // listings (models carry no catalog of their own).
  ListingCatalog generated = ListingCatalog::generate(1500, 3);
  const auto history = testing::synthetic_history(generated, 400, 5);
  auto buyers = build_match_history(generated, history.contacts, history.events, 7 * 86400, {}, nullptr);
  MatchTrainOptions opt;
  opt.pool = 200;
  opt.rounds = 30;
  opt.nthread = 1;
  opt.segments = 4;
  auto model = MatchModel::train(generated, buyers, opt, nullptr);
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const auto c = demo_listings();
  const Matcher m(c, std::make_shared<const MatchModel>(std::move(*model)));
  expect_stated_area_and_budget_bind(c, m);
  expect_thin_area_fills_and_says_why(c, m);
}

TEST(Metrics, NdcgAndRecall) {
  const std::vector<std::uint32_t> ranked = {5, 3, 9, 1};
  const std::vector<std::uint32_t> rel = {3, 7};
  EXPECT_NEAR(ndcg_at_k(ranked, rel, 10), (1 / std::log2(3.0)) / (1 + 1 / std::log2(3.0)), 1e-9);
  EXPECT_NEAR(recall_at_k(ranked, rel, 10), 0.5, 1e-12);
  EXPECT_EQ(ndcg_at_k(ranked, {}, 10), 0.0);
  EXPECT_NEAR(ndcg_at_k(std::vector<std::uint32_t>{3, 7}, rel, 10), 1.0, 1e-12);
}

TEST(MatchModel, LearnsTasteFromHistoryAndRoundTrips) {
  ListingCatalog c = ListingCatalog::generate(1500, 3);
  const auto history = testing::synthetic_history(c, 500, 5);
  std::size_t unknown = 0;
  auto buyers = build_match_history(c, history.contacts, history.events, 7 * 86400, {}, &unknown);
  EXPECT_EQ(unknown, 0u);
  ASSERT_EQ(buyers.size(), 500u);
  std::vector<MatchHistoryBuyer> train(buyers.begin(), buyers.begin() + 400);
  std::vector<MatchHistoryBuyer> test(buyers.begin() + 400, buyers.end());
  MatchTrainOptions opt;
  opt.pool = 200;
  opt.rounds = 60;
  opt.nthread = 1;
  opt.segments = 4;
  MatchTrainSummary summary;
  auto model = MatchModel::train(c, train, opt, &summary);
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  EXPECT_GT(summary.buyers, 50u);
  EXPECT_GT(summary.pool_recall, 0.3);
  auto shared = std::make_shared<const MatchModel>(std::move(*model));
  const Matcher learned(c, shared);
  ASSERT_NE(learned.segments(), nullptr);
  double ndcg = 0, popular = 0;
  std::size_t n = 0;
  for (const auto& b : test) {
    if (b.later_interest.empty()) continue;
    ndcg += ndcg_at_k(ids(learned.top_k(b.preferences, b.as_of, {})), b.later_interest, 10);
    std::vector<std::uint32_t> first10 = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    popular += ndcg_at_k(first10, b.later_interest, 10);
    ++n;
  }
  ASSERT_GT(n, 20u);
  EXPECT_GT(ndcg / n, 0.05);  // taste-driven saves are found far above chance
  EXPECT_GT(ndcg / n, 5 * popular / n);

  const auto dir = std::filesystem::temp_directory_path() / "reai_match_model_test";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(shared->save(dir.string()).is_ok());
  auto loaded = MatchModel::load(dir.string());
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  const Matcher reloaded(c, std::make_shared<const MatchModel>(std::move(*loaded)));
  const auto a = learned.top_k(test[0].preferences, test[0].as_of, {});
  const auto b = reloaded.top_k(test[0].preferences, test[0].as_of, {});
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].listing, b[i].listing);
    EXPECT_NEAR(a[i].match_score, b[i].match_score, 1e-9);
  }
  EXPECT_NE(shared->metrics_json().find("valid_ndcg10_in_pool"), std::string::npos);

  // Bad model directories.
  EXPECT_EQ(MatchModel::load((dir / "missing").string()).status().code(), StatusCode::kNotFound);
  {
    std::ofstream broken(dir / "model.json");
    broken << "{\"format\":\"reai-match-1\",\"features\":[\"price_gap\"]}";
  }
  EXPECT_EQ(MatchModel::load(dir.string()).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(MatchModel, TooLittleHistoryIsRejected) {
  ListingCatalog c = ListingCatalog::generate(300, 1);
  const auto history = testing::synthetic_history(c, 10, 2);
  auto buyers = build_match_history(c, history.contacts, history.events, 7 * 86400, {}, nullptr);
  auto model = MatchModel::train(c, buyers, {}, nullptr);
  ASSERT_FALSE(model.has_value());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
}

TEST(MatchHistory, UnknownListingsAreCountedAndLaterSavesAreTargets) {
  auto c = ames();
  Contact buyer;
  buyer.tenant_id = "t";
  buyer.contact_id = "c1";
  buyer.created_at = kT0;
  buyer.lead_type = LeadType::kBuyer;
  Contact seller = buyer;
  seller.contact_id = "c2";
  seller.lead_type = LeadType::kSeller;
  const auto ev = [](std::string contact, UnixSeconds ts, EventType type, std::string listing) {
    Event e;
    e.tenant_id = "t";
    e.contact_id = std::move(contact);
    e.ts = ts;
    e.type = type;
    e.property_id = std::move(listing);
    return e;
  };
  std::vector<Event> events = {ev("c1", kT0 + 100, EventType::kPropertyView, "ames-0001"),
                               ev("c1", kT0 + 200, EventType::kPropertySave, "ames-0002"),
                               ev("c1", kT0 + 300, EventType::kPropertyView, "ames-9999"),
                               ev("c1", kT0 + 8 * 86400, EventType::kPropertySave, "ames-0003"),
                               ev("c1", kT0 + 9 * 86400, EventType::kPropertySave, "ames-0002"),
                               ev("c2", kT0 + 500, EventType::kPropertySave, "ames-0004")};
  std::size_t unknown = 0;
  auto buyers = build_match_history(c, std::vector<Contact>{buyer, seller}, events, 7 * 86400, {}, &unknown);
  ASSERT_EQ(buyers.size(), 1u);  // sellers get no matches
  EXPECT_EQ(unknown, 1u);
  EXPECT_EQ(buyers[0].preferences.views(), 1);
  EXPECT_TRUE(buyers[0].preferences.saved(1));
  // ames-0002 was saved before as-of, so only ames-0003 is a target.
  EXPECT_EQ(buyers[0].later_interest, std::vector<std::uint32_t>{2});
  EXPECT_EQ(c.popularity(3, kT0 + 501), 1);  // the seller's save counts for popularity
  EXPECT_EQ(c.popularity(3, kT0 + 500), 0);  // but only after it happened
}

TEST(ListingCatalog, LiveBehaviourCountsBesideBuiltPopularityAndOnlyBeforeItsTime) {
  ListingCatalog c = ListingCatalog::generate(50, 2);
  c.record_interest(7, kT0 + 10);
  c.record_view(7, kT0 + 5);
  c.finish_popularity();
  EXPECT_EQ(c.popularity(7, kT0 + 100), 1);
  c.add_live_interest(7, kT0 + 50);
  c.add_live_interest(7, kT0 + 60);
  c.add_live_view(7, kT0 + 55);
  EXPECT_EQ(c.popularity(7, kT0 + 100), 3);  // built + both live saves
  EXPECT_EQ(c.view_count(7, kT0 + 100), 2);
  // Asked about an instant between the live events: only those before it.
  EXPECT_EQ(c.popularity(7, kT0 + 60), 2);
  EXPECT_EQ(c.popularity(7, kT0 + 50), 1);
  EXPECT_EQ(c.view_count(7, kT0 + 55), 1);
  EXPECT_EQ(c.popularity(8, kT0 + 100), 0);  // other listings untouched
  // A copy keeps what was added; later additions stay the original's.
  ListingCatalog copy = c;
  c.add_live_interest(7, kT0 + 70);
  EXPECT_EQ(copy.popularity(7, kT0 + 100), 3);
  EXPECT_EQ(c.popularity(7, kT0 + 100), 4);
}

// A catalog serving for months adds live events all along: a listing keeps
// only its newest times, the rest in a count, and queries at now stay exact.
TEST(LiveTimes, KeepsTheNewestTimesOfAListingAndFoldsTheRest) {
  LiveTimes live;
  live.reset(3);
  constexpr int kAdds = 1000;
  for (int k = 0; k < kAdds; ++k) live.add(1, kT0 + k);
  live.add(2, kT0 + 5);
  EXPECT_EQ(live.kept_times(), LiveTimes::kKeptTimes + 1);
  EXPECT_EQ(live.count_before(1, kT0 + kAdds), kAdds);  // after every event
  // Between kept times: exact.
  EXPECT_EQ(live.count_before(1, kT0 + kAdds - 1), kAdds - 1);
  EXPECT_EQ(live.count_before(1, kT0 + kAdds - 20), kAdds - 20);
  // Before a folded time: the kept ones before it only, never one after it.
  EXPECT_EQ(live.count_before(1, kT0 + 500), 0);
  // An old event arriving late folds at once and counts from then on.
  live.add(1, kT0 - 5);
  EXPECT_EQ(live.kept_times(), LiveTimes::kKeptTimes + 1);
  EXPECT_EQ(live.count_before(1, kT0 + kAdds), kAdds + 1);
  EXPECT_EQ(live.count_before(1, kT0 + kAdds - 1), kAdds);
  EXPECT_EQ(live.count_before(2, kT0 + 6), 1);
  EXPECT_EQ(live.count_before(2, kT0 + 5), 0);
  EXPECT_EQ(live.count_before(0, kT0 + kAdds), 0);
  // A copy keeps the folded count too.
  const LiveTimes copy = live;
  EXPECT_EQ(copy.count_before(1, kT0 + kAdds - 1), kAdds);
  EXPECT_EQ(copy.kept_times(), live.kept_times());
}

TEST(ListingCatalog, LiveBehaviourIsAddedWhileOtherThreadsRank) {
  ListingCatalog c = ListingCatalog::generate(2000, 4);
  c.finish_popularity();
  const Matcher matcher(c, nullptr);
  BuyerPreferences buyer(c, StatedCriteria{300000.0, 3, {}});
  constexpr int kAdds = 20000;
  std::thread writer([&] {
    for (int k = 0; k < kAdds; ++k) c.add_live_interest(static_cast<std::size_t>(k % 2000), kT0 + k);
  });
  int last = 0;
  bool monotonic = true;
  for (int r = 0; r < 200; ++r) {
    (void)matcher.top_k(buyer, kT0 + kAdds, {});
    const int now = c.popularity(0, kT0 + kAdds);
    monotonic = monotonic && now >= last;
    last = now;
  }
  writer.join();
  EXPECT_TRUE(monotonic);
  EXPECT_EQ(c.popularity(0, kT0 + kAdds), kAdds / 2000);
  EXPECT_EQ(c.popularity(0, kT0 + 2000), 1);  // only the one added at kT0 + 0
}

}  // namespace
}  // namespace reai::property
