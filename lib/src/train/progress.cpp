#include "mnist/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace mnist {

ConsoleProgress::ConsoleProgress(std::FILE* summary, std::FILE* progress)
    : summary_(summary), progress_(progress), interactive_(::isatty(::fileno(progress)) != 0) {}

void ConsoleProgress::on_start(int64_t first_epoch, int64_t epochs, int64_t steps_per_epoch) {
  epochs_ = epochs;
  first_epoch_ = first_epoch;
  start_ = std::chrono::steady_clock::now();
  if (first_epoch > epochs) return;
  std::fprintf(summary_, "training epochs %lld..%lld, %lld steps each\n",
               static_cast<long long>(first_epoch), static_cast<long long>(epochs),
               static_cast<long long>(steps_per_epoch));
  std::fflush(summary_);
}

void ConsoleProgress::on_progress(int64_t epoch, int64_t step, int64_t steps, double loss,
                                  double accuracy, double images_per_second) {
  if (!interactive_) return;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * step / std::max<int64_t>(1, steps));
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = '\0';
  // ETA: the steps left at the mean pace of this process's steps so far.
  const double done = static_cast<double>((epoch - first_epoch_) * steps + step);
  const double left = static_cast<double>((epochs_ - epoch) * steps + (steps - step));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = done > 0 ? elapsed / done * left : 0.0;
  std::fprintf(progress_,
               "\repoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.2f%% %.0fk img/s ETA %.0fs\033[K",
               static_cast<long long>(epoch), static_cast<long long>(epochs_), bar,
               static_cast<long long>(step), static_cast<long long>(steps), loss, 100.0 * accuracy,
               images_per_second / 1000.0, eta);
  std::fflush(progress_);
}

void ConsoleProgress::on_epoch_end(const EpochStats& s) {
  if (interactive_) std::fprintf(progress_, "\r\033[K");
  std::fprintf(summary_, "epoch %lld/%lld  loss %.4f  acc %.2f%%", static_cast<long long>(s.epoch),
               static_cast<long long>(epochs_), s.train_loss, 100.0 * s.train_accuracy);
  if (std::isfinite(s.val_loss)) {
    std::fprintf(summary_, "  val_loss %.4f  val_acc %.2f%%", s.val_loss, 100.0 * s.val_accuracy);
  }
  std::fprintf(summary_, "  lr %.2e  %.2fs  %.0fk img/s\n", s.lr, s.seconds,
               s.images_per_second / 1000.0);
  std::fflush(summary_);
}

}  // namespace mnist
