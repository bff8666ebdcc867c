// Metrics: per-class precision/recall/F1 from a known confusion matrix, and evaluate() on a model
// whose answers are known in advance.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/eval/metrics.h"

namespace mnist {
namespace {

TEST(Metrics, PerClassFromAKnownConfusionMatrix) {
  // rows = true, columns = predicted
  const auto c = torch::tensor({{5, 1, 0}, {2, 3, 0}, {0, 0, 0}}, torch::kInt64);
  const auto m = per_class_metrics(c);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_DOUBLE_EQ(m[0].precision, 5.0 / 7.0);
  EXPECT_DOUBLE_EQ(m[0].recall, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(m[0].f1, 2 * (5.0 / 7) * (5.0 / 6) / (5.0 / 7 + 5.0 / 6));
  EXPECT_EQ(m[0].support, 6);
  EXPECT_DOUBLE_EQ(m[1].precision, 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(m[1].recall, 3.0 / 5.0);
  EXPECT_EQ(m[1].support, 5);
  // A class never predicted and never present: zeros, not NaN.
  EXPECT_EQ(m[2].precision, 0.0);
  EXPECT_EQ(m[2].recall, 0.0);
  EXPECT_EQ(m[2].f1, 0.0);
}

// Predicts the class written in the first pixel (value / 10), so the confusion matrix is known.
class PixelOracle : public ClassifierImpl {
 public:
  at::Tensor forward(const at::Tensor& images) override {
    const auto cls = (images.flatten(1).select(1, 0) * 255.0 / 10.0).round().to(torch::kInt64);
    return torch::one_hot(cls, 10).to(torch::kFloat32) * 20.0;
  }
};

TEST(Metrics, EvaluateBuildsTheConfusionMatrixAndAccuracy) {
  Dataset d;
  d.images = torch::zeros({6, 28, 28}, torch::kUInt8);
  d.labels = torch::tensor({0, 1, 2, 3, 3, 9}, torch::kInt64);
  const std::vector<int> predicted = {0, 1, 2, 3, 5, 4};  // two mistakes: 3 -> 5 and 9 -> 4
  for (int i = 0; i < 6; ++i) d.images[i][0][0] = predicted[static_cast<size_t>(i)] * 10;
  PixelOracle model;
  const auto r =
      evaluate(model, d, Head(), 10, torch::kCPU, /*batch_size=*/4);  // batches of 4 and 2
  EXPECT_EQ(r.count, 6);
  EXPECT_DOUBLE_EQ(r.accuracy, 4.0 / 6.0);
  EXPECT_EQ(r.confusion.sum().item<int64_t>(), 6);
  EXPECT_EQ(r.confusion[3][5].item<int64_t>(), 1);
  EXPECT_EQ(r.confusion[9][4].item<int64_t>(), 1);
  EXPECT_EQ(r.confusion[3][3].item<int64_t>(), 1);
  EXPECT_TRUE(torch::equal(r.predictions, torch::tensor({0, 1, 2, 3, 5, 4}, torch::kInt64)));
  EXPECT_TRUE(torch::allclose(r.probabilities.sum(1), torch::ones({6})));
  // The loss is the mean per-sample cross-entropy: two confident mistakes dominate it.
  EXPECT_NEAR(r.loss, 2.0 / 6.0 * 20.0, 0.01);

  const auto j = metrics_json(r, dataset_info(DatasetName::kMnist));
  EXPECT_DOUBLE_EQ(j["test_accuracy"].get<double>(), 4.0 / 6.0);
  EXPECT_EQ(j["confusion_matrix"][3][5], 1);
  EXPECT_EQ(j["confusion_matrix"].size(), 10u);
  EXPECT_EQ(j["per_class"][3]["support"], 2);
  EXPECT_DOUBLE_EQ(j["per_class"][3]["recall"].get<double>(), 0.5);

  const std::string csv = predictions_csv(r, d.labels);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "index,label,predicted,confidence,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9");
  EXPECT_NE(csv.find("\n4,3,5,1.000000,"), std::string::npos);
}

}  // namespace
}  // namespace mnist
