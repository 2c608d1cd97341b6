#include "cli/simulator.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <iostream>
#include <optional>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/time.h"

namespace reai::cli {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = boost::asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

// One lead's history as offsets from its creation.
struct LeadScript {
  const Contact* contact;
  std::vector<std::pair<UnixSeconds, const Event*>> events;  // (offset, event)
};

std::vector<LeadScript> build_scripts(const std::vector<Contact>& contacts,
                                      const std::vector<Event>& events, double max_age_days) {
  std::unordered_map<std::string, std::size_t> index;
  std::vector<LeadScript> scripts;
  scripts.reserve(contacts.size());
  for (const auto& c : contacts) {
    index.emplace(c.contact_id, scripts.size());
    scripts.push_back({&c, {}});
  }
  const auto max_age = static_cast<UnixSeconds>(max_age_days * 86400);
  for (const auto& e : events) {
    auto it = index.find(e.contact_id);
    if (it == index.end()) continue;
    const UnixSeconds offset = std::max<UnixSeconds>(0, e.ts - scripts[it->second].contact->created_at);
    if (offset <= max_age) scripts[it->second].events.emplace_back(offset, &e);
  }
  std::erase_if(scripts, [](const LeadScript& s) { return s.events.size() < 2; });
  return scripts;
}

// A keep-alive HTTP/1.1 connection that reconnects on failure.
class ApiClient {
 public:
  ApiClient(std::string host, std::uint16_t port, std::string token)
      : host_(std::move(host)), port_(port), token_(std::move(token)) {}

  // Returns the HTTP status, or nullopt when the server could not be reached.
  std::optional<int> send(http::verb verb, const std::string& target, const std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (!stream_) connect();
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, host_);
        req.set(http::field::authorization, "Bearer " + token_);
        req.set(http::field::content_type, "application/json");
        req.keep_alive(true);
        req.body() = body;
        req.prepare_payload();
        http::write(*stream_, req);
        http::response<http::string_body> res;
        http::read(*stream_, buffer_, res);
        if (!res.keep_alive()) stream_.reset();
        return res.result_int();
      } catch (const std::exception&) {
        stream_.reset();
      }
    }
    return std::nullopt;
  }

 private:
  void connect() {
    tcp::resolver resolver(ioc_);
    stream_.emplace(ioc_);
    stream_->connect(resolver.resolve(host_, std::to_string(port_)));
    stream_->socket().set_option(tcp::no_delay(true));
  }

  std::string host_;
  std::uint16_t port_;
  std::string token_;
  boost::asio::io_context ioc_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

std::string contact_json(const Contact& c, UnixSeconds created_at) {
  json::object o;
  o["created_at"] = format_iso8601(created_at);
  if (!c.source.empty()) o["source"] = c.source;
  if (c.lead_type != LeadType::kUnknown) o["lead_type"] = std::string(lead_type_name(c.lead_type));
  if (!c.assigned_agent_id.empty()) o["assigned_agent_id"] = c.assigned_agent_id;
  if (c.budget) o["budget"] = *c.budget;
  if (c.timeline_months) o["timeline_months"] = *c.timeline_months;
  if (c.pre_approved) o["pre_approved"] = *c.pre_approved;
  if (c.beds_wanted) o["beds_wanted"] = *c.beds_wanted;
  if (!c.area_wanted.empty()) o["area_wanted"] = c.area_wanted;
  if (c.has_phone) o["has_phone"] = *c.has_phone;
  if (c.has_email) o["has_email"] = *c.has_email;
  return json::serialize(o);
}

std::string event_json(const std::string& lead_id, const Event& e, UnixSeconds ts) {
  json::object o;
  o["contact_id"] = lead_id;
  o["type"] = std::string(event_type_name(e.type));
  o["ts"] = format_iso8601(ts);
  if (!e.property_id.empty()) o["property_id"] = e.property_id;
  if (e.value) o["value"] = *e.value;
  return json::serialize(o);
}

struct PendingEvent {
  SteadyTime due;
  std::string lead_id;
  const Event* event;
  bool operator>(const PendingEvent& other) const { return due > other.due; }
};

// The second of `clock` that was `at`: the posted times follow the
// server's clock, the schedule is steady.
UnixSeconds clock_at(const Clock& clock, SteadyTime at) {
  const auto ago = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - at);
  return clock.now() - static_cast<UnixSeconds>(ago.count());
}

// New leads arrive so that, in steady state, events flow at the target rate.
std::chrono::steady_clock::duration spawn_interval(const std::vector<LeadScript>& scripts, double events_per_second) {
  double mean_events = 0;
  for (const auto& s : scripts) mean_events += double(s.events.size());
  mean_events /= double(scripts.size());
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(mean_events / events_per_second));
}

// One run: a new lead (a random script) every spawn interval, each of its
// events posted when due.
class Simulation {
 public:
  Simulation(const std::vector<LeadScript>& scripts, const SimulatorOptions& options)
      : scripts_(scripts),
        options_(options),
        clock_(options.clock ? *options.clock : wall_clock_),
        spawn_every_(spawn_interval(scripts, options.events_per_second)),
        client_(options.host, options.port, options.token),
        rng_(options.seed),
        pick_(0, scripts.size() - 1) {}

  Result<SimulatorReport> run(const std::atomic<bool>& stop) {
    if (options_.warm_start) REAI_RETURN_IF_ERROR(spawn_past_leads(stop));
    SteadyTime next_spawn = start_;
    while (!stop.load()) {
      const SteadyTime now = std::chrono::steady_clock::now();
      if (options_.duration_seconds > 0 && now - start_ > std::chrono::duration<double>(options_.duration_seconds)) {
        break;
      }
      if (now >= next_spawn) {
        REAI_RETURN_IF_ERROR(spawn(next_spawn));
        next_spawn += spawn_every_;
        continue;
      }
      if (post_next_due(now)) continue;
      sleep_until_next(now, next_spawn);
    }
    return report_;
  }

 private:
  // Warm start: the leads a stream running for a whole window (the oldest
  // replayed age, compressed) would have begun, their past posted at once,
  // so events flow at the target rate from the first second instead of
  // ramping up over minutes (most of a lead's events come days in).
  Status spawn_past_leads(const std::atomic<bool>& stop) {
    const auto window = std::chrono::duration<double>(options_.max_lead_age_days * 86400 / options_.time_compression);
    for (SteadyTime began = start_ - spawn_every_; start_ - began < window && !stop.load(); began -= spawn_every_) {
      REAI_RETURN_IF_ERROR(spawn(began));
    }
    return Status::ok();
  }

  // A new lead that began at `began`: its contact, then its events, those
  // already due posted at once (dated when they fell due), the rest queued.
  Status spawn(SteadyTime began) {
    const LeadScript& script = scripts_[pick_(rng_)];
    const std::string lead_id = "sim-" + run_tag_ + "-" + std::to_string(++report_.leads_created);
    REAI_RETURN_IF_ERROR(create_contact(*script.contact, lead_id, began));
    const SteadyTime now = std::chrono::steady_clock::now();
    for (const auto& [offset, event] : script.events) {
      auto delay = std::chrono::duration<double>(double(offset) / options_.time_compression);
      PendingEvent p{began + std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay), lead_id, event};
      if (p.due <= now) {
        post_event(p);
      } else {
        pending_.push(std::move(p));
      }
    }
    return Status::ok();
  }

  // Unavailable only when the very first request cannot reach the server
  // (a wrong address, not a hiccup); later failures are counted.
  Status create_contact(const Contact& contact, const std::string& lead_id, SteadyTime began) {
    auto code =
        client_.send(http::verb::put, "/api/contacts/" + lead_id, contact_json(contact, clock_at(clock_, began)));
    if (!code) {
      if (report_.events_posted == 0 && report_.leads_created == 1) {
        return unavailable("cannot reach " + options_.host + ":" + std::to_string(options_.port));
      }
      ++report_.http_errors;
    } else if (*code >= 400) {
      ++report_.http_errors;
    }
    return Status::ok();
  }

  void post_event(const PendingEvent& p) {
    auto code = client_.send(http::verb::post, "/api/events", event_json(p.lead_id, *p.event, clock_at(clock_, p.due)));
    if (!code || *code >= 400) {
      ++report_.http_errors;
    } else {
      ++report_.events_posted;
    }
  }

  // Posts the earliest queued event when it is due; false when none is.
  bool post_next_due(SteadyTime now) {
    if (pending_.empty() || pending_.top().due > now) return false;
    PendingEvent p = pending_.top();
    pending_.pop();
    post_event(p);
    if (options_.verbose && report_.events_posted % 100 == 0) {
      std::cerr << "simulator: " << report_.events_posted << " events, " << report_.leads_created << " leads\n";
    }
    return true;
  }

  void sleep_until_next(SteadyTime now, SteadyTime next_spawn) {
    SteadyTime wake = next_spawn;
    if (!pending_.empty()) wake = std::min(wake, pending_.top().due);
    wake = std::min(wake, now + std::chrono::milliseconds(100));  // stay responsive to stop
    std::this_thread::sleep_until(wake);
  }

  const std::vector<LeadScript>& scripts_;
  const SimulatorOptions& options_;
  const SystemClock wall_clock_;
  const Clock& clock_;
  const std::chrono::steady_clock::duration spawn_every_;
  ApiClient client_;
  std::mt19937 rng_;
  std::uniform_int_distribution<std::size_t> pick_;
  std::priority_queue<PendingEvent, std::vector<PendingEvent>, std::greater<>> pending_;
  SimulatorReport report_;
  const SteadyTime start_ = std::chrono::steady_clock::now();
  const std::string run_tag_ = std::to_string(SystemClock().now() % 1000000);
};

}  // namespace

Result<SimulatorReport> run_simulator(const std::vector<Contact>& contacts,
                                      const std::vector<Event>& events,
                                      const SimulatorOptions& options, const std::atomic<bool>& stop) {
  const auto scripts = build_scripts(contacts, events, options.max_lead_age_days);
  if (scripts.empty()) return invalid_argument("the history has no lead with at least 2 events");
  if (options.events_per_second <= 0 || options.time_compression <= 0) {
    return invalid_argument("rate and time compression must be positive");
  }
  return Simulation(scripts, options).run(stop);
}

}  // namespace reai::cli
