#include "property/model_file.h"

#include <algorithm>

#include <boost/json.hpp>

#include "core/files.h"

namespace reai::property {

namespace json = boost::json;

Result<json::object> read_model_root(const std::string& dir, std::string_view kind, std::string_view format) {
  return read_model_root(dir, kind, {format});
}

Result<json::object> read_model_root(const std::string& dir, std::string_view kind,
                                     std::initializer_list<std::string_view> formats) {
  const std::string path = dir + "/model.json";
  auto text = read_text_file(path);
  if (!text) return not_found("no " + std::string(kind) + " model in " + dir + " (" + text.status().message() + ")");
  json::error_code ec;
  json::value root = json::parse(*text, ec);
  if (ec || !root.is_object()) return invalid_argument(path + " does not parse");
  const json::value* given = root.get_object().if_contains("format");
  const auto accepted = [&](std::string_view format) { return given->get_string() == format; };
  if (given == nullptr || !given->is_string() || std::none_of(formats.begin(), formats.end(), accepted)) {
    return invalid_argument(path + " is not a " + std::string(*formats.begin()) + " model");
  }
  return std::move(root.get_object());
}

}  // namespace reai::property
