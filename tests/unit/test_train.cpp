// The training loop: it learns, it is deterministic, an interrupted run resumes to exactly the
// result of an uninterrupted one, divergence is an error, and a corrupt checkpoint is refused.

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/train/optim.h"
#include "mnist/train/trainer.h"
#include "support.h"
#include "train_fixture.h"

namespace mnist {
namespace {

TEST_F(TrainTest, LearnsAndWritesCheckpointAndHistory) {
  TrainObserver quiet;
  const auto r = train_in(runs_ / "a", quiet);
  ASSERT_EQ(r.history.size(), 3u);
  EXPECT_GT(r.history.back().val_accuracy, 0.9);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_GT(r.history.back().images_per_second, 0.0);
  const auto rows = testing::lines(testing::read_bytes(runs_ / "a/history.csv"));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0],
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_second");
  EXPECT_EQ(rows[1].substr(0, 2), "1,");
  EXPECT_EQ(rows[3].substr(0, 2), "3,");
  EXPECT_TRUE(std::filesystem::exists(runs_ / "a/checkpoint.pt"));
}

TEST_F(TrainTest, SameSeedSameHistoryAndWeights) {
  TrainObserver quiet;
  const auto a = train_in(runs_ / "a", quiet);
  const auto b = train_in(runs_ / "b", quiet);
  expect_same_history(a.history, b.history);
  expect_same_weights(a.model, b.model);
  config_.seed = 4;
  const auto c = train_in(runs_ / "c", quiet);
  EXPECT_NE(a.history[0].train_loss, c.history[0].train_loss);
}

TEST_F(TrainTest, ResumeAfterInterruptionMatchesAnUninterruptedRun) {
  config_.model.dropout = 0.2;  // dropout's randomness must resume exactly too
  TrainObserver quiet;
  const auto whole = train_in(runs_ / "whole", quiet);

  InterruptAfter stop(1);
  EXPECT_THROW(train_in(runs_ / "cut", stop), Interrupt);
  const auto rows_after_cut = testing::lines(testing::read_bytes(runs_ / "cut/history.csv"));
  EXPECT_EQ(rows_after_cut.size(), 2u);  // header + epoch 1: nothing of the epoch in progress

  struct Count : TrainObserver {
    int64_t first = 0;
    void on_start(int64_t f, int64_t, int64_t) override { first = f; }
  } count;
  const auto resumed = train_in(runs_ / "cut", count);
  EXPECT_EQ(count.first, 2);
  expect_same_history(whole.history, resumed.history);
  expect_same_weights(whole.model, resumed.model);
  EXPECT_EQ(testing::lines(testing::read_bytes(runs_ / "cut/history.csv")).size(), 4u);
}

// Ctrl-C in the middle of an epoch: the step finishes, the checkpoint keeps it (with the running
// figures and the random generators), and the resumed run is the uninterrupted one, bit for bit.
// Without dropout the written-out MLP step trains; with it, autograd and dropout's generator.
TEST_F(TrainTest, AStopMidEpochKeepsTheStepAndResumesExactly) {
  config_.train.log_every = 1;
  for (const double dropout : {0.0, 0.3}) {
    SCOPED_TRACE("dropout " + std::to_string(dropout));
    config_.model.dropout = dropout;
    const std::string tag = dropout > 0 ? "-dropout" : "";
    TrainObserver quiet;
    const auto whole = train_in(runs_ / ("whole" + tag), quiet);

    const std::string cut = runs_ / ("cut" + tag);
    const std::string message = interrupted_message([&] {
      StopAt stop(2, 5);
      train_in(cut, stop);
    });
    EXPECT_NE(message.find("in epoch 2 after step 5 of"), std::string::npos) << message;
    EXPECT_EQ(testing::lines(testing::read_bytes(cut + "/history.csv")).size(), 2u);

    struct Count : TrainObserver {
      int64_t first_epoch = 0, first_step = 0;
      void on_start(int64_t f, int64_t, int64_t) override { first_epoch = f; }
      void on_progress(int64_t, int64_t step, int64_t, double, double, double) override {
        if (first_step == 0) first_step = step;
      }
    } count;
    const auto resumed = train_in(cut, count);
    EXPECT_EQ(count.first_epoch, 2);
    EXPECT_EQ(count.first_step, 6);  // the step after the one the stop let finish
    expect_same_history(whole.history, resumed.history);
    expect_same_weights(whole.model, resumed.model);
  }
}

// A stop asked for in an epoch's last step lets the epoch end (validation, history row, checkpoint)
// and says so; a stop asked for before training starts trains nothing.
TEST_F(TrainTest, AStopInTheLastStepEndsTheEpochFirst) {
  config_.train.log_every = 1;
  const std::string message = interrupted_message([&] {
    StopAt stop(1, 0);
    train_in(runs_ / "cut", stop);
  });
  EXPECT_NE(message.find("after epoch 1;"), std::string::npos) << message;
  EXPECT_EQ(testing::lines(testing::read_bytes(runs_ / "cut/history.csv")).size(), 2u);

  struct Steps : TrainObserver {
    int64_t steps = 0;
    void on_progress(int64_t, int64_t, int64_t, double, double, double) override { ++steps; }
  } steps;
  request_stop(SIGTERM);
  try {
    train_in(runs_ / "cut", steps);
    ADD_FAILURE() << "a run asked to stop before it started trained";
  } catch (const Interrupted& e) {
    EXPECT_EQ(e.signal(), SIGTERM);
  }
  clear_stop_request();
  EXPECT_EQ(steps.steps, 0);
}

TEST_F(TrainTest, CorruptCheckpointIsADataErrorNamingIt) {
  TrainObserver quiet;
  InterruptAfter stop(1);
  EXPECT_THROW(train_in(runs_ / "r", stop), Interrupt);
  const std::string ckpt = runs_ / "r/checkpoint.pt";
  std::string bytes = testing::read_bytes(ckpt);
  testing::write_bytes(ckpt, bytes.substr(0, bytes.size() / 2));
  try {
    train_in(runs_ / "r", quiet);
    FAIL() << "a truncated checkpoint was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(ckpt), std::string::npos) << e.what();
  }
  // A checkpoint of another architecture is refused as well.
  testing::write_bytes(ckpt, bytes);
  config_.model.hidden_sizes = {16};
  EXPECT_THROW(train_in(runs_ / "r", quiet), DataError);
}

TEST_F(TrainTest, DivergenceIsAnErrorAndKeepsTheLastGoodCheckpoint) {
  config_.optim.name = "sgd";
  config_.optim.lr = 10.0;
  config_.optim.momentum = 0.99;
  config_.model.hidden_sizes = {256, 256, 256};
  TrainObserver quiet;
  try {
    train_in(runs_ / "nan", quiet);
    FAIL() << "training with lr 10 did not diverge";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(runs_ / "nan/metrics.json"));
}

TEST(Schedule, ConstantStepAndCosine) {
  OptimConfig optim;
  optim.lr = 0.1;
  ScheduleConfig s;
  EXPECT_DOUBLE_EQ(LrSchedule(optim, s, 10, 5).lr_at(37), 0.1);
  s.name = "step";
  s.step_epochs = 2;
  s.gamma = 0.5;
  const LrSchedule step(optim, s, 10, 6);
  EXPECT_DOUBLE_EQ(step.lr_at(19), 0.1);    // epoch 1 (0-based): first interval
  EXPECT_DOUBLE_EQ(step.lr_at(20), 0.05);   // epoch 2
  EXPECT_DOUBLE_EQ(step.lr_at(45), 0.025);  // epoch 4
  s.name = "cosine";
  s.min_lr = 0.01;
  const LrSchedule cosine(optim, s, 10, 4);
  EXPECT_DOUBLE_EQ(cosine.lr_at(0), 0.1);
  EXPECT_NEAR(cosine.lr_at(20), 0.055, 1e-12);  // half way
  EXPECT_NEAR(cosine.lr_at(40), 0.01, 1e-12);
}

TEST(Optimizer, EachKindIsBuiltWithItsOptions) {
  auto w = torch::zeros({3}, torch::requires_grad());
  OptimConfig o;
  for (const char* name : {"adam", "adamw", "sgd"}) {
    o.name = name;
    auto opt = make_optimizer(o, {w});
    set_learning_rate(*opt, 0.25);
    EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.25) << name;
  }
  o.name = "sgd";
  o.momentum = 0.0;
  o.nesterov = true;
  EXPECT_THROW(make_optimizer(o, {w}), UsageError);
}

}  // namespace
}  // namespace mnist
