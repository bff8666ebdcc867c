#pragma once
// The training tests' shared fixture: a small synthetic data set, the tiny config, a run folder per
// call, and an observer that interrupts a run after an epoch as a kill would.

#include <csignal>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/interrupt.h"
#include "mnist/run/run.h"
#include "mnist/train/trainer.h"
#include "support.h"

namespace mnist {
namespace {

using testing::TempDir;

inline Config tiny(const std::string& data_dir, int epochs) {
  return config_from_json(nlohmann::json::parse(testing::tiny_config(data_dir, epochs)), "tiny");
}

struct Interrupt {};

// Stops the process's training after `after` epochs, as a kill would (the exception escapes).
class InterruptAfter : public TrainObserver {
 public:
  explicit InterruptAfter(int64_t after) : after_(after) {}
  void on_epoch_end(const EpochStats& s) override {
    if (s.epoch == after_) throw Interrupt{};
  }

 private:
  int64_t after_;
};

// Asks for a stop as Ctrl-C would, after step `step` of epoch `epoch` (0: the epoch's last step).
// Needs train.log_every = 1 to see every step. Forgets the request when destroyed.
class StopAt : public TrainObserver {
 public:
  StopAt(int64_t epoch, int64_t step) : epoch_(epoch), step_(step) {}
  ~StopAt() override { clear_stop_request(); }
  void on_progress(int64_t epoch, int64_t step, int64_t steps, double, double, double) override {
    if (epoch == epoch_ && step == (step_ > 0 ? step_ : steps)) request_stop(SIGINT);
  }

 private:
  int64_t epoch_, step_;
};

// The message of the Interrupted that `train` throws (with SIGINT), or "" when it throws none.
template <typename F>
std::string interrupted_message(F train) {
  try {
    train();
  } catch (const Interrupted& e) {
    EXPECT_EQ(e.signal(), SIGINT);
    return e.what();
  }
  return "";
}

inline void expect_same_history(const std::vector<EpochStats>& a,
                                const std::vector<EpochStats>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].epoch, b[i].epoch);
    EXPECT_EQ(a[i].train_loss, b[i].train_loss) << "epoch " << a[i].epoch;
    EXPECT_EQ(a[i].train_accuracy, b[i].train_accuracy);
    EXPECT_EQ(a[i].val_loss, b[i].val_loss);
    EXPECT_EQ(a[i].val_accuracy, b[i].val_accuracy);
    EXPECT_EQ(a[i].lr, b[i].lr);
  }
}

inline void expect_same_weights(const Classifier& a, const Classifier& b) {
  const auto pa = a->parameters(), pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

class TrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_synthetic_mnist(data_.path(), 600, 200);
    config_ = tiny(data_.path(), 3);
    splits_ = load_splits(config_.data, config_.seed);
  }
  TrainResult train_in(const std::string& dir, TrainObserver& observer) {
    const RunFolder run =
        std::filesystem::exists(dir) ? RunFolder::open(dir) : RunFolder::create(dir);
    if (!run.has(run_files::kConfig)) run.write_json(run_files::kConfig, config_to_json(config_));
    if (!run.has(run_files::kDataset))
      run.write_json(run_files::kDataset, dataset_info_json(splits_.info));
    return train_run(config_, splits_, run, torch::kCPU, observer);
  }
  TempDir data_, runs_;
  Config config_;
  Splits splits_;
};

}  // namespace
}  // namespace mnist
