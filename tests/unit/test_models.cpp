// Models and the output head: shapes, initialisation, save/load equality, refusing weights of
// another architecture, and the tutorial's sigmoid loss against values computed by hand.

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <cmath>

#include "mnist/core/error.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "support.h"

namespace mnist {
namespace {

const DatasetInfo& mnist_info() {
  return dataset_info(DatasetName::kMnist);
}

TEST(MLP, ShapesFollowTheConfig) {
  ModelConfig cfg;
  cfg.hidden_sizes = {150, 50};
  auto model = build_model(cfg, mnist_info());
  const auto out = model->forward(torch::rand({4, 1, 28, 28}));
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({4, 10}));
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& p : model->parameters()) shapes.push_back(p.sizes().vec());
  const std::vector<std::vector<int64_t>> expected = {{150, 784}, {150},    {50, 150},
                                                      {50},       {10, 50}, {10}};
  EXPECT_EQ(shapes, expected);  // 784-150-50-10, the tutorial's network
  const auto names = model->named_parameters().keys();
  EXPECT_EQ(names.front(), "layers.1.weight");  // checkpoint keys: a rename is a format change
}

TEST(MLP, NoHiddenLayersIsLogisticRegression) {
  ModelConfig cfg;
  cfg.hidden_sizes = {};
  auto model = build_model(cfg, mnist_info());
  EXPECT_EQ(model->parameters().size(), 2u);
  EXPECT_EQ(model->forward(torch::rand({2, 1, 28, 28})).sizes(), torch::IntArrayRef({2, 10}));
}

TEST(MLP, GlorotInitHasZeroBiasesAndGlorotBounds) {
  torch::manual_seed(0);
  ModelConfig cfg;
  cfg.init = Init::kGlorot;
  auto model = build_model(cfg, mnist_info());
  for (const auto& p : model->named_parameters()) {
    if (p.key().find("bias") != std::string::npos) {
      EXPECT_EQ(p.value().abs().max().item<float>(), 0.0f) << p.key();
    } else {
      const double bound =
          std::sqrt(6.0 / static_cast<double>(p.value().size(0) + p.value().size(1)));
      // uniform_(-b, b) draws in float: the bound itself rounds to the nearest float, either side.
      const double float_bound = std::nextafter(static_cast<float>(bound), 1.0f);
      EXPECT_LE(p.value().abs().max().item<double>(), float_bound) << p.key();
      EXPECT_GT(p.value().abs().max().item<double>(), 0.9 * bound) << p.key();
    }
  }
}

TEST(MLP, DropoutOnlyInTrainingMode) {
  ModelConfig cfg;
  torch::manual_seed(3);
  auto plain = build_model(cfg, mnist_info());  // the same weights without dropout
  cfg.dropout = 0.5;
  torch::manual_seed(3);
  auto model = build_model(cfg, mnist_info());
  const auto x = torch::rand({8, 1, 28, 28});
  plain->eval();
  const auto reference = plain->forward(x);
  model->eval();  // dropout is the identity: the plain network's output exactly
  EXPECT_TRUE(torch::equal(model->forward(x), reference));
  model->train();  // dropout drops: a different output at every call
  const auto first = model->forward(x).detach();
  EXPECT_FALSE(torch::equal(first, reference));
  EXPECT_FALSE(torch::equal(model->forward(x).detach(), first));
}

TEST(MLP, SaveLoadGivesIdenticalOutputs) {
  testing::TempDir dir;
  ModelConfig cfg;
  torch::manual_seed(1);
  auto model = build_model(cfg, mnist_info());
  save_model(model, dir / "model.pt");
  torch::manual_seed(2);  // the loaded model starts from other weights
  auto loaded = load_model(cfg, mnist_info(), dir / "model.pt");
  const auto x = torch::rand({3, 1, 28, 28});
  model->eval();
  loaded->eval();
  EXPECT_TRUE(torch::equal(model->forward(x), loaded->forward(x)));
}

TEST(MLP, LoadingAnotherArchitectureOrGarbageIsADataError) {
  testing::TempDir dir;
  ModelConfig cfg;
  save_model(build_model(cfg, mnist_info()), dir / "model.pt");
  ModelConfig other = cfg;
  other.hidden_sizes = {100, 50};
  EXPECT_THROW(load_model(other, mnist_info(), dir / "model.pt"), DataError);
  other.hidden_sizes = {150};
  EXPECT_THROW(load_model(other, mnist_info(), dir / "model.pt"), DataError);
  testing::write_bytes(dir / "junk.pt", "this is not a model");
  EXPECT_THROW(load_model(cfg, mnist_info(), dir / "junk.pt"), DataError);
  EXPECT_THROW(load_model(cfg, mnist_info(), dir / "missing.pt"), DataError);
}

TEST(Loss, KerasSigmoidHeadMatchesHandComputedValues) {
  // -log(c_y / sum(c)) with c = clip(sigmoid(z), 1e-7, 1 - 1e-7), computed by hand in double
  // precision.
  const auto z =
      torch::tensor({{0.0, 2.0, -1.0}, {20.0, -20.0, 0.0}, {20.0, -20.0, 0.0}}, torch::kFloat64);
  const auto y = torch::tensor({1, 1, 0}, torch::kInt64);
  const Head head(OutputHead::kSigmoid);
  const auto per_sample = head.loss_per_sample(z, y);
  EXPECT_NEAR(per_sample[0].item<double>(), 0.6275448011516379, 1e-9);
  EXPECT_NEAR(per_sample[1].item<double>(), 16.523560759066484, 1e-6);  // clipped at 1e-7
  EXPECT_NEAR(per_sample[2].item<double>(), 0.4054652081081694, 1e-6);  // clipped at 1 - 1e-7
  EXPECT_NEAR(head.loss(z, y).item<double>(),
              (0.6275448011516379 + 16.523560759066484 + 0.4054652081081694) / 3, 1e-6);
  const auto p = head.probabilities(z);
  EXPECT_NEAR(p[0][1].item<double>(), 0.5339010263299615, 1e-9);
  EXPECT_NEAR(p[1][1].item<double>(), 6.666666666666667e-08, 1e-12);
  EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({3}, torch::kFloat64)));
}

TEST(Loss, SoftmaxHeadIsCrossEntropy) {
  const auto z = torch::tensor({{0.0, 2.0, -1.0}, {1.0, 1.0, 1.0}}, torch::kFloat64);
  const auto y = torch::tensor({1, 2}, torch::kInt64);
  const Head head(OutputHead::kSoftmax);
  const auto per_sample = head.loss_per_sample(z, y);
  EXPECT_NEAR(per_sample[0].item<double>(), 0.16984601955628564, 1e-12);
  EXPECT_NEAR(per_sample[1].item<double>(), 1.09861228866811, 1e-12);
  EXPECT_NEAR(head.probabilities(z)[1][0].item<double>(), 1.0 / 3, 1e-12);
}

}  // namespace
}  // namespace mnist
