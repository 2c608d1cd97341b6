// ghl_webhook_load: answer latency of POST /api/ghl/webhook under load.
//
// Generates its own Ed25519 key pair and writes the public half to
// --key-out (give it to `reai serve --ghl-ed25519-key`), waits for the
// server's port, signs every delivery up front (signing is GHL's cost, not
// reai's), then posts them at a fixed total rate over keep-alive
// connections, one thread each. Latency is measured from each request's
// scheduled send time, so a stalled server is charged for the requests that
// queue behind it (no coordinated omission). Each delivery is an inbound SMS
// of a fresh contact on --location, so every one is stored, mapped, scored
// and (for a GHL-linked tenant) reaches the write-back filler.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <thread>
#include <vector>

#include "support/ghl_signer.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string body_for(const std::string& location, const std::string& run, int k, const std::string& ts) {
  const std::string id = run + "-" + std::to_string(k);
  std::string b = "{\"type\":\"InboundMessage\",\"locationId\":\"";
  b += location;
  b += "\",\"contactId\":\"CON";
  b += id;
  b += "\",\"conversationId\":\"CNV";
  b += id;
  b += "\",\"messageId\":\"MSG";
  b += id;
  b += "\",\"messageType\":\"SMS\",\"direction\":\"inbound\",\"contentType\":\"text/plain\","
       "\"body\":\"Is the Elm St house still available?\",\"status\":\"delivered\","
       "\"dateAdded\":\"";
  b += ts;
  b += "\",\"timestamp\":\"";
  b += ts;
  b += "\",\"webhookId\":\"wh-";
  b += id;
  b += "\"}";
  return b;
}

bool port_open(const std::string& host, int port) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)), ec);
  return !ec;
}

struct LoadOptions {
  std::string host = "127.0.0.1", key_out, location;
  int port = 8080, connections = 16, total = 20000;
  double rate = 500;
};

void add_options(CLI::App& app, LoadOptions& o) {
  app.add_option("--host", o.host);
  app.add_option("--port", o.port)->required();
  app.add_option("--key-out", o.key_out, "Where to write the Ed25519 public key (PEM)")->required();
  app.add_option("--location", o.location, "GHL locationId linked to a tenant")->required();
  app.add_option("--connections", o.connections)->capture_default_str();
  app.add_option("--requests", o.total)->capture_default_str();
  app.add_option("--rate", o.rate, "Deliveries per second, all connections together")->capture_default_str();
}

// Waits up to a minute: the server is usually started alongside this client.
void wait_for_server(const LoadOptions& o) {
  for (int i = 0; i < 600 && !port_open(o.host, o.port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// (body, X-GHL-Signature) of every delivery, signed before the clock starts.
using Delivery = std::pair<std::string, std::string>;

std::vector<Delivery> signed_deliveries(const reai::testing::GhlSigner& signer, const LoadOptions& o) {
  const std::string run = std::to_string(std::time(nullptr));
  const std::string ts = iso_now();
  std::vector<Delivery> deliveries(o.total);
  for (int k = 0; k < o.total; ++k) {
    deliveries[k].first = body_for(o.location, run, k, ts);
    deliveries[k].second = signer.sign_ed25519(deliveries[k].first);
  }
  return deliveries;
}

// Per delivery: latency from its scheduled send (-1 when the transport
// failed) and the HTTP status.
struct Outcomes {
  std::vector<double> latency_ms;
  std::vector<int> status;
};

http::request<http::string_body> webhook_request(const std::string& host, const Delivery& delivery) {
  http::request<http::string_body> req{http::verb::post, "/api/ghl/webhook", 11};
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  req.set("X-GHL-Signature", delivery.second);
  req.body() = delivery.first;
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

// Connection c posts deliveries c, c + connections, ... each at its
// scheduled time, reconnecting after a transport error or a close.
void post_on_connection(int c, const LoadOptions& o, const std::vector<Delivery>& deliveries, Clock::time_point start,
                        Outcomes& outcomes) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  auto connect = [&] {
    beast::error_code ec;
    stream.socket().close(ec);
    stream.connect(tcp::endpoint(asio::ip::make_address(o.host), static_cast<unsigned short>(o.port)), ec);
  };
  connect();
  beast::flat_buffer buffer;
  for (int k = c; k < o.total; k += o.connections) {
    const auto scheduled = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(k / o.rate));
    std::this_thread::sleep_until(scheduled);
    auto req = webhook_request(o.host, deliveries[k]);
    http::response<http::string_body> res;
    beast::error_code ec;
    http::write(stream, req, ec);
    if (!ec) http::read(stream, buffer, res, ec);
    if (ec) {
      connect();
      continue;
    }
    outcomes.latency_ms[k] = std::chrono::duration<double, std::milli>(Clock::now() - scheduled).count();
    outcomes.status[k] = res.result_int();
    if (!res.keep_alive()) connect();
  }
}

// Posts every delivery, one thread per connection; returns the seconds from
// the schedule's start until the last thread ended.
double post_all(const LoadOptions& o, const std::vector<Delivery>& deliveries, Outcomes& outcomes) {
  outcomes.latency_ms.assign(o.total, -1);
  outcomes.status.assign(o.total, 0);
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] { post_on_connection(c, o, deliveries, start, outcomes); });
  }
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Prints throughput and latency percentiles; exit code 0 only when every
// delivery got a 200.
int report(const LoadOptions& o, const Outcomes& outcomes, double seconds) {
  std::vector<double> ok;
  int errors = 0, not_200 = 0;
  for (int k = 0; k < o.total; ++k) {
    if (outcomes.latency_ms[k] < 0) {
      ++errors;
    } else {
      ok.push_back(outcomes.latency_ms[k]);
      if (outcomes.status[k] != 200) ++not_200;
    }
  }
  std::sort(ok.begin(), ok.end());
  auto pct = [&](double p) { return ok.empty() ? 0.0 : ok[std::min(ok.size() - 1, std::size_t(p * ok.size()))]; };
  std::printf("deliveries=%d connections=%d target_rate=%.0f/s achieved=%.0f/s transport_errors=%d non_200=%d\n",
              o.total, o.connections, o.rate, ok.size() / seconds, errors, not_200);
  std::printf("latency_ms p50=%.2f p90=%.2f p99=%.2f p999=%.2f max=%.2f\n", pct(0.5), pct(0.9), pct(0.99), pct(0.999),
              ok.empty() ? 0.0 : ok.back());
  return errors == 0 && not_200 == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"POST /api/ghl/webhook load client"};
  LoadOptions o;
  add_options(app, o);
  CLI11_PARSE(app, argc, argv);

  reai::testing::GhlSigner signer;
  std::ofstream(o.key_out) << signer.ed25519_public_pem();
  std::fprintf(stderr, "ghl_webhook_load: key written to %s; waiting for %s:%d\n", o.key_out.c_str(), o.host.c_str(),
               o.port);
  wait_for_server(o);
  const std::vector<Delivery> deliveries = signed_deliveries(signer, o);
  Outcomes outcomes;
  const double seconds = post_all(o, deliveries, outcomes);
  return report(o, outcomes, seconds);
}
