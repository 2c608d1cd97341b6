// FakeGhl: a small GoHighLevel REST API for tests (Beast, 127.0.0.1, port 0)
// that follows shared/GHL.md: custom fields list/create, PUT contact, tag
// add/remove, contacts list, opportunities search (by location, optionally
// by contact_id), pipelines list, PUT /opportunities/{id} (pipelineStageId),
// POST /oauth/token (code and refresh_token grants, refresh tokens rotated
// on use). It checks the Version and Authorization headers,
// enforces a per-token request window with 429s (Retry-After and
// X-RateLimit-* headers), can fail requests with 5xx, 401 or 422 on demand,
// and records everything it receives. One thread; every method is
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace reai::testing {

class FakeGhl {
 public:
  struct Received {
    std::string method;
    std::string target;
    std::string body;
    std::string authorization;
    std::string version;
    int status = 0;      // what the fake answered
    double at_s = 0;     // steady clock seconds at arrival
  };

  // `limit` requests per `period_s` per bearer token (GHL: 100 per 10 s).
  FakeGhl(int limit = 100, double period_s = 10);
  ~FakeGhl();
  FakeGhl(const FakeGhl&) = delete;
  FakeGhl& operator=(const FakeGhl&) = delete;

  std::uint16_t port() const;
  std::string base_url() const;

  // Bearer tokens accepted (a Private Integration Token, say).
  void accept_token(const std::string& token);
  void revoke_token(const std::string& token);
  // The OAuth side: `code` exchanges for a grant of `location_id`.
  void add_oauth_code(const std::string& code, const std::string& location_id);
  // The app is uninstalled (or its grants revoked): every access token and
  // refresh token granted so far stops working; a refresh then answers 400
  // {"error":"invalid_grant", "error_description"} as an unknown refresh
  // token does.
  void revoke_grants();
  // The next `n` refresh-token grants answer `status` (an outage: 503) and
  // leave the refresh token live.
  void fail_refresh_next(int n, int status);
  // The next `n` requests (other than /oauth) answer `status`.
  void fail_next(int n, int status);
  // Every `every`-th request (other than /oauth) answers 503 (0: never).
  void fail_every(int every);
  // Requests naming this contact answer 422 with a GHL message.
  void refuse_contact(const std::string& contact_id);
  // Answers 503 to everything (an outage) while true.
  void set_down(bool down);
  // Records served by GET /contacts/?locationId= and GET
  // /opportunities/search?location_id= (paged with limit, startAfter,
  // startAfterId, in the order added): JSON object text with an "id".
  void add_contact_record(const std::string& json_object);
  void add_opportunity_record(const std::string& json_object);
  // A pipeline served by GET /opportunities/pipelines?locationId=: JSON
  // object text {"id", "name", "stages":[{"id","name","position"}]}.
  void add_pipeline(const std::string& json_object);
  // Every list request from the `n`-th on (1-based, counting both lists)
  // answers `status` (0: never), as GHL refusing a sync part-way.
  void fail_lists_from(int n, int status);

  std::vector<Received> received() const;
  // The score last PUT for each contact, and how many PUTs each got (2xx).
  std::map<std::string, int> scores() const;
  std::map<std::string, int> put_counts() const;
  // Band tags a contact carries now (after adds and removes).
  std::set<std::string> tags(const std::string& contact_id) const;
  int too_many_requests() const;  // 429s answered
  // Most 2xx+4xx+5xx requests that arrived within any one window.
  int max_in_window() const;
  // Refresh tokens used so far (rotation check).
  std::vector<std::string> refreshes() const;
  // Opportunity moves accepted (PUT /opportunities/{id} answered 2xx), in
  // order: {opportunity id, pipelineStageId}.
  std::vector<std::pair<std::string, std::string>> stage_moves() const;
  // An opportunity record's pipelineStageId now ("" when unknown).
  std::string opportunity_stage(const std::string& opportunity_id) const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace reai::testing
