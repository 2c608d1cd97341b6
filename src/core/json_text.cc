#include "core/json_text.h"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>

namespace reai {
namespace json = boost::json;

void append_json_string(std::string_view text, std::string* out) {
  // Runs of plain characters are appended whole: per-character push_back
  // was ~6k instructions per POST /api/events (reason texts, ids).
  out->push_back('"');
  std::size_t plain = 0;  // start of the run not yet appended
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
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
