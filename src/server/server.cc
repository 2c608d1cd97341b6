// Server lifecycle: rebuild, bind, io threads, signals, graceful stop.
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <utility>
#include <cstring>
#include <thread>
#include <type_traits>

#include "bus/bus.h"
#include "server/net.h"

namespace reai::server {

void ServerContext::add(const std::shared_ptr<Connection>& c) {
  std::lock_guard lock(mu_);
  live_.emplace(c.get(), c);
}

void ServerContext::remove(const Connection* c) {
  std::lock_guard lock(mu_);
  if (live_.erase(c) && live_.empty()) idle_.notify_all();
}

void ServerContext::shutdown_all() {
  std::vector<std::weak_ptr<Connection>> all;
  {
    std::lock_guard lock(mu_);
    all.reserve(live_.size());
    for (auto& [ptr, weak] : live_) all.push_back(weak);
  }
  for (auto& weak : all) {
    if (auto c = weak.lock()) c->shutdown();
  }
}

bool ServerContext::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return idle_.wait_until(lock, deadline, [this] { return live_.empty(); });
}

namespace {

// Accepts on the first io_context and hands connections to the io
// contexts in turn. Protocol: tcp or local::stream_protocol (Unix-domain).
template <class Protocol>
class Listener : public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  explicit Listener(std::shared_ptr<ServerContext> ctx)
      : acceptor_(*ctx->io_contexts.front()), retry_timer_(acceptor_.get_executor()), ctx_(std::move(ctx)) {}

  Status bind(const typename Protocol::endpoint& endpoint, const std::string& name) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return unavailable("cannot listen on " + name + ": " + ec.message());
    return {};
  }

  net::any_io_executor executor() { return acceptor_.get_executor(); }
  typename Protocol::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void run() { do_accept(); }
  void stop() {
    net::post(acceptor_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
      self->retry_timer_.cancel();
    });
  }

 private:
  void do_accept() {
    net::io_context& next = *ctx_->io_contexts[next_++ % ctx_->io_contexts.size()];
    acceptor_.async_accept(next, beast::bind_front_handler(&Listener::on_accept, this->shared_from_this()));
  }

  void on_accept(beast::error_code ec, typename Protocol::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors (clients holding connections open): the
      // pending connection stays queued and accepting again at once fails
      // again, a loop that burned a whole core until one closed. Wait a
      // little; the queued connections are accepted once descriptors free up.
      fail(ec, "accept");
      ctx_->metrics.record_accept_failure();
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([self = this->shared_from_this()](beast::error_code timer_ec) {
        if (!timer_ec && self->acceptor_.is_open()) self->do_accept();
      });
      return;
    }
    if constexpr (std::is_same_v<Protocol, tcp>) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
    }
    start_http_session(StreamSocket(std::move(socket)), ctx_);
    do_accept();
  }

  static constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

  typename Protocol::acceptor acceptor_;
  net::steady_timer retry_timer_;  // the wait after a failed accept
  std::shared_ptr<ServerContext> ctx_;
  std::size_t next_ = 0;
};

using TcpListener = Listener<tcp>;
using UnixListener = Listener<net::local::stream_protocol>;

Status listen_tcp(TcpListener& listener, const std::string& address, std::uint16_t port) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) return invalid_argument("bad listen address '" + address + "'");
  return listener.bind(tcp::endpoint(ip, port), address + ":" + std::to_string(port));
}

// Binds `path`. A socket file left behind by a server that died without
// stop() (SIGKILL) is replaced; one a live server still accepts on, or a
// path that is not a socket, is refused rather than taken over.
Status listen_unix(UnixListener& listener, const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return invalid_argument("unix socket path must be 1 to " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                            " bytes: '" + path + "'");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return invalid_argument("unix socket path '" + path + "' exists and is not a socket");
    net::local::stream_protocol::socket probe(listener.executor());
    beast::error_code ec;
    probe.connect(net::local::stream_protocol::endpoint(path), ec);
    if (!ec) return unavailable("cannot listen on " + path + ": a running server accepts on it");
    if (ec != net::error::connection_refused) return unavailable("cannot probe " + path + ": " + ec.message());
    ::unlink(path.c_str());
  }
  REAI_RETURN_IF_ERROR(listener.bind(net::local::stream_protocol::endpoint(path), path));
  // Any local user may connect, as to a loopback TCP port (a proxy's
  // workers often run as another user); the API's tokens are the access
  // control either way.
  if (::chmod(path.c_str(), 0666) != 0) return unavailable("cannot chmod " + path + ": " + std::strerror(errno));
  return {};
}

constexpr auto kDrainDeadline = std::chrono::seconds(5);

}  // namespace

struct Server::Impl {
  Impl(ServerConfig c, ServerDeps d)
      : config(std::move(c)),
        deps(d),
        hub(d.bus),
        api(config, deps, metrics, hub),
        ctx(std::make_shared<ServerContext>(config, api, metrics, hub, d.bus)) {
    // One io_context per thread rather than one shared by all: a shared
    // one hands every ready socket from the thread in epoll_wait to an idle
    // one (a futex wake and two context switches per request), and its
    // sessions need strands. Each connection now lives on one thread.
    for (int i = 0; i < std::max(1, config.threads); ++i) {
      iocs.push_back(std::make_unique<net::io_context>(1));
      ctx->io_contexts.push_back(iocs.back().get());
    }
  }

  ServerConfig config;
  ServerDeps deps;
  Metrics metrics;
  WsHub hub;
  Api api;
  std::shared_ptr<ServerContext> ctx;
  // Declared after everything sessions touch: destroyed (with any handler
  // still holding a session) first.
  // Reset after the threads stop so sessions still waiting on a peer are
  // destroyed (their sockets closed) at stop(), not at ~Server.
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::shared_ptr<TcpListener> listener;
  std::shared_ptr<UnixListener> unix_listener;  // when config.unix_socket is set
  std::uint16_t port = 0;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  std::unique_ptr<net::signal_set> signals;
  // Made by start(); wait() adds SIGINT and SIGTERM to `signals`, SIGHUP here.
  std::unique_ptr<net::signal_set> reload_signals;

  // Each SIGHUP queues a reload of every tenant's models (Api's reload
  // thread loads them; the io thread that got the signal only queues).
  void arm_reload_signal() {
    reload_signals->async_wait([this](beast::error_code ec, int) {
      if (ec) return;
      spdlog::info("SIGHUP: reloading every tenant's models");
      api.reload_all_models();
      arm_reload_signal();
    });
  }
  std::vector<std::thread> threads;

  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool stopped = false;
  bool stop_requested = false;
};

Server::Server(ServerConfig config, ServerDeps deps) : impl_(std::make_unique<Impl>(std::move(config), deps)) {}

Server::~Server() { stop(); }

Status Server::start() {
  Impl& s = *impl_;
  if (s.config.jwt_secret.empty()) return invalid_argument("the server needs a JWT secret");
  REAI_RETURN_IF_ERROR(check_jwt_secret(s.config.jwt_secret));
  if (s.config.threads < 1) return invalid_argument("threads must be at least 1");
  REAI_RETURN_IF_ERROR(check_static_dir(s.config.static_dir));
  if (s.config.ws_queue_limit < 1) return invalid_argument("ws_queue_limit must be at least 1");
  if (s.config.ws_linger_ms < 0 || s.config.ws_linger_ms > 1000) {
    return invalid_argument("ws_linger_ms must be between 0 and 1000");
  }
  {
    std::lock_guard lock(s.mu);
    if (s.started) return failed_precondition("server already started");
  }
  REAI_RETURN_IF_ERROR(s.api.rebuild());
  // Made before any connection is accepted (asio opens its signal pipe
  // here), so a server that runs out of descriptors before wait() still
  // gets its signals; wait() adds the signals themselves.
  s.signals = std::make_unique<net::signal_set>(*s.iocs.front());
  s.reload_signals = std::make_unique<net::signal_set>(*s.iocs.front());
  s.listener = std::make_shared<TcpListener>(s.ctx);
  REAI_RETURN_IF_ERROR(listen_tcp(*s.listener, s.config.address, s.config.port));
  if (!s.config.unix_socket.empty()) {
    s.unix_listener = std::make_shared<UnixListener>(s.ctx);
    REAI_RETURN_IF_ERROR(listen_unix(*s.unix_listener, s.config.unix_socket));
  }
  s.hub.set_linger(std::chrono::milliseconds(s.config.ws_linger_ms));
  s.hub.start();
  s.listener->run();
  if (s.unix_listener) s.unix_listener->run();
  for (auto& ioc : s.iocs) s.work.push_back(net::make_work_guard(*ioc));
  s.port = s.listener->local_endpoint().port();
  for (auto& ioc : s.iocs) s.threads.emplace_back([&ioc = *ioc] { ioc.run(); });
  std::lock_guard lock(s.mu);
  s.started = true;
  spdlog::info("reai server listening on {}:{}{}{} ({} threads)", s.config.address, s.port,
               s.unix_listener ? " and " : "", s.config.unix_socket, s.config.threads);
  return {};
}

std::uint16_t Server::port() const { return impl_->port; }

void Server::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (!s.started || s.stopped) return;
    s.stopped = true;
  }
  s.ctx->stopping = true;
  s.listener->stop();
  if (s.unix_listener) {
    s.unix_listener->stop();
    ::unlink(s.config.unix_socket.c_str());
  }
  s.hub.stop();
  s.ctx->shutdown_all();
  if (!s.ctx->wait_idle(std::chrono::steady_clock::now() + kDrainDeadline)) {
    spdlog::warn("reai server: connections still open after the drain deadline; closing them");
  }
  // Queued events are written and answered while the io threads still run.
  s.api.stop_appender();
  s.api.flush_history();
  s.work.clear();
  for (auto& ioc : s.iocs) ioc->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  // Order matters: objects bound to the io_context go before it.
  s.signals.reset();
  s.reload_signals.reset();
  s.listener.reset();
  s.unix_listener.reset();
  s.iocs.clear();
  {
    std::lock_guard lock(s.mu);
    s.stop_requested = true;
  }
  s.cv.notify_all();
  spdlog::info("reai server stopped");
}

void Server::wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  if (!s.started || s.stopped) return;
  for (auto [set, signal] : {std::pair{s.signals.get(), SIGINT}, std::pair{s.signals.get(), SIGTERM},
                             std::pair{s.reload_signals.get(), SIGHUP}}) {
    beast::error_code ec;
    set->add(signal, ec);
    if (ec) spdlog::error("reai server: cannot handle signal {}: {}", signal, ec.message());
  }
  s.signals->async_wait([&s](beast::error_code ec, int) {
    if (ec) return;
    {
      std::lock_guard inner(s.mu);
      s.stop_requested = true;
    }
    s.cv.notify_all();
  });
  s.arm_reload_signal();
  // The handlers are in place: a caller that blocked these signals while
  // the server started (the CLI does) gets any pending one delivered now.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  s.cv.wait(lock, [&s] { return s.stop_requested; });
  lock.unlock();
  stop();
}

}  // namespace reai::server
