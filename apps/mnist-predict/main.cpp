// mnist-predict: classifies users' image files (or every image in a folder) with a run's model,
// through the library's one preprocessing function. Prints one line per image (--json: the
// contract's JSON line), optionally saves the 28x28 input the model saw, and without --no-window
// opens the OpenCV window (with a draw mode); --explain writes why the model answered as a heatmap.
// Exit status 1 when any image failed.

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "app.h"
#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/eval/explain.h"
#include "mnist/eval/predictor.h"
#include "mnist/vision/attribution.h"
#include "mnist/vision/canvas.h"
#include "mnist/vision/predict.h"
#include "mnist/vision/predict_window.h"

namespace {

bool have_display() {
  const char* x11 = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  return (x11 && *x11) || (wayland && *wayland);
}

/// "0007_name.png" in `dir`: numbered by position so equal names from two folders never collide.
std::string input_image_path(const std::string& dir, size_t index, const std::string& path) {
  char num[32];
  std::snprintf(num, sizeof num, "%04zu_", index + 1);
  return (std::filesystem::path(dir) / (num + std::filesystem::path(path).stem().string() + ".png"))
      .string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Classify image files (or every image in a folder) with a trained run's model."};
  std::string run_dir;
  std::vector<std::string> paths;
  bool no_window = false;
  bool json = false;
  bool draw = false;
  int top_k = 3;
  std::string save_input;
  std::string pipeline_name = "mnist";
  cli.add_option("--run", run_dir, "run folder written by mnist-train")->required();
  cli.add_option("paths", paths, "image files or folders of images");
  cli.add_flag("--no-window", no_window, "print the predictions only; do not open the window");
  cli.add_flag("--json", json,
               "one JSON line per image: {path, digit, class, confidence, probabilities, top_k} "
               "or {path, error}");
  cli.add_option("--top-k", top_k, "how many of the most probable classes to list")
      ->check(CLI::Range(1, 1000));
  cli.add_option("--save-input", save_input,
                 "save the image the model saw for each file into this folder (NNNN_<name>.png; "
                 "28x28 gray for MNIST models, the model's size and channels for folder-trained "
                 "ones)");
  std::string explain_dir;
  std::string explain_method = "integrated-gradients";
  int explain_class = -1;
  cli.add_option("--explain", explain_dir,
                 "write why the model answered, for each file, into this folder "
                 "(NNNN_<name>_explain.png: what the model saw, red where pixels pushed the class "
                 "up, blue where they pushed it down)");
  cli.add_option("--explain-method", explain_method,
                 "integrated-gradients (default), gradient (gradient x input) or occlusion");
  cli.add_option("--explain-class", explain_class,
                 "the class to explain (default: each image's answer)")
      ->check(CLI::Range(0, 100000));
  cli.add_flag("--draw", draw, "open the window in draw mode (write a digit with the mouse)");
  cli.add_option("--preprocess", pipeline_name,
                 "mnist: the project's preprocessing (default); naive: the tutorial's resize only. "
                 "Models trained on an image folder always get the folder reader's resize");

  return mnist::app::run(cli, argc, argv, [&] {
    // Ctrl-C / SIGTERM end it at once: outputs are written atomically, temporary files removed.
    mnist::install_stop_handlers(mnist::StopMode::kImmediate);
    using namespace mnist;
    const auto pipeline = vision::parse_pipeline(pipeline_name, "--preprocess");
    if (paths.empty() && !draw) throw UsageError("no image paths given (or use --draw)");
    if (draw && no_window) throw UsageError("--draw needs the window; drop --no-window");
    if (!no_window && !have_display()) {
      throw UsageError("no display for the window: pass --no-window, or run under xvfb-run");
    }
    const auto method = parse_attribution_method(explain_method, "--explain-method");
    const Predictor predictor = Predictor::open(run_dir);
    const DatasetInfo& info = predictor.info();
    if (explain_class >= static_cast<int>(info.class_names.size())) {
      throw UsageError("--explain-class: the model has classes 0 to " +
                       std::to_string(info.class_names.size() - 1));
    }
    if (!save_input.empty()) std::filesystem::create_directories(save_input);
    if (!explain_dir.empty()) std::filesystem::create_directories(explain_dir);

    std::vector<vision::ImageResult> results;
    bool any_failed = false;
    const auto files = vision::expand_image_paths(paths);
    for (size_t i = 0; i < files.size(); ++i) {
      vision::ImageResult r = vision::predict_file(predictor, files[i], pipeline);
      std::string saved;
      if (r.ok() && !save_input.empty()) {
        saved = input_image_path(save_input, i, r.path);
        vision::save_png(r.input, saved);
      }
      std::string explained;
      if (r.ok() && !explain_dir.empty()) {
        const int64_t target = explain_class >= 0 ? explain_class : r.predicted;
        const auto a = vision::explain_input(predictor, r.input, target, method);
        explained = input_image_path(explain_dir, i, r.path);
        explained.insert(explained.size() - 4, "_explain");
        vision::save_png(vision::attribution_overlay(r.input, a.map, 10), explained);
      }
      if (json) {
        auto j = vision::result_json(r, info, top_k);
        if (!saved.empty()) j["input_image"] = saved;
        if (!explained.empty()) j["explanation_image"] = explained;
        std::printf("%s\n", j.dump().c_str());
      } else if (r.ok()) {
        std::printf("%s\n", vision::result_text(r, info, top_k).c_str());
      } else {
        std::fflush(stdout);
        std::fprintf(stderr, "error: %s: %s\n", r.path.c_str(), r.error.c_str());
      }
      std::fflush(stdout);
      any_failed = any_failed || !r.ok();
      if (!no_window) {
        results.push_back(std::move(r));
      }
    }
    if (!no_window) {
      const auto drawn = vision::run_predict_window(predictor, results, pipeline, draw);
      if (drawn.ok() && !drawn.input.empty()) {
        std::printf("%s\n", vision::result_text(drawn, info, top_k).c_str());
      }
    }
    return any_failed ? 1 : 0;
  });
}
