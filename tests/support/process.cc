#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace reai::testing {
namespace {

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int spawn(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<std::string> argv_storage{reai_binary()};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot spawn " + argv_storage[0]);
  return pid;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct PortBand {
  unsigned first = 0;
  unsigned count = 0;
};

// Ports just below the kernel's ephemeral range. The kernel never hands
// those to outgoing connections, and the tests open thousands of them: a port
// picked from the ephemeral range (bind to 0) could be taken by one of them
// between the pick and the child server's bind.
PortBand port_band_below_ephemeral() {
  unsigned low = 32768, high = 60999;
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(in >> low >> high) || low < 2048) low = 32768;
  const unsigned first = low > 13024 ? low - 12000 : 1024;
  return {first, low - first};
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

bool bindable_on_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const sockaddr_in addr = loopback(port);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string reai_binary() {
  const char* dir = std::getenv("REAI_BUILD_DIR");
  return std::string(dir && *dir ? dir : "build") + "/reai";
}

std::uint16_t free_port() {
  const PortBand band = port_band_below_ephemeral();
  // Concurrent test processes (ctest -j) start at pid-dependent offsets, so
  // they walk different ports of the band.
  static std::atomic<unsigned> next{static_cast<unsigned>(::getpid()) * 7919u};
  for (unsigned attempt = 0; attempt < band.count; ++attempt) {
    const auto port = static_cast<std::uint16_t>(band.first + next.fetch_add(1) % band.count);
    if (bindable_on_loopback(port)) return port;
  }
  throw std::runtime_error("no free port below the ephemeral range");
}

std::string make_temp_dir(const std::string& prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  return templ;
}

CommandResult run_reai(const std::vector<std::string>& args) {
  const std::string log = make_temp_dir("reai-cmd") + "/out.log";
  const int pid = spawn(args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {decode_wait_status(status), read_file(log)};
}

ReaiProcess::ReaiProcess(const std::vector<std::string>& args)
    : log_path_(make_temp_dir("reai-serve") + "/serve.log") {
  pid_ = spawn(args, log_path_);
}

ReaiProcess::~ReaiProcess() {
  if (running()) stop(SIGKILL);
}

bool ReaiProcess::running() {
  if (pid_ < 0) return false;
  int status = 0;
  const int rc = ::waitpid(pid_, &status, WNOHANG);
  if (rc == pid_) {
    exit_code_ = decode_wait_status(status);
    pid_ = -1;
    return false;
  }
  return true;
}

bool ReaiProcess::wait_for_port(std::uint16_t port, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return false;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in addr = loopback(port);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int ReaiProcess::stop(int sig, int timeout_ms) {
  if (!running()) return exit_code_;
  ::kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_code_;
}

std::string ReaiProcess::log() const { return read_file(log_path_); }

}  // namespace reai::testing
