#include "core/json_text.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <memory_resource>
#include <optional>
#include <string>
#include <vector>

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

namespace {

// The keys of the objects open during a parse, innermost last, to find one
// object naming a key twice. Boost.JSON cannot show that afterwards: its
// object keeps the last value of a repeated key (1.81, object.ipp), so the
// check has to happen while the parser still reports every key.
class OpenObjectKeys {
 public:
  void open() { starts_.push_back(keys_.size()); }
  // A key arrives in parts (on_key_part) and ends with on_key; `size` is its
  // whole length.
  void append(std::string_view part) { text_.append(part); }
  void end_key(std::string_view last_part, std::size_t size) {
    text_.append(last_part);
    keys_.push_back({text_.size() - size, size});
  }
  // Closes the innermost object; false (and `*repeated` set to the key) when
  // it names a key twice.
  bool close(std::optional<std::string>* repeated) {
    const std::size_t first = starts_.back();
    starts_.pop_back();
    const bool unique = find_repeat(first, repeated);
    if (first < keys_.size()) text_.resize(keys_[first].offset);
    keys_.resize(first);
    return unique;
  }

 private:
  struct Span {
    std::size_t offset, size;
  };
  std::string_view key(const Span& s) const { return std::string_view(text_).substr(s.offset, s.size); }

  // Pairwise for the few keys most objects have; sorted beyond, so an object
  // of n keys costs n log n, never n^2 (a 1 MiB body can hold 100,000 keys).
  bool find_repeat(std::size_t first, std::optional<std::string>* repeated) {
    constexpr std::size_t kPairwise = 16;
    const std::size_t n = keys_.size() - first;
    if (n <= kPairwise) {
      for (std::size_t i = first + 1; i < keys_.size(); ++i) {
        for (std::size_t j = first; j < i; ++j) {
          if (key(keys_[i]) == key(keys_[j])) return repeated->emplace(key(keys_[i])), false;
        }
      }
      return true;
    }
    sorted_.clear();
    for (std::size_t i = first; i < keys_.size(); ++i) sorted_.push_back(key(keys_[i]));
    std::sort(sorted_.begin(), sorted_.end());
    const auto it = std::adjacent_find(sorted_.begin(), sorted_.end());
    if (it == sorted_.end()) return true;
    repeated->emplace(*it);
    return false;
  }

  // An event body's keys fit here: no allocation on POST /api/events.
  std::array<std::byte, 1024> inline_;
  std::pmr::monotonic_buffer_resource arena_{inline_.data(), inline_.size()};
  std::pmr::string text_{&arena_};                 // the keys of the open objects, back to back
  std::pmr::vector<Span> keys_{&arena_};           // each key's place in text_
  std::pmr::vector<std::size_t> starts_{&arena_};  // each open object's first index in keys_
  std::pmr::vector<std::string_view> sorted_{&arena_};
};

// The handler of json::basic_parser that builds the value as Boost.JSON's
// own parser does (a value_stack) and, when asked, refuses an object naming
// a key twice: the parse stops there with `repeated()` set.
class ValueBuilder {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  ValueBuilder(unsigned char* temp, std::size_t temp_size, DuplicateKeys duplicates)
      : values_({}, temp, temp_size), check_keys_(duplicates == DuplicateKeys::kRefuse) {}

  json::value_stack& values() { return values_; }
  // The key an object named twice, if one did.
  const std::optional<std::string>& repeated() const { return repeated_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (check_keys_) keys_.open();
    return true;
  }
  bool on_object_end(std::size_t n, json::error_code& ec) {
    if (check_keys_ && !keys_.close(&repeated_)) {
      ec = json::error::syntax;  // any failure stops the parser; repeated_ says why
      return false;
    }
    values_.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    values_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    values_.push_chars(s);
    if (check_keys_) keys_.append(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t n, json::error_code&) {
    values_.push_key(s);
    if (check_keys_) keys_.end_key(s, n);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    values_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    values_.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    values_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    values_.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    values_.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    values_.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    values_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  json::value_stack values_;
  bool check_keys_;
  OpenObjectKeys keys_;
  std::optional<std::string> repeated_;
};

// `duplicate key "k"`, the key cut to a readable length.
Status duplicate_key_error(std::string_view key) {
  constexpr std::size_t kShown = 64;
  std::string message = "duplicate key ";
  append_json_string(key.substr(0, kShown), &message);
  if (key.size() > kShown) message += " (first " + std::to_string(kShown) + " bytes)";
  return invalid_argument(message);
}

}  // namespace

Result<json::value> parse_json(std::string_view text, const json::parse_options& options, json::storage_ptr storage,
                               DuplicateKeys duplicates) {
  unsigned char temp[BOOST_JSON_STACK_BUFFER_SIZE];  // as json::parse: small documents build without allocating
  json::basic_parser<ValueBuilder> parser(options, temp, sizeof temp, duplicates);
  parser.handler().values().reset(std::move(storage));
  json::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (const auto& key = parser.handler().repeated()) return duplicate_key_error(*key);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (ec) return invalid_argument("malformed JSON: " + ec.message());
  return parser.handler().values().release();
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
  // Shortest picks 3e+05 over 300000 (one character less): valid, but a
  // budget or price of 300000 should read as one. Whole numbers below 2^53
  // (exact in a double) are written in full; the rest stay shortest.
  constexpr double kExactIntegers = 9007199254740992.0;
  const bool whole = std::isfinite(x) && std::abs(x) < kExactIntegers && x == std::trunc(x);
  auto r = whole ? std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed)
                 : std::to_chars(buf, buf + sizeof buf, x);
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
