// ws_fanout_load: end-to-end WebSocket fan-out load client for `reai serve`.
//
// Opens N WebSocket subscribers on one tenant, POSTs events at a fixed rate
// over a few keep-alive HTTP connections, and measures for every pushed
// score_update the delay from the POST's send time to its receipt. Every
// event names a fresh contact `<run>-<k>`, so the pushed lead_id maps back to
// slot k and its send time without any shared map. Loss is counted two ways:
// per-client seq gaps, and expected (events x clients) minus unique receipts.
//
// Threads: --threads io_contexts, each owning a share of the subscribers and
// its own statistics; the HTTP posters live on the first one. The only
// cross-thread data are the per-slot send times (atomics) and counters.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string token;
  std::string tenant;
  std::size_t clients = 5000;
  double rate = 50;        // events per second
  double duration = 30;    // seconds of posting
  std::size_t http_connections = 8;
  std::size_t threads = 2;
  std::size_t connect_window = 200;  // handshakes in flight at once
  double connect_timeout = 120;      // seconds for all clients
  double drain_timeout = 5;          // seconds without a new update before giving up
  double max_drain = 300;            // seconds of draining at most
  std::string json_out;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

// Log-linear histogram of microseconds: exact below 128, then 64 sub-buckets
// per power of two (under 1.6% error), so memory stays fixed at any volume.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}

  void record(std::int64_t us) {
    if (us < 0) us = 0;
    ++counts_[index(static_cast<std::uint64_t>(us))];
    ++total_;
    max_ = std::max(max_, us);
  }

  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const { return total_; }
  std::int64_t max() const { return max_; }

  // Upper bound of the bucket holding the q-quantile, in microseconds.
  double quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min<double>(upper(i), static_cast<double>(max_));
    }
    return static_cast<double>(max_);
  }

 private:
  static constexpr std::size_t kLinear = 128;
  static constexpr std::size_t kSub = 64;
  static constexpr std::size_t kBuckets = kLinear + 57 * kSub;

  static std::size_t index(std::uint64_t v) {
    if (v < kLinear) return v;
    const int e = 63 - __builtin_clzll(v);  // >= 7
    const std::uint64_t sub = (v >> (e - 6)) & (kSub - 1);
    return kLinear + static_cast<std::size_t>(e - 7) * kSub + sub;
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < kLinear) return i;
    const std::size_t e = (i - kLinear) / kSub + 7;
    const std::uint64_t sub = (i - kLinear) % kSub;
    return ((kSub + sub + 1) << (e - 6)) - 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::int64_t max_ = 0;
};

// Shared by every thread; written by posters, read by subscribers.
struct Run {
  Options opt;
  std::string prefix;  // contact id prefix unique to this run
  std::size_t slots = 0;  // events to post
  std::size_t next_slot = 0;  // next slot to send; posters' thread only
  std::unique_ptr<std::atomic<std::int64_t>[]> send_ns;  // 0 = not sent
  std::atomic<bool> finishing{false};
  std::atomic<bool> stop_posting{false};
  std::atomic<std::uint64_t> posted_ok{0};
  std::atomic<std::uint64_t> post_failed{0};
  std::atomic<std::uint64_t> posts_in_flight{0};
  std::atomic<std::uint64_t> post_reconnects{0};
  std::atomic<std::int64_t> first_send_ns{0};
  std::atomic<std::int64_t> last_receipt_ns{0};
};

// Per io thread; only its own thread writes, others read the atomics.
struct Worker {
  explicit Worker(Run& r) : run(r) {}
  Run& run;
  net::io_context ioc{1};
  Histogram latency;
  Histogram post_latency;  // HTTP request/response, filled on worker 0 only
  Histogram schedule_lag;  // actual send - due time, worker 0 only
  std::atomic<std::uint64_t> connected{0};
  std::atomic<std::uint64_t> connect_failed{0};
  std::atomic<std::uint64_t> matched{0};  // unique score_updates of this run
  std::uint64_t received = 0;             // every score_update frame
  std::uint64_t duplicates = 0;
  std::uint64_t seq_gaps = 0;
  std::uint64_t unmatched = 0;
  std::uint64_t overflow_frames = 0;
  std::uint64_t resync_frames = 0;
  std::uint64_t other_frames = 0;
  std::uint64_t closed_by_server = 0;
  std::uint64_t read_errors = 0;
  std::string first_close_reason;
  // Connection pacing.
  std::deque<std::size_t> pending;  // client ids still to connect
  std::size_t in_flight = 0;
};

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  return v;
}

// The score frame is produced by the server's own writer, so fixed-key scans
// are exact and far cheaper than a DOM parse at 250k messages/s.
std::string_view string_field(std::string_view msg, std::string_view key_quoted) {
  auto at = msg.find(key_quoted);
  if (at == std::string_view::npos) return {};
  at += key_quoted.size();
  if (at >= msg.size() || msg[at] != '"') return {};
  const auto end = msg.find('"', at + 1);
  if (end == std::string_view::npos) return {};
  return msg.substr(at + 1, end - at - 1);
}

std::optional<std::uint64_t> number_field(std::string_view msg, std::string_view key_quoted) {
  auto at = msg.find(key_quoted);
  if (at == std::string_view::npos) return std::nullopt;
  return parse_u64(msg.substr(at + key_quoted.size(), 20));
}

class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(Worker& w, std::size_t id) : w_(w), id_(id), ws_(w.ioc) {}

  void start(const tcp::endpoint& ep) {
    beast::get_lowest_layer(ws_).expires_after(15s);
    beast::get_lowest_layer(ws_).async_connect(ep, beast::bind_front_handler(&Subscriber::on_connect, shared_from_this()));
  }

  void close() {
    if (!open_) return;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }

  std::size_t id() const { return id_; }

  std::function<void()> on_settled;  // connect finished (either way)

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return settle(false);
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    beast::get_lowest_layer(ws_).expires_never();
    auto t = websocket::stream_base::timeout::suggested(beast::role_type::client);
    t.handshake_timeout = 15s;
    ws_.set_option(t);
    const Options& o = w_.run.opt;
    const std::string target = "/api/realtime/scoring/" + o.tenant + "?token=" + o.token;
    ws_.async_handshake(o.host + ":" + std::to_string(o.port), target,
                        beast::bind_front_handler(&Subscriber::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return settle(false);
    open_ = true;
    settle(true);
    do_read();
  }

  void settle(bool ok) {
    (ok ? w_.connected : w_.connect_failed).fetch_add(1, std::memory_order_relaxed);
    if (on_settled) {
      auto cb = std::move(on_settled);
      on_settled = nullptr;
      cb();
    }
  }

  void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&Subscriber::on_read, shared_from_this())); }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_closed(ec);
    const auto data = buffer_.cdata();
    handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.consume(buffer_.size());
    do_read();
  }

  void on_closed(beast::error_code ec) {
    open_ = false;
    if (w_.run.finishing.load(std::memory_order_relaxed)) return;
    if (ec == websocket::error::closed) {
      ++w_.closed_by_server;
      if (w_.first_close_reason.empty()) {
        w_.first_close_reason = std::to_string(ws_.reason().code) + " " + std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
      }
    } else {
      ++w_.read_errors;
      if (w_.first_close_reason.empty()) w_.first_close_reason = ec.message();
    }
  }

  void handle(std::string_view msg) {
    const std::string_view type = string_field(msg, "\"type\":");
    if (type != "score_update") {
      if (type == "overflow") ++w_.overflow_frames;
      else if (type == "resync") ++w_.resync_frames;
      else ++w_.other_frames;
      return;
    }
    ++w_.received;
    const auto seq = number_field(msg, "\"seq\":");
    if (!seq) return void(++w_.other_frames);
    if (last_seq_ != 0 && *seq <= last_seq_) return void(++w_.duplicates);
    if (last_seq_ != 0 && *seq > last_seq_ + 1) w_.seq_gaps += *seq - last_seq_ - 1;
    last_seq_ = *seq;
    match(string_field(msg, "\"lead_id\":"));
  }

  // lead ids of this run are "<prefix>-<slot>".
  void match(std::string_view lead) {
    const std::string& prefix = w_.run.prefix;
    if (lead.size() <= prefix.size() + 1 || lead.substr(0, prefix.size()) != prefix || lead[prefix.size()] != '-') {
      return void(++w_.unmatched);
    }
    const auto slot = parse_u64(lead.substr(prefix.size() + 1));
    if (!slot || *slot >= w_.run.slots) return void(++w_.unmatched);
    const std::int64_t sent = w_.run.send_ns[*slot].load(std::memory_order_acquire);
    if (sent == 0) return void(++w_.unmatched);
    const std::int64_t now = now_ns();
    w_.latency.record((now - sent) / 1000);
    w_.matched.fetch_add(1, std::memory_order_relaxed);
    std::int64_t last = w_.run.last_receipt_ns.load(std::memory_order_relaxed);
    while (now > last && !w_.run.last_receipt_ns.compare_exchange_weak(last, now, std::memory_order_relaxed)) {
    }
  }

  Worker& w_;
  std::size_t id_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::uint64_t last_seq_ = 0;
  bool open_ = false;
};

// One keep-alive HTTP connection of a pool: when idle it takes the next slot
// k and sends it at t0 + k/rate, so the offered rate does not depend on the
// response time as long as one connection is free (open loop). A slot sent
// late goes at once and its lateness is reported as schedule lag.
class Poster : public std::enable_shared_from_this<Poster> {
 public:
  Poster(Worker& w, tcp::endpoint ep, SteadyClock::time_point t0)
      : w_(w), ep_(ep), stream_(w.ioc), timer_(w.ioc), t0_(t0) {}

  void start() { connect(); }
  bool done() const { return done_; }

 private:
  Run& run() { return w_.run; }

  void connect() {
    stream_.expires_after(10s);
    stream_.async_connect(ep_, beast::bind_front_handler(&Poster::on_connect, shared_from_this()));
  }

  void on_connect(beast::error_code ec) {
    if (ec) return finish("connect: " + ec.message());
    stream_.socket().set_option(tcp::no_delay(true), ec);
    schedule();
  }

  void schedule() {
    if (run().next_slot >= run().slots || run().stop_posting.load()) return finish({});
    slot_ = run().next_slot++;
    due_ = t0_ + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * double(slot_) / run().opt.rate));
    timer_.expires_at(due_);
    timer_.async_wait(beast::bind_front_handler(&Poster::send, shared_from_this()));
  }

  void send(beast::error_code ec) {
    if (ec) return finish("timer: " + ec.message());
    const Options& o = run().opt;
    req_ = {http::verb::post, "/api/events", 11};
    req_.set(http::field::host, o.host);
    req_.set(http::field::authorization, "Bearer " + o.token);
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    const std::string id = run().prefix + "-" + std::to_string(slot_);
    req_.body() = R"({"contact_id":")" + id + R"(","type":"form_submit","event_id":")" + id + R"("})";
    req_.prepare_payload();
    sent_ns_ = now_ns();
    w_.schedule_lag.record(std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - due_).count());
    std::int64_t zero = 0;
    run().first_send_ns.compare_exchange_strong(zero, sent_ns_);
    run().send_ns[slot_].store(sent_ns_, std::memory_order_release);
    run().posts_in_flight.fetch_add(1);
    stream_.expires_after(10s);
    http::async_write(stream_, req_, beast::bind_front_handler(&Poster::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return on_failed(ec);
    res_ = {};
    http::async_read(stream_, buffer_, res_, beast::bind_front_handler(&Poster::on_response, shared_from_this()));
  }

  void on_response(beast::error_code ec, std::size_t) {
    if (ec) return on_failed(ec);
    run().posts_in_flight.fetch_sub(1);
    w_.post_latency.record((now_ns() - sent_ns_) / 1000);
    if (res_.result_int() / 100 == 2) {
      run().posted_ok.fetch_add(1);
    } else {
      run().post_failed.fetch_add(1);
      // The event was not accepted, so nobody should expect its update.
      run().send_ns[slot_].store(0, std::memory_order_release);
      if (error_.empty()) error_ = "HTTP " + std::to_string(res_.result_int()) + ": " + res_.body().substr(0, 200);
    }
    if (!res_.keep_alive()) return reconnect();
    schedule();
  }

  void on_failed(beast::error_code ec) {
    run().posts_in_flight.fetch_sub(1);
    run().post_failed.fetch_add(1);
    run().send_ns[slot_].store(0, std::memory_order_release);
    if (error_.empty()) error_ = "post: " + ec.message();
    reconnect();
  }

  void reconnect() {
    run().post_reconnects.fetch_add(1);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    buffer_.clear();
    connect();
  }

  void finish(std::string why) {
    if (error_.empty() && !why.empty()) error_ = std::move(why);
    if (!error_.empty()) std::cerr << "poster: " << error_ << "\n";
    done_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  Worker& w_;
  tcp::endpoint ep_;
  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  std::size_t slot_ = 0;
  SteadyClock::time_point due_;
  std::int64_t sent_ns_ = 0;
  SteadyClock::time_point t0_;
  std::string error_;
  bool done_ = false;
};

// Raises the soft descriptor limit to the hard one; each client is one fd.
void raise_fd_limit(std::size_t needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur < needed) {
    std::cerr << "warning: RLIMIT_NOFILE is " << lim.rlim_cur << ", below the " << needed << " descriptors needed\n";
  }
}

// Keeps `connect_window / threads` handshakes in flight per worker.
void connect_next(Worker& w, std::vector<std::shared_ptr<Subscriber>>& subs, const tcp::endpoint& ep, std::size_t window) {
  while (w.in_flight < window && !w.pending.empty()) {
    const std::size_t id = w.pending.front();
    w.pending.pop_front();
    auto sub = std::make_shared<Subscriber>(w, id);
    ++w.in_flight;
    sub->on_settled = [&w, &subs, ep, window] {
      --w.in_flight;
      connect_next(w, subs, ep, window);
    };
    subs.push_back(sub);
    sub->start(ep);
  }
}

template <typename Pred>
bool wait_until(Pred done, double seconds) {
  const auto deadline = SteadyClock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Runs `fn` on the worker's thread and waits for it.
template <typename Fn>
void run_on(Worker& w, Fn fn) {
  std::atomic<bool> ran{false};
  net::post(w.ioc, [&] {
    fn();
    ran.store(true);
  });
  while (!ran.load()) std::this_thread::sleep_for(1ms);
}

double ms(double us) { return us / 1000.0; }

struct Totals {
  std::uint64_t connected = 0, connect_failed = 0, matched = 0, received = 0, duplicates = 0, seq_gaps = 0;
  std::uint64_t unmatched = 0, overflow = 0, resync = 0, other = 0, closed = 0, read_errors = 0;
  std::string close_reason;
  Histogram latency;
};

Totals collect(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  for (const auto& w : workers) {
    t.connected += w->connected;
    t.connect_failed += w->connect_failed;
    t.matched += w->matched;
    t.received += w->received;
    t.duplicates += w->duplicates;
    t.seq_gaps += w->seq_gaps;
    t.unmatched += w->unmatched;
    t.overflow += w->overflow_frames;
    t.resync += w->resync_frames;
    t.other += w->other_frames;
    t.closed += w->closed_by_server;
    t.read_errors += w->read_errors;
    if (t.close_reason.empty()) t.close_reason = w->first_close_reason;
    t.latency.merge(w->latency);
  }
  return t;
}

// `posting` is the worker that ran the HTTP posters.
int report(const Run& run, const Totals& t, const Worker& posting, double connect_s, double drain_s,
           std::uint64_t subscribers) {
  const Histogram& post_latency = posting.post_latency;
  const Histogram& lag = posting.schedule_lag;
  const std::uint64_t posted = run.posted_ok.load();
  const std::uint64_t expected = posted * subscribers;
  const std::int64_t lost = static_cast<std::int64_t>(expected) - static_cast<std::int64_t>(t.matched);
  const double span_s = run.last_receipt_ns > run.first_send_ns
                            ? double(run.last_receipt_ns - run.first_send_ns) / 1e9
                            : 0.0;
  const double msgs_per_s = span_s > 0 ? double(t.matched) / span_s : 0.0;
  const Histogram& h = t.latency;

  json::object o;
  o["clients_requested"] = run.opt.clients;
  o["clients_connected"] = t.connected;
  o["connect_failed"] = t.connect_failed;
  o["connect_seconds"] = connect_s;
  o["rate_per_s"] = run.opt.rate;
  o["duration_s"] = run.opt.duration;
  o["events_posted"] = posted;
  o["events_failed"] = run.post_failed.load();
  o["post_p50_ms"] = ms(post_latency.quantile(0.5));
  o["post_p99_ms"] = ms(post_latency.quantile(0.99));
  o["http_connections"] = run.opt.http_connections;
  o["schedule_lag_p99_ms"] = ms(lag.quantile(0.99));
  o["schedule_lag_max_ms"] = ms(double(lag.max()));
  o["expected_deliveries"] = expected;
  o["received"] = t.matched;
  o["lost"] = lost;
  o["duplicates"] = t.duplicates;
  o["seq_gaps"] = t.seq_gaps;
  o["unmatched_updates"] = t.unmatched;
  o["overflow_messages"] = t.overflow;
  o["resync_messages"] = t.resync;
  o["closed_by_server"] = t.closed;
  o["read_errors"] = t.read_errors;
  o["first_close_reason"] = t.close_reason;
  o["latency_p50_ms"] = ms(h.quantile(0.5));
  o["latency_p90_ms"] = ms(h.quantile(0.9));
  o["latency_p99_ms"] = ms(h.quantile(0.99));
  o["latency_max_ms"] = ms(double(h.max()));
  o["messages_per_s"] = msgs_per_s;
  o["offered_messages_per_s"] = double(expected) / run.opt.duration;
  o["drain_seconds"] = drain_s;
  std::cout << json::serialize(o) << "\n\n";

  std::printf("| metric | value |\n|---|---|\n");
  std::printf("| clients connected | %llu / %zu (%.1f s) |\n", (unsigned long long)t.connected, run.opt.clients, connect_s);
  std::printf("| events posted (ok / failed) | %llu / %llu at %.0f/s for %.0f s |\n", (unsigned long long)posted,
              (unsigned long long)run.post_failed.load(), run.opt.rate, run.opt.duration);
  std::printf("| POST latency p50 / p99 (%zu connections) | %.2f / %.2f ms |\n", run.opt.http_connections,
              ms(post_latency.quantile(0.5)), ms(post_latency.quantile(0.99)));
  std::printf("| POST schedule lag p99 / max | %.2f / %.2f ms |\n", ms(lag.quantile(0.99)), ms(double(lag.max())));
  std::printf("| expected deliveries | %llu |\n", (unsigned long long)expected);
  std::printf("| received | %llu |\n", (unsigned long long)t.matched);
  std::printf("| lost | %lld |\n", (long long)lost);
  std::printf("| duplicates / seq gaps | %llu / %llu |\n", (unsigned long long)t.duplicates, (unsigned long long)t.seq_gaps);
  std::printf("| overflow msgs / closed by server / read errors | %llu / %llu / %llu |\n", (unsigned long long)t.overflow,
              (unsigned long long)t.closed, (unsigned long long)t.read_errors);
  std::printf("| delivery latency p50 / p90 / p99 / max | %.2f / %.2f / %.2f / %.2f ms |\n", ms(h.quantile(0.5)),
              ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(double(h.max())));
  std::printf("| messages/s delivered (offered) | %.0f (%.0f) |\n", msgs_per_s, double(expected) / run.opt.duration);
  std::printf("| drain after last POST | %.1f s |\n", drain_s);
  if (!t.close_reason.empty()) std::printf("\nfirst close reason: %s\n", t.close_reason.c_str());
  std::fflush(stdout);
  const bool ok = lost == 0 && t.connected == run.opt.clients && posted > 0 && t.overflow == 0 && t.closed == 0;
  return ok ? 0 : 1;
}

int parse_options(int argc, char** argv, Options* o) {
  CLI::App app{"WebSocket fan-out load client for reai serve"};
  app.add_option("--host", o->host, "server address (loopback)");
  app.add_option("--port", o->port, "server port");
  app.add_option("--token", o->token, "agent JWT of the tenant")->required();
  app.add_option("--tenant", o->tenant, "tenant of the token")->required();
  app.add_option("--clients", o->clients, "WebSocket subscribers")->check(CLI::Range(1, 200000));
  app.add_option("--rate", o->rate, "events per second")->check(CLI::Range(0.1, 100000.0));
  app.add_option("--duration", o->duration, "seconds of posting")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--http-connections", o->http_connections, "keep-alive POST connections")->check(CLI::Range(1, 256));
  app.add_option("--threads", o->threads, "io threads")->check(CLI::Range(1, 16));
  app.add_option("--connect-window", o->connect_window, "handshakes in flight")->check(CLI::Range(1, 10000));
  app.add_option("--connect-timeout", o->connect_timeout, "seconds to connect every client");
  app.add_option("--drain-timeout", o->drain_timeout, "give up after this many seconds without a new update");
  app.add_option("--max-drain", o->max_drain, "seconds to wait for late updates at most");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? -1 : 2;
  }
  return 0;
}

int run_load(Run& run) {
  const Options& o = run.opt;
  raise_fd_limit(o.clients + o.http_connections + 64);
  beast::error_code ec;
  const auto address = net::ip::make_address(o.host, ec);
  if (ec) {
    std::cerr << "bad --host (an IP address is expected): " << o.host << "\n";
    return 2;
  }
  const tcp::endpoint ep(address, o.port);

  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::vector<std::shared_ptr<Subscriber>>> subs(o.threads);
  for (std::size_t i = 0; i < o.threads; ++i) workers.push_back(std::make_unique<Worker>(run));
  for (std::size_t id = 0; id < o.clients; ++id) workers[id % o.threads]->pending.push_back(id);

  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    guards.push_back(net::make_work_guard(w->ioc));
    threads.emplace_back([&ioc = w->ioc] { ioc.run(); });
  }

  // 1. Subscribers, a window at a time so the accept backlog never overflows.
  const auto connect_start = SteadyClock::now();
  const std::size_t window = std::max<std::size_t>(1, o.connect_window / o.threads);
  for (std::size_t i = 0; i < o.threads; ++i) {
    Worker& w = *workers[i];
    auto& list = subs[i];
    net::post(w.ioc, [&w, &list, ep, window] { connect_next(w, list, ep, window); });
  }
  auto settled = [&] {
    std::uint64_t n = 0;
    for (auto& w : workers) n += w->connected + w->connect_failed;
    return n == o.clients;
  };
  if (!wait_until(settled, o.connect_timeout)) std::cerr << "warning: connect timeout\n";
  const double connect_s = std::chrono::duration<double>(SteadyClock::now() - connect_start).count();
  const Totals at_start = collect(workers);
  std::cerr << "connected " << at_start.connected << "/" << o.clients << " in " << connect_s << " s\n";
  std::this_thread::sleep_for(500ms);  // let the server finish registering the last sessions

  // 2. Events at the fixed rate.
  std::vector<std::shared_ptr<Poster>> posters;
  const auto t0 = SteadyClock::now() + 50ms;
  run_on(*workers[0], [&] {
    for (std::size_t i = 0; i < o.http_connections; ++i) {
      posters.push_back(std::make_shared<Poster>(*workers[0], ep, t0));
      posters.back()->start();
    }
  });
  auto posting_done = [&] {
    bool all = true;
    run_on(*workers[0], [&] {
      for (auto& p : posters) all = all && p->done();
    });
    return all;
  };
  if (!wait_until(posting_done, o.duration + 30)) {
    run.stop_posting = true;
    std::cerr << "warning: posting overran; stopping\n";
    wait_until(posting_done, 15);
  }

  // 3. Drain: every subscriber still open should reach posted x connected.
  // Waits while updates keep arriving (a slow server is late, not lossy),
  // and gives up after --drain-timeout seconds without progress.
  auto matched_now = [&] {
    std::uint64_t m = 0;
    for (auto& w : workers) m += w->matched;
    return m;
  };
  const std::uint64_t want = run.posted_ok.load() * at_start.connected;
  const auto drain_start = SteadyClock::now();
  std::uint64_t last = matched_now();
  while (last < want) {
    if (!wait_until([&] { return matched_now() != last; }, o.drain_timeout)) break;
    last = matched_now();
    if (SteadyClock::now() - drain_start > std::chrono::duration<double>(o.max_drain)) {
      std::cerr << "warning: still draining after " << o.max_drain << " s; stopping\n";
      break;
    }
  }
  const double drain_s = std::chrono::duration<double>(SteadyClock::now() - drain_start).count();
  std::cerr << "drained for " << drain_s << " s\n";

  // 4. Close politely, bounded, then stop.
  run.finishing = true;
  for (std::size_t i = 0; i < o.threads; ++i) {
    run_on(*workers[i], [&list = subs[i]] {
      for (auto& s : list) s->close();
    });
  }
  std::this_thread::sleep_for(1s);
  for (auto& w : workers) w->ioc.stop();
  for (auto& t : threads) t.join();

  const Totals totals = collect(workers);
  return report(run, totals, *workers[0], connect_s, drain_s, at_start.connected);
}

}  // namespace

int main(int argc, char** argv) {
  Run run;
  if (int rc = parse_options(argc, argv, &run.opt); rc != 0) return rc < 0 ? 0 : rc;
  run.prefix = "wsload" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  run.slots = static_cast<std::size_t>(std::ceil(run.opt.rate * run.opt.duration));
  run.send_ns = std::make_unique<std::atomic<std::int64_t>[]>(run.slots);
  for (std::size_t i = 0; i < run.slots; ++i) run.send_ns[i].store(0);
  return run_load(run);
}
