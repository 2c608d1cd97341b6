#include "core/json_text.h"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>

namespace reai {
namespace json = boost::json;

namespace {

// The length of the well-formed UTF-8 sequence starting at text[i] (a lead
// byte >= 0x80), or 0 when it is not one (RFC 3629 table 3-7: no overlongs,
// no UTF-16 surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) < 0x80) continue;
    const std::size_t n = utf8_sequence_length(text, i);
    if (n == 0) return false;
    i += n - 1;
  }
  return true;
}

Result<json::value> parse_json(std::string_view text, const json::parse_options& options,
                               json::storage_ptr storage) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, std::move(storage), options);
  if (ec) return invalid_argument("malformed JSON: " + ec.message());
  return v;
}

void append_json_string(std::string_view text, std::string* out) {
  // Runs of plain characters are appended whole: per-character push_back
  // was ~6k instructions per POST /api/events (reason texts, ids).
  out->push_back('"');
  std::size_t plain = 0;  // start of the run not yet appended
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') continue;
    if (c >= 0x80) {
      // Ids from a percent-decoded path or a CSV import may hold any byte:
      // JSON text (and a WebSocket text frame) must be UTF-8.
      if (const std::size_t n = utf8_sequence_length(text, i)) {
        i += n - 1;
        continue;
      }
      out->append(text.data() + plain, i - plain);
      plain = i + 1;
      out->append("\xef\xbf\xbd");  // U+FFFD REPLACEMENT CHARACTER
      continue;
    }
    out->append(text.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        constexpr char kHex[] = "0123456789abcdef";
        const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(escaped, sizeof escaped);
      }
    }
  }
  out->append(text.data() + plain, text.size() - plain);
  out->push_back('"');
}

void append_shortest_double(double x, std::string* out) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  out->append(buf, r.ptr);
}

namespace {

void append_json_value(const json::value& v, std::string* out) {
  char buf[32];
  switch (v.kind()) {
    case json::kind::null:
      out->append("null");
      return;
    case json::kind::bool_:
      out->append(v.get_bool() ? "true" : "false");
      return;
    case json::kind::int64:
      out->append(buf, std::to_chars(buf, buf + sizeof buf, v.get_int64()).ptr);
      return;
    case json::kind::uint64:
      out->append(buf, std::to_chars(buf, buf + sizeof buf, v.get_uint64()).ptr);
      return;
    case json::kind::double_: {
      if (!std::isfinite(v.get_double())) return out->append("null"), void();
      const std::size_t start = out->size();
      append_shortest_double(v.get_double(), out);
      // A double stays a double for typed readers (3.0, not 3).
      if (out->find_first_of(".e", start) == std::string::npos) out->append(".0");
      return;
    }
    case json::kind::string:
      return append_json_string(v.get_string(), out);
    case json::kind::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out->push_back(',');
        first = false;
        append_json_value(item, out);
      }
      out->push_back(']');
      return;
    }
    case json::kind::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& field : v.get_object()) {
        if (!first) out->push_back(',');
        first = false;
        append_json_string(field.key(), out);
        out->push_back(':');
        append_json_value(field.value(), out);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

std::string json_text(const json::value& v) {
  std::string out;
  out.reserve(256);
  append_json_value(v, &out);
  return out;
}

}  // namespace reai
