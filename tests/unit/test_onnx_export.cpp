// mnist-export's refusals, which no shipped config can reach (every layer the configs make has an
// ONNX form; tests/export/test_export.py checks those files in three runtimes): a layer without
// one is refused with an error naming it (before anything is written: write_onnx_model builds
// the whole model first).

#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/export/onnx.h"
#include "mnist/models/factory.h"
#include "support.h"

namespace mnist {
namespace {

// A classifier with a layer mnist-export has no ONNX form for (LeakyReLU).
class OddModel : public ClassifierImpl {
 public:
  OddModel() {
    layers_ = register_module(
        "layers", torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(784, 16),
                                        torch::nn::LeakyReLU(), torch::nn::Linear(16, 10)));
  }
  at::Tensor forward(const at::Tensor& images) override { return layers_->forward(images); }

 private:
  torch::nn::Sequential layers_{nullptr};
};

TEST(OnnxExport, ALayerWithoutAnOnnxFormIsRefusedByName) {
  const Config config;
  const DatasetInfo& info = dataset_info(DatasetName::kMnist);
  OddModel odd;
  try {
    onnx_model(odd, config, info, "run");
    FAIL() << "exported a LeakyReLU";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("\"layers.2\""), std::string::npos) << what;
    EXPECT_NE(what.find("LeakyReLU"), std::string::npos) << what;
    EXPECT_NE(what.find("no ONNX form"), std::string::npos) << what;
  }
  // The shipped kinds export (their files are checked in three runtimes by the export test).
  ModelConfig cnn;
  cnn.type = ModelType::kCnn;
  cnn.channels = {4, 8};
  cnn.kernel_sizes = {3, 3};
  for (const ModelConfig& m : {ModelConfig{}, cnn}) {
    Config c;
    c.model = m;
    auto model = build_model(m, info);
    model->eval();
    EXPECT_GT(onnx_model(*model, c, info, "run").size(), 1000u);
  }
}

}  // namespace
}  // namespace mnist
