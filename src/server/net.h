// Beast/Asio aliases and the state every connection shares. Private.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "server/api.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/ws_hub.h"

namespace reai::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
// An accepted connection, loopback/network TCP or Unix-domain
// (ServerConfig::unix_socket): sessions only read, write, shut down and
// rebind it, which is the same for both.
using StreamSocket = net::generic::stream_protocol::socket;

// A live connection the server can ask to finish (any thread).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void shutdown() = 0;
};

// Shared by the listener and every session.
class ServerContext {
 public:
  ServerContext(const ServerConfig& config, Api& api, Metrics& metrics, WsHub& hub, bus::Bus& bus)
      : config(config), api(api), metrics(metrics), hub(hub), bus(bus) {}

  void add(const std::shared_ptr<Connection>& c);
  void remove(const Connection* c);
  // Asks every live connection to finish.
  void shutdown_all();
  // True when every connection ended before `deadline`.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);

  const ServerConfig& config;
  Api& api;
  Metrics& metrics;
  WsHub& hub;
  bus::Bus& bus;
  std::atomic<bool> stopping{false};
  // One per io thread, each run by exactly one thread (set before the
  // threads start, constant after). A connection lives on one of them.
  std::vector<net::io_context*> io_contexts;

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> live_;
};

// Logs a connection failure worth knowing about (never ids or payloads).
void fail(beast::error_code ec, const char* what);

// Starts an HTTP session on an accepted socket.
void start_http_session(StreamSocket socket, std::shared_ptr<ServerContext> ctx);
// Takes over a socket whose upgrade request has been read.
void start_websocket_session(StreamSocket socket, http::request<http::string_body> request,
                             std::shared_ptr<ServerContext> ctx);

}  // namespace reai::server
