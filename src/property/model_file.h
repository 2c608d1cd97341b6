// Reading a property model's DIR/model.json (private to src/property): the
// valuation and match models share its envelope (a JSON object with a
// "format" string). Pure functions: thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/status.h"

namespace reai::property {

// DIR/model.json's root object when it parses and its "format" is `format`.
// NotFound "no <kind> model in DIR (why)" when the file cannot be read;
// InvalidArgument when it does not parse or is another format's model.
Result<boost::json::object> read_model_root(const std::string& dir, std::string_view kind, std::string_view format);
// The same accepting any of `formats` (the current one first: it is the one
// the error names), for a reader that still loads older files.
Result<boost::json::object> read_model_root(const std::string& dir, std::string_view kind,
                                            std::initializer_list<std::string_view> formats);

}  // namespace reai::property
