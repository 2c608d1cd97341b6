#include "server/post_batch.h"

#include <utility>

namespace reai::server {

void PostBatch::add(const void* lane, const Post& post, std::function<void()> fn) {
  if (!lane) {
    post(std::move(fn));
    return;
  }
  for (Lane& l : lanes_) {
    if (l.id == lane) {
      l.fns.push_back(std::move(fn));
      return;
    }
  }
  Lane& l = lanes_.emplace_back(Lane{lane, post, {}});
  l.fns.push_back(std::move(fn));
}

void PostBatch::flush() {
  // Taken out first: a lane's post may run its functions inline (a test's
  // executor), and they may add to a new batch.
  std::vector<Lane> lanes = std::move(lanes_);
  lanes_.clear();
  for (Lane& l : lanes) {
    if (l.fns.size() == 1) {
      l.post(std::move(l.fns.front()));
      continue;
    }
    l.post([fns = std::move(l.fns)]() mutable {
      for (auto& fn : fns) fn();
    });
  }
}

}  // namespace reai::server
