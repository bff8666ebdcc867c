#include "mnist/train/thread_governor.h"

#include <dirent.h>
#include <sched.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <ATen/Parallel.h>

namespace mnist {
namespace {

// The state letter of /proc/self/task/<tid>/stat: after the ")" that closes the thread's name.
bool thread_runnable(const std::string& tid) {
  std::ifstream in("/proc/self/task/" + tid + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'R';
}

}  // namespace

int runnable_elsewhere() {
  std::ifstream stat("/proc/stat");
  int running = -1;
  for (std::string key; stat >> key;) {
    if (key == "procs_running") {
      stat >> running;
      break;
    }
    stat.ignore(1 << 20, '\n');
  }
  if (running < 0) return 0;
  int mine = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.' && thread_runnable(e->d_name)) ++mine;
    }
    ::closedir(dir);
  }
  return running > mine ? running - mine : 0;
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

ThreadGovernor::ThreadGovernor(int threads, bool enabled, std::function<int()> elsewhere, int cores,
                               int64_t period)
    : configured_(threads),
      active_(enabled && threads > 1),
      elsewhere_(std::move(elsewhere)),
      cores_(cores),
      period_(period),
      current_(threads) {}

ThreadGovernor::~ThreadGovernor() {
  if (active_) use(configured_);
}

void ThreadGovernor::use(int threads) {
  if (threads != at::get_num_threads()) at::set_num_threads(threads);
  current_ = threads;
}

void ThreadGovernor::step_done() {
  if (!active_ || ++steps_ % period_ != 0) return;
  // Busy: the other runnable tasks leave fewer free cores than the configured threads need.
  const bool busy = elsewhere_() > cores_ - configured_;
  if (busy) {
    quiet_looks_ = 0;
    if (current_ != 1) use(1);
  } else if (current_ != configured_ && ++quiet_looks_ >= kQuietLooks) {
    use(configured_);
  }
}

}  // namespace mnist
