// The CNN and the training recipes: each recipe key does what its documentation says, is off by
// default, and survives a resume (augmentation, weight average, early stopping with the best
// weights).

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/eval/metrics.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "mnist/train/augment.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/ema.h"
#include "mnist/train/optim.h"
#include "mnist/train/trainer.h"
#include "support.h"
#include "train_fixture.h"

namespace mnist {
namespace {

ModelConfig cnn_config() {
  ModelConfig m;
  m.type = ModelType::kCnn;
  m.channels = {8, 16};
  m.kernel_sizes = {5, 3};
  m.convs_per_block = 2;
  m.hidden_sizes = {32};
  m.dropout = 0.25;
  return m;
}

TEST(CNN, ShapesFollowTheConfig) {
  auto model = build_model(cnn_config(), dataset_info(DatasetName::kMnist));
  EXPECT_EQ(model->forward(torch::rand({3, 1, 28, 28})).sizes(), torch::IntArrayRef({3, 10}));
  std::vector<std::vector<int64_t>> conv_shapes;
  int64_t batch_norms = 0;
  for (const auto& p : model->named_parameters()) {
    if (p.value().dim() == 4) conv_shapes.push_back(p.value().sizes().vec());
    if (p.key().find("features") != std::string::npos && p.value().dim() == 1) ++batch_norms;
  }
  const std::vector<std::vector<int64_t>> expected = {
      {8, 1, 5, 5}, {8, 8, 5, 5}, {16, 8, 3, 3}, {16, 16, 3, 3}};
  EXPECT_EQ(conv_shapes, expected);
  EXPECT_EQ(batch_norms, 8);  // weight and bias of 4 BatchNorm2d; convolutions have no bias
  // The head sees 16 channels of 7x7 after two 2x2 poolings.
  EXPECT_EQ(model->named_parameters()["head.1.weight"].sizes(),
            torch::IntArrayRef({32, 16 * 7 * 7}));
}

TEST(CNN, GlobalPoolNoBatchNormAvgPoolAndColourInput) {
  auto m = cnn_config();
  m.global_pool = true;
  m.batch_norm = false;
  m.pool = Pool::kAvg;
  m.hidden_sizes = {};
  DatasetInfo colour = dataset_info(DatasetName::kMnist);
  colour.channels = 3;
  auto model = build_model(m, colour);
  EXPECT_EQ(model->forward(torch::rand({2, 3, 28, 28})).sizes(), torch::IntArrayRef({2, 10}));
  EXPECT_EQ(model->named_parameters()["features.0.weight"].sizes(),
            torch::IntArrayRef({8, 3, 5, 5}));
  EXPECT_EQ(model->named_parameters()["head.1.weight"].sizes(), torch::IntArrayRef({10, 16}));
}

TEST(CNN, TooManyPoolingBlocksIsAConfigError) {
  auto m = cnn_config();
  m.channels = {4, 4, 4, 4, 4, 4};
  m.kernel_sizes = {3, 3, 3, 3, 3, 3};
  try {
    build_model(m, dataset_info(DatasetName::kMnist));
    FAIL() << "six 2x2 poolings of 28x28 were accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model.channels"), std::string::npos) << e.what();
  }
  m.pool = Pool::kNone;
  EXPECT_NO_THROW(build_model(m, dataset_info(DatasetName::kMnist)));
}

TEST(CNN, SaveLoadGivesIdenticalOutputsIncludingBatchNormStatistics) {
  TempDir dir;
  torch::manual_seed(1);
  auto model = build_model(cnn_config(), dataset_info(DatasetName::kMnist));
  model->train();
  model->forward(torch::rand({16, 1, 28, 28}));  // moves BatchNorm's running statistics
  model->eval();
  save_model(model, dir / "m.pt");
  auto loaded = load_model(cnn_config(), dataset_info(DatasetName::kMnist), dir / "m.pt");
  loaded->eval();
  const auto x = torch::rand({4, 1, 28, 28});
  EXPECT_TRUE(torch::equal(model->forward(x), loaded->forward(x)));
  ModelConfig mlp;
  EXPECT_THROW(load_model(mlp, dataset_info(DatasetName::kMnist), dir / "m.pt"), DataError);
}

TEST(Augment, OffByDefaultIdentityAtZeroAndSeeded) {
  const auto x = torch::rand({4, 1, 28, 28});
  AugmentConfig off;
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(torch::equal(Augmenter(off)(x), x));

  AugmentConfig on;
  on.rotation = 15;
  on.translate = 0.1;
  on.scale = 0.1;
  on.shear = 10;
  on.elastic_alpha = 8;
  const Augmenter augment(on);
  torch::manual_seed(5);
  const auto a = augment(x);
  torch::manual_seed(5);
  const auto b = augment(x);
  EXPECT_TRUE(torch::equal(a, b));  // the same seed gives the same transforms
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_FALSE(torch::allclose(a, x));
  EXPECT_GE(a.min().item<float>(), 0.0f);
  EXPECT_LE(a.max().item<float>(), 1.0f + 1e-5f);
}

TEST(Augment, ShiftMovesTheMassAndRotationKeepsIt) {
  // A bright square in the middle of a black frame.
  auto x = torch::zeros({64, 1, 28, 28});
  x.narrow(2, 10, 8).narrow(3, 10, 8).fill_(1.0);
  const auto centre_x = [](const at::Tensor& t) {
    const auto cols = torch::arange(28, torch::kFloat32).view({1, 1, 1, 28});
    return ((t * cols).sum({1, 2, 3}) / t.sum({1, 2, 3}));
  };
  AugmentConfig shift;
  shift.translate = 0.2;  // up to 5.6 px
  torch::manual_seed(1);
  const auto moved = centre_x(Augmenter(shift)(x)) - 13.5;
  EXPECT_GT(moved.abs().max().item<double>(), 2.0);
  EXPECT_LE(moved.abs().max().item<double>(), 5.6 + 0.6);
  AugmentConfig rotate;
  rotate.rotation = 30;
  torch::manual_seed(1);
  const auto rotated = Augmenter(rotate)(x);
  EXPECT_LT((centre_x(rotated) - 13.5).abs().max().item<double>(), 0.3);
  EXPECT_NEAR(rotated.sum().item<double>() / 64, 64.0, 8.0);  // ink is kept, not lost
}

TEST(Augment, HorizontalFlipMirrorsAboutHalfTheImages) {
  auto x = torch::zeros({200, 1, 28, 28});
  x.narrow(3, 0, 7).fill_(1.0);  // ink in the left quarter only
  AugmentConfig flip;
  flip.hflip = true;
  EXPECT_TRUE(flip.enabled());
  torch::manual_seed(3);
  const auto y = Augmenter(flip)(x);
  const auto left = y.narrow(3, 0, 14).sum({1, 2, 3}), right = y.narrow(3, 14, 14).sum({1, 2, 3});
  const auto mirrored = right.gt(left);
  const auto kept = left.gt(right);
  EXPECT_EQ((mirrored.logical_or(kept)).sum().item<int64_t>(), 200);  // each image one or the other
  EXPECT_NEAR(mirrored.sum().item<double>(), 100.0, 25.0);
  EXPECT_TRUE(torch::allclose(y.sum({1, 2, 3}), x.sum({1, 2, 3}), 1e-3, 1e-3));  // exact mirror
}

TEST(Schedule, WarmupThenCosineAndOneCycle) {
  OptimConfig optim;
  optim.lr = 0.1;
  ScheduleConfig s;
  s.name = Schedule::kCosine;
  s.warmup_epochs = 1;
  const LrSchedule warm(optim, s, 10, 5);
  EXPECT_NEAR(warm.lr_at(0), 0.01, 1e-12);  // rises linearly from 0 over 10 steps
  EXPECT_NEAR(warm.lr_at(4), 0.05, 1e-12);
  EXPECT_NEAR(warm.lr_at(10), 0.1, 1e-12);  // then cosine over the remaining 40 steps
  EXPECT_NEAR(warm.lr_at(30), 0.05, 1e-12);
  EXPECT_NEAR(warm.lr_at(50), 0.0, 1e-12);

  s = ScheduleConfig();
  s.name = Schedule::kOneCycle;
  s.pct_start = 0.25;
  s.div_factor = 10;
  s.final_div_factor = 100;
  const LrSchedule one(optim, s, 10, 4);  // 40 steps, peak at step 10
  EXPECT_NEAR(one.lr_at(0), 0.01, 1e-12);
  EXPECT_NEAR(one.lr_at(5), 0.055, 1e-12);
  EXPECT_NEAR(one.lr_at(10), 0.1, 1e-12);
  EXPECT_NEAR(one.lr_at(25), (0.1 + 1e-4) / 2, 1e-12);
  EXPECT_NEAR(one.lr_at(40), 1e-4, 1e-12);
  for (int64_t i = 11; i < 40; ++i) EXPECT_LT(one.lr_at(i), one.lr_at(i - 1));
}

TEST(Loss, LabelSmoothingMatchesHandComputedValues) {
  const auto z = torch::tensor({{2.0, 0.0, -1.0}});
  const auto y = torch::tensor({0}, torch::kInt64);
  const auto p = torch::softmax(z, 1);
  const double s = 0.3;
  // Target 1 - s + s/3 on class 0 and s/3 on the others.
  const double expected =
      -((1 - s + s / 3) * std::log(p[0][0].item<double>()) +
        s / 3 * std::log(p[0][1].item<double>()) + s / 3 * std::log(p[0][2].item<double>()));
  EXPECT_NEAR(Head(OutputHead::kSoftmax, s).loss(z, y).item<double>(), expected, 1e-6);
  EXPECT_NEAR(Head(OutputHead::kSoftmax).loss(z, y).item<double>(),
              -std::log(p[0][0].item<double>()), 1e-6);
  // Evaluation's per-sample losses are never smoothed.
  EXPECT_NEAR(Head(OutputHead::kSoftmax, s).loss_per_sample(z, y)[0].item<double>(),
              -std::log(p[0][0].item<double>()), 1e-6);
}

TEST(WeightDecay, ShrinksWeightsWithoutGradient) {
  for (const auto name : {Optimizer::kAdam, Optimizer::kAdamW, Optimizer::kSgd}) {
    auto w = torch::ones({4}, torch::requires_grad());
    OptimConfig o;
    o.name = name;
    o.lr = 0.01;
    o.weight_decay = 0.1;
    auto opt = make_optimizer(o, {w});
    for (int i = 0; i < 5; ++i) {
      opt->zero_grad();
      (w * 0.0).sum().backward();  // a zero gradient: only the decay moves the weights
      opt->step();
    }
    EXPECT_LT(w.max().item<double>(), 1.0 - 1e-4) << name_of(name);
  }
}

TEST(WeightAverage, FollowsTheModelWithTheRampedDecay) {
  ModelConfig m;
  m.hidden_sizes = {};
  auto model = build_model(m, dataset_info(DatasetName::kMnist));
  auto copy = build_model(m, dataset_info(DatasetName::kMnist));
  WeightAverage average(copy, *model, 0.9);
  const auto start = model->parameters()[1].detach().clone();
  EXPECT_TRUE(torch::equal(average.model()->parameters()[1], start));
  {
    torch::NoGradGuard no_grad;
    model->parameters()[1].add_(1.0);
  }
  average.update(*model);  // decay min(0.9, 2/11)
  const double d = 2.0 / 11.0;
  EXPECT_TRUE(torch::allclose(average.model()->parameters()[1], start + (1 - d), 1e-6, 1e-6));
  for (int i = 0; i < 200; ++i) average.update(*model);
  EXPECT_TRUE(torch::allclose(average.model()->parameters()[1], start + 1.0, 1e-5, 1e-5));
  EXPECT_EQ(average.updates(), 201);
}

TEST(EarlyStopping, BestEpochAndPatience) {
  std::vector<EpochStats> h(5);
  const double acc[] = {0.90, 0.95, 0.951, 0.94, 0.93};
  const double loss[] = {0.5, 0.3, 0.31, 0.2, 0.4};
  for (int i = 0; i < 5; ++i) {
    h[i].epoch = i + 1;
    h[i].val_accuracy = acc[i];
    h[i].val_loss = loss[i];
  }
  EarlyStoppingConfig rule;
  EXPECT_EQ(best_epoch(h, rule), 3);
  rule.min_delta = 0.005;  // 0.951 is not enough of an improvement on 0.95
  EXPECT_EQ(best_epoch(h, rule), 2);
  rule.patience = 3;
  EXPECT_TRUE(patience_ran_out(h, rule));
  rule.patience = 4;
  EXPECT_FALSE(patience_ran_out(h, rule));
  rule = EarlyStoppingConfig();
  rule.monitor = Monitor::kValLoss;
  EXPECT_EQ(best_epoch(h, rule), 4);
  EXPECT_FALSE(patience_ran_out(h, rule));  // patience 0: never stops early
}

// The training fixture of test_train.cpp, with four epochs.
class RecipeTrainTest : public TrainTest {
 protected:
  void SetUp() override {
    TrainTest::SetUp();
    config_.train.epochs = 4;
  }
};

TEST_F(RecipeTrainTest, WholeRecipeOnACnnLearnsAndResumesExactly) {
  config_.model = cnn_config();
  config_.augment.rotation = 10;
  config_.augment.translate = 0.1;
  config_.augment.elastic_alpha = 2;
  config_.train.label_smoothing = 0.1;
  config_.train.ema_decay = 0.9;
  config_.optim.name = Optimizer::kAdamW;
  config_.optim.weight_decay = 0.01;
  config_.schedule.name = Schedule::kOneCycle;
  TrainObserver quiet;
  const auto whole = train_in(runs_ / "whole", quiet);
  ASSERT_EQ(whole.history.size(), 4u);
  EXPECT_GT(whole.history.back().val_accuracy, 0.8);
  EXPECT_TRUE(std::filesystem::exists(runs_ / "whole/best_model.pt"));

  InterruptAfter stop(2);
  EXPECT_THROW(train_in(runs_ / "cut", stop), Interrupt);
  const auto resumed = train_in(runs_ / "cut", quiet);
  expect_same_history(whole.history, resumed.history);
  expect_same_weights(whole.model, resumed.model);

  // Stopped in the middle of an epoch (Ctrl-C): the augmentation's and dropout's generators, the
  // weight average and the schedule's place are kept too.
  config_.train.log_every = 1;
  EXPECT_NE(interrupted_message([&] {
              StopAt at(3, 4);
              train_in(runs_ / "mid", at);
            }).find("in epoch 3 after step 4"),
            std::string::npos);
  const auto mid = train_in(runs_ / "mid", quiet);
  expect_same_history(whole.history, mid.history);
  expect_same_weights(whole.model, mid.model);
}

TEST_F(RecipeTrainTest, EmaResultIsTheAverageNotTheLastWeights) {
  config_.train.ema_decay = 0.99;
  TrainObserver quiet;
  const auto r = train_in(runs_ / "ema", quiet);
  // The returned model is the average: it differs from the raw weights in the checkpoint.
  auto raw = build_model(config_.model, splits_.info);
  auto opt = make_optimizer(config_.optim, raw->parameters());
  auto avg = build_model(config_.model, splits_.info);
  load_checkpoint(runs_ / "ema/checkpoint.pt", *raw, *opt, avg.get());
  EXPECT_FALSE(torch::equal(raw->parameters()[0], r.model->parameters()[0]));
  EXPECT_TRUE(torch::equal(avg->parameters()[0], r.model->parameters()[0]));
  // A checkpoint without an average is refused when the config wants one.
  config_.train.ema_decay = 0.0;
  const auto plain = train_in(runs_ / "plain", quiet);
  EXPECT_THROW(load_checkpoint(runs_ / "plain/checkpoint.pt", *raw, *opt, avg.get()), DataError);
}

TEST_F(RecipeTrainTest, EarlyStoppingStopsAndRestoresTheBestEpoch) {
  config_.train.epochs = 30;
  config_.early_stopping.patience = 2;
  config_.early_stopping.monitor = Monitor::kValLoss;
  config_.early_stopping.restore_best = true;
  config_.early_stopping.min_delta = 10.0;  // no later epoch counts as an improvement on the first
  TrainObserver quiet;
  const auto r = train_in(runs_ / "es", quiet);
  ASSERT_TRUE(r.stopped_early);
  ASSERT_EQ(r.history.size(), 3u);
  EXPECT_EQ(r.best_epoch, 1);
  EXPECT_EQ(r.model_epoch, r.best_epoch);
  // The returned weights are the best epoch's: validating them gives that epoch's loss.
  const auto val = evaluate(*r.model, splits_.val, Head(), 10, torch::kCPU, 1000);
  EXPECT_NEAR(val.loss, r.history[static_cast<size_t>(r.best_epoch - 1)].val_loss, 1e-9);
  // Resuming a stopped run trains nothing more.
  struct Count : TrainObserver {
    int epochs = 0;
    void on_epoch_end(const EpochStats&) override { ++epochs; }
  } count;
  const auto again = train_in(runs_ / "es", count);
  EXPECT_EQ(count.epochs, 0);
  EXPECT_EQ(again.best_epoch, r.best_epoch);
}

TEST(MatchChannels, ColourToGrayAndGrayToColour) {
  auto rgb = torch::zeros({1, 2, 2, 3}, torch::kUInt8);
  rgb.select(3, 0).fill_(255);  // pure red
  const auto gray = match_channels(rgb, 1);
  EXPECT_EQ(gray.sizes(), torch::IntArrayRef({1, 2, 2}));
  EXPECT_EQ(gray[0][0][0].item<int>(), 76);  // 0.299 * 255
  const auto three = match_channels(gray, 3);
  EXPECT_EQ(three.sizes(), torch::IntArrayRef({1, 2, 2, 3}));
  EXPECT_EQ(to_model_input(three).sizes(), torch::IntArrayRef({1, 3, 2, 2}));
  EXPECT_TRUE(torch::equal(match_channels(gray, 1), gray));
}

}  // namespace
}  // namespace mnist
