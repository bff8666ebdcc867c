#include "mnist/dist/launcher.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mnist/core/error.h"

namespace mnist {
namespace {

using Clock = std::chrono::steady_clock;

// Exit status of a child as a shell reports it: its code, or 128 + the signal that killed it.
int shell_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "exited with status " + std::to_string(shell_status(status));
}

[[noreturn]] void exec_rank(const LaunchOptions& o, int local_rank, const sigset_t& old_mask,
                            pid_t parent) {
  // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which forwards it once.
  ::setpgid(0, 0);
  // Dies with the launcher, even when the launcher is killed with SIGKILL.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) _exit(1);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  const int world = o.nproc_per_node * o.nnodes;
  const int rank = o.node_rank * o.nproc_per_node + local_rank;
  ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node).c_str(), 1);
  ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::fprintf(stderr, "error: rank %d: cannot run %s: %s\n", rank, argv[0], std::strerror(errno));
  _exit(127);
}

}  // namespace

void check_launch(const LaunchOptions& o) {
  if (o.nproc_per_node < 1) throw UsageError("--nproc-per-node: must be at least 1");
  if (o.nnodes < 1) throw UsageError("--nnodes: must be at least 1");
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw UsageError("--node-rank: must be in [0, --nnodes)");
  if (o.master_port < 1 || o.master_port > 65535)
    throw UsageError("--master-port: must be in [1, 65535]");
  if (o.master_addr.empty()) throw UsageError("--master-addr: must not be empty");
  if (o.command.empty()) throw UsageError("no command to launch (give it after --)");
}

int launch(const LaunchOptions& o) {
  check_launch(o);
  sigset_t handled, old_mask;
  sigemptyset(&handled);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &handled, &old_mask);

  const pid_t self = ::getpid();
  const int first_rank = o.node_rank * o.nproc_per_node;
  std::vector<pid_t> pids(static_cast<size_t>(o.nproc_per_node), 0);
  int live = 0;
  int stop_signal = 0;  // SIGINT or SIGTERM received by the launcher
  int failure = 0;      // the first failed rank's status
  Clock::time_point kill_at = Clock::time_point::max();
  const auto signal_all = [&](int sig) {
    for (pid_t pid : pids)
      if (pid > 0) ::kill(pid, sig);
  };
  for (int i = 0; i < o.nproc_per_node; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) exec_rank(o, i, old_mask, self);
    if (pid < 0) {
      std::fprintf(stderr, "error: cannot start rank %d: %s\n", first_rank + i,
                   std::strerror(errno));
      failure = 1;
      signal_all(SIGTERM);
      kill_at = Clock::now() + o.grace;
      break;
    }
    pids[static_cast<size_t>(i)] = pid;
    ++live;
  }

  while (live > 0) {
    const timespec tick{0, 100 * 1000 * 1000};
    siginfo_t info;
    const int sig = ::sigtimedwait(&handled, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      if (stop_signal != 0) {
        signal_all(SIGKILL);  // asked twice: at once
      } else {
        stop_signal = sig;
        signal_all(sig);
        kill_at = std::min(kill_at, Clock::now() + o.grace);
      }
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] != pid) continue;
        pids[i] = 0;
        --live;
        const bool failed = shell_status(status) != 0;
        if (failed && failure == 0 && stop_signal == 0) {
          failure = shell_status(status);
          std::fprintf(stderr, "error: rank %d (pid %d) %s; stopping the other ranks\n",
                       first_rank + static_cast<int>(i), static_cast<int>(pid),
                       describe(status).c_str());
          signal_all(SIGTERM);
          kill_at = std::min(kill_at, Clock::now() + o.grace);
        }
      }
    }
    if (Clock::now() >= kill_at) {
      signal_all(SIGKILL);
      kill_at = Clock::time_point::max();
    }
  }
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  if (failure != 0) return failure;
  if (stop_signal != 0) return 128 + stop_signal;
  return 0;
}

}  // namespace mnist
