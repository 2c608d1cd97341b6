#include "server/ws_frame.h"

#include <algorithm>

namespace reai::server {
namespace {

bool is_control(WsOpcode opcode) { return static_cast<std::uint8_t>(opcode) >= 0x8; }

bool is_known(std::uint8_t opcode) { return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA); }

std::uint8_t byte_at(std::span<const char> data, std::size_t i) { return static_cast<std::uint8_t>(data[i]); }

}  // namespace

std::string encode_ws_frame(WsOpcode opcode, std::string_view payload) {
  if (is_control(opcode)) payload = payload.substr(0, kWsMaxControlPayload);
  const std::uint64_t n = payload.size();
  std::string out;
  out.reserve(payload.size() + 10);
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(opcode)));  // FIN
  if (n <= 125) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  out.append(payload);
  return out;
}

std::string encode_ws_close(std::uint16_t code, std::string_view reason) {
  constexpr std::size_t kMaxReason = kWsMaxControlPayload - 2;
  if (reason.size() > kMaxReason) {
    std::size_t cut = kMaxReason;
    // Back up over UTF-8 continuation bytes so the reason stays valid text.
    while (cut > 0 && (static_cast<std::uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return encode_ws_frame(WsOpcode::kClose, payload);
}

std::string_view ws_frame_payload(std::string_view frame) {
  if (frame.size() < 2) return {};
  const std::uint8_t len7 = static_cast<std::uint8_t>(frame[1]) & 0x7F;
  std::size_t header = 2;
  std::uint64_t n = len7;
  if (len7 == 126) {
    header = 4;
  } else if (len7 == 127) {
    header = 10;
  }
  if (frame.size() < header) return {};
  if (header > 2) {
    n = 0;
    for (std::size_t i = 2; i < header; ++i) n = (n << 8) | static_cast<std::uint8_t>(frame[i]);
  }
  if (frame.size() - header != n) return {};
  return frame.substr(header);
}

WsParseResult parse_ws_client_frame(std::span<char> data, std::size_t max_payload, WsClientFrame* out) {
  if (data.size() < 2) return WsParseResult::kNeedMore;
  const std::uint8_t b0 = byte_at(data, 0);
  const std::uint8_t b1 = byte_at(data, 1);
  const bool fin = (b0 & 0x80) != 0;
  const std::uint8_t opcode = b0 & 0x0F;
  if ((b0 & 0x70) != 0 || !is_known(opcode)) return WsParseResult::kProtocolError;
  if ((b1 & 0x80) == 0) return WsParseResult::kProtocolError;  // clients must mask
  const std::uint8_t len7 = b1 & 0x7F;
  const bool control = opcode >= 0x8;
  if (control && (!fin || len7 > kWsMaxControlPayload)) return WsParseResult::kProtocolError;
  std::size_t header = 2;
  std::uint64_t n = len7;
  if (len7 >= 126) {
    const std::size_t ext = len7 == 126 ? 2 : 8;
    if (data.size() < 2 + ext) return WsParseResult::kNeedMore;
    n = 0;
    for (std::size_t i = 0; i < ext; ++i) n = (n << 8) | byte_at(data, 2 + i);
    if (len7 == 127 && (n >> 63) != 0) return WsParseResult::kProtocolError;
    header += ext;
  }
  if (n > max_payload) return WsParseResult::kTooBig;
  const std::size_t mask_at = header;
  header += 4;
  if (data.size() < header + n) return WsParseResult::kNeedMore;
  char* payload = data.data() + header;
  const char* mask = data.data() + mask_at;
  for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
  out->opcode = static_cast<WsOpcode>(opcode);
  out->fin = fin;
  out->payload = std::string_view(payload, static_cast<std::size_t>(n));
  out->size = header + static_cast<std::size_t>(n);
  return WsParseResult::kFrame;
}

std::uint16_t ws_close_code(std::string_view close_payload) {
  if (close_payload.empty()) return 1005;
  if (close_payload.size() < 2) return 0;
  const auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(close_payload[0]) << 8) |
                                               static_cast<std::uint8_t>(close_payload[1]));
  // RFC 6455 7.4: codes a peer may put on the wire.
  const bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  return valid ? code : 0;
}

}  // namespace reai::server
