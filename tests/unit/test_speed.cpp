// The speed work changes no number: FusedAdam against torch::optim::Adam, the written-out MLP step
// against autograd, and whole training runs with each switched off, all compared bit for bit.

#include <cmath>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/core/small_gemm.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "mnist/models/mlp.h"
#include "mnist/train/epoch_meter.h"
#include "mnist/train/fused_adam.h"
#include "mnist/train/mlp_step.h"
#include "mnist/train/optim.h"
#include "mnist/train/step_engine.h"
#include "train_fixture.h"

namespace mnist {
namespace {

// Parameter shapes of the tutorial's network and some whose sizes leave vector remainders.
std::vector<at::Tensor> parameters_like(const std::vector<std::vector<int64_t>>& shapes) {
  std::vector<at::Tensor> out;
  for (const auto& s : shapes) out.push_back(torch::randn(s).requires_grad_());
  return out;
}

std::vector<at::Tensor> copies(const std::vector<at::Tensor>& ps) {
  std::vector<at::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

void set_gradients(std::vector<at::Tensor>& ps, const std::vector<at::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].grad().defined())
      ps[i].mutable_grad().copy_(grads[i]);
    else
      ps[i].mutable_grad() = grads[i].clone();
  }
}

void expect_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i]))
        << what << " " << i << ": max difference " << (a[i] - b[i]).abs().max().item<float>();
  }
}

class FusedAdamTest : public ::testing::TestWithParam<double> {};

TEST_P(FusedAdamTest, StepsAreBitIdenticalToTorchAdam) {
  torch::manual_seed(3);
  const std::vector<std::vector<int64_t>> shapes = {{150, 784}, {150}, {50, 150}, {50},
                                                    {10, 50},   {10},  {7},       {3, 5}};
  auto reference = parameters_like(shapes);
  auto fused = copies(reference);
  const auto options = torch::optim::AdamOptions(1e-3).eps(1e-7).weight_decay(GetParam());
  torch::optim::Adam adam(reference, options);
  FusedAdam fast(fused, options);
  for (int step = 0; step < 6; ++step) {
    std::vector<at::Tensor> grads;
    for (const auto& s : shapes) grads.push_back(torch::randn(s) * (step + 1));
    set_gradients(reference, grads);
    set_gradients(fused, grads);
    adam.step();
    fast.step();
    expect_equal(reference, fused, "parameter after step " + std::to_string(step));
  }
}

INSTANTIATE_TEST_SUITE_P(WeightDecay, FusedAdamTest, ::testing::Values(0.0, 1e-4));

TEST(FusedAdam, ParametersAndGradientsAreViewsOfOneBuffer) {
  auto ps = parameters_like({{4, 3}, {4}, {2, 4}});
  FusedAdam adam(ps, torch::optim::AdamOptions(0.1));
  const auto* base = ps.front().data_ptr<float>();
  EXPECT_EQ(ps[1].data_ptr<float>(), base + 12);
  EXPECT_EQ(ps[2].data_ptr<float>(), base + 16);
  const auto* grad_base = ps.front().grad().data_ptr<float>();
  EXPECT_EQ(ps[2].grad().data_ptr<float>(), grad_base + 16);
  adam.zero_gradients();
  for (const auto& p : ps) EXPECT_EQ(p.grad().abs().sum().item<float>(), 0.0f);
}

TEST(FusedAdam, ReplacedTensorsAreTakenBackIntoTheBuffers) {
  // What loading a checkpoint does: parameters and moments become other tensors.
  torch::manual_seed(4);
  auto reference = parameters_like({{6, 5}, {6}});
  auto fused = copies(reference);
  const auto options = torch::optim::AdamOptions(0.01);
  torch::optim::Adam adam(reference, options);
  FusedAdam fast(fused, options);
  const std::vector<at::Tensor> grads = {torch::randn({6, 5}), torch::randn({6})};
  set_gradients(reference, grads);
  set_gradients(fused, grads);
  adam.step();
  fast.step();
  {
    torch::NoGradGuard no_grad;
    fused[0].set_(fused[0].detach().clone());  // as InputArchive::read does
    fused[1].mutable_grad() = at::Tensor();    // a gradient set to none (LibTorch 2.x zero_grad)
  }
  set_gradients(reference, grads);
  set_gradients(fused, grads);
  adam.step();
  fast.step();
  expect_equal(reference, fused, "parameter");
}

// With MNIST_PLAIN set (CI runs this suite both ways) every fast path is off.
TEST(FusedAdam, ConfigChoosesItForAdamUnlessTurnedOff) {
  auto ps = parameters_like({{3, 2}});
  OptimConfig o;
  EXPECT_EQ(dynamic_cast<FusedAdam*>(make_optimizer(o, ps).get()) != nullptr, !plain_paths());
  o.fused = false;
  EXPECT_EQ(dynamic_cast<FusedAdam*>(make_optimizer(o, ps).get()), nullptr);
  o.fused = true;
  o.name = Optimizer::kAdamW;
  EXPECT_EQ(dynamic_cast<FusedAdam*>(make_optimizer(o, ps).get()), nullptr);
}

// Gradients from loss.backward() on the same model, for comparison.
std::vector<at::Tensor> autograd_gradients(Classifier& model, const at::Tensor& x,
                                           const at::Tensor& y, OutputHead output,
                                           at::Tensor* logits_out, at::Tensor* loss_out) {
  for (auto& p : model->parameters()) p.mutable_grad() = at::Tensor();
  const auto logits = model->forward(x);
  const auto loss = Head(output).loss(logits, y);
  loss.backward();
  *logits_out = logits.detach();
  *loss_out = loss.detach();
  std::vector<at::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

class MLPStepTest : public ::testing::TestWithParam<OutputHead> {};

TEST_P(MLPStepTest, GradientsLossAndLogitsAreBitIdenticalToAutograd) {
  torch::manual_seed(5);
  Config config;
  config.model.hidden_sizes = {150, 50};
  config.model.output = GetParam();
  config.train.own_kernels = false;  // the BLAS's products only (see OwnKernels below)
  auto model = build_model(config.model, dataset_info(DatasetName::kMnist));
  auto step = MLPStep::create(config, model, 32);
  ASSERT_NE(step, nullptr);
  for (const int64_t batch : {32, 24}) {  // a full batch and the epoch's last, partial one
    const auto x = torch::rand({batch, 1, 28, 28});
    const auto y = torch::randint(0, 10, {batch}, torch::kInt64);
    at::Tensor logits, loss;
    const auto expected = autograd_gradients(model, x, y, config.model.output, &logits, &loss);
    const auto [fast_logits, fast_loss] = step->forward_backward(x, y);
    EXPECT_TRUE(torch::equal(fast_logits, logits)) << "batch " << batch;
    EXPECT_TRUE(torch::equal(fast_loss, loss)) << "batch " << batch;
    std::vector<at::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad());
    expect_equal(expected, grads, "gradient of parameter");
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, MLPStepTest,
                         ::testing::Values(OutputHead::kSigmoid, OutputHead::kSoftmax));

class MLPStepThreads : public ::testing::TestWithParam<bool> {};

TEST_P(MLPStepThreads, TwoThreadsGiveTheSameGradientsAsOne) {
  // Two threads split the large products (the BLAS's where it is exact in halves, else the own
  // kernels, else none); every output is still the same sum.
  torch::manual_seed(6);
  Config config;
  config.train.own_kernels = GetParam();
  auto model = build_model(config.model, dataset_info(DatasetName::kMnist));
  const int before = at::get_num_threads();
  for (const int64_t batch : {32, 23}) {
    const auto x = torch::rand({batch, 1, 28, 28});
    const auto y = torch::randint(0, 10, {batch}, torch::kInt64);
    std::vector<std::vector<at::Tensor>> grads;
    std::vector<at::Tensor> logits;
    for (const int threads : {1, 2}) {
      at::set_num_threads(threads);
      auto step = MLPStep::create(config, model, 32);
      logits.push_back(step->forward_backward(x, y).first.clone());
      grads.emplace_back();
      for (const auto& p : model->parameters()) grads.back().push_back(p.grad().clone());
    }
    EXPECT_TRUE(torch::equal(logits[0], logits[1])) << "batch " << batch;
    expect_equal(grads[0], grads[1], "gradient of parameter");
  }
  at::set_num_threads(before);
}

INSTANTIATE_TEST_SUITE_P(OwnKernels, MLPStepThreads, ::testing::Bool());

// The BLAS's forward product and weight gradient of a layer, as autograd computes them.
at::Tensor blas_forward(const at::Tensor& a, const at::Tensor& w, const at::Tensor& bias) {
  return at::addmm(bias, a, w.t());
}

// Within rounding of the BLAS: each element off by at most 8 units of float's epsilon times the
// sum of its terms' magnitudes (two orders of a float sum differ by less than k eps sum|terms| in
// the worst case; random data stays far below it, so 8 eps catches a wrong term, not rounding).
void expect_within_rounding(const at::Tensor& own, const at::Tensor& blas,
                            const at::Tensor& magnitude, const std::string& what) {
  const auto bound = magnitude * (8 * std::numeric_limits<float>::epsilon()) + 1e-30;
  const auto excess = ((own - blas).abs() / bound).max().item<float>();
  EXPECT_LE(excess, 1.0f) << what << ": off by " << excess << " x the bound";
}

TEST(SmallGemm, MatchesTheBlasWithinRoundingOnAwkwardShapes) {
  if (!small_gemm::available()) MNIST_SKIP_OR_REQUIRE("this CPU has no AVX2 with FMA");
  torch::manual_seed(11);
  for (const int64_t m : {1, 2, 4, 32}) {
    for (const int64_t k : {1, 7, 8, 23, 784}) {
      for (const int64_t n : {1, 5, 7, 150}) {
        const auto a = torch::randn({m, k}), w = torch::randn({n, k}), bias = torch::randn({n});
        const auto g = torch::randn({m, n});
        auto out = torch::empty({m, n}), gw = torch::empty({n, k});
        small_gemm::linear_forward(a.data_ptr<float>(), k, w.data_ptr<float>(), k,
                                   bias.data_ptr<float>(), out.data_ptr<float>(), n, m, k, 0, n);
        small_gemm::linear_weight_grad(g.data_ptr<float>(), n, a.data_ptr<float>(), k,
                                       gw.data_ptr<float>(), k, m, k, 0, n);
        const std::string shape =
            std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n);
        expect_within_rounding(out, blas_forward(a, w, bias),
                               at::addmm(bias.abs(), a.abs(), w.abs().t()), "forward " + shape);
        expect_within_rounding(gw, g.t().mm(a), g.abs().t().mm(a.abs()), "gradient " + shape);
      }
    }
  }
}

TEST(SmallGemm, AnyCutGivesTheWholeProductsBits) {
  // What lets two threads share the products: each element's sum is the same wherever the
  // features are cut (the BLAS's AVX2 kernels fail this at every cut; see mlp_step.cpp).
  if (!small_gemm::available()) MNIST_SKIP_OR_REQUIRE("this CPU has no AVX2 with FMA");
  torch::manual_seed(12);
  const int64_t m = 31, k = 787, n = 29;  // remainders in every tile loop
  const auto a = torch::randn({m, k}), w = torch::randn({n, k}), bias = torch::randn({n});
  const auto g = torch::randn({m, n});
  auto whole = torch::empty({m, n}), whole_gw = torch::empty({n, k});
  small_gemm::linear_forward(a.data_ptr<float>(), k, w.data_ptr<float>(), k, bias.data_ptr<float>(),
                             whole.data_ptr<float>(), n, m, k, 0, n);
  small_gemm::linear_weight_grad(g.data_ptr<float>(), n, a.data_ptr<float>(), k,
                                 whole_gw.data_ptr<float>(), k, m, k, 0, n);
  for (int64_t cut = 1; cut < n; ++cut) {
    auto out = torch::full({m, n}, -1.0f), gw = torch::full({n, k}, -1.0f);
    for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, cut}, {cut, n}}) {
      small_gemm::linear_forward(a.data_ptr<float>(), k, w.data_ptr<float>(), k,
                                 bias.data_ptr<float>(), out.data_ptr<float>(), n, m, k, begin,
                                 end);
      small_gemm::linear_weight_grad(g.data_ptr<float>(), n, a.data_ptr<float>(), k,
                                     gw.data_ptr<float>(), k, m, k, begin, end);
    }
    EXPECT_TRUE(torch::equal(out, whole)) << "forward cut at " << cut;
    EXPECT_TRUE(torch::equal(gw, whole_gw)) << "gradient cut at " << cut;
  }
  // The first rows alone give the first rows' bits too (the epoch's last, partial batch).
  auto first_rows = torch::empty({5, n});
  small_gemm::linear_forward(a.data_ptr<float>(), k, w.data_ptr<float>(), k, bias.data_ptr<float>(),
                             first_rows.data_ptr<float>(), n, 5, k, 0, n);
  EXPECT_TRUE(torch::equal(first_rows, whole.narrow(0, 0, 5)));
}

// True when this BLAS gives a 32 x 784 x 150 layer's forward product the whole product's bits
// in two halves of the features (the test's own probe, not the step's).
bool blas_exact_in_halves() {
  torch::manual_seed(13);
  const auto a = torch::randn({32, 784}), w = torch::randn({150, 784}), bias = torch::randn({150});
  const auto whole = blas_forward(a, w, bias);
  const auto halves = torch::cat({blas_forward(a, w.narrow(0, 0, 75), bias.narrow(0, 0, 75)),
                                  blas_forward(a, w.narrow(0, 75, 75), bias.narrow(0, 75, 75))},
                                 1);
  return torch::equal(whole, halves);
}

TEST(MLPStep, OwnKernelsWhereTheBlasCannotSplitAndNeverUnderPlain) {
  Config config;
  auto model = build_model(config.model, dataset_info(DatasetName::kMnist));
  const bool expected = !plain_paths() && small_gemm::available() && !blas_exact_in_halves();
  auto step = MLPStep::create(config, model, 32);
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->products(0, 32) == MLPStep::Products::kOwnHalves, expected);
  EXPECT_NE(step->products(1, 32), MLPStep::Products::kOwnHalves);  // 150 x 50: too small
  config.train.own_kernels = false;
  step = MLPStep::create(config, model, 32);
  EXPECT_NE(step->products(0, 32), MLPStep::Products::kOwnHalves);
}

TEST(MLPStep, OwnKernelsGiveAutogradsGradientsWithinRounding) {
  if (!small_gemm::available()) MNIST_SKIP_OR_REQUIRE("this CPU has no AVX2 with FMA");
  torch::manual_seed(14);
  Config config;
  auto model = build_model(config.model, dataset_info(DatasetName::kMnist));
  const auto x = torch::rand({32, 1, 28, 28});
  const auto y = torch::randint(0, 10, {32}, torch::kInt64);
  at::Tensor logits, loss;
  const auto expected = autograd_gradients(model, x, y, config.model.output, &logits, &loss);
  auto step = MLPStep::create(config, model, 32);
  const auto [fast_logits, fast_loss] = step->forward_backward(x, y);
  EXPECT_TRUE(torch::allclose(fast_logits, logits, 1e-5, 1e-6));
  EXPECT_NEAR(fast_loss.item<float>(), loss.item<float>(), 1e-6);
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto diff = (params[i].grad() - expected[i]).abs().max().item<float>();
    const auto scale = expected[i].abs().max().item<float>();
    EXPECT_LE(diff, 1e-5f * scale) << "gradient of parameter " << i;
  }
}

TEST(MLPStep, OnlyForWhatItWritesOut) {
  Config config;
  const auto& info = dataset_info(DatasetName::kMnist);
  const auto covered = [&](const Config& c) {
    return MLPStep::create(c, build_model(c.model, info), 8) != nullptr;
  };
  EXPECT_TRUE(covered(config));
  Config c = config;
  c.train.fast_step = false;
  EXPECT_FALSE(covered(c));
  c = config;
  c.model.dropout = 0.2;
  EXPECT_FALSE(covered(c));
  c = config;
  c.model.activation = Activation::kTanh;
  EXPECT_FALSE(covered(c));
  c = config;
  c.model.output = OutputHead::kSoftmax;
  c.train.label_smoothing = 0.1;
  EXPECT_FALSE(covered(c));
  c = config;
  c.model.type = ModelType::kCnn;
  c.model.channels = {4};
  c.model.kernel_sizes = {3};
  EXPECT_FALSE(covered(c));
}

// The trainer's engine: the written-out step where it covers the config, unless MNIST_PLAIN is set
// (CI runs this suite both ways); autograd otherwise. Both give the same logits and loss.
TEST(StepEngine, WrittenOutUnlessPlainElseAutograd) {
  torch::manual_seed(8);
  Config config;
  config.train.own_kernels = false;  // the BLAS's products, autograd's bits
  auto model = build_model(config.model, dataset_info(DatasetName::kMnist));
  auto optimizer = make_optimizer(config.optim, model->parameters());
  auto engine = make_step_engine(config, model, *optimizer, 16);
  EXPECT_EQ(engine->thread_count_free(), !plain_paths());  // only the written-out step is
  Config cnn = config;
  cnn.model.type = ModelType::kCnn;
  cnn.model.channels = {4};
  cnn.model.kernel_sizes = {3};
  auto cnn_model = build_model(cnn.model, dataset_info(DatasetName::kMnist));
  auto cnn_optimizer = make_optimizer(cnn.optim, cnn_model->parameters());
  EXPECT_FALSE(make_step_engine(cnn, cnn_model, *cnn_optimizer, 16)->thread_count_free());

  const auto x = torch::rand({16, 1, 28, 28});
  const auto y = torch::randint(0, 10, {16}, torch::kInt64);
  const auto [logits, loss] = engine->forward_backward(x, y);
  at::Tensor expected_logits, expected_loss;
  const auto grads =
      autograd_gradients(model, x, y, config.model.output, &expected_logits, &expected_loss);
  EXPECT_TRUE(torch::equal(logits, expected_logits));
  EXPECT_TRUE(torch::equal(loss, expected_loss));
}

// The epoch meter's host loop counts right answers as torch's argmax finds them: the first of
// equal values, NaN as the largest.
TEST(EpochMeter, CountCorrectIsTorchsArgmaxOnTiesAndNaN) {
  const float nan = std::nanf("");
  const auto z = torch::tensor({1.f, 3.f, 3.f,  nan, 5.f,  1.f, 1.f, nan, nan, 2.f, 2.f,
                                2.f, 0.f, -1.f, 4.f, -nan, 0.f, 7.f, 5.f, 5.f, nan})
                     .view({7, 3});
  for (int64_t row = 0; row < z.size(0); ++row) {
    for (int64_t label = 0; label < 3; ++label) {
      const auto logits = z.narrow(0, row, 1);
      const auto labels = torch::tensor({label}, torch::kInt64);
      EXPECT_EQ(count_correct(logits, labels), logits.argmax(1).eq(labels).sum().item<int64_t>())
          << "row " << row << ", label " << label;
    }
  }
  const auto labels = torch::tensor({1, 0, 1, 0, 2, 0, 2}, torch::kInt64);
  EXPECT_EQ(count_correct(z, labels), z.argmax(1).eq(labels).sum().item<int64_t>());
  EpochMeter meter(torch::kCPU);
  meter.add(torch::tensor(0.5f), z, labels, 7);
  EXPECT_EQ(meter.correct(), z.argmax(1).eq(labels).sum().item<int64_t>());
  EXPECT_DOUBLE_EQ(meter.loss_sum(), 3.5);
}

TEST(MLP, ForwardWithoutGradientsGivesTheModuleChainsBits) {
  torch::manual_seed(7);
  ModelConfig m;
  auto model = build_model(m, dataset_info(DatasetName::kMnist));
  for (const int64_t batch : {1, 32, 1000}) {
    const auto x = torch::rand({batch, 1, 28, 28});
    const auto with_autograd = model->forward(x).detach();  // through nn::Sequential
    at::Tensor direct;
    {
      torch::InferenceMode guard;
      direct = model->forward(x);
    }
    EXPECT_TRUE(torch::equal(direct, with_autograd)) << "batch " << batch;
  }
  // Two threads split large batches; every logit is still the same sum.
  const auto x = torch::rand({1000, 1, 28, 28});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto one_thread = model->forward(x).detach();
  at::set_num_threads(2);
  at::Tensor two_threads;
  {
    torch::InferenceMode guard;
    two_threads = model->forward(x);
  }
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(two_threads, one_thread));
}

// Whole runs: the fast paths change the speed, not one bit of the result.
class FastPathRun : public TrainTest {};

TEST_F(FastPathRun, SameHistoryAndWeightsAsAutogradAndTorchAdam) {
  // The fast paths are really taken by this config, and really off in the second run ...
  {
    torch::manual_seed(1);
    auto model = build_model(config_.model, splits_.info);
    EXPECT_NE(MLPStep::create(config_, model, config_.train.batch_size), nullptr);
    auto optimizer = make_optimizer(config_.optim, model->parameters());
    // ... unless MNIST_PLAIN turns every fast path off (CI runs this suite both ways).
    EXPECT_EQ(dynamic_cast<FusedAdam*>(optimizer.get()) != nullptr, !plain_paths());
    EXPECT_EQ(make_step_engine(config_, model, *optimizer, 8)->thread_count_free(), !plain_paths());
    Config off = config_;
    off.train.fast_step = false;
    off.optim.fused = false;
    EXPECT_EQ(MLPStep::create(off, model, off.train.batch_size), nullptr);
    EXPECT_EQ(dynamic_cast<FusedAdam*>(make_optimizer(off.optim, model->parameters()).get()),
              nullptr);
  }
  TrainObserver quiet;
  config_.train.own_kernels = false;  // rounds differently by design (OwnKernelRun below)
  const auto fast = train_in(runs_ / "fast", quiet);
  config_.train.fast_step = false;
  config_.optim.fused = false;
  const auto plain = train_in(runs_ / "plain", quiet);
  expect_same_history(fast.history, plain.history);
  expect_same_weights(fast.model, plain.model);
}

TEST_F(FastPathRun, OwnKernelsRepeatBitForBitOnAnyThreadCountAndStayNearTheBlas) {
  if (!small_gemm::available()) MNIST_SKIP_OR_REQUIRE("this CPU has no AVX2 with FMA");
  TrainObserver quiet;
  const int before = at::get_num_threads();
  config_.train.adaptive_threads = false;  // the thread count set here, not the governor's
  config_.threads = 1;
  at::set_num_threads(1);
  const auto one = train_in(runs_ / "one", quiet);
  config_.threads = 2;
  at::set_num_threads(2);
  const auto two = train_in(runs_ / "two", quiet);
  config_.train.own_kernels = false;
  const auto blas = train_in(runs_ / "blas", quiet);
  at::set_num_threads(before);
  expect_same_history(one.history, two.history);
  expect_same_weights(one.model, two.model);
  // Rounding apart, the same training: weights within 1e-3 of the BLAS run's after 3 epochs.
  const auto own = one.model->parameters(), other = blas.model->parameters();
  for (size_t i = 0; i < own.size(); ++i)
    EXPECT_LE((own[i] - other[i]).abs().max().item<float>(), 1e-3f) << "parameter " << i;
  EXPECT_NEAR(one.history.back().val_accuracy, blas.history.back().val_accuracy, 0.02);
}

}  // namespace
}  // namespace mnist
