// Synchronous HTTP/1.1 and WebSocket clients for tests. Every operation has
// a timeout so a broken server fails a test instead of hanging it. Not
// thread-safe: one client per thread.
//
//   reai::testing::HttpClient http("127.0.0.1", port);
//   auto r = http.post("/api/events", R"({"contact_id":"c1","type":"page_view"})", token);
//   EXPECT_EQ(r.status, 200);
//   reai::testing::WsClient ws;
//   ASSERT_TRUE(ws.connect("127.0.0.1", port, "/api/realtime/scoring/t1?token=" + token));
//   auto msg = ws.read();  // nullopt on close, error or timeout; see close_code()
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace reai::testing {

struct HttpResponse {
  int status = 0;  // 0: no response (connection error or timeout; see body)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request on a keep-alive connection (reconnects when the server
  // closed it). `token` non-empty adds "Authorization: Bearer <token>".
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body = {},
                       const std::string& token = {},
                       const std::vector<std::pair<std::string, std::string>>& headers = {});
  HttpResponse get(const std::string& target, const std::string& token = {}) {
    return request("GET", target, {}, token);
  }
  HttpResponse post(const std::string& target, const std::string& body, const std::string& token = {}) {
    return request("POST", target, body, token);
  }
  HttpResponse put(const std::string& target, const std::string& body, const std::string& token = {}) {
    return request("PUT", target, body, token);
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class WsClient {
 public:
  explicit WsClient(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Connects and completes the handshake. `receive_buffer_bytes` > 0 shrinks
  // the socket receive buffer (to make a slow consumer fill up quickly).
  bool connect(const std::string& host, std::uint16_t port, const std::string& target,
               int receive_buffer_bytes = 0);
  // The next text message; nullopt when the connection closed (close_code()
  // tells the server's code), failed, or nothing came within the timeout.
  std::optional<std::string> read();
  std::optional<std::string> read(std::chrono::milliseconds timeout);
  bool send(const std::string& text);
  // Sends a ping and waits for the pong (reads and keeps any text messages
  // arriving meanwhile for later read() calls).
  bool ping();
  void close();
  bool is_open() const;
  // The code of the close frame received; 0 when none.
  int close_code() const;
  std::string error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reai::testing
