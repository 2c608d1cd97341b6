// The frame encoder and client-frame parser against Beast's own WebSocket
// implementation on a loopback socket: Beast (as the client) must read
// what encode_ws_frame writes, and parse_ws_client_frame must read what a
// Beast client writes.
#include "server/ws_frame.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <string>
#include <thread>
#include <vector>

namespace reai::server {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string pattern(std::size_t n) {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// A server socket past the upgrade handshake (done by Beast) and a Beast
// client stream on the other end.
struct UpgradedPair {
  net::io_context ioc;
  tcp::socket server{ioc};
  websocket::stream<tcp::socket> client{ioc};

  UpgradedPair() {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    std::thread accept_thread([&] {
      websocket::stream<tcp::socket> ws(acceptor.accept());
      ws.accept();
      server = std::move(ws.next_layer());
    });
    client.next_layer().connect(acceptor.local_endpoint());
    client.handshake("127.0.0.1", "/");
    accept_thread.join();
  }

  // Reads from the server socket until one client frame parses.
  WsParseResult read_client_frame(std::vector<char>* buf, WsClientFrame* out) {
    for (;;) {
      auto r = parse_ws_client_frame(std::span<char>(buf->data(), buf->size()), 1 << 20, out);
      if (r != WsParseResult::kNeedMore) return r;
      char chunk[8192];
      const auto n = server.read_some(net::buffer(chunk));
      buf->insert(buf->end(), chunk, chunk + n);
    }
  }
};

TEST(WsFrame, HeaderLengthsFollowRfc6455) {
  EXPECT_EQ(encode_ws_frame(WsOpcode::kText, pattern(125)).size(), 125u + 2);
  EXPECT_EQ(encode_ws_frame(WsOpcode::kText, pattern(126)).size(), 126u + 4);
  EXPECT_EQ(encode_ws_frame(WsOpcode::kText, pattern(65535)).size(), 65535u + 4);
  EXPECT_EQ(encode_ws_frame(WsOpcode::kText, pattern(65536)).size(), 65536u + 10);
  const std::string f = encode_ws_frame(WsOpcode::kText, "hi");
  EXPECT_EQ(f, std::string("\x81\x02hi", 4));
  const std::string big = encode_ws_frame(WsOpcode::kText, pattern(65536));
  EXPECT_EQ(static_cast<unsigned char>(big[1]), 127u);
  EXPECT_EQ(big.substr(2, 8), std::string("\0\0\0\0\0\x01\0\0", 8));
  EXPECT_TRUE(ws_frame_payload(big) == pattern(65536));
  EXPECT_EQ(ws_frame_payload(big.substr(0, big.size() - 1)), "");  // truncated
  EXPECT_EQ(ws_frame_payload("\x81"), "");
}

TEST(WsFrame, ControlFramesAreCapped) {
  EXPECT_EQ(ws_frame_payload(encode_ws_frame(WsOpcode::kPing, pattern(300))).size(), kWsMaxControlPayload);
  // The reason is cut to 123 bytes without splitting a two-byte character.
  std::string reason(122, 'x');
  reason += "\xc3\xa9";  // é straddles byte 123
  const std::string close = encode_ws_close(4001, reason);
  const auto payload = ws_frame_payload(close);
  EXPECT_EQ(payload.size(), 2u + 122);
  EXPECT_EQ(ws_close_code(payload), 4001);
  EXPECT_EQ(ws_close_code(""), 1005);
  EXPECT_EQ(ws_close_code("\x03"), 0);
  EXPECT_EQ(ws_close_code(std::string("\x03\xed", 2)), 0);  // 1005 may not be sent
}

TEST(WsFrame, BeastClientReadsEncodedFramesOfEveryLengthClass) {
  UpgradedPair pair;
  const std::vector<std::size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 70000, 1 << 20};
  // One gather write of all frames, as the session sends them.
  std::vector<std::string> frames;
  for (auto n : sizes) frames.push_back(encode_ws_frame(WsOpcode::kText, pattern(n)));
  frames.push_back(encode_ws_frame(WsOpcode::kPing, "are you there"));
  frames.push_back(encode_ws_frame(WsOpcode::kText, "after ping"));
  frames.push_back(encode_ws_close(4003, "forbidden"));
  std::vector<net::const_buffer> buffers;
  for (const auto& f : frames) buffers.emplace_back(f.data(), f.size());
  std::thread writer([&] { net::write(pair.server, buffers); });

  std::string pinged;
  pair.client.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::ping) pinged = std::string(payload);
  });
  pair.client.read_message_max(2 << 20);
  for (auto n : sizes) {
    beast::flat_buffer b;
    beast::error_code ec;
    pair.client.read(b, ec);
    ASSERT_FALSE(ec) << n << ": " << ec.message();
    EXPECT_TRUE(pair.client.got_text());
    EXPECT_TRUE(beast::buffers_to_string(b.data()) == pattern(n)) << n;
  }
  beast::flat_buffer b;
  pair.client.read(b);  // Beast answers the ping with a pong on the socket
  EXPECT_EQ(beast::buffers_to_string(b.data()), "after ping");
  EXPECT_EQ(pinged, "are you there");
  beast::error_code ec;
  b.clear();
  writer.join();
  // The pong, parsed by the server side, echoes the ping's payload.
  std::vector<char> in;
  WsClientFrame frame;
  ASSERT_EQ(pair.read_client_frame(&in, &frame), WsParseResult::kFrame);
  EXPECT_EQ(frame.opcode, WsOpcode::kPong);
  EXPECT_EQ(frame.payload, "are you there");
  in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(frame.size));
  // Beast reports the close code and answers with its own close frame.
  std::thread closer([&] { pair.client.read(b, ec); });
  ASSERT_EQ(pair.read_client_frame(&in, &frame), WsParseResult::kFrame);
  EXPECT_EQ(frame.opcode, WsOpcode::kClose);
  EXPECT_EQ(ws_close_code(frame.payload), 4003);
  pair.server.close();  // the server drops TCP first
  closer.join();
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(pair.client.reason().code, 4003);
  EXPECT_EQ(std::string(pair.client.reason().reason.data(), pair.client.reason().reason.size()), "forbidden");
}

TEST(WsFrame, ParserReadsMaskedBeastClientFrames) {
  UpgradedPair pair;
  const std::vector<std::size_t> sizes = {0, 125, 126, 65535, 65536, 70000};
  pair.client.auto_fragment(false);  // one frame per message, so each length class is exercised
  std::thread writer([&] {
    for (auto n : sizes) pair.client.write(net::buffer(pattern(n)));
    pair.client.ping("p");
  });
  std::vector<char> in;
  for (auto n : sizes) {
    WsClientFrame frame;
    ASSERT_EQ(pair.read_client_frame(&in, &frame), WsParseResult::kFrame) << n;
    EXPECT_EQ(frame.opcode, WsOpcode::kText);
    EXPECT_TRUE(frame.fin);
    EXPECT_TRUE(frame.payload == pattern(n)) << n;
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(frame.size));
  }
  WsClientFrame ping;
  ASSERT_EQ(pair.read_client_frame(&in, &ping), WsParseResult::kFrame);
  EXPECT_EQ(ping.opcode, WsOpcode::kPing);
  EXPECT_EQ(ping.payload, "p");
  writer.join();
}

WsParseResult parse(std::string bytes, std::size_t max = 1024) {
  WsClientFrame frame;
  return parse_ws_client_frame(std::span<char>(bytes.data(), bytes.size()), max, &frame);
}

TEST(WsFrame, ParserRejectsMalformedFrames) {
  const std::string mask("\x01\x02\x03\x04", 4);
  EXPECT_EQ(parse(""), WsParseResult::kNeedMore);
  EXPECT_EQ(parse("\x81"), WsParseResult::kNeedMore);
  EXPECT_EQ(parse(std::string("\x81\x85", 2) + mask + "ab"), WsParseResult::kNeedMore);  // payload cut short
  EXPECT_EQ(parse(std::string("\x81\xfe\x01", 3)), WsParseResult::kNeedMore);            // 16-bit length cut short
  EXPECT_EQ(parse("\x81\x02hi"), WsParseResult::kProtocolError);                          // unmasked
  EXPECT_EQ(parse(std::string("\xc1\x80", 2) + mask), WsParseResult::kProtocolError);     // RSV1 without extension
  EXPECT_EQ(parse(std::string("\x83\x80", 2) + mask), WsParseResult::kProtocolError);     // reserved opcode
  EXPECT_EQ(parse(std::string("\x09\x80", 2) + mask), WsParseResult::kProtocolError);     // fragmented ping
  EXPECT_EQ(parse(std::string("\x89\xfe\x00\x7e", 4) + mask), WsParseResult::kProtocolError);  // ping over 125
  EXPECT_EQ(parse(std::string("\x81\xff\x80\0\0\0\0\0\0\0", 10) + mask), WsParseResult::kProtocolError);
  EXPECT_EQ(parse(std::string("\x81\xfe\x04\x01", 4) + mask, 1024), WsParseResult::kTooBig);  // 1025 bytes
  // A well-formed masked frame unmasks in place.
  std::string ok = std::string("\x81\x82", 2) + mask + std::string{'h' ^ 1, 'i' ^ 2};
  WsClientFrame frame;
  ASSERT_EQ(parse_ws_client_frame(std::span<char>(ok.data(), ok.size()), 16, &frame), WsParseResult::kFrame);
  EXPECT_EQ(frame.payload, "hi");
  EXPECT_EQ(frame.size, ok.size());
}

}  // namespace
}  // namespace reai::server
