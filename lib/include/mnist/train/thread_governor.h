#pragma once
// Intra-op threads that follow the machine's load while training. The written-out MLP step splits
// its large products between two threads, which wait for each other several times per step. On a
// quiet machine that is faster; when other processes compete for the cores, the second thread is
// often descheduled while the first waits for it, and a step takes several times longer than with
// one thread (measured on 2 cores with two busy processes: about 26k images/s with 2 threads, 65k
// with one; scripts/bench_busy.sh). Timing both choices in short windows misleads (the scheduler
// favours a thread that has just slept), so the governor looks at the cause instead: every `period`
// steps it counts the runnable tasks of other processes, and when they leave fewer free cores than
// the configured threads it trains with one thread, going back once `quiet_looks` looks in a row
// find the cores free. The choice changes speed only: the split products are bit-exact, so the
// results are the same either way (tested).

#include <cstdint>
#include <functional>

namespace mnist {

/// Tasks of other processes that are runnable now: /proc/stat's procs_running minus this process's
/// runnable threads. 0 where /proc cannot be read.
int runnable_elsewhere();

/// The CPUs this process may run on (its affinity mask).
int usable_cores();

class ThreadGovernor {
 public:
  static constexpr int64_t kPeriod = 200;    // steps between two looks (about 50 ms here)
  static constexpr int64_t kQuietLooks = 5;  // quiet looks in a row before going back

  /// Inactive (changes nothing) unless `enabled` and `threads` > 1. Starts with `threads`.
  /// `elsewhere` and `cores` are for tests.
  ThreadGovernor(int threads, bool enabled, std::function<int()> elsewhere = runnable_elsewhere,
                 int cores = usable_cores(), int64_t period = kPeriod);
  /// Puts the configured threads back.
  ~ThreadGovernor();
  ThreadGovernor(const ThreadGovernor&) = delete;
  ThreadGovernor& operator=(const ThreadGovernor&) = delete;

  /// After every training step.
  void step_done();

  /// The threads the steps use now.
  int threads() const { return current_; }

 private:
  void use(int threads);

  const int configured_;
  const bool active_;
  const std::function<int()> elsewhere_;
  const int cores_;
  const int64_t period_;
  int current_;
  int64_t steps_ = 0;
  int64_t quiet_looks_ = 0;
};

}  // namespace mnist
