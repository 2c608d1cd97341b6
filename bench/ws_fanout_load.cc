// ws_fanout_load: end-to-end WebSocket fan-out load client for `reai serve`.
//
// Opens N WebSocket subscribers on one tenant, POSTs events at a fixed rate
// over a few keep-alive HTTP connections, and measures for every pushed
// score_update the delay from the POST's send time to its receipt. Every
// event names a fresh contact `<run>-<k>`, so the pushed lead_id maps back to
// slot k and its send time without any shared map. Loss is counted two ways:
// per-client seq gaps, and expected (events x clients) minus unique receipts.
//
// The client must cost far less per message than the server it measures
// (250k messages/s on the same 2 cores), so:
//  - Beast does each client's HTTP upgrade (request, 101 response, the
//    Sec-WebSocket-Accept check); then the descriptor leaves Asio and any
//    bytes read past the 101 response carry over to the frame reader.
//  - Reader threads (--threads) each own a share of the sockets and one
//    edge-triggered epoll set, polled every --read-interval-us (1 ms) rather
//    than slept on, so no server send pays for waking a reader. One read()
//    of up to 256 KiB takes whatever frames the socket holds (again while a
//    read fills the buffer); the unmasked server frames (RFC 6455 2/4/10
//    byte headers) are parsed in place, and "type", "seq" and "lead_id" are
//    found by a fixed-key scan. No allocation per message (a partial frame
//    at the end of a read is the only copy), no shared atomic written per
//    message: a reader publishes its receipt count once per epoll wakeup.
//  - Receipt time is read once per read() call: every frame of that read
//    was in the socket buffer at that instant, so it is their true receipt
//    time by this client (they may have arrived slightly earlier).
//  - The HTTP posters run on their own thread and io_context, so a busy
//    reader never delays the posting schedule (its lag is reported).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
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
#include <boost/beast/websocket/detail/hybi13.hpp>
#include <boost/json.hpp>

#include "core/json_text.h"

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
  std::uint16_t post_port = 0;  // 0: same as port; else another instance (fan-out through Redis)
  // Put before the routes' paths, e.g. "/instance/2" to reach one instance
  // through the balancer (scripts/cluster-nginx-conf); "" = the routes as is.
  std::string path_prefix;       // of the WebSocket upgrades
  std::string post_path_prefix;  // of the POSTs
  std::string token;
  std::string tenant;
  std::size_t clients = 5000;
  double rate = 50;        // events per second
  double duration = 30;    // seconds of posting
  std::size_t http_connections = 8;
  std::size_t threads = 2;  // handshake io_contexts, then frame readers
  std::size_t connect_window = 200;  // handshakes in flight at once
  double connect_timeout = 120;      // seconds for all clients
  double drain_timeout = 5;          // seconds without a new update before giving up
  double max_drain = 300;            // seconds of draining at most
  // N: a reader polls its sockets every N µs and sleeps between rounds, so
  // the server's sends wake no one and each read() takes more frames (adds
  // at most N µs to the measured delay). 0: readers block in epoll_wait, and
  // a frame for an idle reader wakes it (a context switch charged to the
  // server's send).
  std::uint32_t read_interval_us = 1000;
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

// Shared by every thread; written by the posters, read by the readers.
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
};

// The posters' thread: its io_context and the statistics only it writes
// (read by others after the thread is joined).
struct PostWorker {
  explicit PostWorker(Run& r) : run(r) {}
  Run& run;
  net::io_context ioc{1};
  Histogram post_latency;  // HTTP request/response
  Histogram schedule_lag;  // actual send - due time
};

// A subscriber after its upgrade: the descriptor and any frame bytes that
// arrived with the 101 response.
struct Upgraded {
  int fd = -1;
  std::string leftover;
};

// One handshake thread; only its thread writes, others read the atomics.
struct ConnectWorker {
  explicit ConnectWorker(const Options& o) : opt(o) {}
  const Options& opt;
  net::io_context ioc{1};
  std::atomic<std::uint64_t> connected{0};
  std::atomic<std::uint64_t> connect_failed{0};
  std::vector<Upgraded> upgraded;  // read after the thread is joined
  std::string first_failure;
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

// Connects one subscriber and performs the WebSocket upgrade with Beast's
// HTTP layer, checking the 101 status, the Upgrade header and the
// Sec-WebSocket-Accept digest of our key.
class Handshaker : public std::enable_shared_from_this<Handshaker> {
 public:
  explicit Handshaker(ConnectWorker& w) : w_(w), stream_(w.ioc) {}

  void start(const tcp::endpoint& ep) {
    stream_.expires_after(15s);
    stream_.async_connect(ep, beast::bind_front_handler(&Handshaker::on_connect, shared_from_this()));
  }

  std::function<void()> on_settled;  // handshake finished (either way)

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect: " + ec.message());
    stream_.socket().set_option(tcp::no_delay(true), ec);
    const Options& o = w_.opt;
    websocket::detail::make_sec_ws_key(key_);
    req_ = {http::verb::get, o.path_prefix + "/api/realtime/scoring/" + o.tenant + "?token=" + o.token, 11};
    req_.set(http::field::host, o.host + ":" + std::to_string(o.port));
    req_.set(http::field::upgrade, "websocket");
    req_.set(http::field::connection, "Upgrade");
    req_.set(http::field::sec_websocket_key, std::string_view(key_.data(), key_.size()));
    req_.set(http::field::sec_websocket_version, "13");
    http::async_write(stream_, req_, beast::bind_front_handler(&Handshaker::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return fail("upgrade write: " + ec.message());
    http::async_read(stream_, buffer_, res_, beast::bind_front_handler(&Handshaker::on_response, shared_from_this()));
  }

  void on_response(beast::error_code ec, std::size_t) {
    if (ec) return fail("upgrade read: " + ec.message());
    if (res_.result() != http::status::switching_protocols) {
      return fail("upgrade refused: HTTP " + std::to_string(res_.result_int()) + " " + res_.body().substr(0, 200));
    }
    websocket::detail::sec_ws_accept_type accept;
    websocket::detail::make_sec_ws_accept(accept, std::string_view(key_.data(), key_.size()));
    if (!beast::iequals(res_[http::field::upgrade], "websocket") ||
        res_[http::field::sec_websocket_accept] != std::string_view(accept.data(), accept.size())) {
      return fail("upgrade: bad Upgrade or Sec-WebSocket-Accept header");
    }
    stream_.expires_never();
    const auto rest = buffer_.cdata();
    Upgraded up;
    up.leftover.assign(static_cast<const char*>(rest.data()), rest.size());
    up.fd = stream_.release_socket().release(ec);
    if (ec || up.fd < 0) return fail("release: " + ec.message());
    w_.upgraded.push_back(std::move(up));
    settle(true);
  }

  void fail(std::string why) {
    if (w_.first_failure.empty()) w_.first_failure = std::move(why);
    settle(false);
  }

  void settle(bool ok) {
    (ok ? w_.connected : w_.connect_failed).fetch_add(1, std::memory_order_relaxed);
    if (on_settled) {
      auto cb = std::move(on_settled);
      on_settled = nullptr;
      cb();
    }
  }

  ConnectWorker& w_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  websocket::detail::sec_ws_key_type key_;
  http::request<http::empty_body> req_;
  http::response<http::string_body> res_;
};

// One frame-reader thread over a share of the upgraded sockets. Only its
// thread touches the connections and counters; `matched` is published for
// the drain loop, and everything else is read after join().
class Reader {
 public:
  explicit Reader(Run& run) : run_(run), buffer_(kReadSize) {}
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() {
    for (auto& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (epoll_ >= 0) ::close(epoll_);
  }

  // Before start(): takes ownership of the descriptor.
  void add(Upgraded up) {
    Conn c;
    c.fd = up.fd;
    c.carry = std::move(up.leftover);
    conns_.push_back(std::move(c));
  }

  // Registers every socket and starts the thread; false (and a message on
  // stderr) when epoll fails.
  bool start() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return report_errno("epoll_create1");
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      const int fd = conns_[i].fd;
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = i;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) return report_errno("epoll_ctl");
      ++open_;
    }
    thread_ = std::thread([this] { loop(); });
    return true;
  }

  // Makes the thread send a close frame on every socket, wait up to
  // `grace` for the server's close, close the rest and end.
  void begin_close(std::chrono::milliseconds grace) {
    grace_ms_ = grace.count();
    closing_.store(true, std::memory_order_release);
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

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
  std::uint64_t reads = 0;  // read() calls that returned data
  std::string first_close_reason;
  std::int64_t last_receipt_ns = 0;
  Histogram latency;

 private:
  static constexpr std::size_t kReadSize = 256 * 1024;
  static constexpr std::uint64_t kMaxPayload = 16 * 1024 * 1024;

  struct Conn {
    int fd = -1;
    std::uint64_t last_seq = 0;
    std::string carry;      // bytes of an incomplete frame from the last read
    std::string fragments;  // a text message split over frames (FIN = 0)
    bool fragmented = false;
    bool close_sent = false;
  };

  bool report_errno(const char* what) {
    std::cerr << "reader: " << what << ": " << std::strerror(errno) << "\n";
    return false;
  }

  void loop() {
    // Frames that came with the 101 response (queued before the upgrade).
    const std::int64_t start = now_ns();
    for (auto& c : conns_) {
      if (c.carry.empty()) continue;
      std::string bytes = std::move(c.carry);
      c.carry.clear();
      const std::size_t used = parse(c, bytes.data(), bytes.size(), start);
      if (c.fd >= 0) c.carry.assign(bytes, used);
    }
    std::uint64_t matched_here = matched_local_;
    matched.store(matched_here, std::memory_order_relaxed);
    std::vector<epoll_event> events(512);
    std::int64_t close_deadline = 0;
    const std::int64_t interval_ns = std::int64_t{run_.opt.read_interval_us} * 1000;
    while (open_ > 0) {
      if (closing_.load(std::memory_order_acquire) && close_deadline == 0) {
        for (auto& c : conns_) send_control(c, 0x8, close_payload(1000, "load test done"));
        close_deadline = now_ns() + grace_ms_ * 1'000'000;
      }
      if (close_deadline != 0 && now_ns() >= close_deadline) break;
      const std::int64_t round_start = interval_ns > 0 ? now_ns() : 0;
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), interval_ns > 0 ? 0 : 20);
      if (n < 0 && errno != EINTR) {
        report_errno("epoll_wait");
        break;
      }
      for (int i = 0; i < n; ++i) on_readable(conns_[events[i].data.u64]);
      // Paced reading: a full batch means more is waiting, so no pause.
      if (interval_ns > 0 && n < static_cast<int>(events.size())) {
        const std::int64_t rest = round_start + interval_ns - now_ns();
        if (rest > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(rest));
      }
      if (matched_local_ != matched_here) {
        matched_here = matched_local_;
        matched.store(matched_here, std::memory_order_relaxed);
      }
    }
    for (auto& c : conns_) {
      if (c.fd >= 0) drop(c, {});
    }
    matched.store(matched_local_, std::memory_order_relaxed);
  }

  // Edge-triggered: reads until a read comes back short of the buffer (the
  // socket was emptied; data arriving later raises a new edge), so no
  // read() is spent on EAGAIN and epoll never re-polls a drained socket.
  void on_readable(Conn& c) {
    while (c.fd >= 0) {
      const std::size_t have = c.carry.size();
      if (have + 4096 > buffer_.size()) buffer_.resize(2 * (have + 4096));
      std::memcpy(buffer_.data(), c.carry.data(), have);
      const std::size_t room = buffer_.size() - have;
      const ssize_t n = ::read(c.fd, buffer_.data() + have, room);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        return drop(c, std::string("read: ") + std::strerror(errno));
      }
      if (n == 0) return drop(c, "connection closed without a close frame");
      ++reads;
      const std::int64_t now = now_ns();  // one receipt instant per read (see the file comment)
      const std::size_t total = have + static_cast<std::size_t>(n);
      const std::size_t used = parse(c, buffer_.data(), total, now);
      if (c.fd >= 0) c.carry.assign(buffer_.data() + used, total - used);
      if (static_cast<std::size_t>(n) < room) return;
    }
  }

  // Handles every complete frame at the start of `p`; returns the bytes
  // used (the rest is an incomplete frame). Closes `c` on a protocol error.
  std::size_t parse(Conn& c, const char* p, std::size_t total, std::int64_t now) {
    std::size_t pos = 0;
    while (c.fd >= 0 && total - pos >= 2) {
      const auto* h = reinterpret_cast<const unsigned char*>(p + pos);
      const std::size_t avail = total - pos;
      if (h[1] & 0x80) return drop(c, "protocol: masked frame from the server"), total;
      if (h[0] & 0x70) return drop(c, "protocol: reserved bits set"), total;
      std::uint64_t len = h[1] & 0x7F;
      std::size_t header = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (std::uint64_t{h[2]} << 8) | h[3];
        header = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int i = 2; i < 10; ++i) len = (len << 8) | h[i];
        header = 10;
      }
      if (len > kMaxPayload) return drop(c, "protocol: frame over 16 MiB"), total;
      if (avail - header < len) break;
      on_frame(c, h[0] & 0x0F, (h[0] & 0x80) != 0, std::string_view(p + pos + header, len), now);
      pos += header + len;
    }
    return pos;
  }

  void on_frame(Conn& c, unsigned opcode, bool fin, std::string_view payload, std::int64_t now) {
    switch (opcode) {
      case 0x1:  // text
        if (c.fragmented) return drop(c, "protocol: text frame inside a fragmented message");
        if (fin) return on_message(c, payload, now);
        c.fragmented = true;
        c.fragments.assign(payload);
        return;
      case 0x0:  // continuation
        if (!c.fragmented) return drop(c, "protocol: continuation without a start");
        c.fragments.append(payload);
        if (fin) {
          c.fragmented = false;
          on_message(c, c.fragments, now);
        }
        return;
      case 0x2:
        ++other_frames;
        return;
      case 0x8:
        return on_close_frame(c, payload);
      case 0x9:
        send_control(c, 0xA, payload);  // pong, so the server's idle check passes
        return;
      case 0xA:
        return;
      default:
        return drop(c, "protocol: unknown opcode " + std::to_string(opcode));
    }
  }

  void on_close_frame(Conn& c, std::string_view payload) {
    if (!run_.finishing.load(std::memory_order_relaxed)) {
      ++closed_by_server;
      if (first_close_reason.empty()) {
        const unsigned code = payload.size() >= 2
                                  ? (unsigned{static_cast<unsigned char>(payload[0])} << 8) | static_cast<unsigned char>(payload[1])
                                  : 1005;
        first_close_reason = std::to_string(code) + " " + std::string(payload.size() > 2 ? payload.substr(2) : "");
      }
    }
    send_control(c, 0x8, payload.substr(0, std::min<std::size_t>(payload.size(), 2)));  // echo the code
    drop(c, {});
  }

  // A close, ping or pong frame from the client: masked, as RFC 6455 requires.
  void send_control(Conn& c, unsigned opcode, std::string_view payload) {
    if (c.fd < 0 || c.close_sent) return;
    if (opcode == 0x8) c.close_sent = true;
    payload = payload.substr(0, std::min<std::size_t>(payload.size(), 125));
    char frame[2 + 4 + 125];
    mask_state_ = mask_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto key = static_cast<std::uint32_t>(mask_state_ >> 32);
    frame[0] = static_cast<char>(0x80 | opcode);
    frame[1] = static_cast<char>(0x80 | payload.size());
    std::memcpy(frame + 2, &key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) frame[6 + i] = static_cast<char>(payload[i] ^ frame[2 + i % 4]);
    // Small frame on a socket we keep drained: a short write only happens
    // when the peer is gone, which the read side then reports.
    [[maybe_unused]] const ssize_t w = ::send(c.fd, frame, 6 + payload.size(), MSG_NOSIGNAL);
  }

  static std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
  }

  // Closes `c`; a non-empty `error` counts as a read error unless the run is
  // finishing (then closes are expected).
  void drop(Conn& c, const std::string& error) {
    if (c.fd < 0) return;
    if (!error.empty() && !run_.finishing.load(std::memory_order_relaxed)) {
      ++read_errors;
      if (first_close_reason.empty()) first_close_reason = error;
    }
    epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.carry.clear();
    --open_;
  }

  void on_message(Conn& c, std::string_view msg, std::int64_t now) {
    const std::string_view type = string_field(msg, "\"type\":");
    if (type != "score_update") {
      if (type == "overflow") ++overflow_frames;
      else if (type == "resync") ++resync_frames;
      else ++other_frames;
      return;
    }
    ++received;
    const auto seq = number_field(msg, "\"seq\":");
    if (!seq) return void(++other_frames);
    if (c.last_seq != 0 && *seq <= c.last_seq) return void(++duplicates);
    if (c.last_seq != 0 && *seq > c.last_seq + 1) seq_gaps += *seq - c.last_seq - 1;
    c.last_seq = *seq;
    match(string_field(msg, "\"lead_id\":"), now);
  }

  // lead ids of this run are "<prefix>-<slot>".
  void match(std::string_view lead, std::int64_t now) {
    const std::string& prefix = run_.prefix;
    if (lead.size() <= prefix.size() + 1 || lead.substr(0, prefix.size()) != prefix || lead[prefix.size()] != '-') {
      return void(++unmatched);
    }
    const auto slot = parse_u64(lead.substr(prefix.size() + 1));
    if (!slot || *slot >= run_.slots) return void(++unmatched);
    const std::int64_t sent = run_.send_ns[*slot].load(std::memory_order_acquire);
    if (sent == 0) return void(++unmatched);
    latency.record((now - sent) / 1000);
    ++matched_local_;
    last_receipt_ns = std::max(last_receipt_ns, now);
  }

  Run& run_;
  std::vector<Conn> conns_;
  std::vector<char> buffer_;
  int epoll_ = -1;
  std::size_t open_ = 0;
  std::uint64_t matched_local_ = 0;
  std::uint64_t mask_state_ = 0x9E3779B97F4A7C15ULL;
  std::atomic<bool> closing_{false};
  std::int64_t grace_ms_ = 1000;
  std::thread thread_;
};

// One keep-alive HTTP connection of a pool: when idle it takes the next slot
// k and sends it at t0 + k/rate, so the offered rate does not depend on the
// response time as long as one connection is free (open loop). A slot sent
// late goes at once and its lateness is reported as schedule lag.
class Poster : public std::enable_shared_from_this<Poster> {
 public:
  Poster(PostWorker& w, tcp::endpoint ep, SteadyClock::time_point t0)
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
    req_ = {http::verb::post, o.post_path_prefix + "/api/events", 11};
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

  PostWorker& w_;
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

// Keeps `window` handshakes in flight on this worker.
void connect_next(ConnectWorker& w, const tcp::endpoint& ep, std::size_t window) {
  while (w.in_flight < window && !w.pending.empty()) {
    w.pending.pop_front();
    auto h = std::make_shared<Handshaker>(w);
    ++w.in_flight;
    h->on_settled = [&w, ep, window] {
      --w.in_flight;
      connect_next(w, ep, window);
    };
    h->start(ep);
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

// Runs `fn` on the io_context's thread and waits for it.
template <typename Fn>
void run_on(net::io_context& ioc, Fn fn) {
  std::atomic<bool> ran{false};
  net::post(ioc, [&] {
    fn();
    ran.store(true);
  });
  while (!ran.load()) std::this_thread::sleep_for(1ms);
}

double ms(double us) { return us / 1000.0; }

// utime + stime of this process so far, in seconds.
double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

struct Totals {
  std::uint64_t matched = 0, received = 0, duplicates = 0, seq_gaps = 0, reads = 0;
  std::uint64_t unmatched = 0, overflow = 0, resync = 0, other = 0, closed = 0, read_errors = 0;
  std::int64_t last_receipt_ns = 0;
  std::string close_reason;
  Histogram latency;
};

// After every reader thread has ended.
Totals collect(const std::vector<std::unique_ptr<Reader>>& readers) {
  Totals t;
  for (const auto& r : readers) {
    t.matched += r->matched.load();
    t.received += r->received;
    t.duplicates += r->duplicates;
    t.seq_gaps += r->seq_gaps;
    t.reads += r->reads;
    t.unmatched += r->unmatched;
    t.overflow += r->overflow_frames;
    t.resync += r->resync_frames;
    t.other += r->other_frames;
    t.closed += r->closed_by_server;
    t.read_errors += r->read_errors;
    t.last_receipt_ns = std::max(t.last_receipt_ns, r->last_receipt_ns);
    if (t.close_reason.empty()) t.close_reason = r->first_close_reason;
    t.latency.merge(r->latency);
  }
  return t;
}

struct Phase {
  std::uint64_t connected = 0;
  std::uint64_t connect_failed = 0;
  double connect_s = 0;
  double drain_s = 0;
  double client_cpu_s = 0;  // posting + drain
};

// What the report derives from the raw counts.
struct Derived {
  std::uint64_t posted = 0;
  std::uint64_t expected = 0;  // every posted event to every connected client
  std::int64_t lost = 0;
  double msgs_per_s = 0;       // over first send to last receipt
  double offered_per_s = 0;
  double cpu_us_per_msg = 0;
  double msgs_per_read = 0;
};

Derived derive(const Run& run, const Totals& t, const Phase& phase) {
  Derived d;
  d.posted = run.posted_ok.load();
  d.expected = d.posted * phase.connected;
  d.lost = static_cast<std::int64_t>(d.expected) - static_cast<std::int64_t>(t.matched);
  const std::int64_t first_send = run.first_send_ns.load();
  const double span_s = t.last_receipt_ns > first_send ? double(t.last_receipt_ns - first_send) / 1e9 : 0.0;
  d.msgs_per_s = span_s > 0 ? double(t.matched) / span_s : 0.0;
  d.offered_per_s = double(d.expected) / run.opt.duration;
  d.cpu_us_per_msg = t.received > 0 ? phase.client_cpu_s * 1e6 / double(t.received) : 0.0;
  d.msgs_per_read = t.reads > 0 ? double(t.received) / double(t.reads) : 0.0;
  return d;
}

void add_posting_json(json::object& o, const Run& run, const PostWorker& posting, const Phase& phase,
                      const Derived& d) {
  o["clients_requested"] = run.opt.clients;
  o["clients_connected"] = phase.connected;
  o["connect_failed"] = phase.connect_failed;
  o["connect_seconds"] = phase.connect_s;
  o["rate_per_s"] = run.opt.rate;
  o["duration_s"] = run.opt.duration;
  o["events_posted"] = d.posted;
  o["events_failed"] = run.post_failed.load();
  o["post_p50_ms"] = ms(posting.post_latency.quantile(0.5));
  o["post_p99_ms"] = ms(posting.post_latency.quantile(0.99));
  o["http_connections"] = run.opt.http_connections;
  o["schedule_lag_p99_ms"] = ms(posting.schedule_lag.quantile(0.99));
  o["schedule_lag_max_ms"] = ms(double(posting.schedule_lag.max()));
}

void add_delivery_json(json::object& o, const Totals& t, const Phase& phase, const Derived& d) {
  o["expected_deliveries"] = d.expected;
  o["received"] = t.matched;
  o["lost"] = d.lost;
  o["duplicates"] = t.duplicates;
  o["seq_gaps"] = t.seq_gaps;
  o["unmatched_updates"] = t.unmatched;
  o["overflow_messages"] = t.overflow;
  o["resync_messages"] = t.resync;
  o["closed_by_server"] = t.closed;
  o["read_errors"] = t.read_errors;
  o["first_close_reason"] = t.close_reason;
  o["latency_p50_ms"] = ms(t.latency.quantile(0.5));
  o["latency_p90_ms"] = ms(t.latency.quantile(0.9));
  o["latency_p99_ms"] = ms(t.latency.quantile(0.99));
  o["latency_max_ms"] = ms(double(t.latency.max()));
  o["messages_per_s"] = d.msgs_per_s;
  o["offered_messages_per_s"] = d.offered_per_s;
  o["drain_seconds"] = phase.drain_s;
  o["socket_reads"] = t.reads;
  o["client_cpu_seconds"] = phase.client_cpu_s;
  o["client_cpu_us_per_message"] = d.cpu_us_per_msg;
}

void print_posting_rows(const Run& run, const PostWorker& posting, const Phase& phase, const Derived& d) {
  const Histogram& post_latency = posting.post_latency;
  const Histogram& lag = posting.schedule_lag;
  std::printf("| clients connected | %llu / %zu (%.1f s) |\n", (unsigned long long)phase.connected, run.opt.clients,
              phase.connect_s);
  std::printf("| events posted (ok / failed) | %llu / %llu at %.0f/s for %.0f s |\n", (unsigned long long)d.posted,
              (unsigned long long)run.post_failed.load(), run.opt.rate, run.opt.duration);
  std::printf("| POST latency p50 / p99 (%zu connections) | %.2f / %.2f ms |\n", run.opt.http_connections,
              ms(post_latency.quantile(0.5)), ms(post_latency.quantile(0.99)));
  std::printf("| POST schedule lag p99 / max | %.2f / %.2f ms |\n", ms(lag.quantile(0.99)), ms(double(lag.max())));
}

void print_delivery_rows(const Totals& t, const Phase& phase, const Derived& d) {
  const Histogram& h = t.latency;
  std::printf("| expected deliveries | %llu |\n", (unsigned long long)d.expected);
  std::printf("| received | %llu |\n", (unsigned long long)t.matched);
  std::printf("| lost | %lld |\n", (long long)d.lost);
  std::printf("| duplicates / seq gaps | %llu / %llu |\n", (unsigned long long)t.duplicates, (unsigned long long)t.seq_gaps);
  std::printf("| overflow msgs / closed by server / read errors | %llu / %llu / %llu |\n", (unsigned long long)t.overflow,
              (unsigned long long)t.closed, (unsigned long long)t.read_errors);
  std::printf("| delivery latency p50 / p90 / p99 / max | %.2f / %.2f / %.2f / %.2f ms |\n", ms(h.quantile(0.5)),
              ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(double(h.max())));
  std::printf("| messages/s delivered (offered) | %.0f (%.0f) |\n", d.msgs_per_s, d.offered_per_s);
  std::printf("| drain after last POST | %.1f s |\n", phase.drain_s);
  std::printf("| client CPU, posting + drain (utime+stime) | %.1f s, %.2f µs per message, %.1f messages per read |\n",
              phase.client_cpu_s, d.cpu_us_per_msg, d.msgs_per_read);
}

// The run passes when every connected client got every posted event and the
// server neither dropped a slow client's messages nor closed one.
bool run_passed(const Run& run, const Totals& t, const Phase& phase, const Derived& d) {
  return d.lost == 0 && phase.connected == run.opt.clients && d.posted > 0 && t.overflow == 0 && t.closed == 0;
}

// Prints the run as one JSON object, then as a Markdown table; exit code 0
// when the run passed.
int report(const Run& run, const Totals& t, const PostWorker& posting, const Phase& phase) {
  const Derived d = derive(run, t, phase);
  json::object o;
  add_posting_json(o, run, posting, phase, d);
  add_delivery_json(o, t, phase, d);
  std::cout << reai::json_text(o) << "\n\n";

  std::printf("| metric | value |\n|---|---|\n");
  print_posting_rows(run, posting, phase, d);
  print_delivery_rows(t, phase, d);
  if (!t.close_reason.empty()) std::printf("\nfirst close reason: %s\n", t.close_reason.c_str());
  std::fflush(stdout);
  return run_passed(run, t, phase, d) ? 0 : 1;
}

int parse_options(int argc, char** argv, Options* o) {
  CLI::App app{"WebSocket fan-out load client for reai serve"};
  app.add_option("--host", o->host, "server address (loopback)");
  app.add_option("--port", o->port, "server port");
  app.add_option("--post-port", o->post_port,
                 "POST events to this port instead (another instance sharing --bus redis://...)");
  app.add_option("--path-prefix", o->path_prefix,
                 "prefix of the WebSocket path, e.g. /instance/2 for one instance behind the balancer");
  app.add_option("--post-path-prefix", o->post_path_prefix, "prefix of the POST path, e.g. /instance/1");
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
  app.add_option("--read-interval-us", o->read_interval_us,
                 "readers poll their sockets every N µs instead of blocking in epoll_wait (0: block)")
      ->check(CLI::Range(0, 100000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? -1 : 2;
  }
  return 0;
}

using ConnectWorkers = std::vector<std::unique_ptr<ConnectWorker>>;
using Readers = std::vector<std::unique_ptr<Reader>>;

// 1. Subscribers' handshakes on `threads` io_contexts, a window at a time
// so the accept backlog never overflows.
ConnectWorkers connect_subscribers(const Options& o, const tcp::endpoint& ep, Phase& phase) {
  ConnectWorkers connectors;
  for (std::size_t i = 0; i < o.threads; ++i) connectors.push_back(std::make_unique<ConnectWorker>(o));
  for (std::size_t id = 0; id < o.clients; ++id) connectors[id % o.threads]->pending.push_back(id);
  const auto connect_start = SteadyClock::now();
  const std::size_t window = std::max<std::size_t>(1, o.connect_window / o.threads);
  std::vector<std::thread> connect_threads;
  for (auto& w : connectors) {
    net::post(w->ioc, [&w = *w, ep, window] { connect_next(w, ep, window); });
    connect_threads.emplace_back([&ioc = w->ioc] { ioc.run(); });  // ends when every handshake settled
  }
  auto settled = [&] {
    std::uint64_t n = 0;
    for (auto& w : connectors) n += w->connected + w->connect_failed;
    return n == o.clients;
  };
  if (!wait_until(settled, o.connect_timeout)) {
    std::cerr << "warning: connect timeout\n";
    for (auto& w : connectors) w->ioc.stop();
  }
  for (auto& t : connect_threads) t.join();
  phase.connect_s = std::chrono::duration<double>(SteadyClock::now() - connect_start).count();
  return connectors;
}

// 2. Frame readers take the upgraded sockets, round robin.
Readers take_upgraded_sockets(Run& run, ConnectWorkers& connectors, Phase& phase) {
  Readers readers;
  for (std::size_t i = 0; i < run.opt.threads; ++i) readers.push_back(std::make_unique<Reader>(run));
  std::size_t next = 0;
  std::string first_failure;
  for (auto& w : connectors) {
    phase.connected += w->upgraded.size();
    phase.connect_failed += w->connect_failed;
    if (first_failure.empty()) first_failure = w->first_failure;
    for (auto& up : w->upgraded) readers[next++ % readers.size()]->add(std::move(up));
    w->upgraded.clear();
  }
  std::cerr << "connected " << phase.connected << "/" << run.opt.clients << " in " << phase.connect_s << " s\n";
  if (!first_failure.empty()) std::cerr << "first handshake failure: " << first_failure << "\n";
  return readers;
}

// Sends close frames, waits up to `grace` for the server's, and joins.
void close_readers(Run& run, Readers& readers, std::chrono::milliseconds grace) {
  run.finishing = true;
  for (auto& r : readers) r->begin_close(grace);
  for (auto& r : readers) r->join();
}

// False (after closing every reader at once) when one cannot start.
bool start_readers(Run& run, Readers& readers) {
  for (auto& r : readers) {
    if (r->start()) continue;
    close_readers(run, readers, 0ms);
    return false;
  }
  return true;
}

// 3. Events at the fixed rate, from the posters' own thread; the first is
// due at t0.
std::vector<std::shared_ptr<Poster>> start_posters(PostWorker& post_worker, const net::ip::address& address,
                                                   SteadyClock::time_point t0) {
  const Options& o = post_worker.run.opt;
  std::vector<std::shared_ptr<Poster>> posters;
  run_on(post_worker.ioc, [&] {
    for (std::size_t i = 0; i < o.http_connections; ++i) {
      const tcp::endpoint post_ep(address, o.post_port != 0 ? o.post_port : o.port);
      posters.push_back(std::make_shared<Poster>(post_worker, post_ep, t0));
      posters.back()->start();
    }
  });
  return posters;
}

void wait_for_posting(Run& run, PostWorker& post_worker, const std::vector<std::shared_ptr<Poster>>& posters) {
  auto posting_done = [&] {
    bool all = true;
    run_on(post_worker.ioc, [&] {
      for (auto& p : posters) all = all && p->done();
    });
    return all;
  };
  if (!wait_until(posting_done, run.opt.duration + 30)) {
    run.stop_posting = true;
    std::cerr << "warning: posting overran; stopping\n";
    wait_until(posting_done, 15);
  }
}

// 4. Drain: every subscriber still open should reach `want` updates in all.
// Waits while updates keep arriving (a slow server is late, not lossy),
// and gives up after --drain-timeout seconds without progress. Returns the
// seconds it waited.
double drain(const Options& o, const Readers& readers, std::uint64_t want) {
  auto matched_now = [&] {
    std::uint64_t m = 0;
    for (auto& r : readers) m += r->matched.load(std::memory_order_relaxed);
    return m;
  };
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
  return std::chrono::duration<double>(SteadyClock::now() - drain_start).count();
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
  Phase phase;
  ConnectWorkers connectors = connect_subscribers(o, ep, phase);
  Readers readers = take_upgraded_sockets(run, connectors, phase);
  if (!start_readers(run, readers)) return 1;
  std::this_thread::sleep_for(500ms);  // let the server finish registering the last sessions

  const double cpu_before = process_cpu_seconds();
  PostWorker post_worker(run);
  auto post_guard = net::make_work_guard(post_worker.ioc);
  std::thread post_thread([&] { post_worker.ioc.run(); });
  const auto posters = start_posters(post_worker, address, SteadyClock::now() + 50ms);
  wait_for_posting(run, post_worker, posters);

  phase.drain_s = drain(o, readers, run.posted_ok.load() * phase.connected);
  phase.client_cpu_s = process_cpu_seconds() - cpu_before;
  std::cerr << "drained for " << phase.drain_s << " s\n";

  // 5. Close politely (close frames, up to 1 s for the server's), then stop.
  close_readers(run, readers, 1000ms);
  post_guard.reset();
  post_worker.ioc.stop();
  post_thread.join();

  const Totals totals = collect(readers);
  return report(run, totals, post_worker, phase);
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
