#pragma once
// The console observer of training: a progress line refreshed in place on a terminal (loss,
// accuracy, images/s, ETA), and one summary line per epoch on stdout in every case.

#include <chrono>
#include <cstdio>

#include "mnist/train/trainer.h"

namespace mnist {

class ConsoleProgress : public TrainObserver {
 public:
  /// Progress lines go to `progress` only when it is a terminal; summaries go to `summary`.
  explicit ConsoleProgress(std::FILE* summary = stdout, std::FILE* progress = stderr);
  void on_start(int64_t first_epoch, int64_t epochs, int64_t steps_per_epoch) override;
  void on_progress(int64_t epoch, int64_t step, int64_t steps, double loss, double accuracy,
                   double images_per_second) override;
  void on_epoch_end(const EpochStats& stats) override;

 private:
  std::FILE* summary_;
  std::FILE* progress_;
  bool interactive_;
  int64_t epochs_ = 0;
  int64_t first_epoch_ = 1;
  std::chrono::steady_clock::time_point start_;  // of this process's training, for the ETA
};

}  // namespace mnist
