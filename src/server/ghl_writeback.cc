#include "server/ghl_writeback.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "ghl/ghl.h"
#include "server/metrics.h"
#include "server/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <random>
#include <utility>

namespace reai::server {
namespace {

constexpr std::size_t kMaxIncoming = 200'000;
constexpr std::size_t kUpdatesPerPass = 200;
constexpr double kIdlePollS = 1.0;
constexpr double kUnlinkedRecheckS = 5.0;
constexpr double kNoTokenRecheckS = 30.0;
constexpr double kSummaryEveryS = 1.0;
// Margin added to GHL's window: GHL counts when a request arrives, reai when
// it leaves, so a request sent exactly one window later could still land in
// the window GHL is counting.
constexpr double kWindowMarginS = 0.05;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The outbox's timestamps are wall-clock (they must mean something after a
// restart), independent of the server's scoring clock, which tests pin.
UnixSeconds wall_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string reauth_message(UnixSeconds since, const std::string& why) {
  return "GHL refused the app's authorisation at " + format_iso8601(since) + " (" + why +
         "): install the app again (or store a new token) to resume the write-back";
}

std::string key_of(const std::string& tenant_id, const std::string& contact_id) {
  return tenant_scoped_key(tenant_id, contact_id);
}

double jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

Result<std::unique_ptr<GhlWriteback>> GhlWriteback::create(store::Store& store, GhlWritebackConfig config) {
  auto http = ghl::HttpClient::create(config.api_base);
  if (!http) return http.status();
  return std::unique_ptr<GhlWriteback>(new GhlWriteback(store, std::move(config), std::move(*http)));
}

GhlWriteback::GhlWriteback(store::Store& store, GhlWritebackConfig config, std::unique_ptr<ghl::HttpClient> http)
    : store_(store), config_(std::move(config)), http_(std::move(http)), worker_([this] { run(); }) {}

GhlWriteback::~GhlWriteback() { stop(); }

void GhlWriteback::on_score(const std::string& tenant_id, const std::string& contact_id, int score,
                            std::string_view band) {
  {
    std::lock_guard lock(mu_);
    // A tenant the worker just found unlinked has nothing to write back:
    // its changes are not queued (nor the worker woken for them) until a
    // recheck is due, when the next change goes through and linked() looks
    // again. Most tenants of a busy server are not linked to GHL, and the
    // wake-up per score change was half the futex calls of POST /api/events.
    if (auto it = unlinked_.find(tenant_id);
        it != unlinked_.end() && steady_seconds() - it->second <= kUnlinkedRecheckS) {
      return;
    }
    if (stopping_ || incoming_.size() >= kMaxIncoming) {
      ++stats_.dropped;
      return;
    }
    // band_changed is decided by the filler, against what was last enqueued.
    incoming_.push_back(Change{tenant_id, contact_id, ghl::ScoreChange{score, std::string(band), false}});
    ++reported_;
    // Only a waiting thread is woken; a busy one takes the list whole when
    // it comes back (no wake-up per score change while it works).
    if (!std::exchange(waiting_, false)) return;
  }
  wake_.notify_one();
}

void GhlWriteback::reconcile(std::vector<CurrentScore> scores) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      jobs_.push_back([this, scores = std::move(scores)] { reconcile_now(scores, steady_seconds()); });
    }
  }
  wake_.notify_one();
}

void GhlWriteback::exchange_code(std::string code, OAuthDone done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      jobs_.push_back([this, code = std::move(code), done] { done(do_exchange(code)); });
      wake_.notify_one();
      return;
    }
  }
  done(unavailable("server is stopping"));
}

Result<GhlWriteback::SyncReport> GhlWriteback::sync(const std::string& tenant_id, const SyncOptions& options) {
  auto done = std::make_shared<std::promise<Result<SyncReport>>>();
  auto answer = done->get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return unavailable("stopping");
    jobs_.push_back([this, tenant_id, options, done] { done->set_value(do_sync(tenant_id, options)); });
  }
  wake_.notify_one();
  return answer.get();
}

void GhlWriteback::flush() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = reported_;
  flushed_.wait(lock, [&] { return filled_ >= target || stopping_; });
}

void GhlWriteback::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

GhlWriteback::Stats GhlWriteback::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool GhlWriteback::wait_for(double seconds) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stopping_; });
  return !stopping_;
}

void GhlWriteback::run() {
  // Tenants linked to GHL may have pending updates from before a restart.
  if (auto tenants = store_.list_tenants()) {
    for (const auto& t : *tenants) {
      if (!t.ghl_location_id.empty()) busy_tenants_.insert(t.tenant_id);
    }
  }
  double next_s = steady_seconds();
  for (;;) {
    std::vector<Change> changes;
    std::deque<std::function<void()>> jobs;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      const double wait_s = std::max(0.0, next_s - steady_seconds());
      waiting_ = true;
      wake_.wait_for(lock, std::chrono::duration<double>(wait_s),
                     [this] { return stopping_ || !incoming_.empty() || !jobs_.empty(); });
      waiting_ = false;
      changes.swap(incoming_);
      jobs.swap(jobs_);
      stopping = stopping_;
    }
    for (auto& job : jobs) job();
    const std::size_t n = changes.size();
    enqueue_changes(std::move(changes), steady_seconds());
    write_batch();
    {
      std::lock_guard lock(mu_);
      filled_ += n;
    }
    flushed_.notify_all();
    if (stopping) break;
    enqueue_held(steady_seconds());
    write_batch();
    feed_backfill(steady_seconds());
    if (steady_seconds() - summarized_s_ >= kSummaryEveryS) summarize_outbox();
    next_s = steady_seconds() + kIdlePollS;
    if (!held_.empty()) next_s = std::min(next_s, held_.front().due_s);
    if (!config_.deliver_outbox) continue;
    for (auto it = busy_tenants_.begin(); it != busy_tenants_.end();) {
      const double again = deliver(*it, steady_seconds());
      if (again == 0) {
        it = busy_tenants_.erase(it);
      } else {
        next_s = std::min(next_s, again);
        ++it;
      }
    }
  }
  // Held score-only changes are written so a clean stop loses none.
  enqueue_held(1e300);
  write_batch();
}

bool GhlWriteback::linked(const std::string& tenant_id, double now_s) {
  auto [loc, inserted] = locations_.try_emplace(tenant_id);
  if (inserted || (loc->second.id.empty() && now_s - loc->second.checked_s > kUnlinkedRecheckS)) {
    auto tenant = store_.get_tenant(tenant_id);
    loc->second.id = tenant ? tenant->ghl_location_id : std::string();
    loc->second.checked_s = now_s;
    std::lock_guard lock(mu_);
    if (loc->second.id.empty()) {
      unlinked_[tenant_id] = now_s;
    } else {
      unlinked_.erase(tenant_id);
    }
  }
  return !loc->second.id.empty();
}

std::unordered_map<std::string, GhlWriteback::Written>* GhlWriteback::written_of(const std::string& tenant_id) {
  if (auto it = written_.find(tenant_id); it != written_.end()) return &it->second;
  auto states = store_.list_ghl_contact_states(tenant_id);
  if (!states) {
    spdlog::warn("GHL write-back states of tenant {} unreadable: {}", tenant_id, states.status().message());
    return nullptr;
  }
  auto& map = written_[tenant_id];
  for (auto& st : *states) map[st.contact_id] = Written{st.score, std::move(st.band)};
  return &map;
}

void GhlWriteback::summarize_outbox() {
  summarized_s_ = steady_seconds();
  auto tenants = store_.list_tenants();
  if (!tenants) return;
  std::uint64_t pending = 0;
  std::uint64_t needing_reauth = 0;
  UnixSeconds oldest = 0;
  for (const auto& t : *tenants) {
    if (t.ghl_location_id.empty()) continue;
    // As `reai tenant list` names it: an uninstalled app whose grant was
    // refused too is uninstalled (the tenant left), not waiting for anyone.
    if (auto install = store::ghl_install_of(store_, t); install && install->state == store::GhlInstallState::kNeedsReauth) {
      ++needing_reauth;
    }
    auto summary = store_.ghl_outbox_summary(t.tenant_id);
    if (!summary || summary->pending == 0) continue;
    pending += summary->pending;
    if (oldest == 0 || summary->oldest_pending_at < oldest) oldest = summary->oldest_pending_at;
  }
  std::lock_guard lock(mu_);
  stats_.outbox_pending = pending;
  stats_.tenants_needing_reauth = needing_reauth;
  stats_.oldest_pending_age_s = oldest == 0 ? 0 : std::max<std::int64_t>(0, wall_seconds() - oldest);
}

void GhlWriteback::enqueue_changes(std::vector<Change> changes, double now_s) {
  for (auto& change : changes) {
    if (!linked(change.tenant_id, now_s)) continue;  // not linked to GHL: nothing to write back
    ContactPace& pace = pace_[key_of(change.tenant_id, change.contact_id)];
    const auto* written = written_of(change.tenant_id);
    const Written* last = nullptr;
    if (written) {
      if (auto it = written->find(change.contact_id); it != written->end()) last = &it->second;
    }
    if (last && last->score == change.state.score && last->band == change.state.band) {
      // Already enqueued (a reprocessed delivery, or back to the enqueued
      // score before a held change went out).
      pace.held.reset();
      std::lock_guard lock(mu_);
      ++stats_.unchanged;
      continue;
    }
    change.state.band_changed = !last || last->band != change.state.band;
    if (change.state.band_changed || now_s - pace.last_enqueued_s >= config_.score_interval_s) {
      pace.held.reset();
      pace.last_enqueued_s = now_s;
      write_update(change);
      // Turned hot (from another band, or a new lead scored hot at once).
      if (change.state.band_changed && change.state.band == "hot") write_stage_move(change.tenant_id, change.contact_id);
    } else {
      if (!pace.held) held_.push_back({pace.last_enqueued_s + config_.score_interval_s, change.tenant_id, change.contact_id});
      pace.held = change.state;
    }
  }
}

void GhlWriteback::reconcile_now(const std::vector<CurrentScore>& scores, double now_s) {
  std::uint64_t enqueued = 0;
  std::uint64_t backfill = 0;
  for (const auto& current : scores) {
    if (!linked(current.tenant_id, now_s)) continue;
    const auto* written = written_of(current.tenant_id);
    if (!written) continue;
    Change change{current.tenant_id, current.contact_id, ghl::ScoreChange{current.score, current.band, true}};
    auto it = written->find(current.contact_id);
    if (it == written->end()) {
      // Never written back: backfill, fed behind fresh changes. Not a hot
      // transition (reai never told GHL another band): no stage move.
      backfill_[current.tenant_id].push_back(current);
      ++backfill;
      continue;
    }
    const bool turned_hot = current.band == "hot" && it->second.band != "hot";
    if (it->second.band == current.band) {
      if (it->second.score == current.score) continue;
      // Same band, another score: only a score recorded by reai (its last
      // published one) that never reached the outbox is owed; a score that
      // merely drifted with time since the last event is not news for GHL.
      auto recorded = store_.score_history(current.tenant_id, current.contact_id, 1);
      if (!recorded || recorded->empty() || (*recorded)[0].score == it->second.score) continue;
      change.state.band_changed = false;
    }
    ContactPace& pace = pace_[key_of(current.tenant_id, current.contact_id)];
    pace.last_enqueued_s = now_s;
    write_update(change);
    if (turned_hot) write_stage_move(current.tenant_id, current.contact_id);
    ++enqueued;
  }
  write_batch();
  if (enqueued > 0) spdlog::info("GHL write-back: {} changes the outbox missed enqueued at start", enqueued);
  if (backfill > 0) spdlog::info("GHL write-back: {} contacts never written back queued for backfill", backfill);
  std::lock_guard lock(mu_);
  stats_.reconciled += enqueued;
  stats_.backfill_waiting = backfill;
}

void GhlWriteback::feed_backfill(double now_s) {
  if (backfill_.empty()) return;
  std::uint64_t fed = 0;
  std::uint64_t waiting = 0;
  for (auto it = backfill_.begin(); it != backfill_.end();) {
    const std::string& tenant_id = it->first;
    auto& queue = it->second;
    auto summary = store_.ghl_outbox_summary(tenant_id);
    const auto* written = written_of(tenant_id);
    if (summary && written && summary->pending < config_.backfill_batch) {
      for (std::size_t room = config_.backfill_batch - summary->pending; room > 0 && !queue.empty();) {
        const CurrentScore current = std::move(queue.front());
        queue.pop_front();
        if (written->count(current.contact_id)) continue;  // a fresh change got there first
        pace_[key_of(current.tenant_id, current.contact_id)].last_enqueued_s = now_s;
        write_update(Change{current.tenant_id, current.contact_id, ghl::ScoreChange{current.score, current.band, true}});
        --room;
        ++fed;
      }
    }
    waiting += queue.size();
    it = queue.empty() ? backfill_.erase(it) : std::next(it);
  }
  write_batch();
  std::lock_guard lock(mu_);
  stats_.reconciled += fed;
  stats_.backfill_waiting = waiting;
}

void GhlWriteback::enqueue_held(double now_s) {
  while (!held_.empty() && held_.front().due_s <= now_s) {
    Held h = std::move(held_.front());
    held_.pop_front();
    ContactPace& pace = pace_[key_of(h.tenant_id, h.contact_id)];
    if (!pace.held) continue;  // a band change wrote it already
    Change change{h.tenant_id, h.contact_id, *pace.held};
    pace.held.reset();
    if (const auto* written = written_of(h.tenant_id)) {
      auto it = written->find(h.contact_id);
      if (it != written->end() && it->second.score == change.state.score && it->second.band == change.state.band) {
        continue;
      }
    }
    pace.last_enqueued_s = std::min(now_s, steady_seconds());
    write_update(change);
  }
}

void GhlWriteback::write_update(const Change& change) {
  store::GhlUpdate u;
  u.tenant_id = change.tenant_id;
  u.contact_id = change.contact_id;
  u.kind = "score";
  u.payload_json = ghl::score_change_json(change.state);
  u.created_at = wall_seconds();
  batch_.push_back(std::move(u));
  batch_states_.push_back(
      store::GhlContactState{change.tenant_id, change.contact_id, change.state.score, change.state.band, wall_seconds()});
  // Cached at once so a later change in the same batch compares against it;
  // dropped again if the commit fails.
  if (auto* written = written_of(change.tenant_id)) (*written)[change.contact_id] = Written{change.state.score, change.state.band};
}

void GhlWriteback::write_stage_move(const std::string& tenant_id, const std::string& contact_id) {
  auto settings = store_.get_ghl_settings(tenant_id);
  if (!settings) {
    if (settings.status().code() != StatusCode::kNotFound) {
      spdlog::warn("GHL hot stage of tenant {} unreadable, contact {} not moved: {}", tenant_id, contact_id,
                   settings.status().message());
    }
    return;
  }
  if (!settings->active || settings->hot_stage_id.empty()) return;
  store::GhlUpdate u;
  u.tenant_id = tenant_id;
  u.contact_id = contact_id;
  u.kind = std::string(ghl::kStageUpdateKind);
  u.payload_json = ghl::stage_move_json({settings->hot_pipeline_id, settings->hot_stage_id});
  u.created_at = wall_seconds();
  batch_.push_back(std::move(u));
}

void GhlWriteback::write_batch() {
  if (batch_.empty()) return;
  // One commit per turn: under load the filler must not take the store's
  // write lock once per change (webhook answers wait on that lock).
  auto ids = store_.enqueue_ghl_writeback(batch_, batch_states_);
  if (!ids) {
    spdlog::warn("GHL outbox: enqueue of {} updates failed: {}", batch_.size(), ids.status().message());
    for (const auto& u : batch_) written_.erase(u.tenant_id);  // reloaded from the store
  } else {
    for (const auto& u : batch_) busy_tenants_.insert(u.tenant_id);
    std::lock_guard lock(mu_);
    stats_.enqueued += batch_.size();
  }
  batch_.clear();
  batch_states_.clear();
}

Status GhlWriteback::load_tenant(const std::string& tenant_id, Tenant* t) {
  auto tenant = store_.get_tenant(tenant_id);
  if (!tenant) return tenant.status();
  if (tenant->ghl_location_id.empty()) return failed_precondition("tenant is not linked to a GHL location");
  if (auto settings = store_.get_ghl_settings(tenant_id); settings && !settings->active) {
    return failed_precondition("the GHL app is uninstalled for this location");
  }
  auto token = store_.get_ghl_token(tenant_id);
  if (!token) return token.status();
  t->reauth_since = token->refused_at;
  if (token->refused_at != 0) return failed_precondition(reauth_message(token->refused_at, token->refused_error));
  if (!config_.secret_box) return failed_precondition("no --secret-key-file: the stored GHL token cannot be opened");
  auto access = config_.secret_box->open(token->sealed_access_token);
  if (!access) return access.status();
  t->location_id = tenant->ghl_location_id;
  t->access_token = std::move(*access);
  t->oauth = token->kind == "oauth";
  if (!t->window) t->window = std::make_unique<ghl::RequestWindow>(config_.rate_capacity, config_.rate_period_s + kWindowMarginS);
  if (t->oauth && token->expires_at != 0 && wall_seconds() >= token->expires_at - 60) return refresh_token(tenant_id, t);
  return Status::ok();
}

Status GhlWriteback::refresh_token(const std::string& tenant_id, Tenant* t) {
  auto stored = store_.get_ghl_token(tenant_id);
  if (!stored) return stored.status();
  if (stored->refused_at != 0) {
    // Refused already (by this instance or another): no refresh call.
    t->reauth_since = stored->refused_at;
    return failed_precondition(reauth_message(stored->refused_at, stored->refused_error));
  }
  if (stored->kind == "private") {
    // A Private Integration Token is not refreshed; an operator may have
    // stored a new one (`reai tenant add --ghl-token-file`).
    auto current = config_.secret_box->open(stored->sealed_access_token);
    if (current && *current != t->access_token) {
      t->access_token = std::move(*current);
      return Status::ok();
    }
    return unauthenticated("GHL refused the private integration token");
  }
  if (stored->sealed_refresh_token.empty()) {
    return unauthenticated("GHL refused the token and there is no refresh token");
  }
  auto refresh = config_.secret_box->open(stored->sealed_refresh_token);
  if (!refresh) return refresh.status();
  auto answer = http_->send(ghl::token_from_refresh_call(config_.oauth, *refresh), "");
  {
    std::lock_guard lock(mu_);
    ++stats_.requests;
    if (answer && ghl::classify(answer->status) == ghl::Verdict::kOk) {
      ++stats_.token_refreshes;
    } else {
      ++stats_.token_refresh_failures;
    }
  }
  if (!answer) return answer.status();
  if (ghl::classify(answer->status) != ghl::Verdict::kOk) {
    const std::string why = "GHL token refresh: " + std::to_string(answer->status) + " " +
                            ghl::oauth_error_message(answer->body);
    if (ghl::refresh_refused(answer->status, answer->body)) return on_refresh_refused(tenant_id, t, *stored, why);
    return unauthenticated(why);  // an outage (5xx, 429) or reai's own client: retried
  }
  auto grant = ghl::parse_token_grant(answer->body);
  if (!grant) return grant.status();
  store::GhlToken rotated = *stored;
  rotated.sealed_access_token = config_.secret_box->seal(grant->access_token);
  // GHL rotates the refresh token on use: the old one no longer works.
  if (!grant->refresh_token.empty()) rotated.sealed_refresh_token = config_.secret_box->seal(grant->refresh_token);
  rotated.expires_at = grant->expires_in > 0 ? wall_seconds() + grant->expires_in : 0;
  rotated.updated_at = wall_seconds();
  REAI_RETURN_IF_ERROR(store_.put_ghl_token(rotated));
  t->access_token = grant->access_token;
  return Status::ok();
}

Status GhlWriteback::on_refresh_refused(const std::string& tenant_id, Tenant* t, const store::GhlToken& stored,
                                        const std::string& why) {
  const UnixSeconds now = wall_seconds();
  auto marked = store_.mark_ghl_token_refused(tenant_id, stored.sealed_refresh_token, now, why);
  if (!marked) return unavailable(why + "; the refusal could not be stored: " + marked.status().message());
  if (*marked) {
    spdlog::warn("GHL refused the authorisation of tenant {} (location {}): {}. Write-back for this tenant is paused "
                 "(its updates stay in the outbox) until the app is installed again or a new token is stored.",
                 tenant_id, t->location_id, why);
    t->reauth_since = now;
    std::lock_guard lock(mu_);
    ++stats_.reauth_marked;
    return failed_precondition(reauth_message(now, why));
  }
  // Another writer got there first: it marked the refusal too, or stored a
  // new token (another instance's rotation, a new install), which is used.
  auto current = store_.get_ghl_token(tenant_id);
  if (!current) return current.status();
  if (current->refused_at != 0) {
    t->reauth_since = current->refused_at;
    return failed_precondition(reauth_message(current->refused_at, current->refused_error));
  }
  auto access = config_.secret_box->open(current->sealed_access_token);
  if (!access) return access.status();
  t->access_token = std::move(*access);
  return Status::ok();
}

GhlWriteback::CallResult GhlWriteback::call(const std::string& tenant_id, Tenant* t, const ghl::ApiCall& c,
                                            int attempt, std::string* body, double* delay_s, std::string* error) {
  bool refreshed = false;
  for (;;) {
    for (double wait = t->window->take(steady_seconds()); wait > 0; wait = t->window->take(steady_seconds())) {
      if (!wait_for(wait)) {
        *delay_s = 0;
        *error = "stopping";
        return CallResult::kRetry;
      }
    }
    auto answer = http_->send(c, t->access_token);
    {
      std::lock_guard lock(mu_);
      ++stats_.requests;
      if (!answer) {
        ++stats_.requests_retry;
      } else {
        switch (ghl::classify(answer->status)) {
          case ghl::Verdict::kOk: ++stats_.requests_ok; break;
          case ghl::Verdict::kFail: ++stats_.requests_refused; break;
          case ghl::Verdict::kRefresh: ++stats_.requests_401; break;
          case ghl::Verdict::kRetry: ++(answer->status == 429 ? stats_.requests_429 : stats_.requests_retry); break;
        }
      }
    }
    if (!answer) {
      *delay_s = ghl::retry_delay_seconds(attempt, {}, jitter());
      *error = answer.status().message();
      return CallResult::kRetry;
    }
    const std::string what = c.method + " " + c.target + ": " + std::to_string(answer->status) + " ";
    switch (ghl::classify(answer->status)) {
      case ghl::Verdict::kOk:
        if (body) *body = std::move(answer->body);
        return CallResult::kOk;
      case ghl::Verdict::kFail:
        *error = what + ghl::error_message(answer->body);
        return CallResult::kFailed;
      case ghl::Verdict::kRefresh:
        if (!refreshed) {
          refreshed = true;
          if (Status s = refresh_token(tenant_id, t); s.is_ok()) {
            continue;
          } else {
            *error = what + s.message();
          }
          if (t->reauth_since != 0) return CallResult::kReauth;
        } else {
          *error = what + ghl::error_message(answer->body);
        }
        *delay_s = ghl::retry_delay_seconds(attempt, answer->rate, jitter());
        return CallResult::kRetry;
      case ghl::Verdict::kRetry:
        *delay_s = ghl::retry_delay_seconds(attempt, answer->rate, jitter());
        *error = what + ghl::error_message(answer->body);
        if (answer->status == 429) t->window->block_until(steady_seconds() + *delay_s);
        return CallResult::kRetry;
    }
  }
}

Status GhlWriteback::ensure_field(const std::string& tenant_id, Tenant* t, int attempt, double* delay_s,
                                  std::string* error, CallResult* result) {
  *result = CallResult::kOk;
  if (!t->field_id.empty()) return Status::ok();
  const std::string key(ghl::kScoreFieldKey);
  if (auto stored = store_.get_ghl_custom_field(tenant_id, t->location_id, key)) {
    t->field_id = stored->field_id;
    return Status::ok();
  }
  auto remember = [&] {
    if (Status s = store_.put_ghl_custom_field({tenant_id, t->location_id, key, t->field_id}); !s) {
      spdlog::warn("GHL custom field id of tenant {} not stored: {}", tenant_id, s.message());
    }
  };
  std::string body;
  *result = call(tenant_id, t, ghl::list_custom_fields_call(t->location_id), attempt, &body, delay_s, error);
  if (*result != CallResult::kOk) return internal_error(*error);
  auto found = ghl::find_score_field(body);
  if (!found) {
    *result = CallResult::kRetry;
    *delay_s = ghl::retry_delay_seconds(attempt, {}, jitter());
    *error = "custom fields: " + found.status().message();
    return found.status();
  }
  if (*found) {
    t->field_id = **found;
    remember();
    return Status::ok();
  }
  *result = call(tenant_id, t, ghl::create_score_field_call(t->location_id), attempt, &body, delay_s, error);
  if (*result != CallResult::kOk) return internal_error(*error);
  auto created = ghl::parse_created_field(body);
  if (!created) {
    *result = CallResult::kRetry;
    *delay_s = ghl::retry_delay_seconds(attempt, {}, jitter());
    *error = "custom field create: " + created.status().message();
    return created.status();
  }
  t->field_id = *created;
  remember();
  return Status::ok();
}

double GhlWriteback::deliver(const std::string& tenant_id, double now_s) {
  Tenant& t = tenants_[tenant_id];
  if (now_s < t.wake_s) return t.wake_s;
  if (!t.access_token.empty()) {
    // Uninstalled since the token was loaded: nothing more is sent
    // (load_tenant refuses until an install).
    if (auto settings = store_.get_ghl_settings(tenant_id); settings && !settings->active) t.access_token.clear();
  }
  if (t.access_token.empty()) {
    if (auto wake = wait_for_token(tenant_id, &t, now_s)) return *wake;
  }
  auto pending = store_.list_ghl_updates(tenant_id, store::OutboxStatus::kPending, kUpdatesPerPass);
  if (!pending) {
    spdlog::warn("GHL outbox read failed for tenant {}: {}", tenant_id, pending.status().message());
    return now_s + kNoTokenRecheckS;
  }
  if (pending->empty()) return 0;
  const DeliveryPass pass = read_pass(std::move(*pending));
  const UnixSeconds wall = wall_seconds();
  for (std::size_t i = 0; i < pass.updates.size(); ++i) {
    if (auto wake = deliver_update(tenant_id, &t, pass, i, wall, now_s)) return *wake;
  }
  return steady_seconds();  // more may be pending
}

std::optional<double> GhlWriteback::wait_for_token(const std::string& tenant_id, Tenant* t, double now_s) {
  Status s = load_tenant(tenant_id, t);
  if (s) return std::nullopt;
  if (s.code() == StatusCode::kFailedPrecondition && s.message().find("not linked") != std::string::npos) return 0;
  if (t->reauth_since != 0) {
    // Logged once, when the refusal was marked; only a new token helps.
    t->access_token.clear();
    t->wake_s = now_s + config_.reauth_recheck_s;
    return t->wake_s;
  }
  if (t->wake_s == 0) spdlog::warn("GHL write-back for tenant {} waits: {}", tenant_id, s.message());
  t->access_token.clear();
  t->wake_s = now_s + kNoTokenRecheckS;
  return t->wake_s;
}

// Each update carries the contact's full state, so only a contact's newest
// pending update needs sending (an older band change is kept when the newer
// one is score-only: it alone moves the tags). Stage moves are not states:
// each is sent.
GhlWriteback::DeliveryPass GhlWriteback::read_pass(std::vector<store::GhlUpdate> updates) {
  DeliveryPass pass;
  pass.updates = std::move(updates);
  pass.states.resize(pass.updates.size());
  for (std::size_t i = 0; i < pass.updates.size(); ++i) {
    const store::GhlUpdate& u = pass.updates[i];
    if (u.kind == ghl::kStageUpdateKind) continue;
    if (auto parsed = ghl::parse_score_change(u.payload_json)) pass.states[i] = *parsed;
    pass.newest[u.contact_id] = i;
  }
  return pass;
}

std::optional<double> GhlWriteback::deliver_update(const std::string& tenant_id, Tenant* t, const DeliveryPass& pass,
                                                   std::size_t i, UnixSeconds wall, double now_s) {
  const store::GhlUpdate& u = pass.updates[i];
  // In order: a later update never overtakes one that waits for a retry.
  if (u.next_attempt_at > wall) {
    t->wake_s = now_s + static_cast<double>(u.next_attempt_at - wall);
    return t->wake_s;
  }
  const bool stage_move = u.kind == ghl::kStageUpdateKind;
  std::optional<ghl::HotStage> target;
  if (stage_move) {
    auto parsed = ghl::parse_stage_move(u.payload_json);
    if (!parsed) return record_unreadable(tenant_id, u, "unreadable payload: " + parsed.status().message());
    target = std::move(*parsed);
  } else if (!pass.states[i]) {
    return record_unreadable(tenant_id, u, "unreadable payload");
  } else if (std::optional<std::string> superseded = why_superseded(pass, i)) {
    record_attempt(tenant_id, u, store::OutboxStatus::kSent, *superseded, 0);
    std::lock_guard lock(mu_);
    ++stats_.superseded;
    return std::nullopt;
  }
  // Slots for the update's calls at once (search, pipelines, PUT for a
  // move), so it does not stall half-sent in the window.
  const int calls = stage_move ? 3 : (pass.states[i]->band_changed ? 3 : 1);
  const int needed = calls + (t->field_id.empty() && !stage_move ? 2 : 0);
  if (double wait = t->window->wait_for(needed, steady_seconds()); wait > 0) return steady_seconds() + wait;
  const int attempt = u.attempts + 1;
  double delay_s = 0;
  std::string error, note;
  const CallResult result =
      stage_move ? send_stage_move(tenant_id, t, u.contact_id, *target, attempt, &delay_s, &error, &note)
                 : send_score(tenant_id, t, u.contact_id, *pass.states[i], attempt, &delay_s, &error);
  return record_result(tenant_id, t, u, result, delay_s, result == CallResult::kOk ? note : error);
}

std::optional<std::string> GhlWriteback::why_superseded(const DeliveryPass& pass, std::size_t i) {
  const std::optional<ghl::ScoreChange>& state = pass.states[i];
  const std::size_t latest = pass.newest.at(pass.updates[i].contact_id);
  const std::optional<ghl::ScoreChange>& newest = pass.states[latest];
  if (latest != i && newest && (!state->band_changed || newest->band_changed)) {
    return "superseded by update " + std::to_string(pass.updates[latest].update_id);
  }
  return std::nullopt;
}

std::optional<double> GhlWriteback::record_unreadable(const std::string& tenant_id, const store::GhlUpdate& u,
                                                      const std::string& why) {
  record_attempt(tenant_id, u, store::OutboxStatus::kFailed, why, 0);
  std::lock_guard lock(mu_);
  ++stats_.failed;
  return std::nullopt;
}

void GhlWriteback::record_attempt(const std::string& tenant_id, const store::GhlUpdate& u, store::OutboxStatus status,
                                  const std::string& error, UnixSeconds next_attempt_at) {
  if (Status s = store_.record_ghl_update_attempt(tenant_id, u.update_id, status, error, next_attempt_at); !s) {
    spdlog::warn("GHL outbox write failed for tenant {}: {}", tenant_id, s.message());
  }
}

std::optional<double> GhlWriteback::record_result(const std::string& tenant_id, Tenant* t, const store::GhlUpdate& u,
                                                  CallResult result, double delay_s, const std::string& text) {
  if (result == CallResult::kOk || result == CallResult::kFailed) {
    const bool sent = result == CallResult::kOk;
    record_attempt(tenant_id, u, sent ? store::OutboxStatus::kSent : store::OutboxStatus::kFailed, text, 0);
    std::lock_guard lock(mu_);
    ++(sent ? stats_.sent : stats_.failed);
    return std::nullopt;
  }
  if (result == CallResult::kReauth) {
    // Nothing is wrong with the update: it keeps its place, due at once,
    // and the tenant waits for a new token (wait_for_token).
    record_attempt(tenant_id, u, store::OutboxStatus::kPending, text, wall_seconds());
    t->access_token.clear();
    t->wake_s = steady_seconds() + config_.reauth_recheck_s;
    return t->wake_s;
  }
  // Retry: the update keeps its place; the whole location waits.
  const UnixSeconds delay_whole = static_cast<UnixSeconds>(std::ceil(delay_s));
  record_attempt(tenant_id, u, store::OutboxStatus::kPending, text, wall_seconds() + delay_whole);
  {
    std::lock_guard lock(mu_);
    ++stats_.retries;
  }
  t->wake_s = steady_seconds() + std::max(delay_s, 0.05);
  return t->wake_s;
}

GhlWriteback::CallResult GhlWriteback::send_score(const std::string& tenant_id, Tenant* t, const std::string& contact_id,
                                                  const ghl::ScoreChange& state, int attempt, double* delay_s,
                                                  std::string* error) {
  CallResult result = CallResult::kOk;
  (void)ensure_field(tenant_id, t, attempt, delay_s, error, &result);
  if (result != CallResult::kOk) return result;
  result = call(tenant_id, t, ghl::put_score_call(contact_id, t->field_id, state.score), attempt, nullptr, delay_s, error);
  if (result != CallResult::kOk || !state.band_changed) return result;
  result = call(tenant_id, t, ghl::tags_call(true, contact_id, {ghl::band_tag(state.band)}), attempt, nullptr, delay_s,
                error);
  if (result != CallResult::kOk) return result;
  return call(tenant_id, t, ghl::tags_call(false, contact_id, ghl::other_band_tags(state.band)), attempt, nullptr,
              delay_s, error);
}

GhlWriteback::CallResult GhlWriteback::send_stage_move(const std::string& tenant_id, Tenant* t,
                                                       const std::string& contact_id, const ghl::HotStage& target,
                                                       int attempt, double* delay_s, std::string* error,
                                                       std::string* note) {
  // A 2xx answer reai cannot read is GHL misbehaving for a moment, as ensure_field treats it.
  auto unreadable = [&](const std::string& what, const Status& s) {
    *delay_s = ghl::retry_delay_seconds(attempt, {}, jitter());
    *error = what + ": " + s.message();
    return CallResult::kRetry;
  };
  std::string body;
  CallResult result =
      call(tenant_id, t, ghl::search_opportunities_call(t->location_id, contact_id), attempt, &body, delay_s, error);
  if (result != CallResult::kOk) return result;
  auto opportunities = ghl::parse_opportunity_search(body);
  if (!opportunities) return unreadable("opportunity search", opportunities.status());
  std::vector<std::string> order;
  // Fetched for each move, not cached: stages are edited in GHL, and a move
  // is rare next to score updates.
  if (ghl::needs_stage_order(*opportunities, target)) {
    result = call(tenant_id, t, ghl::pipelines_call(t->location_id), attempt, &body, delay_s, error);
    if (result != CallResult::kOk) return result;
    auto stages = ghl::parse_pipeline_stages(body, target.pipeline_id);
    if (!stages && stages.status().code() == StatusCode::kNotFound) {
      *error = "hot stage: " + stages.status().message();
      return CallResult::kFailed;
    }
    if (!stages) return unreadable("pipelines", stages.status());
    order = std::move(*stages);
  }
  auto decision = ghl::decide_stage_moves(*opportunities, target, order);
  if (!decision) {
    *error = decision.status().message();
    return CallResult::kFailed;
  }
  std::string moved;
  for (const auto& id : decision->move) {
    result = call(tenant_id, t, ghl::move_opportunity_call(id, target.stage_id), attempt, nullptr, delay_s, error);
    if (result != CallResult::kOk) return result;  // a retry searches again: what moved is not moved twice
    {
      std::lock_guard lock(mu_);
      ++stats_.stage_moves;
    }
    moved += moved.empty() ? "moved " : ", ";
    moved += id;
  }
  *note = moved;
  if (!decision->note.empty()) *note += (moved.empty() ? "not moved: " : "; left alone: ") + decision->note;
  return CallResult::kOk;
}

Result<GhlWriteback::SyncReport> GhlWriteback::do_sync(const std::string& tenant_id, const SyncOptions& options) {
  Tenant& t = tenants_[tenant_id];
  REAI_RETURN_IF_ERROR(load_sync_credentials(tenant_id, &t));
  auto mapping = sync_field_mapping(tenant_id);
  if (!mapping) return mapping.status();
  SyncReport report;
  for (const auto resource : {ghl::SyncResource::kContacts, ghl::SyncResource::kOpportunities}) {
    REAI_RETURN_IF_ERROR(sync_resource(tenant_id, &t, resource, options, *mapping, &report));
  }
  return report;
}

Status GhlWriteback::load_sync_credentials(const std::string& tenant_id, Tenant* t) {
  if (!t->access_token.empty()) return Status::ok();
  if (Status s = load_tenant(tenant_id, t); !s) {
    t->access_token.clear();
    return failed_precondition("GHL sync of tenant '" + tenant_id + "': " + s.message());
  }
  return Status::ok();
}

Result<ghl::FieldMapping> GhlWriteback::sync_field_mapping(const std::string& tenant_id) {
  // No settings, or no mapping in them: GHL's standard fields.
  auto settings = store_.get_ghl_settings(tenant_id);
  if (!settings || settings->field_map_json.empty()) return ghl::FieldMapping{};
  return ghl::parse_field_mapping(settings->field_map_json);
}

Result<store::GhlSyncCursor> GhlWriteback::sync_start_cursor(const std::string& tenant_id, const std::string& name,
                                                             const SyncOptions& options, SyncReport* report) {
  store::GhlSyncCursor cursor{tenant_id, name, "", 0, false, wall_seconds()};
  if (auto stored = store_.get_ghl_sync_cursor(tenant_id, name)) {
    if (!options.restart) {
      cursor = *stored;
      report->resumed = report->resumed || !stored->cursor.empty();
    }
  } else if (stored.status().code() != StatusCode::kNotFound) {
    return stored.status();
  }
  // A restart forgets the stored position now: a run that fails before its
  // first page still starts over next time.
  if (options.restart) REAI_RETURN_IF_ERROR(store_.put_ghl_sync_cursor(cursor));
  return cursor;
}

Status GhlWriteback::sync_resource(const std::string& tenant_id, Tenant* t, ghl::SyncResource resource,
                                   const SyncOptions& options, const ghl::FieldMapping& mapping, SyncReport* report) {
  const std::string name(ghl::sync_resource_name(resource));
  auto cursor = sync_start_cursor(tenant_id, name, options, report);
  if (!cursor) return cursor.status();
  while (!cursor->done) {
    auto body = fetch_sync_page(tenant_id, t, resource, name, options, cursor->cursor);
    if (!body) return body.status();
    auto page = ghl::parse_page(resource, *body, options.page_limit);
    if (!page) return invalid_argument("GHL sync " + name + ": " + page.status().message());
    auto read = store_page(tenant_id, resource, *page, mapping, report);
    if (!read) return read.status();
    ++report->pages;
    cursor->cursor = page->next_cursor;
    cursor->done = page->last;
    cursor->fetched += static_cast<std::int64_t>(*read);
    cursor->updated_at = wall_seconds();
    // After the page's rows: a crash in between re-reads the page, which
    // stores nothing new.
    REAI_RETURN_IF_ERROR(store_.put_ghl_sync_cursor(*cursor));
  }
  return Status::ok();
}

Result<std::string> GhlWriteback::fetch_sync_page(const std::string& tenant_id, Tenant* t, ghl::SyncResource resource,
                                                  const std::string& name, const SyncOptions& options,
                                                  const std::string& cursor) {
  for (int attempt = 1;; ++attempt) {
    double delay_s = 0;
    std::string body, error;
    const auto result = call(tenant_id, t, ghl::page_call(resource, t->location_id, options.page_limit, cursor),
                             attempt, &body, &delay_s, &error);
    if (result == CallResult::kOk) return body;
    if (result == CallResult::kFailed) return invalid_argument("GHL sync " + name + ": " + error);
    if (result == CallResult::kReauth) return failed_precondition("GHL sync " + name + ": " + error);
    if (attempt >= options.max_attempts) {
      return unavailable("GHL sync " + name + " stopped after " + std::to_string(attempt) + " tries of one page (" +
                         error + "); run it again to resume");
    }
    {
      std::lock_guard lock(mu_);
      ++stats_.retries;
    }
    if (!wait_for(std::max(delay_s, 0.05))) return unavailable("GHL sync stopped");
  }
}

Result<std::size_t> GhlWriteback::store_page(const std::string& tenant_id, ghl::SyncResource resource,
                                             const ghl::Page& page, const ghl::FieldMapping& mapping,
                                             SyncReport* report) {
  std::vector<Contact> contacts;
  std::vector<OpportunityStage> stages;
  for (const auto& record : page.records) {
    auto mapped = resource == ghl::SyncResource::kContacts
                      ? ghl::map_api_contact(record, tenant_id, mapping)
                      : ghl::map_api_opportunity(record, tenant_id, mapping, wall_seconds());
    if (!mapped) return invalid_argument("GHL sync: " + mapped.status().message());
    for (auto& s : mapped->stages) stages.push_back(std::move(s));
    if (!mapped->contact) continue;
    Contact c;
    if (auto existing = store_.get_contact(tenant_id, mapped->contact->contact_id)) {
      c = std::move(*existing);
    } else {
      c.tenant_id = tenant_id;
      c.contact_id = mapped->contact->contact_id;
      c.created_at = wall_seconds();
    }
    // An opportunity only names its contact: it must exist, nothing more.
    if (resource == ghl::SyncResource::kContacts) ghl::apply_patch(*mapped->contact, &c);
    contacts.push_back(std::move(c));
  }
  auto counts = store_.import_history(contacts, {}, stages);
  if (!counts) return counts.status();
  if (resource == ghl::SyncResource::kContacts) {
    report->contacts += static_cast<std::int64_t>(page.records.size());
  } else {
    report->opportunities += static_cast<std::int64_t>(page.records.size());
  }
  report->stage_rows += static_cast<std::int64_t>(counts->stages_written);
  return page.records.size();
}

Result<GhlWritebackConfig> ghl_writeback_config(const ServerConfig& c) {
  GhlWritebackConfig w;
  w.api_base = c.ghl_api_base;
  if (c.ghl_rate_requests < 1 || !(c.ghl_rate_period_s > 0)) {
    return invalid_argument("GHL rate limit must be at least 1 request per positive period");
  }
  w.rate_capacity = c.ghl_rate_requests;
  w.rate_period_s = c.ghl_rate_period_s;
  w.score_interval_s = c.ghl_score_interval_s;
  if (!c.ghl_secret_key_file.empty()) {
    auto box = ghl::SecretBox::from_key_file(c.ghl_secret_key_file);
    if (!box) return box.status();
    w.secret_box = std::move(*box);
  }
  w.oauth = ghl::OAuthClient{c.ghl_client_id, c.ghl_client_secret};
  w.oauth_redirect_uri = c.ghl_oauth_redirect_uri;
  return w;
}

std::string ghl_writeback_metrics(const GhlWriteback::Stats& s) {
  std::string out;
  PrometheusText text(&out);
  text.family("reai_ghl_writeback_requests_total", "counter", "Requests to GHL's API by outcome.");
  text.sample("reai_ghl_writeback_requests_total", "outcome=\"ok\"", s.requests_ok);
  text.sample("reai_ghl_writeback_requests_total", "outcome=\"rate_limited\"", s.requests_429);
  text.sample("reai_ghl_writeback_requests_total", "outcome=\"retryable\"", s.requests_retry);
  text.sample("reai_ghl_writeback_requests_total", "outcome=\"unauthorized\"", s.requests_401);
  text.sample("reai_ghl_writeback_requests_total", "outcome=\"refused\"", s.requests_refused);
  text.family("reai_ghl_writeback_updates_total", "counter", "Score/tag updates by what became of them.");
  text.sample("reai_ghl_writeback_updates_total", "result=\"enqueued\"", s.enqueued);
  text.sample("reai_ghl_writeback_updates_total", "result=\"reconciled\"", s.reconciled);
  text.sample("reai_ghl_writeback_updates_total", "result=\"unchanged\"", s.unchanged);
  text.sample("reai_ghl_writeback_updates_total", "result=\"sent\"", s.sent);
  text.sample("reai_ghl_writeback_updates_total", "result=\"failed\"", s.failed);
  text.sample("reai_ghl_writeback_updates_total", "result=\"dropped\"", s.dropped);
  text.sample("reai_ghl_writeback_updates_total", "result=\"superseded\"", s.superseded);
  text.counter("reai_ghl_writeback_retries_total", "Update attempts put back for a retry (429, 5xx, transport, 401).",
               s.retries);
  text.family("reai_ghl_token_refreshes_total", "counter", "OAuth token refreshes by result.");
  text.sample("reai_ghl_token_refreshes_total", "result=\"ok\"", s.token_refreshes);
  text.sample("reai_ghl_token_refreshes_total", "result=\"failed\"", s.token_refresh_failures);
  text.counter("reai_ghl_reauth_marked_total",
               "Tenants whose OAuth grant GHL refused (invalid_grant), as marked by this instance.", s.reauth_marked);
  text.gauge("reai_ghl_tenants_needing_reauth",
             "Linked tenants whose GHL grant was refused: their write-back waits for a new install.",
             s.tenants_needing_reauth);
  text.counter("reai_ghl_writeback_stage_moves_total", "Opportunities moved to the tenant's hot stage.", s.stage_moves);
  text.gauge("reai_ghl_backfill_waiting", "Contacts never written back that wait to be fed to the outbox.",
             s.backfill_waiting);
  text.gauge("reai_ghl_outbox_pending", "Write-back updates waiting in the outbox (all linked tenants).",
             s.outbox_pending);
  text.gauge("reai_ghl_outbox_oldest_pending_age_seconds", "Age of the oldest pending write-back (0: none).",
             static_cast<std::uint64_t>(s.oldest_pending_age_s));
  return out;
}

Result<std::string> GhlWriteback::do_exchange(const std::string& code) {
  if (config_.oauth.client_id.empty() || config_.oauth.client_secret.empty()) {
    return failed_precondition("GHL OAuth is not configured (--ghl-client-id, --ghl-client-secret-file)");
  }
  if (!config_.secret_box) return failed_precondition("no --secret-key-file: GHL tokens cannot be stored");
  if (code.empty()) return invalid_argument("missing code");
  auto answer = http_->send(ghl::token_from_code_call(config_.oauth, code, config_.oauth_redirect_uri), "");
  if (!answer) return answer.status();
  if (ghl::classify(answer->status) != ghl::Verdict::kOk) {
    const std::string why = "GHL token exchange: " + std::to_string(answer->status) + " " + ghl::error_message(answer->body);
    return answer->status >= 400 && answer->status < 500 ? invalid_argument(why) : unavailable(why);
  }
  auto grant = ghl::parse_token_grant(answer->body);
  if (!grant) return grant.status();
  if (grant->location_id.empty()) return invalid_argument("GHL token exchange: the grant names no locationId");
  // A location new to reai becomes a tenant of that id.
  auto linked = store::link_ghl_location(store_, grant->location_id, wall_seconds());
  if (!linked) {
    return Status(linked.status().code(), "GHL token exchange: " + linked.status().message());
  }
  const store::Tenant& tenant = *linked;
  store::GhlToken token;
  token.tenant_id = tenant.tenant_id;
  token.kind = "oauth";
  token.sealed_access_token = config_.secret_box->seal(grant->access_token);
  if (!grant->refresh_token.empty()) token.sealed_refresh_token = config_.secret_box->seal(grant->refresh_token);
  token.expires_at = grant->expires_in > 0 ? wall_seconds() + grant->expires_in : 0;
  token.updated_at = wall_seconds();
  REAI_RETURN_IF_ERROR(store_.put_ghl_token(token));
  store::GhlSettingsChange activate;
  activate.active = true;
  activate.uninstalled_at = 0;
  REAI_RETURN_IF_ERROR(store_.update_ghl_settings(tenant.tenant_id, activate));
  // New credentials: the worker loads them on its next pass.
  tenants_.erase(tenant.tenant_id);
  locations_.erase(tenant.tenant_id);  // linked now
  {
    std::lock_guard lock(mu_);
    unlinked_.erase(tenant.tenant_id);
  }
  busy_tenants_.insert(tenant.tenant_id);
  return tenant.tenant_id;
}

}  // namespace reai::server
