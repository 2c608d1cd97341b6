// Private to src/store: the SQLite store with chosen WAL checkpoint
// thresholds, so a test can cross them with a few thousand rows.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "store/checkpointer.h"
#include "store/store.h"

namespace reai::store {

// open_sqlite_store (store.h) with `thresholds` instead of the defaults.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir, Checkpointer::Thresholds thresholds);

}  // namespace reai::store
