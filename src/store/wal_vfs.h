// A SQLite VFS that writes each WAL frame with one system call instead of
// two. Private to src/store.
//
// SQLite appends a WAL frame as two writes: its 24-byte header, then the page
// right after it. On the event path that is two pwrite64 per frame, about
// five per event (profile in docs/RESULTS.md). This VFS wraps the default
// one: on a WAL file it holds a frame header back until the next call on that
// file; when that call is the page write right after it, header and page go
// out as one write. Any other call (read, sync, size, truncate, lock, close,
// a write elsewhere) first writes the held header as it was.
//
// Durability is unchanged: SQLite writes a frame's page straight after its
// header (nothing reads or syncs the file in between), so when a commit
// returns every byte of it has reached the kernel exactly as without this
// VFS; a process killed between the two writes leaves a torn last frame,
// which WAL recovery ignores by its checksum in both cases.
#pragma once

#include <cstdint>

namespace reai::store {

// Registers the VFS once (not as the default) and returns its name for
// sqlite3_open_v2; nullptr when it cannot be registered (then open with the
// default VFS). Thread-safe.
const char* coalescing_wal_vfs();

// Frames written with one call since the process started (tests, figures).
std::uint64_t coalesced_wal_frames();

}  // namespace reai::store
