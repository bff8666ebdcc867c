// Attributions (eval/explain.h) on trained models of the synthetic problem, where each class is a
// bright block at its own place: integrated gradients are complete (the map sums to the score
// difference), and every method points at pixels that matter (setting the most attributed pixels
// to the baseline lowers the score more than setting as many random ones), for an MLP, a CNN and a
// colour model.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/eval/explain.h"
#include "train_fixture.h"

namespace mnist {
namespace {

class ExplainTest : public TrainTest {
 protected:
  Predictor trained(const std::string& name) {
    TrainObserver quiet;
    const std::string dir = runs_ / name;
    const TrainResult result = train_in(dir, quiet);
    evaluate_run(config_, splits_, RunFolder::open(dir), result, torch::kCPU);  // writes model.pt
    return Predictor::open(dir);
  }

  // The class-`target` logit of `image` (uint8 [H, W] or [H, W, 3]).
  static double logit(const Predictor& p, const at::Tensor& image, int64_t target) {
    torch::NoGradGuard no_grad;
    return p.logits(p.model_input(image.unsqueeze(0)))[0][target].item<double>();
  }

  // `image` with the pixels at `flat` (indices into H*W) set to 0 (the baseline), every channel.
  static at::Tensor blanked(const at::Tensor& image, const at::Tensor& flat) {
    auto out = image.clone();
    auto view = out.view({image.size(0) * image.size(1), -1});
    view.index_put_({flat}, 0);
    return out;
  }

  void expect_complete_and_faithful(const Predictor& p, const at::Tensor& images) {
    for (int64_t i = 0; i < 6; ++i) {
      const at::Tensor image = images[i];
      const int64_t predicted = p.probabilities(image.unsqueeze(0)).argmax(1).item<int64_t>();
      for (const int64_t target : {predicted, (predicted + 3) % 10}) {
        const Attribution ig = explain(p, image, target, AttributionMethod::kIntegratedGradients);
        ASSERT_EQ(ig.map.sizes(), (std::vector<int64_t>{image.size(0), image.size(1)}));
        EXPECT_NEAR(ig.score, logit(p, image, target), 1e-4);
        // Completeness: within 2% of the score difference (64 midpoint steps).
        const double diff = ig.score - ig.baseline_score;
        EXPECT_LE(std::abs(ig.gap()), 0.02 * std::abs(diff) + 1e-3)
            << "image " << i << " class " << target << ": sum " << ig.map.sum().item<double>()
            << " vs " << diff;
      }
      // Faithfulness for the answer: the top 5% of pixels by attribution, against 20 random sets.
      const int64_t k = image.size(0) * image.size(1) / 20;
      const double score = logit(p, image, predicted);
      for (const auto method :
           {AttributionMethod::kIntegratedGradients, AttributionMethod::kGradientTimesInput,
            AttributionMethod::kOcclusion}) {
        const Attribution a = explain(p, image, predicted, method);
        const auto top = std::get<1>(a.map.reshape({-1}).topk(k));
        const double top_drop = score - logit(p, blanked(image, top), predicted);
        torch::manual_seed(static_cast<uint64_t>(i));
        double random_drop = 0;
        for (int r = 0; r < 20; ++r) {
          const auto pick = torch::randperm(image.size(0) * image.size(1)).narrow(0, 0, k);
          random_drop += (score - logit(p, blanked(image, pick), predicted)) / 20;
        }
        EXPECT_GT(top_drop, random_drop + 0.5) << name_of(method) << ", image " << i << ": top "
                                               << top_drop << ", random " << random_drop;
      }
    }
  }
};

TEST_F(ExplainTest, MlpAttributionsAreCompleteAndPointAtThePixelsThatMatter) {
  const Predictor p = trained("mlp");
  expect_complete_and_faithful(p, splits_.test.images);
}

TEST_F(ExplainTest, CnnAttributionsAreCompleteAndPointAtThePixelsThatMatter) {
  config_.model.type = ModelType::kCnn;
  config_.model.channels = {8, 16};
  config_.model.kernel_sizes = {3, 3};
  const Predictor p = trained("cnn");
  expect_complete_and_faithful(p, splits_.test.images);
}

TEST_F(ExplainTest, ColourModelsAreExplainedOverTheirPixels) {
  config_.data.channels = 3;
  splits_ = load_splits(config_.data, config_.seed);
  const Predictor p = trained("colour");
  ASSERT_EQ(p.info().channels, 3);
  const auto rgb = splits_.test.images.dim() == 4
                       ? splits_.test.images
                       : splits_.test.images.unsqueeze(3).expand({-1, -1, -1, 3}).contiguous();
  expect_complete_and_faithful(p, rgb);
}

TEST_F(ExplainTest, BadClassesAndStepsAreUsageErrors) {
  const Predictor p = trained("mlp");
  const at::Tensor image = splits_.test.images[0];
  EXPECT_THROW(explain(p, image, 10, AttributionMethod::kOcclusion), UsageError);
  EXPECT_THROW(explain(p, image, -1, AttributionMethod::kOcclusion), UsageError);
  EXPECT_THROW(explain(p, image, 1, AttributionMethod::kIntegratedGradients, 0), UsageError);
  EXPECT_EQ(parse_attribution_method("occlusion", "method"), AttributionMethod::kOcclusion);
  try {
    parse_attribution_method("saliency", "--explain-method");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--explain-method"), std::string::npos);
  }
}

}  // namespace
}  // namespace mnist
