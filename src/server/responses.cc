#include "server/responses.h"

#include <cctype>

#include "server/codec.h"
#include "server/http_errors.h"

namespace reai::server {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

ApiResponse json_response(int status, std::string body, Route route) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  r.route = route;
  return r;
}

ApiResponse error_response(const Status& status, Route route) {
  return json_response(http_status_for(status.code()), error_json(status.message()), route);
}

ApiResponse method_not_allowed(Route route) {
  return json_response(405, error_json("method not allowed"), route);
}

bool is_json_content_type(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  if (media.empty()) return true;
  std::string lower(media);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  constexpr std::string_view kJson = "application/json", kSuffix = "+json";
  return lower == kJson || (lower.starts_with("application/") && lower.ends_with(kSuffix));
}

ApiResponse unsupported_media_type(Route route) {
  return json_response(415, error_json("Content-Type must be application/json"), route);
}

std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(char(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::vector<std::string>> path_segments(std::string_view path) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::vector<std::string> segments;
  for (;;) {
    const auto slash = path.find('/');
    auto decoded = percent_decode(path.substr(0, slash), false);
    if (!decoded) return invalid_argument("malformed percent-escape in the path (a % must be followed by two hex digits)");
    segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) return segments;
    path.remove_prefix(slash + 1);
  }
}

std::optional<std::string> query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    auto v = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    return v ? *v : std::string();
  }
  return std::nullopt;
}

}  // namespace reai::server
