#include "core/files.h"

#include <filesystem>
#include <fstream>
#include <iterator>

namespace reai {

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return unavailable("read error in " + path);
  return text;
}

Status write_text_file(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return unavailable("cannot write " + tmp);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out.flush()) return unavailable("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return unavailable("cannot replace " + path + ": " + ec.message());
  }
  return Status::ok();
}

}  // namespace reai
