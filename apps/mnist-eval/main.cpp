// mnist-eval: evaluates a run's model on the test split from the run folder alone (config.json,
// dataset.json and model.pt), printing accuracy, loss, per-class precision/recall/F1 and the
// confusion matrix, or with --json the metrics as one JSON line (the keys of metrics.json). --set
// data.* evaluates on other data with the same classes (e.g. a model trained on MNIST tested on
// MNIST-M).

#include <cstdio>
#include <filesystem>

#include "app.h"
#include "mnist/config/config.h"
#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/core/runtime.h"
#include "mnist/eval/metrics.h"
#include "mnist/eval/predictor.h"
#include "mnist/io/run_folder.h"
#include "mnist/models/factory.h"
#ifdef MNIST_WITH_VISION
#include "mnist/vision/image_folder.h"
#endif

namespace {

void print_report(const nlohmann::json& m) {
  std::printf("test accuracy %.2f%%  test loss %.4f  (%lld images)\n\n",
              100.0 * m["test_accuracy"].get<double>(), m["test_loss"].get<double>(),
              m["num_samples"].get<long long>());
  std::printf("%-14s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
  for (const auto& c : m["per_class"]) {
    std::printf("%-14s %9.4f %9.4f %9.4f %8lld\n", c["name"].get<std::string>().c_str(),
                c["precision"].get<double>(), c["recall"].get<double>(), c["f1"].get<double>(),
                c["support"].get<long long>());
  }
  std::printf("%-14s %9.4f %9.4f %9.4f\n\n", "macro avg", m["macro_precision"].get<double>(),
              m["macro_recall"].get<double>(), m["macro_f1"].get<double>());
  std::printf("confusion matrix (rows = true class, columns = predicted)\n      ");
  for (size_t j = 0; j < m["confusion_matrix"].size(); ++j) std::printf("%6zu", j);
  std::printf("\n");
  size_t i = 0;
  for (const auto& row : m["confusion_matrix"]) {
    std::printf("%6zu", i++);
    for (const auto& v : row) std::printf("%6lld", v.get<long long>());
    std::printf("\n");
  }
}

// The data's classes and image size must be the model's (channels are converted).
void check_data_fits(const mnist::Dataset& test, const std::vector<std::string>& classes,
                     const mnist::DatasetInfo& info, const std::string& dir) {
  const auto list = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return "[" + out + "]";
  };
  if (classes != info.class_names) {
    throw mnist::UsageError(dir + ": its classes " + list(classes) + " are not the model's " +
                            list(info.class_names));
  }
  if (test.images.size(1) != info.height || test.images.size(2) != info.width) {
    throw mnist::UsageError("data.image_size: the images are " +
                            std::to_string(test.images.size(1)) + "x" +
                            std::to_string(test.images.size(2)) + ", the model takes " +
                            std::to_string(info.height) + "x" + std::to_string(info.width));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Evaluate a run's model on the test split."};
  std::string run_dir;
  std::vector<std::string> overrides;
  bool json = false;
  cli.add_option("--run", run_dir, "run folder written by mnist-train")->required();
  cli.add_option("--set", overrides,
                 "override a key of the run's config, e.g. --set data.dir=other (repeatable)")
      ->allow_extra_args(false);
  cli.add_flag("--json", json, "print the metrics as one JSON line");

  return mnist::app::run(cli, argc, argv, [&] {
    // Ctrl-C / SIGTERM end it at once: outputs are written atomically, temporary files removed.
    mnist::install_stop_handlers(mnist::StopMode::kImmediate);
    using namespace mnist;
    if (!std::filesystem::is_directory(run_dir)) throw UsageError(run_dir + ": no such run folder");
    const RunFolder run = RunFolder::open(run_dir);
    const Config config = load_run_config(run_dir, overrides);
    configure_runtime(static_cast<int>(config.threads), static_cast<int>(config.blas_threads));
    const auto device = resolve_device(name_of(config.device));
    // What the model takes comes from the run; the data from config.data, which --set may point
    // elsewhere (another folder, another data set with the same classes).
    const DatasetInfo info = run_dataset_info(run_dir, load_run_config(run_dir, {}));
#ifdef MNIST_WITH_VISION
    auto [test, classes, notes] = vision::load_test_set(config.data);
    for (const auto& note : notes) std::fprintf(stderr, "warning: %s\n", note.c_str());
#else
    Dataset test = load_test_split(config.data);
    const auto classes = dataset_info(config.data.dataset).class_names;
#endif
    check_data_fits(test, classes, info, config.data.dir);
    test.images = match_channels(test.images, info.channels);
    test.normalization = info.normalization;
    const Classifier model = load_model(config.model, info, run.file(run_files::kModel));
    model->to(device);
    const EvalResult result = evaluate(*model, test, Head(config.model.output), info.num_classes(),
                                       device, config.train.eval_batch_size);
    auto metrics = metrics_json(result, info);
    // What training did (epochs, early stopping, which weights) is not a property of the weights:
    // it is carried over from the finished run's metrics.json.
    if (run.finished()) {
      const auto saved = run.read_json(run_files::kMetrics);
      if (saved.contains("training")) metrics["training"] = saved["training"];
    }
    if (json) {
      std::printf("%s\n", metrics.dump().c_str());
    } else {
      print_report(metrics);
    }
    return 0;
  });
}
