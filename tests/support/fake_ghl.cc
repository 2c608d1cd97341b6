#include "support/fake_ghl.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace reai::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string form_value(const std::string& form, const std::string& key) {
  std::size_t at = 0;
  while (at <= form.size()) {
    const std::size_t amp = form.find('&', at);
    const std::string pair = form.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
    if (pair.rfind(key + "=", 0) == 0) return pair.substr(key.size() + 1);
    if (amp == std::string::npos) break;
    at = amp + 1;
  }
  return {};
}

// "/contacts/{id}" or "/contacts/{id}/tags" -> id; "" otherwise.
std::string contact_of(const std::string& target) {
  const std::string prefix = "/contacts/";
  if (target.rfind(prefix, 0) != 0) return {};
  std::string rest = target.substr(prefix.size());
  return rest.substr(0, rest.find('/'));
}

}  // namespace

struct FakeGhl::State {
  int limit;
  double period_s;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::atomic<bool> stopping{false};
  std::thread thread;

  mutable std::mutex mu;
  std::set<std::string> tokens;
  std::map<std::string, std::string> codes;  // code -> location
  std::map<std::string, std::string> refresh_tokens;  // live refresh token -> location
  std::map<std::string, std::deque<double>> windows;  // token -> accepted arrivals
  int fail_count = 0;
  int fail_status = 0;
  int every = 0;
  std::uint64_t counted = 0;
  bool down = false;
  std::set<std::string> refused;
  std::vector<Received> log;
  std::map<std::string, int> scores;
  std::map<std::string, int> puts;
  std::map<std::string, std::set<std::string>> tags;
  std::vector<std::string> refreshes;
  std::vector<double> accepted_at;
  int too_many = 0;
  int grants = 0;
  std::set<std::string> granted;  // access tokens of OAuth grants
  int refresh_fail_count = 0;
  int refresh_fail_status = 0;
  std::string field_id;
  std::vector<json::object> contact_records;
  std::vector<json::object> opportunity_records;
  std::vector<json::object> pipelines;
  std::vector<std::pair<std::string, std::string>> moves;
  int lists = 0;
  int fail_lists_from = 0;
  int fail_lists_status = 0;

  struct Answer {
    int status = 200;
    std::string body = "{}";
    std::vector<std::pair<std::string, std::string>> headers;
  };

  Answer error(int status, const std::string& message) {
    json::object o{{"statusCode", status}, {"message", message}};
    return Answer{status, json::serialize(o), {}};
  }

  Answer oauth(const std::string& form) {
    const std::string grant = form_value(form, "grant_type");
    std::string location;
    if (grant == "authorization_code") {
      auto it = codes.find(form_value(form, "code"));
      if (it == codes.end()) return error(400, "invalid code");
      location = it->second;
      codes.erase(it);  // one use
    } else if (grant == "refresh_token") {
      const std::string rt = form_value(form, "refresh_token");
      refreshes.push_back(rt);
      if (refresh_fail_count > 0) {
        --refresh_fail_count;
        return error(refresh_fail_status, "token service unavailable");
      }
      auto it = refresh_tokens.find(rt);
      if (it == refresh_tokens.end()) {
        json::object o{{"error", "invalid_grant"}, {"error_description", "Invalid grant: refresh token is invalid"}};
        return Answer{400, json::serialize(o), {}};
      }
      location = it->second;
      refresh_tokens.erase(it);  // rotated: the old one stops working
    } else {
      return error(400, "unsupported grant_type");
    }
    if (form_value(form, "client_id").empty() || form_value(form, "client_secret").empty()) {
      return error(401, "invalid client");
    }
    ++grants;
    const std::string access = "at-" + std::to_string(grants);
    granted.insert(access);
    const std::string refresh = "rt-" + std::to_string(grants);
    tokens.insert(access);
    refresh_tokens[refresh] = location;
    json::object o{{"access_token", access}, {"token_type", "Bearer"}, {"expires_in", 86399},
                   {"refresh_token", refresh}, {"scope", "contacts.write"}, {"userType", "Location"},
                   {"locationId", location}, {"companyId", "CMP1"}};
    return Answer{200, json::serialize(o), {}};
  }

  // GHL's cursor paging: records after the one named by startAfterId.
  Answer list_page(const std::string& target, const std::vector<json::object>& records, const char* key,
                   const std::string& location_param) {
    ++lists;
    if (fail_lists_from > 0 && lists >= fail_lists_from) return error(fail_lists_status, "injected list failure");
    const std::string query = target.substr(target.find('?') + 1);
    if (form_value(query, location_param).empty()) return error(422, location_param + " is required");
    const std::string limit_text = form_value(query, "limit");
    const int limit = limit_text.empty() ? 20 : std::stoi(limit_text);
    if (limit < 1 || limit > 100) return error(422, "limit must be 1..100");
    const std::string after_id = form_value(query, "startAfterId");
    std::size_t from = 0;
    if (!after_id.empty()) {
      from = records.size();
      for (std::size_t i = 0; i < records.size(); ++i) {
        if (records[i].at("id").as_string() == after_id) from = i + 1;
      }
    }
    json::array page;
    for (std::size_t i = from; i < records.size() && page.size() < static_cast<std::size_t>(limit); ++i) {
      page.push_back(records[i]);
    }
    json::object meta{{"total", records.size()}};
    if (!page.empty()) {
      meta["startAfterId"] = page.back().as_object().at("id");
      meta["startAfter"] = 1751450400000 + static_cast<std::int64_t>(from + page.size());
    }
    return Answer{200, json::serialize(json::object{{key, page}, {"meta", meta}}), {}};
  }

  // The window counts accepted requests per token (= per location); an
  // accepted request is recorded here, a refused one gets GHL's 429.
  std::optional<Answer> rate_limit(const std::string& token) {
    auto& window = windows[token];
    const double t = now_s();
    while (!window.empty() && window.front() <= t - period_s) window.pop_front();
    if (static_cast<int>(window.size()) >= limit) {
      ++too_many;
      Answer a = error(429, "Too many requests");
      a.headers = {{"Retry-After", "1"}, {"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Max", std::to_string(limit)},
                   {"X-RateLimit-Interval-Milliseconds", std::to_string(static_cast<int>(period_s * 1000))}};
      return a;
    }
    window.push_back(t);
    accepted_at.push_back(t);
    return std::nullopt;
  }

  // The outage and failures a test asked for; checked after the rate limit,
  // so a failed request still uses up the window.
  std::optional<Answer> injected_failure() {
    if (down) return error(503, "Service unavailable");
    if (fail_count > 0) {
      --fail_count;
      return error(fail_status, "injected failure");
    }
    ++counted;
    if (every > 0 && counted % static_cast<std::uint64_t>(every) == 0) return error(503, "injected 503");
    return std::nullopt;
  }

  // The checks every API request passes before its route: headers, token,
  // rate limit, injected failures.
  std::optional<Answer> admit(const http::request<http::string_body>& req) {
    const std::string auth(req[http::field::authorization]);
    const std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string();
    if (req["Version"] != "2021-07-28") return error(400, "Version header missing or wrong");
    if (!tokens.count(token)) return error(401, "Invalid JWT");
    if (auto limited = rate_limit(token)) return limited;
    return injected_failure();
  }

  // GET /contacts/? and /opportunities/search? (optionally of one contact_id).
  Answer list_records(const std::string& target, bool contacts_list) {
    const std::string contact_filter = form_value(target.substr(target.find('?') + 1), "contact_id");
    if (!contacts_list && !contact_filter.empty()) {
      std::vector<json::object> of_contact;
      for (const auto& o : opportunity_records) {
        const auto* c = o.if_contains("contactId");
        if (c && c->is_string() && c->as_string() == contact_filter) of_contact.push_back(o);
      }
      return list_page(target, of_contact, "opportunities", "location_id");
    }
    return list_page(target, contacts_list ? contact_records : opportunity_records,
                     contacts_list ? "contacts" : "opportunities", contacts_list ? "locationId" : "location_id");
  }

  Answer list_pipelines(const std::string& target) {
    if (form_value(target.substr(target.find('?') + 1), "locationId").empty()) {
      return error(422, "locationId is required");
    }
    json::array list;
    for (const auto& p : pipelines) list.push_back(p);
    return Answer{200, json::serialize(json::object{{"pipelines", list}}), {}};
  }

  // PUT /opportunities/{id}: only a stage move.
  Answer move_opportunity(const std::string& id, const json::value& body) {
    const auto* stage = body.is_object() ? body.as_object().if_contains("pipelineStageId") : nullptr;
    if (!stage || !stage->is_string()) return error(422, "pipelineStageId must be a string");
    for (auto& o : opportunity_records) {
      if (o.at("id").as_string() != id) continue;
      o["pipelineStageId"] = stage->as_string();
      moves.emplace_back(id, std::string(stage->as_string()));
      return Answer{200, json::serialize(json::object{{"opportunity", o}}), {}};
    }
    return error(404, "Opportunity not found");
  }

  // A budget field always; the reai score field once it has been created.
  Answer list_custom_fields() {
    json::array fields{json::object{{"id", "fldBudget"}, {"name", "Budget"}, {"dataType", "MONETORY"}}};
    if (!field_id.empty()) {
      fields.push_back(json::object{{"id", field_id}, {"name", "reai score"}, {"fieldKey", "contact.reai_score"},
                                    {"dataType", "NUMERICAL"}});
    }
    return Answer{200, json::serialize(json::object{{"customFields", fields}}), {}};
  }

  Answer create_custom_field(const json::value& body) {
    if (!body.is_object() || body.as_object().if_contains("name") == nullptr) return error(422, "name required");
    field_id = "fldReaiScore";
    return Answer{201, json::serialize(json::object{{"customField", json::object{{"id", field_id}}}}), {}};
  }

  // PUT /contacts/{id}: the score custom field; replacing tags would drop
  // the CRM's own, so a body with tags fails the test.
  Answer put_score(const std::string& contact, const json::value& body) {
    if (!body.is_object()) return error(422, "body must be an object");
    if (body.as_object().if_contains("tags")) return error(422, "test: tags must never be replaced");
    const auto* cf = body.as_object().if_contains("customFields");
    if (!cf || !cf->is_array() || cf->as_array().empty()) return error(422, "customFields required");
    const auto& f = cf->as_array()[0].as_object();
    if (f.at("id").as_string() != field_id) return error(422, "unknown custom field");
    scores[contact] = static_cast<int>(f.at("field_value").to_number<double>());
    ++puts[contact];
    return Answer{200, json::serialize(json::object{{"succeded", true}}), {}};
  }

  // POST (add) or DELETE (remove) /contacts/{id}/tags.
  Answer change_tags(const std::string& contact, bool add, const json::value& body) {
    const auto* list = body.is_object() ? body.as_object().if_contains("tags") : nullptr;
    if (!list || !list->is_array()) return error(422, "tags required");
    for (const auto& tag : list->as_array()) {
      if (add) {
        tags[contact].insert(std::string(tag.as_string()));
      } else {
        tags[contact].erase(std::string(tag.as_string()));
      }
    }
    return Answer{200, "{\"tags\":[]}", {}};
  }

  Answer route(http::verb method, const std::string& target, const std::string& contact, const json::value& body) {
    const bool contacts_list = target.rfind("/contacts/?", 0) == 0;
    const bool opportunities_list = target.rfind("/opportunities/search?", 0) == 0;
    if ((contacts_list || opportunities_list) && method == http::verb::get) return list_records(target, contacts_list);
    if (target.rfind("/opportunities/pipelines?", 0) == 0 && method == http::verb::get) return list_pipelines(target);
    const std::string opportunity_prefix = "/opportunities/";
    if (target.rfind(opportunity_prefix, 0) == 0 && method == http::verb::put) {
      return move_opportunity(target.substr(opportunity_prefix.size()), body);
    }
    const bool fields_path = target.size() > 13 && target.rfind("/locations/", 0) == 0 &&
                             target.substr(target.size() - 13) == "/customFields";
    if (fields_path && method == http::verb::get) return list_custom_fields();
    if (fields_path && method == http::verb::post) return create_custom_field(body);
    if (contact.empty()) return error(404, "Not found");
    const bool tags_path = target.size() > 5 && target.substr(target.size() - 5) == "/tags";
    if (!tags_path && method == http::verb::put) return put_score(contact, body);
    if (tags_path && (method == http::verb::post || method == http::verb::delete_)) {
      return change_tags(contact, method == http::verb::post, body);
    }
    return error(404, "Not found");
  }

  Answer api(const http::request<http::string_body>& req, const std::string& target) {
    if (auto rejected = admit(req)) return *rejected;
    const std::string contact = contact_of(target);
    if (!contact.empty() && refused.count(contact)) return error(422, "Contact " + contact + " cannot be updated");
    boost::system::error_code ec;
    json::value body = req.body().empty() ? json::value() : json::parse(req.body(), ec);
    if (ec) return error(400, "malformed JSON");
    return route(req.method(), target, contact, body);
  }

  void serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      const std::string target(req.target());
      Answer answer;
      {
        std::lock_guard lock(mu);
        if (target == "/oauth/token" && req.method() == http::verb::post) {
          answer = oauth(req.body());
        } else {
          answer = api(req, target);
        }
        log.push_back(Received{std::string(req.method_string()), target, req.body(),
                               std::string(req[http::field::authorization]), std::string(req["Version"]),
                               answer.status, now_s()});
      }
      http::response<http::string_body> res{static_cast<http::status>(answer.status), req.version()};
      res.set(http::field::content_type, "application/json");
      for (const auto& [k, v] : answer.headers) res.set(k, v);
      res.body() = answer.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  void run() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket socket(ioc);
      acceptor.accept(socket, ec);
      if (stopping) return;
      if (ec) continue;
      serve(std::move(socket));
    }
  }
};

FakeGhl::FakeGhl(int limit, double period_s) : state_(std::make_shared<State>()) {
  state_->limit = limit;
  state_->period_s = period_s;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(ep.protocol());
  state_->acceptor.set_option(asio::socket_base::reuse_address(true));
  state_->acceptor.bind(ep);
  state_->acceptor.listen();
  state_->thread = std::thread([s = state_] { s->run(); });
}

FakeGhl::~FakeGhl() {
  state_->stopping = true;
  // Wake the blocking accept with a connection of our own.
  beast::error_code ec;
  asio::io_context ioc;
  tcp::socket poke(ioc);
  poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()), ec);
  state_->thread.join();
}

std::uint16_t FakeGhl::port() const { return state_->acceptor.local_endpoint().port(); }
std::string FakeGhl::base_url() const { return "http://127.0.0.1:" + std::to_string(port()); }

void FakeGhl::accept_token(const std::string& token) {
  std::lock_guard lock(state_->mu);
  state_->tokens.insert(token);
}
void FakeGhl::revoke_token(const std::string& token) {
  std::lock_guard lock(state_->mu);
  state_->tokens.erase(token);
}
void FakeGhl::revoke_grants() {
  std::lock_guard lock(state_->mu);
  for (const auto& access : state_->granted) state_->tokens.erase(access);
  state_->refresh_tokens.clear();
}

void FakeGhl::fail_refresh_next(int n, int status) {
  std::lock_guard lock(state_->mu);
  state_->refresh_fail_count = n;
  state_->refresh_fail_status = status;
}

void FakeGhl::add_oauth_code(const std::string& code, const std::string& location_id) {
  std::lock_guard lock(state_->mu);
  state_->codes[code] = location_id;
}
void FakeGhl::fail_next(int n, int status) {
  std::lock_guard lock(state_->mu);
  state_->fail_count = n;
  state_->fail_status = status;
}
void FakeGhl::fail_every(int every) {
  std::lock_guard lock(state_->mu);
  state_->every = every;
}
void FakeGhl::refuse_contact(const std::string& contact_id) {
  std::lock_guard lock(state_->mu);
  state_->refused.insert(contact_id);
}
void FakeGhl::add_contact_record(const std::string& json_object) {
  std::lock_guard lock(state_->mu);
  state_->contact_records.push_back(json::parse(json_object).as_object());
}

void FakeGhl::add_opportunity_record(const std::string& json_object) {
  std::lock_guard lock(state_->mu);
  state_->opportunity_records.push_back(json::parse(json_object).as_object());
}

void FakeGhl::add_pipeline(const std::string& json_object) {
  std::lock_guard lock(state_->mu);
  state_->pipelines.push_back(json::parse(json_object).as_object());
}

std::vector<std::pair<std::string, std::string>> FakeGhl::stage_moves() const {
  std::lock_guard lock(state_->mu);
  return state_->moves;
}

std::string FakeGhl::opportunity_stage(const std::string& opportunity_id) const {
  std::lock_guard lock(state_->mu);
  for (const auto& o : state_->opportunity_records) {
    if (o.at("id").as_string() != opportunity_id) continue;
    const auto* stage = o.if_contains("pipelineStageId");
    return stage && stage->is_string() ? std::string(stage->as_string()) : std::string();
  }
  return {};
}

void FakeGhl::fail_lists_from(int n, int status) {
  std::lock_guard lock(state_->mu);
  state_->lists = 0;
  state_->fail_lists_from = n;
  state_->fail_lists_status = status;
}

void FakeGhl::set_down(bool down) {
  std::lock_guard lock(state_->mu);
  state_->down = down;
}
std::vector<FakeGhl::Received> FakeGhl::received() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}
std::map<std::string, int> FakeGhl::scores() const {
  std::lock_guard lock(state_->mu);
  return state_->scores;
}
std::map<std::string, int> FakeGhl::put_counts() const {
  std::lock_guard lock(state_->mu);
  return state_->puts;
}
std::set<std::string> FakeGhl::tags(const std::string& contact_id) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->tags.find(contact_id);
  return it == state_->tags.end() ? std::set<std::string>() : it->second;
}
int FakeGhl::too_many_requests() const {
  std::lock_guard lock(state_->mu);
  return state_->too_many;
}
int FakeGhl::max_in_window() const {
  std::lock_guard lock(state_->mu);
  const auto& t = state_->accepted_at;
  int best = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < t.size(); ++hi) {
    while (t[lo] <= t[hi] - state_->period_s) ++lo;
    best = std::max(best, static_cast<int>(hi - lo + 1));
  }
  return best;
}
std::vector<std::string> FakeGhl::refreshes() const {
  std::lock_guard lock(state_->mu);
  return state_->refreshes;
}

}  // namespace reai::testing
