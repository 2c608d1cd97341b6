// Test support private to src/store: reading a SQLite WAL's header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>

namespace reai::store {

// The WAL header's checkpoint sequence number (bytes 12-15, big-endian) of
// `db_file`'s WAL: 0 in a new WAL, one more at each restart; 0 before the
// first frame.
inline std::uint32_t wal_restarts(const std::filesystem::path& db_file) {
  std::ifstream wal(db_file.string() + "-wal", std::ios::binary);
  unsigned char header[16] = {};
  if (!wal.read(reinterpret_cast<char*>(header), sizeof header)) return 0;
  return std::uint32_t{header[12]} << 24 | std::uint32_t{header[13]} << 16 | std::uint32_t{header[14]} << 8 |
         header[15];
}

}  // namespace reai::store
