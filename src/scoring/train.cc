// train_lead_model: examples at several ages of each lead, as-of track
// records, XGBoost with early stopping on a later validation period, and
// cross-fitted isotonic calibration.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <unordered_map>

#include <boost/json.hpp>

#include "core/files.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "scoring/lead_model.h"
#include "scoring/scoring.h"

namespace reai::scoring {
namespace {
namespace json = boost::json;
namespace fs = std::filesystem;

std::string contact_key(std::string_view tenant, std::string_view contact) {
  return tenant_scoped_key(tenant, contact);
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Training and validation examples come from contacts whose 90-day window
// closed; `kRecent` ones from the latest, still-open cohorts (level
// calibration only, never training).
enum class ExampleKind : std::uint8_t { kTrain, kValidation, kRecent };

struct Example {
  std::uint32_t contact;
  std::uint32_t age_index;
  UnixSeconds t;
  ExampleKind kind;
};

// Level calibration windows (see "Level calibration" in train_lead_model).
constexpr UnixSeconds kDay = 86400;
constexpr UnixSeconds kYear = 365 * kDay;
constexpr UnixSeconds kRecentMinAge = 14 * kDay;   // younger cohorts show too few conversions yet
constexpr UnixSeconds kNextSeason = 182 * kDay;    // the months a model serves before retraining
// Beyond this example age the shift is the one at this age: a lead weeks old
// already shows much of its outcome in its features, so the recent window's
// "share of conversions shown so far" no longer applies evenly to its rows
// (a third of conversions happen within 7 days, two thirds within 14).
constexpr double kMaxLevelAgeHours = 168;
// Prior sd of a level drift (log-odds): a drift of ~20% in odds is plausible.
constexpr double kLevelPriorSd = 0.2;

// One example of a level window, scored by the served model.
struct WindowRow {
  double probability;  // served model, before level calibration
  float observed;      // signed (so far, for a recent cohort)
  double shown;        // share of 90-day conversions visible by now (1 when matured)
};

struct LevelEstimate {
  double shift = 0;      // log-odds
  double positives = 0;  // observed conversions (its variance is ~1/positives)
  std::size_t rows = 0;
};

// The log-odds shift d that makes sum sigmoid(logit p + d) * shown equal the
// observed conversions: the model's level error on a window, censoring-aware
// (a cohort only weeks old is compared with the share of conversions that
// have had time to happen). nullopt when the window is too small.
std::optional<LevelEstimate> level_error(const std::vector<WindowRow>& rows) {
  LevelEstimate e;
  e.rows = rows.size();
  for (const auto& r : rows) e.positives += r.observed;
  if (rows.size() < 200 || e.positives < 20) return std::nullopt;
  auto expected = [&rows](double d) {
    double sum = 0;
    for (const auto& r : rows) {
      const double p = std::clamp(r.probability, 1e-6, 1 - 1e-6);
      sum += r.shown / (1 + std::exp(-(std::log(p / (1 - p)) + d)));
    }
    return sum;
  };
  double lo = -3, hi = 3;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (expected(mid) < e.positives ? lo : hi) = mid;
  }
  e.shift = 0.5 * (lo + hi);
  return e;
}

// Level windows of one example age.
struct LevelWindows {
  std::vector<WindowRow> recent;          // [end - 90 d, end - 14 d): open cohorts
  std::vector<WindowRow> recent_last_year;  // the same dates a year earlier (matured)
  std::vector<WindowRow> next_last_year;    // [end - 1 y, end - 1 y + 182 d) (matured)
};


// The raw forest probability as is (the level shift still applies).
Result<models::IsotonicCalibrator> identity_calibrator() {
  return models::IsotonicCalibrator::from_json(R"({"x":[0,1],"y":[0,1]})");
}

// Progress lines on stderr with the time since training started.
class TrainProgress {
 public:
  explicit TrainProgress(bool enabled) : enabled_(enabled) {}
  template <typename... Args>
  void operator()(const char* fmt, Args... args) const {
    if (!enabled_) return;
    std::fprintf(stderr, "train leads [%5.1f s]: ", seconds());
    std::fprintf(stderr, fmt, args...);
    std::fputc('\n', stderr);
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(); }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

Status check_training_input(const std::vector<Contact>& contacts, const TrainLeadOptions& options) {
  if (contacts.empty()) return invalid_argument("no contacts to train on");
  if (options.example_ages_hours.empty()) return invalid_argument("no example ages");
  for (double a : options.example_ages_hours) {
    if (!std::isfinite(a) || a < 0) return invalid_argument("example ages must be hours >= 0");
  }
  if (!(options.validation_fraction > 0 && options.validation_fraction < 1)) {
    return invalid_argument("validation_fraction must be in (0, 1)");
  }
  return Status::ok();
}

// Each contact's events (in time order), outcome and first outreach, by the
// contact's index in the input.
struct LeadHistory {
  std::vector<std::vector<std::uint32_t>> events_of;  // indices into the events
  std::vector<std::optional<UnixSeconds>> signed_at;  // first signing
  std::vector<std::optional<UnixSeconds>> first_out;  // first agent outreach
  std::vector<std::uint8_t> label, censored;
  std::size_t censored_count = 0;
  UnixSeconds min_ts = 0, max_ts = 0;
  // The export ends at the day boundary after the last record (a history
  // exported on 2026-01-01 has its last record on 2025-12-31).
  UnixSeconds export_end = 0;
};

LeadHistory index_history(const std::vector<Contact>& contacts, const std::vector<Event>& events,
                          const std::vector<OpportunityStage>& stages) {
  const std::size_t n = contacts.size();
  LeadHistory h;
  std::unordered_map<std::string, std::uint32_t> index;
  index.reserve(n * 2);
  h.min_ts = h.max_ts = contacts[0].created_at;
  for (std::uint32_t i = 0; i < n; ++i) {
    index.emplace(contact_key(contacts[i].tenant_id, contacts[i].contact_id), i);
    h.min_ts = std::min(h.min_ts, contacts[i].created_at);
    h.max_ts = std::max(h.max_ts, contacts[i].created_at);
  }
  h.events_of.resize(n);
  for (std::uint32_t e = 0; e < events.size(); ++e) {
    h.max_ts = std::max(h.max_ts, events[e].ts);
    auto it = index.find(contact_key(events[e].tenant_id, events[e].contact_id));
    if (it != index.end()) h.events_of[it->second].push_back(e);
  }
  h.signed_at.resize(n);
  for (const auto& s : stages) {
    h.max_ts = std::max(h.max_ts, s.ts);
    if (s.stage != Stage::kSigned) continue;
    auto it = index.find(contact_key(s.tenant_id, s.contact_id));
    if (it == index.end()) continue;
    auto& slot = h.signed_at[it->second];
    if (!slot || s.ts < *slot) slot = s.ts;
  }
  h.export_end = (h.max_ts / 86400 + 1) * 86400;
  h.label.resize(n);
  h.censored.resize(n);
  h.first_out.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const UnixSeconds created = contacts[i].created_at;
    h.label[i] = h.signed_at[i] && *h.signed_at[i] <= created + kConversionWindowSeconds;
    h.censored[i] = created + kConversionWindowSeconds > h.export_end;
    h.censored_count += h.censored[i];
    auto& evs = h.events_of[i];
    std::stable_sort(evs.begin(), evs.end(), [&events](std::uint32_t a, std::uint32_t b) { return events[a].ts < events[b].ts; });
    for (std::uint32_t e : evs) {
      if (is_outreach(events[e].type) && events[e].ts >= created) {
        h.first_out[i] = events[e].ts;
        break;
      }
    }
  }
  return h;
}

// Contacts whose 90-day window closed, oldest first.
Result<std::vector<std::uint32_t>> usable_contacts(const std::vector<Contact>& contacts, const LeadHistory& h) {
  std::vector<std::uint32_t> usable;
  for (std::uint32_t i = 0; i < contacts.size(); ++i) {
    if (!h.censored[i]) usable.push_back(i);
  }
  if (usable.size() < 50) {
    return invalid_argument("history too small: " + std::to_string(usable.size()) +
                            " contacts with a complete 90-day window (need 50)");
  }
  std::sort(usable.begin(), usable.end(), [&contacts](std::uint32_t a, std::uint32_t b) {
    return contacts[a].created_at < contacts[b].created_at;
  });
  return usable;
}

// Every example's features, one row of feature_count() floats each.
struct ExampleRows {
  std::vector<Example> examples;
  std::vector<float> rows;
  std::size_t nf = 0;

  float* row(std::uint32_t ex) { return rows.data() + std::size_t(ex) * nf; }
  std::span<const float> row_span(std::uint32_t ex) const { return {rows.data() + std::size_t(ex) * nf, nf}; }
};

// Lead features at each age, from events up to that instant only: the
// usable contacts (train or validation by val_from), then the latest cohorts
// (window still open) at the ages they have reached.
ExampleRows build_examples(const std::vector<Contact>& contacts, const std::vector<Event>& events,
                           const LeadHistory& h, const std::vector<std::uint32_t>& usable, UnixSeconds val_from,
                           const std::vector<double>& ages) {
  ExampleRows out;
  out.nf = features::feature_count();
  out.examples.reserve(usable.size() * ages.size());
  out.rows.reserve(usable.size() * ages.size() * out.nf);
  // One example per age of lead i reached by `until`: its features folded
  // from its events up to that instant, never past it.
  auto add_examples_at_ages = [&](std::uint32_t i, ExampleKind kind, UnixSeconds until) {
    features::LeadFeatureState state;
    state.set_contact(contacts[i]);
    const auto& evs = h.events_of[i];
    std::size_t next = 0;
    for (std::uint32_t a = 0; a < ages.size(); ++a) {
      const UnixSeconds t = contacts[i].created_at + static_cast<UnixSeconds>(std::llround(ages[a] * 3600));
      if (t > until) break;
      while (next < evs.size() && events[evs[next]].ts <= t) state.apply(events[evs[next++]]);
      out.examples.push_back({i, a, t, kind});
      out.rows.resize(out.rows.size() + out.nf);
      state.write_features(t, nullptr, out.rows.data() + out.rows.size() - out.nf);
    }
  };
  for (std::uint32_t i : usable) {
    const ExampleKind kind = contacts[i].created_at >= val_from ? ExampleKind::kValidation : ExampleKind::kTrain;
    add_examples_at_ages(i, kind, std::numeric_limits<UnixSeconds>::max());
  }
  for (std::uint32_t i = 0; i < contacts.size(); ++i) {
    const UnixSeconds created = contacts[i].created_at;
    if (h.censored[i] && created >= h.export_end - kConversionWindowSeconds && created < h.export_end - kRecentMinAge) {
      add_examples_at_ages(i, ExampleKind::kRecent, h.export_end);
    }
  }
  return out;
}

// Track records as of each example's instant, written into its row: a lead
// counts once its 90-day window has closed (outcome known), its
// speed-to-lead once its first outreach happened. Never the future. Answers
// the book at the export end (every item counted), which the model serves.
features::TrackRecordBook write_track_records(const std::vector<Contact>& contacts, const LeadHistory& h,
                                              ExampleRows& x) {
  struct TrackItem {
    UnixSeconds t;
    std::uint32_t contact;
    bool outcome;  // false: speed item
  };
  std::vector<TrackItem> items;
  for (std::uint32_t i = 0; i < contacts.size(); ++i) {
    const UnixSeconds matured = contacts[i].created_at + kConversionWindowSeconds;
    if (matured <= h.export_end) items.push_back({matured, i, true});
    if (h.first_out[i]) items.push_back({*h.first_out[i], i, false});
  }
  std::sort(items.begin(), items.end(), [](const TrackItem& a, const TrackItem& b) { return a.t < b.t; });
  std::vector<std::uint32_t> order(x.examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&x](std::uint32_t a, std::uint32_t b) { return x.examples[a].t < x.examples[b].t; });
  features::TrackRecordBook book;
  auto add_item = [&](const TrackItem& item) {
    const Contact& c = contacts[item.contact];
    if (item.outcome) {
      book.add_outcome(c, h.label[item.contact]);
    } else {
      book.add_speed(c, double(*h.first_out[item.contact] - c.created_at));
    }
  };
  std::size_t next_item = 0;
  features::LeadFeatureState probe;
  for (std::uint32_t ex : order) {
    while (next_item < items.size() && items[next_item].t <= x.examples[ex].t) add_item(items[next_item++]);
    probe.set_contact(contacts[x.examples[ex].contact]);
    probe.write_track_features(&book, x.row(ex));
  }
  while (next_item < items.size()) add_item(items[next_item++]);
  return book;
}

// The rows of the level windows (see fit_level), kept to be scored by the
// served model once it is trained.
struct LevelRows {
  struct Example {
    std::uint32_t age_index;
    int window;  // 0 recent, 1 recent a year earlier, 2 next season a year earlier
    float observed;
    double shown;
  };
  models::DenseMatrix x;
  std::vector<Example> examples;
};

// Share of 90-day conversions that happen within d days of creation, from
// the matured converters: how much of a young cohort's outcome shows.
std::function<double(double)> conversions_shown_by(const std::vector<Contact>& contacts, const LeadHistory& h,
                                                   const std::vector<std::uint32_t>& usable) {
  std::vector<double> days_to_sign;
  for (std::uint32_t i : usable) {
    if (h.label[i]) days_to_sign.push_back(std::max(0.0, double(*h.signed_at[i] - contacts[i].created_at) / kDay));
  }
  std::sort(days_to_sign.begin(), days_to_sign.end());
  return [days_to_sign = std::move(days_to_sign)](double days) {
    if (days_to_sign.empty()) return 1.0;
    return double(std::upper_bound(days_to_sign.begin(), days_to_sign.end(), days) - days_to_sign.begin()) /
           double(days_to_sign.size());
  };
}

LevelRows level_rows(const std::vector<Contact>& contacts, const LeadHistory& h,
                     const std::vector<std::uint32_t>& usable, const ExampleRows& x,
                     const features::TrackRecordBook& book) {
  const auto shown_by = conversions_shown_by(contacts, h, usable);
  const UnixSeconds export_end = h.export_end;
  LevelRows out;
  out.x.cols = x.nf;
  features::LeadFeatureState probe;
  for (std::uint32_t ex = 0; ex < x.examples.size(); ++ex) {
    const Example& e = x.examples[ex];
    const UnixSeconds created = contacts[e.contact].created_at;
    int window = -1;
    double shown = 1;
    float observed = h.label[e.contact];
    if (e.kind == ExampleKind::kRecent) {
      window = 0;
      shown = shown_by(double(export_end - created) / kDay);
      observed = h.signed_at[e.contact] && *h.signed_at[e.contact] <= export_end ? 1.f : 0.f;
    } else if (created >= export_end - kYear - kConversionWindowSeconds && created < export_end - kYear - kRecentMinAge) {
      window = 1;
    } else if (created >= export_end - kYear && created < export_end - kYear + kNextSeason) {
      window = 2;
    }
    if (window < 0) continue;
    out.x.append_row(x.row_span(ex));
    // Every window is scored as the served model scores a lead: with the
    // track records of the export end. As-of records would make the year-
    // earlier windows (near the start of the history, records still warming
    // up) differ from the recent one by more than the drift.
    probe.set_contact(contacts[e.contact]);
    probe.write_track_features(&book, out.x.row(out.x.rows - 1));
    out.examples.push_back({e.age_index, window, observed, shown});
  }
  return out;
}

struct TrainValidation {
  models::DenseMatrix train_x, val_x;
  std::vector<float> train_y, val_y;
  std::vector<std::uint32_t> val_examples;  // the example of each validation row
};

// The train and validation rows (recent cohorts are for the level only).
Result<TrainValidation> split_examples(const ExampleRows& x, const LeadHistory& h) {
  TrainValidation out;
  out.train_x.cols = out.val_x.cols = x.nf;
  for (std::uint32_t ex = 0; ex < x.examples.size(); ++ex) {
    const float y = h.label[x.examples[ex].contact];
    if (x.examples[ex].kind == ExampleKind::kRecent) continue;
    if (x.examples[ex].kind == ExampleKind::kValidation) {
      out.val_x.append_row(x.row_span(ex));
      out.val_y.push_back(y);
      out.val_examples.push_back(ex);
    } else {
      out.train_x.append_row(x.row_span(ex));
      out.train_y.push_back(y);
    }
  }
  auto positives = [](const std::vector<float>& y) { return std::count(y.begin(), y.end(), 1.f); };
  if (positives(out.train_y) == 0 || positives(out.train_y) == std::ptrdiff_t(out.train_y.size()) ||
      positives(out.val_y) == 0 || positives(out.val_y) == std::ptrdiff_t(out.val_y.size()) || out.val_y.size() < 20) {
    return invalid_argument("training and validation periods both need converted and unconverted leads");
  }
  return out;
}

struct TrainedForest {
  std::string early_stopped_json;  // trained on the train period, stopped on validation
  models::CompiledForest early_stopped;
  int rounds = 0;
  std::string served_json;  // refitted on both periods
};

Result<TrainedForest> fit_forest(const TrainValidation& data, const TrainLeadOptions& options,
                                 const TrainProgress& progress) {
  models::TrainParams params;
  params.max_depth = options.max_depth;
  params.eta = options.eta;
  params.num_rounds = 600;
  params.early_stopping_rounds = 40;
  params.subsample = 0.8;
  params.colsample_bytree = 0.8;
  params.min_child_weight = options.min_child_weight;
  params.reg_lambda = 2;
  params.nthread = options.nthread;
  params.seed = options.seed;
  params.eval_metric = "logloss";
  params.extra = {{"tree_method", "hist"}, {"max_bin", "128"}};
  auto booster = models::Booster::train(data.train_x, data.train_y, {}, &data.val_x, data.val_y, params);
  if (!booster) return booster.status();
  auto model_json = booster->save_json();
  if (!model_json) return model_json.status();
  auto forest = models::CompiledForest::compile(*model_json);
  if (!forest) return forest.status();
  progress("trained %d rounds", booster->num_rounds());
  // The served model is refitted on training + validation examples with the
  // early-stopped round count (+25% for the larger set): the latest months
  // carry the current level and the agents' latest form.
  models::DenseMatrix all_x = data.train_x;
  all_x.values.insert(all_x.values.end(), data.val_x.values.begin(), data.val_x.values.end());
  all_x.rows += data.val_x.rows;
  std::vector<float> all_y = data.train_y;
  all_y.insert(all_y.end(), data.val_y.begin(), data.val_y.end());
  models::TrainParams refit = params;
  refit.early_stopping_rounds = 0;
  refit.num_rounds = booster->num_rounds() * 5 / 4;
  auto refitted = models::Booster::train(all_x, all_y, {}, nullptr, {}, refit);
  if (!refitted) return refitted.status();
  auto served_json = refitted->save_json();
  if (!served_json) return served_json.status();
  progress("refit on all %zu examples, %d rounds", all_y.size(), refit.num_rounds);
  return TrainedForest{std::move(*model_json), std::move(*forest), booster->num_rounds(), std::move(*served_json)};
}

struct ValidationCalibration {
  std::vector<double> raw;         // early-stopped forest, per validation row
  std::vector<double> calibrated;  // cross-fitted: each half by the other's calibrator
  models::IsotonicCalibrator served;  // fitted on the whole validation period
  double served_shift = 0;
};

// Cross-fitted halves (by contact) give honest validation metrics; the
// served calibrator is then fitted on the whole period.
Result<ValidationCalibration> calibrate_validation(const TrainValidation& data, const ExampleRows& x,
                                                   const models::CompiledForest& forest,
                                                   const TrainLeadOptions& options) {
  std::vector<double> raw(data.val_y.size());
  for (std::size_t r = 0; r < raw.size(); ++r) raw[r] = forest.predict(data.val_x.row(r));
  std::vector<double> calibrated(raw.size());
  for (int half = 0; half < 2; ++half) {
    std::vector<double> fit_x;
    std::vector<float> fit_y;
    for (std::size_t r = 0; r < raw.size(); ++r) {
      if ((x.examples[data.val_examples[r]].contact & 1u) != std::uint32_t(half)) {
        fit_x.push_back(raw[r]);
        fit_y.push_back(data.val_y[r]);
      }
    }
    auto cal = options.isotonic ? models::IsotonicCalibrator::fit(fit_x, fit_y) : identity_calibrator();
    if (!cal) return cal.status();
    const double shift = options.isotonic ? level_neutral_shift(*cal, fit_x) : 0.0;
    for (std::size_t r = 0; r < raw.size(); ++r) {
      if ((x.examples[data.val_examples[r]].contact & 1u) == std::uint32_t(half)) {
        calibrated[r] = calibrate(*cal, shift, raw[r]);
      }
    }
  }
  auto calibrator = options.isotonic ? models::IsotonicCalibrator::fit(raw, data.val_y) : identity_calibrator();
  if (!calibrator) return calibrator.status();
  const double shift = options.isotonic ? level_neutral_shift(*calibrator, raw) : 0.0;
  return ValidationCalibration{std::move(raw), std::move(calibrated), std::move(*calibrator), shift};
}

struct LevelFit {
  std::vector<double> shifts;  // per example age
  models::AgeLogitCalibration map;
  json::array per_age;  // what the metadata reports
};

json::object level_window_json(const std::optional<LevelEstimate>& e, const std::vector<WindowRow>& rows) {
  double pos = 0;
  for (const auto& r : rows) pos += r.observed;
  return json::object{{"rows", rows.size()}, {"positives", pos},
                      {"shift", e ? json::value(e->shift) : json::value(nullptr)}};
}

// Level calibration. The forest carries the average level of its training
// years, but the conversion rate drifts from year to year (2025's summer
// converted ~15% more than 2024's), and the cohorts that show the drift
// first are the latest ones, still inside their 90-day window. Per example
// age, the served model's log-odds level error is measured on
//   recent: cohorts created 14-90 days before the export end, against the
//           share of their conversions that has had time to show;
//   recent a year earlier: the same dates one year before (matured);
//   next season a year earlier: the 182 days after the export end's date
//           one year before (matured), the season the model will serve.
// shift = recent - recent a year earlier (the drift since last year, with
// the season's own error cancelled) + next season a year earlier (the
// model's error in the coming season), shrunk towards 0 by its sampling
// variance (~1/positives per window) against a prior sd of 0.2. Without
// a full year of history before the recent cohorts there is no seasonal
// reference and the shift stays 0: a recent cohort alone would carry its
// season into the next one.
Result<LevelFit> fit_level(const LevelRows& level, const models::CompiledForest& served,
                           const ValidationCalibration& calibration, const std::vector<double>& ages,
                           const TrainLeadOptions& options, const TrainProgress& progress) {
  std::vector<LevelWindows> windows(ages.size());
  for (std::size_t r = 0; r < level.examples.size(); ++r) {
    const auto& le = level.examples[r];
    const double p = calibrate(calibration.served, calibration.served_shift, served.predict(level.x.row(r)));
    LevelWindows& w = windows[le.age_index];
    auto& target = le.window == 0 ? w.recent : le.window == 1 ? w.recent_last_year : w.next_last_year;
    target.push_back({p, le.observed, le.shown});
  }
  std::vector<models::AgeLogitCalibration::Anchor> anchors;
  json::array per_age;
  std::vector<double> shifts(ages.size(), 0.0);
  for (std::uint32_t a = 0; a < ages.size(); ++a) {
    const auto recent = level_error(windows[a].recent);
    const auto recent_ly = level_error(windows[a].recent_last_year);
    const auto next_ly = level_error(windows[a].next_last_year);
    double shift = 0;
    if (options.level_calibration && recent && recent_ly && next_ly) {
      const double estimate = recent->shift - recent_ly->shift + next_ly->shift;
      const double variance = 1 / recent->positives + 1 / recent_ly->positives + 1 / next_ly->positives;
      const double prior = kLevelPriorSd * kLevelPriorSd;
      shift = estimate * prior / (prior + variance);
    }
    const bool held = ages[a] > kMaxLevelAgeHours && a > 0;
    if (held) shift = shifts[a - 1];
    shifts[a] = shift;
    anchors.push_back({ages[a], {shift, 1.0}});
    per_age.push_back(json::object{{"hours", ages[a]},
                                   {"shift", shift},
                                   {"held_from_younger_age", held},
                                   {"recent", level_window_json(recent, windows[a].recent)},
                                   {"recent_last_year", level_window_json(recent_ly, windows[a].recent_last_year)},
                                   {"next_season_last_year", level_window_json(next_ly, windows[a].next_last_year)}});
    progress("level %6.0f h: shift %+.3f (recent %s, a year earlier %s, next season a year earlier %s)", ages[a], shift,
             recent ? std::to_string(recent->shift).c_str() : "-",
             recent_ly ? std::to_string(recent_ly->shift).c_str() : "-",
             next_ly ? std::to_string(next_ly->shift).c_str() : "-");
  }
  auto map = models::AgeLogitCalibration::make(std::move(anchors));
  if (!map) return map.status();
  return LevelFit{std::move(shifts), std::move(*map), std::move(per_age)};
}

// Validation metrics per example age, from the cross-fitted probabilities,
// into the report; answers them as the metadata reports them.
json::array validation_metrics(const TrainValidation& data, const ExampleRows& x,
                               const ValidationCalibration& calibration, const std::vector<double>& ages,
                               const LevelFit& level, const TrainProgress& progress, TrainLeadReport* report) {
  json::array metrics_json;
  for (std::uint32_t a = 0; a < ages.size(); ++a) {
    std::vector<double> p;
    std::vector<float> y;
    for (std::size_t r = 0; r < calibration.raw.size(); ++r) {
      if (x.examples[data.val_examples[r]].age_index == a) {
        p.push_back(calibration.calibrated[r]);
        y.push_back(data.val_y[r]);
      }
    }
    TrainLeadReport::AgeMetrics m;
    m.hours = ages[a];
    m.n = p.size();
    m.auc = models::roc_auc(p, y);
    m.brier = models::brier_score(p, y);
    m.ece = models::expected_calibration_error(p, y, 10);
    m.level_shift = level.shifts[a];
    report->validation.push_back(m);
    progress("validation %6.0f h: n=%zu AUC=%.4f Brier=%.4f ECE=%.4f", m.hours, m.n, m.auc, m.brier, m.ece);
    auto num_or_null = [](double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); };
    metrics_json.push_back(json::object{{"hours", m.hours}, {"n", m.n}, {"auc", num_or_null(m.auc)},
                                        {"brier", num_or_null(m.brier)}, {"ece", num_or_null(m.ece)}});
  }
  return metrics_json;
}

// "leads-<UTC digits>-<hash of the early-stopped forest>".
std::string model_version(const std::string& early_stopped_json) {
  std::string stamp;
  for (char c : format_iso8601(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count())) {
    if (c >= '0' && c <= '9') stamp.push_back(c);
  }
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08llx",
                static_cast<unsigned long long>(fnv1a(early_stopped_json) & 0xffffffffULL));
  return "leads-" + stamp + "-" + hash;
}

double base_rate(const LeadHistory& h, const std::vector<std::uint32_t>& usable) {
  double base = 0;
  for (std::uint32_t i : usable) base += h.label[i];
  return base / double(usable.size());
}

// What a served model needs besides its trees, and what a reader checks.
struct ModelMetadata {
  const LeadHistory& history;
  const std::vector<double>& ages;
  std::size_t contacts;
  UnixSeconds val_from;
  int boosting_rounds;
  double base_rate;
  const ValidationCalibration& calibration;
  const models::AgeLogitCalibration& level_map;
  json::array level_per_age;
  const features::TrackRecordBook& book;
};

json::object metadata_json(ModelMetadata m, const TrainLeadReport& report, json::array validation) {
  json::array names;
  for (const auto& spec : features::feature_schema()) names.emplace_back(spec.name);
  json::array ages_json;
  for (double a : m.ages) ages_json.emplace_back(a);
  json::object meta;
  meta["format"] = kModelFormat;
  meta["version"] = report.version;
  meta["schema_hash"] = features::schema_hash();
  meta["features"] = std::move(names);
  meta["data_span"] = json::object{{"from", format_iso8601(m.history.min_ts)},
                                   {"to", format_iso8601(m.history.max_ts)},
                                   {"export_end", format_iso8601(m.history.export_end)},
                                   {"validation_from", format_iso8601(m.val_from)}};
  meta["example_ages_hours"] = std::move(ages_json);
  meta["label"] = "signed within 90 days of created_at";
  meta["contacts"] = m.contacts;
  meta["censored_contacts"] = m.history.censored_count;
  meta["train_examples"] = report.train_examples;
  meta["validation_examples"] = report.validation_examples;
  meta["boosting_rounds"] = m.boosting_rounds;
  meta["validation"] = std::move(validation);
  meta["base_rate"] = m.base_rate;
  meta["calibrator"] = json::parse(m.calibration.served.to_json());
  meta["calibration_shift"] = m.calibration.served_shift;
  meta["level_calibration"] =
      json::object{{"method", "seasonal level drift, log-odds intercept per example age (train.cc)"},
                   {"map", json::parse(m.level_map.to_json())},
                   {"per_age", std::move(m.level_per_age)}};
  meta["track_records"] = json::parse(m.book.to_json());
  return meta;
}

Status write_model(const std::string& out_dir, const std::string& forest_json, const json::object& meta) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return unavailable("cannot create " + out_dir + ": " + ec.message());
  REAI_RETURN_IF_ERROR(write_text_file((fs::path(out_dir) / "model.json").string(), forest_json));
  return write_text_file((fs::path(out_dir) / "metadata.json").string(), json::serialize(meta));
}

}  // namespace

Result<TrainLeadReport> train_lead_model(const std::vector<Contact>& contacts, const std::vector<Event>& events,
                                         const std::vector<OpportunityStage>& stages, const std::string& out_dir,
                                         const TrainLeadOptions& options) {
  const TrainProgress progress(options.progress);
  REAI_RETURN_IF_ERROR(check_training_input(contacts, options));
  const LeadHistory history = index_history(contacts, events, stages);
  auto usable = usable_contacts(contacts, history);
  if (!usable) return usable.status();
  const std::size_t cut_pos = static_cast<std::size_t>(double(usable->size()) * (1 - options.validation_fraction));
  const UnixSeconds val_from = contacts[(*usable)[std::min(cut_pos, usable->size() - 1)]].created_at;
  progress("%zu contacts (%zu censored, window ends %s), %zu events, validation from %s", contacts.size(),
           history.censored_count, format_iso8601(history.export_end).c_str(), events.size(),
           format_iso8601(val_from).c_str());

  std::vector<double> ages = options.example_ages_hours;
  std::sort(ages.begin(), ages.end());
  ExampleRows x = build_examples(contacts, events, history, *usable, val_from, ages);
  const features::TrackRecordBook book = write_track_records(contacts, history, x);
  const LevelRows level = level_rows(contacts, history, *usable, x, book);
  auto data = split_examples(x, history);
  if (!data) return data.status();
  x.rows.clear();
  x.rows.shrink_to_fit();
  progress("%zu training examples, %zu validation examples, %zu features", data->train_y.size(), data->val_y.size(),
           x.nf);

  auto forest = fit_forest(*data, options, progress);
  if (!forest) return forest.status();
  auto calibration = calibrate_validation(*data, x, forest->early_stopped, options);
  if (!calibration) return calibration.status();
  auto served = models::CompiledForest::compile(forest->served_json);
  if (!served) return served.status();
  auto level_fit = fit_level(level, *served, *calibration, ages, options, progress);
  if (!level_fit) return level_fit.status();

  TrainLeadReport report;
  report.train_examples = data->train_y.size();
  report.validation_examples = data->val_y.size();
  report.censored_contacts = history.censored_count;
  json::array validation = validation_metrics(*data, x, *calibration, ages, *level_fit, progress, &report);
  report.version = model_version(forest->early_stopped_json);
  const json::object meta = metadata_json({history, ages, contacts.size(), val_from, forest->rounds,
                                           base_rate(history, *usable), *calibration, level_fit->map,
                                           std::move(level_fit->per_age), book},
                                          report, std::move(validation));
  REAI_RETURN_IF_ERROR(write_model(out_dir, forest->served_json, meta));
  report.seconds = progress.seconds();
  progress("wrote %s (version %s) in %.1f s", out_dir.c_str(), report.version.c_str(), report.seconds);
  return report;
}

}  // namespace reai::scoring
