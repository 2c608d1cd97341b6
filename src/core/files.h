// Whole-file text reads and atomic writes, for model files and outputs.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace reai {

// The file's bytes. NotFound when it cannot be opened; Unavailable on a read
// error.
Result<std::string> read_text_file(const std::string& path);

// Writes `text` to PATH.tmp, then renames it over `path`, so a reader (a
// server reloading a model, say) sees the old file or the new one, never
// half of one. Unavailable when the directory is not writable or the disk
// is full; `path` is then unchanged.
Status write_text_file(const std::string& path, std::string_view text);

}  // namespace reai
