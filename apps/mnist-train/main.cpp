// mnist-train: trains the model a JSON config describes and writes a run folder; --resume continues
// an interrupted run from its last complete checkpoint. All the work is in the library; this file
// parses the command line, calls it in order, and reports.

#include <cstdio>
#include <filesystem>

#include "app.h"
#include "mnist/config/config.h"
#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/train/progress.h"
#include "mnist/train/run.h"
#ifdef MNIST_WITH_VISION
#include "mnist/vision/figures.h"
#endif

int main(int argc, char** argv) {
  CLI::App cli{"Train a digit classifier as a JSON config says, writing a run folder."};
  std::string config_path, run_dir, resume_dir;
  std::vector<std::string> overrides;
  auto* config_opt = cli.add_option("--config", config_path,
                                    "experiment config (JSON); keys not given take defaults");
  cli.add_option("--set", overrides,
                 "override a config key, e.g. --set train.epochs=3 (repeatable)")
      ->allow_extra_args(false);
  cli.add_option("--run-dir", run_dir,
                 "run folder to create (default: runs/<config name>-<UTC time>)");
  auto* resume_opt =
      cli.add_option("--resume", resume_dir, "continue the interrupted run in this folder");
  resume_opt->excludes(config_opt)->excludes("--set")->excludes("--run-dir");
  cli.callback([&] {
    if (config_path.empty() && resume_dir.empty()) throw CLI::RequiredError("--config or --resume");
  });

  return mnist::app::run(cli, argc, argv, [&] {
    using namespace mnist;
    const bool resuming = !resume_dir.empty();
    const std::string command = app::command_line(argc, argv);
    Config config;
    if (resuming) {
      if (!std::filesystem::is_directory(resume_dir))
        throw UsageError(resume_dir + ": no such run folder");
      const RunFolder existing = RunFolder::open(resume_dir);
      if (existing.finished()) {
        std::printf("%s: the run has finished already; nothing to do\n", resume_dir.c_str());
        return 0;
      }
      config = load_run_config(resume_dir, {});
      run_dir = resume_dir;
    } else {
      config = load_config(config_path, overrides);
      if (run_dir.empty()) run_dir = RunFolder::default_dir(config_path);
      RunFolder::check_new(run_dir);
    }
    configure_runtime(static_cast<int>(config.threads), static_cast<int>(config.blas_threads));
    const auto device = resolve_device(config.device);
    std::printf("config: %s\n", config_to_json(config).dump().c_str());
    std::printf("device: %s, threads: %lld\n", device.str().c_str(),
                static_cast<long long>(config.threads));

    const Splits data = load_splits(config.data, config.seed);
    std::printf("data: %s, %lld train / %lld validation / %lld test images\n",
                data.info.name.c_str(), static_cast<long long>(data.train.size()),
                static_cast<long long>(data.val.size()), static_cast<long long>(data.test.size()));
    const RunFolder run =
        resuming ? RunFolder::open(run_dir) : start_run(config, run_dir, command, device);
    if (resuming) note_resume(run, command);
    std::printf("run folder: %s\n", run.dir().c_str());

    ConsoleProgress progress;
    const TrainResult trained = train_model(config, data, run, device, progress);
    const EvalResult result = evaluate_run(config, data, run, trained, device);
#ifdef MNIST_WITH_VISION
    vision::write_run_figures(run, data, trained.history, result);
#else
    std::fprintf(stderr, "warning: built without OpenCV: no figures in %s/plots\n", run.dir().c_str());
#endif
    complete_run(run, result, data.info, trained);

    if (trained.stopped_early) {
      std::printf("early stopping: no improvement of %s for %lld epochs after epoch %lld\n",
                  config.early_stopping.monitor.c_str(),
                  static_cast<long long>(config.early_stopping.patience),
                  static_cast<long long>(trained.best_epoch));
    }
    const auto last_epoch = trained.history.empty() ? 0 : trained.history.back().epoch;
    if (trained.model_epoch != last_epoch || config.train.ema_decay > 0) {
      std::printf("evaluated: %s weights of epoch %lld\n",
                  config.train.ema_decay > 0 ? "averaged (EMA)" : "the",
                  static_cast<long long>(trained.model_epoch));
    }

    std::printf("test accuracy %.2f%%  test loss %.4f  (%lld images)\n", 100.0 * result.accuracy,
                result.loss, static_cast<long long>(result.count));
    std::printf("run folder: %s\n", run.dir().c_str());
    std::printf("figures:    %s/plots/{samples,curves,confusion,misclassified}.png\n",
                run.dir().c_str());
    return 0;
  });
}
