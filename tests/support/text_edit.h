// Plain text edits of JSON fixtures in tests (std::regex trips GCC 12's
// -Wmaybe-uninitialized under -O2 with sanitizers, and these need none).
#pragma once

#include <string>
#include <string_view>

namespace reai::testing {

// `text` with every occurrence of `from` (non-empty) replaced by `to`.
inline std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// `json` with the value of every string member `"key":"..."` set to `value`
// (fixture values hold no escaped quotes).
inline std::string with_string_field(std::string json, std::string_view key, std::string_view value) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict) on "literal" + string.
  std::string opening(1, '"');
  opening.append(key);
  opening.append("\":\"");
  for (std::size_t at = json.find(opening); at != std::string::npos; at = json.find(opening, at + 1)) {
    const std::size_t start = at + opening.size();
    const std::size_t end = json.find('"', start);
    if (end == std::string::npos) break;
    json.replace(start, end - start, value);
  }
  return json;
}

}  // namespace reai::testing
