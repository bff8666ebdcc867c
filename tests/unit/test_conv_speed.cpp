// The CNN fast paths (issue 28): channels-last training and the elastic blur as matrix products.
// Neither is bit-identical to the plain path (oneDNN's NHWC kernels and a matrix product sum in
// other orders), so each is compared with it within a stated tolerance, and with itself bit for
// bit; each is chosen where it should be, and not under MNIST_PLAIN=1 (CI runs this suite both
// ways).

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/data/dataset.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "mnist/train/augment.h"
#include "mnist/train/fused_adam.h"
#include "mnist/train/optim.h"
#include "mnist/train/step_engine.h"
#include "train_fixture.h"

namespace mnist {
namespace {

constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

ModelConfig small_cnn() {
  ModelConfig m;
  m.type = ModelType::kCnn;
  m.channels = {8, 16};
  m.kernel_sizes = {3, 3};
  m.hidden_sizes = {32};
  return m;
}

// A weight of more than one input channel whose two memory orders differ.
bool is_channels_last(const at::Tensor& w) {
  return w.is_contiguous(kChannelsLast) && !w.is_contiguous();
}

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(ChannelsLast, ChosenForCnnsOnTheCpuUnlessTurnedOff) {
  Config c;
  c.model = small_cnn();
  EXPECT_EQ(uses_channels_last(c, torch::kCPU), !plain_paths());
  c.train.channels_last = false;
  EXPECT_FALSE(uses_channels_last(c, torch::kCPU));
  c.train.channels_last = true;
  c.model.type = ModelType::kMlp;
  EXPECT_FALSE(uses_channels_last(c, torch::kCPU));
}

TEST(ChannelsLast, TheSameModelGivesTheSameLogitsWithinRounding) {
  torch::manual_seed(1);
  auto nchw = build_model(small_cnn(), dataset_info(DatasetName::kMnist));
  auto nhwc = build_model(small_cnn(), dataset_info(DatasetName::kMnist));
  {
    torch::NoGradGuard no_grad;
    const auto from = nchw->parameters();
    const auto to = nhwc->parameters();
    for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
  }
  nhwc->set_channels_last(true);
  const auto convs = [](const Classifier& m) {
    std::vector<at::Tensor> out;
    for (const auto& p : m->parameters())
      if (p.dim() == 4 && p.size(1) > 1) out.push_back(p);
    return out;
  };
  ASSERT_FALSE(convs(nhwc).empty());
  for (const auto& w : convs(nhwc)) EXPECT_TRUE(is_channels_last(w));
  for (const auto& w : convs(nchw)) EXPECT_FALSE(is_channels_last(w));
  nchw->eval();
  nhwc->eval();
  const auto x = torch::rand({16, 1, 28, 28});
  EXPECT_LT(max_difference(nchw->forward(x), nhwc->forward(x)), 1e-5);
  nhwc->set_channels_last(false);  // back to NCHW: the same values, the plain order
  for (const auto& w : convs(nhwc)) EXPECT_TRUE(w.is_contiguous());
  EXPECT_LT(max_difference(nchw->forward(x), nhwc->forward(x)), 1e-5);
}

// A few AdamW steps of a small CNN (batch norm, pooling, label smoothing) from the same weights on
// the same batches, the model channels-last or not.
std::vector<at::Tensor> train_steps(bool channels_last, int steps) {
  Config c;
  c.model = small_cnn();
  c.optim.name = Optimizer::kAdamW;
  c.optim.lr = 1e-3;
  c.train.label_smoothing = 0.1;
  torch::manual_seed(2);
  auto model = build_model(c.model, dataset_info(DatasetName::kMnist));
  if (channels_last) model->set_channels_last(true);
  auto optimizer = make_optimizer(c.optim, model->parameters());
  const Head head = Head::training(c);
  model->train();
  torch::manual_seed(3);
  for (int i = 0; i < steps; ++i) {
    const auto x = torch::rand({32, 1, 28, 28});
    const auto y = torch::randint(10, {32}, torch::kLong);
    zero_gradients(*optimizer);
    head.loss(model->forward(x), y).backward();
    optimizer->step();
  }
  std::vector<at::Tensor> out;
  for (const auto& p : model->parameters()) out.push_back(p.detach().contiguous());
  return out;
}

TEST(ChannelsLast, TrainingStepsMatchNchwWithinRoundingAndRepeatBitForBit) {
  const auto plain = train_steps(false, 5);
  const auto fast = train_steps(true, 5);
  const auto again = train_steps(true, 5);
  ASSERT_EQ(plain.size(), fast.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    // Five AdamW steps of lr 1e-3 move a weight by up to 5e-3. Measured: mean differences up to
    // 2.3e-6, the largest single one 6.4e-5 (a weight whose gradient is near 0, where Adam's
    // normalised step turns rounding into direction).
    EXPECT_LT((plain[i] - fast[i]).abs().mean().item<double>(), 1e-5);
    EXPECT_LT(max_difference(plain[i], fast[i]), 2.5e-4);
    EXPECT_TRUE(torch::equal(fast[i], again[i]));
  }
}

TEST(ChannelsLast, FusedAdamKeepsTheOrderAndAdamsBits) {
  torch::manual_seed(4);
  const auto make = [] {
    return std::vector<at::Tensor>{
        torch::randn({8, 4, 3, 3}).contiguous(kChannelsLast).requires_grad_(),
        torch::randn({8}).requires_grad_(), torch::randn({5, 8, 3, 3}).requires_grad_()};
  };
  auto reference = make();
  std::vector<at::Tensor> fused;
  for (const auto& p : reference) {
    fused.push_back(p.detach().clone(at::MemoryFormat::Preserve).requires_grad_());
  }
  const auto options = torch::optim::AdamOptions(1e-2).weight_decay(1e-4);
  torch::optim::Adam adam(reference, options);
  FusedAdam fast(fused, options);
  EXPECT_TRUE(is_channels_last(fused[0]));
  EXPECT_TRUE(is_channels_last(fused[0].grad()));
  for (int step = 0; step < 4; ++step) {
    if (step == 2) {
      // A parameter changing order after the buffers were made (as set_channels_last does).
      torch::NoGradGuard no_grad;
      for (auto* ps : {&reference, &fused}) (*ps)[2].set_data((*ps)[2].contiguous(kChannelsLast));
    }
    for (size_t i = 0; i < reference.size(); ++i) {
      const auto g = torch::randn(reference[i].sizes());
      torch::NoGradGuard no_grad;
      for (auto* ps : {&reference, &fused}) {
        auto& p = (*ps)[i];
        if (p.grad().defined())
          p.mutable_grad().copy_(g);
        else
          p.mutable_grad() = g.clone();
      }
    }
    adam.step();
    fast.step();
    for (size_t i = 0; i < reference.size(); ++i) {
      EXPECT_TRUE(torch::equal(reference[i], fused[i])) << "step " << step << " parameter " << i;
    }
  }
  EXPECT_TRUE(is_channels_last(fused[0]));
  EXPECT_TRUE(is_channels_last(fused[2]));
}

TEST(Augment, BlurByMatmulIsTheConvolutionsFieldWithinRounding) {
  AugmentConfig a;
  a.elastic_alpha = 3.0;
  a.elastic_sigma = 2.5;
  a.rotation = 5;
  AugmentConfig conv = a;
  conv.blur_by_matmul = false;
  // Random pixels everywhere, the borders too: the replicate border is where a smoothing matrix
  // is easiest to get wrong.
  torch::manual_seed(5);
  const auto x = torch::rand({16, 1, 28, 20});
  torch::manual_seed(6);
  const auto by_conv = Augmenter(conv)(x);
  torch::manual_seed(6);
  const auto by_matmul = Augmenter(a)(x);
  torch::manual_seed(6);
  const auto again = Augmenter(a)(x);
  EXPECT_LT(max_difference(by_conv, by_matmul), 1e-4);
  EXPECT_TRUE(torch::equal(by_matmul, again));
  // The displacement is real: the result is not the input.
  EXPECT_GT(max_difference(by_matmul, x), 0.1);
}

// The trainer takes the path: a CNN trained by train_run has channels-last weights (unless
// MNIST_PLAIN), and its results repeat bit for bit.
class ConvTrainTest : public TrainTest {};

TEST_F(ConvTrainTest, CnnTrainsChannelsLastAndRepeatsExactly) {
  config_.model = small_cnn();
  config_.train.epochs = 2;
  TrainObserver quiet;
  const auto a = train_in(runs_ / "a", quiet);
  const auto b = train_in(runs_ / "b", quiet);
  expect_same_history(a.history, b.history);
  expect_same_weights(a.model, b.model);
  EXPECT_GT(a.history.back().val_accuracy, 0.5);
  for (const auto& p : a.model->named_parameters()) {
    if (p.value().dim() == 4 && p.value().size(1) > 1) {
      EXPECT_EQ(is_channels_last(p.value()), !plain_paths()) << p.key();
    }
  }
}

}  // namespace
}  // namespace mnist
