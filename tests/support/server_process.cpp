#include "support/server_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

extern char** environ;

namespace jiceng::testing {

Result<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::vector<std::string>& args,
    std::chrono::milliseconds startup_timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears FD_CLOEXEC on the child's stdout; the original pipe ends close on exec.
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::unique_ptr<ServerProcess> proc(new ServerProcess());
  int rc = posix_spawn(&proc->pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    proc->reaped_ = true;
    return Internal("spawn " + binary + ": " + std::strerror(rc));
  }
  proc->stdout_fd_ = fds[0];
  proc->reader_ = std::thread([p = proc.get()] { p->ReadLoop(); });

  static const std::regex kListening(R"(jiceng: listening on https?://[^\s]*:(\d+))");
  std::unique_lock lock(proc->mu_);
  bool found = proc->cv_.wait_for(lock, startup_timeout, [&] {
    std::smatch m;
    if (std::regex_search(proc->output_, m, kListening)) {
      proc->port_ = static_cast<uint16_t>(std::stoi(m[1].str()));
      return true;
    }
    return proc->eof_;
  });
  if (!found || proc->port_ == 0) {
    std::string output = proc->output_;
    lock.unlock();
    return Error(ErrorCode::kUnavailable,
                 binary + " did not report a listening port; stdout so far: " + output);
  }
  return proc;
}

void ServerProcess::ReadLoop() {
  char buf[4096];
  for (;;) {
    ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.notify_all();
      return;
    }
    output_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
}

void ServerProcess::Kill(int signal) {
  if (!reaped_ && pid_ > 0) kill(pid_, signal);
}

int ServerProcess::Wait() {
  if (!reaped_ && pid_ > 0) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                   : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1);
  }
  if (reader_.joinable()) reader_.join();
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
    stdout_fd_ = -1;
  }
  return exit_code_;
}

std::string ServerProcess::Output() const {
  std::lock_guard lock(mu_);
  return output_;
}

ServerProcess::~ServerProcess() {
  Kill(SIGKILL);
  Wait();
}

}  // namespace jiceng::testing
