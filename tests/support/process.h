// Running the real `reai` binary from black-box tests: spawn with arguments,
// capture output, wait for the port, stop with a signal and collect the exit code.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

namespace reai::testing {

// Path of build/reai for the build the tests belong to (REAI_BUILD_DIR, set by
// reai_test()), or "build/reai".
std::string reai_binary();

// A free TCP port on 127.0.0.1, below the kernel's ephemeral range so no
// outgoing connection can take it before the test's server binds it.
// Throws std::runtime_error when the whole band is taken.
std::uint16_t free_port();

// A fresh empty directory under the system temp dir.
std::string make_temp_dir(const std::string& prefix);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};

// Runs `reai args...` to completion.
CommandResult run_reai(const std::vector<std::string>& args);

// A child process running `reai args...`, output to a log file. The
// destructor kills it (SIGKILL) if still running.
class ReaiProcess {
 public:
  explicit ReaiProcess(const std::vector<std::string>& args);
  ~ReaiProcess();
  ReaiProcess(const ReaiProcess&) = delete;
  ReaiProcess& operator=(const ReaiProcess&) = delete;

  // Polls until 127.0.0.1:port accepts connections or the process exits.
  bool wait_for_port(std::uint16_t port, int timeout_ms = 30000);
  // Sends `sig` and waits for exit; returns the exit code (128+signal when killed).
  int stop(int sig = SIGTERM, int timeout_ms = 30000);
  bool running();
  std::string log() const;
  // The child's process id (-1 once it has been reaped).
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

}  // namespace reai::testing
