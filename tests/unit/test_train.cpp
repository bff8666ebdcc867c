// The training loop: it learns, it is deterministic, an interrupted run resumes to exactly the
// result of an uninterrupted one, divergence is an error, and a corrupt checkpoint is refused.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/models/factory.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/optim.h"
#include "mnist/train/thread_governor.h"
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

// The governor trains with one thread while other processes' runnable tasks leave too few free
// cores, and goes back after five quiet looks in a row; it puts the configured count back.
TEST(ThreadGovernor, OneThreadWhileTheCoresAreBusyThenBackAfterQuietLooks) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  int others = 0;  // what the governor sees at its next look
  {
    ThreadGovernor g(
        2, true, [&] { return others; }, /*cores=*/4, /*period=*/10);
    const auto steps = [&](int n) {
      for (int i = 0; i < n; ++i) g.step_done();
      return at::get_num_threads();  // what the governor really set
    };
    others = 2;  // 4 cores, 2 busy elsewhere: room for our 2
    EXPECT_EQ(steps(30), 2);
    others = 3;
    EXPECT_EQ(steps(9), 2);  // no look yet
    EXPECT_EQ(steps(1), 1);
    others = 0;
    EXPECT_EQ(steps(40), 1);  // four quiet looks
    EXPECT_EQ(steps(10), 2);  // the fifth
    others = 5;
    EXPECT_EQ(steps(10), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    others = 9;
    ThreadGovernor off(
        2, false, [&] { return others; }, 4, 10);
    for (int i = 0; i < 50; ++i) off.step_done();
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  at::set_num_threads(before);
}

// Processes that keep cores busy (as a compiler would) while alive.
class BusyProcesses {
 public:
  explicit BusyProcesses(int n) {
    for (int i = 0; i < n; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        for (volatile uint64_t x = 0;; x = x + 1) {
        }
      }
      pids_.push_back(pid);
    }
  }
  ~BusyProcesses() {
    for (const pid_t pid : pids_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

 private:
  std::vector<pid_t> pids_;
};

// What the governor counts, on this machine: two busy processes are runnable tasks elsewhere.
TEST(ThreadGovernor, CountsOtherProcessesRunnableTasks) {
  int most = 0;
  {
    const BusyProcesses busy(2);
    for (int i = 0; i < 20; ++i) {
      most = std::max(most, runnable_elsewhere());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_GE(most, 2);
  EXPECT_GE(usable_cores(), 1);
}

// Training while the governor switches between two threads and one gives exactly the results of one
// fixed thread count (the first layer is large enough for the step to split its products).
TEST_F(TrainTest, AdaptiveThreadsDoNotChangeTheResults) {
  const int before = at::get_num_threads();
  config_.model.hidden_sizes = {64};
  config_.train.epochs = 8;  // 256 steps: the look at step 200 sees the busy processes
  TrainObserver quiet;
  // The intra-op threads the steps ran with, seen at every progress report: the governor must have
  // gone from 2 to 1 while the busy processes ran, or this test compares three identical runs.
  struct ThreadsSeen : TrainObserver {
    std::set<int> seen;
    void on_progress(int64_t, int64_t, int64_t, double, double, double) override {
      seen.insert(at::get_num_threads());
    }
  } watched;
  at::set_num_threads(2);
  const auto adaptive = [&] {
    const BusyProcesses busy(2);
    return train_in(runs_ / "adaptive", watched);
  }();
  if (plain_paths()) {
    // The autograd step's results depend on the threads, so there the governor stays off.
    EXPECT_EQ(watched.seen, std::set<int>{2}) << "the governor ran under MNIST_PLAIN";
  } else {
    EXPECT_TRUE(watched.seen.count(2) && watched.seen.count(1))
        << "the governor never switched: threads seen " << ::testing::PrintToString(watched.seen);
  }
  config_.train.adaptive_threads = false;
  const auto two = train_in(runs_ / "two", quiet);
  at::set_num_threads(1);
  const auto one = train_in(runs_ / "one", quiet);
  at::set_num_threads(before);
  expect_same_history(adaptive.history, two.history);
  expect_same_history(adaptive.history, one.history);
  expect_same_weights(adaptive.model, two.model);
  expect_same_weights(adaptive.model, one.model);
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

// One good epoch, then (resumed with lr 10) an epoch that diverges: a RunError, and the good
// epoch's checkpoint and history stay exactly as they were.
TEST_F(TrainTest, DivergenceIsAnErrorAndKeepsTheLastGoodCheckpoint) {
  config_.optim.name = Optimizer::kSgd;
  config_.optim.lr = 0.01;
  config_.optim.momentum = 0.99;
  config_.model.hidden_sizes = {256, 256, 256};
  InterruptAfter stop(1);
  EXPECT_THROW(train_in(runs_ / "nan", stop), Interrupt);
  const std::string checkpoint = testing::read_bytes(runs_ / "nan/checkpoint.pt");
  const std::string history = testing::read_bytes(runs_ / "nan/history.csv");
  ASSERT_EQ(testing::lines(history).size(), 2u);

  config_.optim.lr = 10.0;
  TrainObserver quiet;
  try {
    train_in(runs_ / "nan", quiet);
    FAIL() << "training with lr 10 did not diverge";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at epoch 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(testing::read_bytes(runs_ / "nan/checkpoint.pt"), checkpoint);
  EXPECT_EQ(testing::read_bytes(runs_ / "nan/history.csv"), history);
  EXPECT_FALSE(std::filesystem::exists(runs_ / "nan/metrics.json"));
}

TEST(Schedule, ConstantStepAndCosine) {
  OptimConfig optim;
  optim.lr = 0.1;
  ScheduleConfig s;
  EXPECT_DOUBLE_EQ(LrSchedule(optim, s, 10, 5).lr_at(37), 0.1);
  s.name = Schedule::kStep;
  s.step_epochs = 2;
  s.gamma = 0.5;
  const LrSchedule step(optim, s, 10, 6);
  EXPECT_DOUBLE_EQ(step.lr_at(19), 0.1);    // epoch 1 (0-based): first interval
  EXPECT_DOUBLE_EQ(step.lr_at(20), 0.05);   // epoch 2
  EXPECT_DOUBLE_EQ(step.lr_at(45), 0.025);  // epoch 4
  s.name = Schedule::kCosine;
  s.min_lr = 0.01;
  const LrSchedule cosine(optim, s, 10, 4);
  EXPECT_DOUBLE_EQ(cosine.lr_at(0), 0.1);
  EXPECT_NEAR(cosine.lr_at(20), 0.055, 1e-12);  // half way
  EXPECT_NEAR(cosine.lr_at(40), 0.01, 1e-12);
}

TEST(Optimizer, EachKindIsBuiltWithItsOptions) {
  auto w = torch::zeros({3}, torch::requires_grad());
  OptimConfig o;
  for (const auto name : {Optimizer::kAdam, Optimizer::kAdamW, Optimizer::kSgd}) {
    o.name = name;
    auto opt = make_optimizer(o, {w});
    set_learning_rate(*opt, 0.25);
    EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.25) << name_of(name);
  }
}

// The checkpoint fuzzer's network: a small MLP on the default optimiser, and its config.
struct SmallNetwork {
  ModelConfig config = [] {
    ModelConfig m;
    m.hidden_sizes = {8};
    return m;
  }();
  const DatasetInfo& info = dataset_info(DatasetName::kMnist);
  Classifier model = build_model(config, info);
  std::unique_ptr<torch::optim::Optimizer> optimizer =
      make_optimizer(OptimConfig(), model->parameters());
};

// Every file the checkpoint fuzzer once failed on (LibTorch's reader threw a plain
// std::runtime_error that escaped as a crash) is a DataError naming it, as a checkpoint and as a
// model file, loaded into the fuzzer's network (tests/fuzz/fuzz_checkpoint.cpp).
TEST(Checkpoint, FuzzRegressionsAreDataErrors) {
  SmallNetwork net;
  auto& [m, info, model, optimizer] = net;
  int seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(MNIST_SOURCE_DIR) +
                                                           "/tests/fuzz/regressions/checkpoint")) {
    const std::string path = e.path().string();
    if (e.path().filename().string()[0] == '.') continue;
    ++seen;
    EXPECT_THROW(load_checkpoint_bytes(testing::read_bytes(path), path, *model, *optimizer),
                 DataError)
        << path;
    EXPECT_THROW(load_model(m, info, path), DataError) << path;
  }
  EXPECT_GE(seen, 1);
}

// LibTorch's reader skips the archive members' CRC-32s: without the check in front of it, a changed
// weight loads silently (and a changed TorchScript member can crash its parser).
TEST(Checkpoint, AChangedWeightByteIsRefusedNotLoaded) {
  SmallNetwork net;
  auto& [m, info, model, optimizer] = net;
  testing::TempDir dir;
  const std::string checkpoint = dir / "checkpoint.pt", weights = dir / "model.pt";
  TrainingState state;
  save_checkpoint(checkpoint, *model, *optimizer, state);
  save_model(model, weights);
  const auto first = model->parameters().front().contiguous();
  const std::string needle(static_cast<const char*>(first.data_ptr()),
                           static_cast<size_t>(first.numel()) * first.element_size());
  for (const auto& path : {checkpoint, weights}) {
    std::string bytes = testing::read_bytes(path);
    // The intact files load.
    if (path == checkpoint) {
      EXPECT_NO_THROW(load_checkpoint_bytes(bytes, path, *model, *optimizer));
    } else {
      EXPECT_NO_THROW(load_model(m, info, path));
    }
    const size_t at = bytes.find(needle);
    ASSERT_NE(at, std::string::npos) << path;
    bytes[at + needle.size() / 2] ^= 0x10;
    testing::write_bytes(path, bytes);
    try {
      if (path == checkpoint) {
        load_checkpoint_bytes(bytes, path, *model, *optimizer);
      } else {
        load_model(m, info, path);
      }
      ADD_FAILURE() << path << ": a changed weight loaded";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": corrupt"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace mnist
