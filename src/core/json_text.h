// JSON text reading and writing shared by the server's routes, the GHL
// parsers and the bench tools' summaries, so every JSON reai reads fails the
// same way and every JSON it prints spells numbers the same way.
// Pure functions; any thread.
#pragma once

#include <boost/json/parse_options.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace reai {

// What parse_json does with an object that names a key twice.
enum class DuplicateKeys {
  // InvalidArgument `duplicate key "lead_id"`: readers disagree on which
  // value counts (first, last, both), so a body that names a key twice
  // could mean one thing to a proxy or log reader and another to reai.
  kRefuse,
  // The last value (ECMAScript's JSON.parse, Boost.JSON's parse): for text
  // reai does not author and cannot have corrected, such as GoHighLevel's.
  kLastWins,
};

// One JSON value parsed from `text` (allocated from `storage`, the default
// resource when null); InvalidArgument "malformed JSON: <Boost.JSON's
// reason>" otherwise, e.g. "malformed JSON: syntax error" for {not json, and
// `duplicate key "<key>"` (JSON text, cut to 64 bytes) for an object at any
// depth naming a key twice under kRefuse. One pass over the text: the keys
// are compared as the parser reports them, since json::object keeps only the
// last value of a repeated key.
Result<boost::json::value> parse_json(std::string_view text, const boost::json::parse_options& options = {},
                                      boost::json::storage_ptr storage = {},
                                      DuplicateKeys duplicates = DuplicateKeys::kRefuse);

// A JSON string literal (quotes included) for `text`. Bytes that are not
// UTF-8 become U+FFFD, so the literal is always valid JSON.
void append_json_string(std::string_view text, std::string* out);

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or
// code points above U+10FFFF).
bool is_utf8(std::string_view text);

// `x` in its shortest round-trip form (std::to_chars): 137500, 0.0756, 1e-07;
// a whole number below 2^53 in full (300000, never 3e+05).
void append_shortest_double(double x, std::string* out);

// The JSON text of `v`: as json::serialize, except that doubles take their
// shortest round-trip form in plain notation where that is shorter
// (137500.0, 0.0756; Boost.JSON 1.81 writes 1.375E5 and 7.56E-2), keep a
// ".0" when integral so typed readers still see a double, and a non-finite
// double becomes null.
std::string json_text(const boost::json::value& v);

}  // namespace reai
