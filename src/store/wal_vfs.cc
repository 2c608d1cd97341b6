#include "store/wal_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace reai::store {
namespace {

constexpr int kFrameHeaderBytes = 24;  // WAL_FRAME_HDRSIZE in SQLite's wal.c

sqlite3_vfs* g_real = nullptr;  // the default VFS, set once before use
sqlite3_vfs g_vfs;
std::atomic<std::uint64_t> g_coalesced{0};

// Laid out by SQLite in szOsFile bytes: this struct, then the real VFS's file.
struct WalFile {
  sqlite3_file base;
  sqlite3_file* real;
  bool wal;
  bool held;  // `header` waits for the page that follows it
  sqlite3_int64 held_offset;
  unsigned char header[kFrameHeaderBytes];
};

constexpr int kRealOffset = (sizeof(WalFile) + 7) & ~7;

WalFile* cast(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }
const sqlite3_io_methods* real_methods(WalFile* f) { return f->real->pMethods; }

// Writes a held header as it was. Every method but a coalescing write calls
// this first, so the file is exactly as SQLite wrote it before anything else
// looks at or syncs it.
int flush(WalFile* f) {
  if (!f->held) return SQLITE_OK;
  f->held = false;
  return real_methods(f)->xWrite(f->real, f->header, kFrameHeaderBytes, f->held_offset);
}

int wal_close(sqlite3_file* file) {
  WalFile* f = cast(file);
  const int flushed = flush(f);
  const int rc = real_methods(f)->xClose(f->real);
  return flushed != SQLITE_OK ? flushed : rc;
}

int wal_read(sqlite3_file* file, void* buf, int amt, sqlite3_int64 offset) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xRead(f->real, buf, amt, offset);
}

int wal_write(sqlite3_file* file, const void* buf, int amt, sqlite3_int64 offset) {
  WalFile* f = cast(file);
  if (f->held && amt > 0 && offset == f->held_offset + kFrameHeaderBytes) {
    // The frame's page: one write for header and page. The writer is one
    // thread at a time per connection; a buffer per thread avoids a malloc.
    thread_local std::vector<unsigned char> joined;
    joined.resize(static_cast<std::size_t>(kFrameHeaderBytes + amt));
    std::memcpy(joined.data(), f->header, kFrameHeaderBytes);
    std::memcpy(joined.data() + kFrameHeaderBytes, buf, static_cast<std::size_t>(amt));
    f->held = false;
    const int rc = real_methods(f)->xWrite(f->real, joined.data(), kFrameHeaderBytes + amt, f->held_offset);
    if (rc == SQLITE_OK) g_coalesced.fetch_add(1, std::memory_order_relaxed);
    return rc;
  }
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  if (f->wal && amt == kFrameHeaderBytes) {
    std::memcpy(f->header, buf, kFrameHeaderBytes);
    f->held = true;
    f->held_offset = offset;
    return SQLITE_OK;
  }
  return real_methods(f)->xWrite(f->real, buf, amt, offset);
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xTruncate(f->real, size);
}

int wal_sync(sqlite3_file* file, int flags) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xSync(f->real, flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xFileSize(f->real, size);
}

int wal_lock(sqlite3_file* file, int level) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xLock(f->real, level);
}

int wal_unlock(sqlite3_file* file, int level) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xUnlock(f->real, level);
}

int wal_check_reserved_lock(sqlite3_file* file, int* out) {
  WalFile* f = cast(file);
  return real_methods(f)->xCheckReservedLock(f->real, out);
}

int wal_file_control(sqlite3_file* file, int op, void* arg) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xFileControl(f->real, op, arg);
}

int wal_sector_size(sqlite3_file* file) {
  WalFile* f = cast(file);
  return real_methods(f)->xSectorSize(f->real);
}

int wal_device_characteristics(sqlite3_file* file) {
  WalFile* f = cast(file);
  return real_methods(f)->xDeviceCharacteristics(f->real);
}

int wal_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  WalFile* f = cast(file);
  return real_methods(f)->xShmMap(f->real, region, size, extend, out);
}

int wal_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  WalFile* f = cast(file);
  return real_methods(f)->xShmLock(f->real, offset, n, flags);
}

void wal_shm_barrier(sqlite3_file* file) {
  WalFile* f = cast(file);
  real_methods(f)->xShmBarrier(f->real);
}

int wal_shm_unmap(sqlite3_file* file, int delete_flag) {
  WalFile* f = cast(file);
  return real_methods(f)->xShmUnmap(f->real, delete_flag);
}

int wal_fetch(sqlite3_file* file, sqlite3_int64 offset, int amt, void** out) {
  WalFile* f = cast(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xFetch(f->real, offset, amt, out);
}

int wal_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  WalFile* f = cast(file);
  return real_methods(f)->xUnfetch(f->real, offset, p);
}

// Positional, in sqlite3_io_methods order (version 3).
const sqlite3_io_methods kMethods = {
    3,
    wal_close,
    wal_read,
    wal_write,
    wal_truncate,
    wal_sync,
    wal_file_size,
    wal_lock,
    wal_unlock,
    wal_check_reserved_lock,
    wal_file_control,
    wal_sector_size,
    wal_device_characteristics,
    wal_shm_map,
    wal_shm_lock,
    wal_shm_barrier,
    wal_shm_unmap,
    wal_fetch,
    wal_unfetch,
};

int wal_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = new (file) WalFile{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  f->real->pMethods = nullptr;
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (rc == SQLITE_OK && f->real->pMethods->iVersion < 3) {
    // Every method is forwarded as version 3 (shared memory, mmap); the
    // default unix VFS's files are.
    f->real->pMethods->xClose(f->real);
    f->real->pMethods = nullptr;
    rc = SQLITE_CANTOPEN;
  }
  // SQLite calls xClose only when pMethods is set, even after a failed open
  // (then the real file's own close must run).
  f->base.pMethods = f->real->pMethods ? &kMethods : nullptr;
  return rc;
}

}  // namespace

const char* coalescing_wal_vfs() {
  static const char* name = []() -> const char* {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr) return nullptr;
    g_real = real;
    g_vfs = *real;
    g_vfs.pNext = nullptr;
    g_vfs.zName = "reai-wal-coalescing";
    g_vfs.szOsFile = kRealOffset + real->szOsFile;
    g_vfs.xOpen = wal_open;
    if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) return nullptr;
    return g_vfs.zName;
  }();
  return name;
}

std::uint64_t coalesced_wal_frames() { return g_coalesced.load(std::memory_order_relaxed); }

}  // namespace reai::store
