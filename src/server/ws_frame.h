// RFC 6455 framing for the WebSocket write path and the client-frame reader.
//
// The server frames each outgoing message once, as complete bytes shared by
// every session of a tenant, so a session's queued frames go out with one
// gather write. Beast still does the HTTP upgrade handshake; after it the
// session reads and writes frames itself with these functions, so every
// byte on the socket comes from one serialized writer. Pure functions; any
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace reai::server {

enum class WsOpcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Control frames (close, ping, pong) carry at most this many payload bytes.
inline constexpr std::size_t kWsMaxControlPayload = 125;

// One final, unmasked (server-to-client) frame: a 2, 4 or 10 byte header
// (7-bit, 16-bit or 64-bit length) followed by `payload`. For a control
// opcode a payload over kWsMaxControlPayload is truncated to it (the
// protocol forbids longer ones). Text payloads are sent as given: the caller
// passes valid UTF-8.
std::string encode_ws_frame(WsOpcode opcode, std::string_view payload);

// A close frame carrying `code` (big-endian) and `reason`, truncated to fit
// a control frame (123 bytes, never splitting a UTF-8 sequence).
std::string encode_ws_close(std::uint16_t code, std::string_view reason);

// The payload of an unmasked frame made by encode_ws_frame; empty when
// `frame` is shorter than its header says (never reads past `frame`).
std::string_view ws_frame_payload(std::string_view frame);

enum class WsParseResult {
  kFrame,          // `out` holds a complete frame
  kNeedMore,       // `data` holds only part of a frame: read more
  kProtocolError,  // close with 1002: unmasked, reserved bits or opcode, bad control frame
  kTooBig,         // close with 1009: payload over `max_payload`
};

struct WsClientFrame {
  WsOpcode opcode = WsOpcode::kText;
  bool fin = true;
  std::string_view payload;  // points into the parsed buffer, unmasked
  std::size_t size = 0;      // header + payload bytes to consume
};

// Parses the client frame at the start of `data`. Clients must mask
// (RFC 6455 5.1); the payload is unmasked in place. No extension is ever
// negotiated, so any reserved bit is an error.
WsParseResult parse_ws_client_frame(std::span<char> data, std::size_t max_payload, WsClientFrame* out);

// The close code of a close frame's payload; 1005 (no status) when empty,
// 0 when the payload is one byte or the code is not one a peer may send.
std::uint16_t ws_close_code(std::string_view close_payload);

}  // namespace reai::server
