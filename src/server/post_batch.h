// PostBatch: gathers the functions one writer turn hands to the io threads
// and posts each io thread its share at once. Private to src/server.
//
// The event writer answers a batch of requests (~9 at 20k req/s) by posting
// each request's answer to its connection's io thread. Posted one by one,
// every post takes that io_context's scheduler lock and the first wakes the
// sleeping io thread, which then preempts the writer (the serial stage)
// before it has posted the rest or started the next commit: in a perf
// sched_switch profile the writer was preempted 0.16 times per request
// (~1.4 per commit), mostly right after the epoll_ctl that wakes a reactor
// or a mutex wake
// (docs/RESULTS.md, "POST /api/events, session 9"). Gathered, a turn makes
// one post per io thread, after its last answer.
//
// Not thread-safe: one thread (the writer) adds and flushes.
#pragma once

#include <functional>
#include <vector>

namespace reai::server {

class PostBatch {
 public:
  // Runs a function on a lane's thread, later (e.g. net::post to an
  // io_context).
  using Post = std::function<void(std::function<void()>)>;

  // Queues `fn` for `lane` (an opaque id: functions of one lane run in the
  // order added, on the thread `post` runs them on). A null lane has no
  // identity to group by: `fn` is posted at once.
  void add(const void* lane, const Post& post, std::function<void()> fn);
  // Posts what was queued: one function per lane, through the `post` given
  // with the lane's first function, running the lane's functions in order.
  void flush();
  bool empty() const { return lanes_.empty(); }

 private:
  struct Lane {
    const void* id;
    Post post;
    std::vector<std::function<void()>> fns;
  };
  std::vector<Lane> lanes_;  // a few (one per io thread): a linear search
};

}  // namespace reai::server
