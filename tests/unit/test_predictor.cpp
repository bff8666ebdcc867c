// Predictor: a run folder alone (config.json + model.pt) gives the same probabilities as the
// run's own evaluation, in eval mode (dropout off), for gray and colour input; bad folders are one
// DataError naming what is wrong.

#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/eval/predictor.h"
#include "mnist/run/run.h"
#include "support.h"
#include "train_fixture.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;

// TrainTest's fixture under this file's own name (a fixture class belongs to one translation unit).
class PredictorTest : public TrainTest {};

std::string open_error(const std::string& dir) {
  try {
    Predictor::open(dir);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST_F(PredictorTest, PredictorGivesTheRunsEvaluationFromTheFolderAlone) {
  config_.model.dropout = 0.5;  // a predictor left in training mode would not repeat itself
  const std::string dir = runs_ / "run";
  TrainObserver quiet;
  const TrainResult trained = train_in(dir, quiet);
  const EvalResult evaluated =
      evaluate_run(config_, splits_, RunFolder::open(dir), trained, torch::kCPU);

  const Predictor predictor = Predictor::open(dir);
  EXPECT_EQ(predictor.config().model.hidden_sizes, std::vector<int64_t>{32});
  EXPECT_EQ(predictor.info().num_classes(), 10);
  const auto& images = splits_.test.images;
  const auto p = predictor.probabilities(images);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{images.size(0), 10}));
  EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({images.size(0)}), 0, 1e-5));
  EXPECT_TRUE(torch::equal(p, predictor.probabilities(images)));
  EXPECT_TRUE(torch::allclose(p, evaluated.probabilities, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(p.argmax(1), evaluated.predictions));
  EXPECT_GT(evaluated.accuracy, 0.9);
  // Colour input becomes the gray the model was trained on (equal channels: the same image).
  const auto rgb = images.unsqueeze(3).expand({-1, -1, -1, 3}).contiguous();
  EXPECT_TRUE(torch::equal(predictor.probabilities(rgb), p));
}

// A run trained with a normalisation (as image folders are) is predicted with it: the predictor
// reads it from dataset.json, and gives what the run's own evaluation gave.
TEST_F(PredictorTest, PredictorUsesTheRunsNormalisation) {
  const Normalization norm{{0.3f}, {0.2f}};
  splits_.info.normalization = splits_.train.normalization = splits_.val.normalization =
      splits_.test.normalization = norm;
  const std::string dir = runs_ / "normalised";
  TrainObserver quiet;
  const TrainResult trained = train_in(dir, quiet);
  const EvalResult evaluated =
      evaluate_run(config_, splits_, RunFolder::open(dir), trained, torch::kCPU);
  const Predictor predictor = Predictor::open(dir);
  EXPECT_EQ(predictor.info().normalization, norm);
  const auto p = predictor.probabilities(splits_.test.images);
  EXPECT_TRUE(torch::allclose(p, evaluated.probabilities, 1e-5, 1e-6));
  // Without it (a run folder from before dataset.json), the same weights answer differently.
  fs::remove(fs::path(dir) / "dataset.json");
  EXPECT_FALSE(
      torch::allclose(Predictor::open(dir).probabilities(splits_.test.images), p, 1e-3, 1e-4));
}

TEST_F(PredictorTest, PredictorRefusesFoldersWithoutAUsableModel) {
  EXPECT_NE(open_error(runs_ / "absent").find(runs_ / "absent"), std::string::npos);
  const std::string dir = runs_ / "run";
  TrainObserver quiet;
  const TrainResult trained = train_in(dir, quiet);
  // Trained, but not evaluated yet: no model.pt.
  EXPECT_NE(open_error(dir).find(dir + "/model.pt"), std::string::npos) << open_error(dir);
  evaluate_run(config_, splits_, RunFolder::open(dir), trained, torch::kCPU);
  EXPECT_EQ(open_error(dir), "");
  testing::write_bytes(dir + "/model.pt", "not a model");
  EXPECT_NE(open_error(dir).find(dir + "/model.pt"), std::string::npos) << open_error(dir);
}

TEST(TopK, LargestFirstAndAtMostTheClassCount) {
  const auto p = torch::tensor({0.1f, 0.5f, 0.05f, 0.35f});
  EXPECT_EQ(top_k(p, 2), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(top_k(p, 9), (std::vector<int64_t>{1, 3, 0, 2}));
  EXPECT_EQ(top_k(p.unsqueeze(0), 1), (std::vector<int64_t>{1}));  // one row [1, K]
}

}  // namespace
}  // namespace mnist
