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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"POST /api/ghl/webhook load client"};
  std::string host = "127.0.0.1", key_out, location;
  int port = 8080, connections = 16, total = 20000;
  double rate = 500;
  app.add_option("--host", host);
  app.add_option("--port", port)->required();
  app.add_option("--key-out", key_out, "Where to write the Ed25519 public key (PEM)")->required();
  app.add_option("--location", location, "GHL locationId linked to a tenant")->required();
  app.add_option("--connections", connections)->capture_default_str();
  app.add_option("--requests", total)->capture_default_str();
  app.add_option("--rate", rate, "Deliveries per second, all connections together")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  reai::testing::GhlSigner signer;
  std::ofstream(key_out) << signer.ed25519_public_pem();
  std::fprintf(stderr, "ghl_webhook_load: key written to %s; waiting for %s:%d\n", key_out.c_str(), host.c_str(), port);
  for (int i = 0; i < 600 && !port_open(host, port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));

  const std::string run = std::to_string(std::time(nullptr));
  const std::string ts = iso_now();
  std::vector<std::pair<std::string, std::string>> deliveries(total);
  for (int k = 0; k < total; ++k) {
    deliveries[k].first = body_for(location, run, k, ts);
    deliveries[k].second = signer.sign_ed25519(deliveries[k].first);
  }

  std::vector<double> latency_ms(total, -1);
  std::vector<int> status(total, 0);
  const auto start = Clock::now() + std::chrono::milliseconds(200);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      asio::io_context ioc;
      beast::tcp_stream stream(ioc);
      auto connect = [&] {
        beast::error_code ec;
        stream.socket().close(ec);
        stream.connect(tcp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)), ec);
      };
      connect();
      beast::flat_buffer buffer;
      for (int k = c; k < total; k += connections) {
        const auto scheduled = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(k / rate));
        std::this_thread::sleep_until(scheduled);
        http::request<http::string_body> req{http::verb::post, "/api/ghl/webhook", 11};
        req.set(http::field::host, host);
        req.set(http::field::content_type, "application/json");
        req.set("X-GHL-Signature", deliveries[k].second);
        req.body() = deliveries[k].first;
        req.keep_alive(true);
        req.prepare_payload();
        http::response<http::string_body> res;
        beast::error_code ec;
        http::write(stream, req, ec);
        if (!ec) http::read(stream, buffer, res, ec);
        if (ec) {
          connect();
          continue;
        }
        latency_ms[k] = std::chrono::duration<double, std::milli>(Clock::now() - scheduled).count();
        status[k] = res.result_int();
        if (!res.keep_alive()) connect();
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> ok;
  int errors = 0, not_200 = 0;
  for (int k = 0; k < total; ++k) {
    if (latency_ms[k] < 0) {
      ++errors;
    } else {
      ok.push_back(latency_ms[k]);
      if (status[k] != 200) ++not_200;
    }
  }
  std::sort(ok.begin(), ok.end());
  auto pct = [&](double p) { return ok.empty() ? 0.0 : ok[std::min(ok.size() - 1, std::size_t(p * ok.size()))]; };
  std::printf("deliveries=%d connections=%d target_rate=%.0f/s achieved=%.0f/s transport_errors=%d non_200=%d\n",
              total, connections, rate, ok.size() / seconds, errors, not_200);
  std::printf("latency_ms p50=%.2f p90=%.2f p99=%.2f p999=%.2f max=%.2f\n", pct(0.5), pct(0.9), pct(0.99), pct(0.999),
              ok.empty() ? 0.0 : ok.back());
  return errors == 0 && not_200 == 0 ? 0 : 1;
}
