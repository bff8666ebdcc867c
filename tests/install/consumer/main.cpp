// Uses the installed libraries as a downstream project would: a config from JSON, a model from the
// factory, three epochs of training on made-up data through train_model, and (with mnist::vision)
// an image decoded by the project's safe reader. Prints one line per check; exit 0 when all hold.

#include <cstdio>

#include <torch/torch.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/dist/communicator.h"
#include "mnist/models/factory.h"
#include "mnist/train/trainer.h"
#ifdef WITH_VISION
#include <opencv2/imgcodecs.hpp>

#include "mnist/vision/image_io.h"
#endif

int main() {
  using namespace mnist;
  const Config config = config_from_json({{"model", {{"hidden_sizes", {16}}}},
                                          {"train", {{"epochs", 3}, {"batch_size", 10}}},
                                          {"optim", {{"lr", 0.01}}}},
                                         "consumer");
  std::printf("config: the reference has %zu characters\n", config_reference_markdown().size());

  // Two classes told apart by the brightness of the image's left half.
  Splits data;
  data.info = dataset_info(DatasetName::kMnist);
  const auto make = [](int64_t n) {
    Dataset d;
    d.labels = torch::arange(n, torch::kInt64).remainder(2);
    d.images = torch::zeros({n, 28, 28}, torch::kUInt8);
    d.images.narrow(2, 0, 14).add_(d.labels.view({n, 1, 1}).to(torch::kUInt8) * 200);
    return d;
  };
  data.train = make(200);
  data.val = make(40);
  data.test = make(40);
  TrainObserver quiet;
  const Communicator alone;
  const TrainResult trained = train_model(config, data, nullptr, torch::kCPU, quiet, alone);
  const double accuracy = trained.history.back().val_accuracy;
  std::printf("trained: %zu epochs, validation accuracy %.2f\n", trained.history.size(), accuracy);
  if (accuracy < 0.99) return 1;

#ifdef WITH_VISION
  std::vector<uint8_t> png;
  cv::imencode(".png", cv::Mat(32, 24, CV_8UC1, cv::Scalar(255)), png);
  const cv::Mat image = vision::decode_image(png, "made-up.png");
  std::printf("vision: decoded %dx%d\n", image.cols, image.rows);
  if (image.cols != 24 || image.rows != 32) return 1;
#endif
  std::printf("ok\n");
  return 0;
}
