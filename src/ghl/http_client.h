// HttpClient: the transport of GoHighLevel write-back (Boost.Beast; http://
// for tests, https:// with OpenSSL and certificate + host name verification
// in production). Blocking: call it from a worker thread, never from an io
// thread. One connection per call, bounded by a timeout. Thread-compatible:
// one client per thread (or external locking).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "ghl/writeback.h"

namespace reai::ghl {

struct HttpAnswer {
  int status = 0;
  std::string body;
  RateHeaders rate;
};

class HttpClient {
 public:
  // InvalidArgument unless `base_url` is http://host[:port][/prefix] or
  // https://... .
  static Result<std::unique_ptr<HttpClient>> create(const std::string& base_url,
                                                    std::chrono::milliseconds timeout = std::chrono::seconds(20));
  ~HttpClient();

  // Sends `call` with the Version header, Authorization: Bearer `token`
  // when non-empty, and Content-Type when it has a body. Any HTTP status is
  // an answer; Unavailable for a transport failure (resolve, connect, TLS,
  // timeout, malformed answer).
  Result<HttpAnswer> send(const ApiCall& call, std::string_view token);

  struct Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace reai::ghl
