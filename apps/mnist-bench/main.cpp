// mnist-bench: this project against a Python PyTorch peer (scripts/bench_peer.py) on the same
// recipes, side by side in one run: training throughput, time to 97.5%, inference latency and
// throughput, predicting one file, peak memory. Prints a Markdown table, writes a JSON report.
// All the measuring is in the library (mnist/tools/bench.h).

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app.h"
#include "mnist/config/config.h"
#include "mnist/core/runtime.h"
#include "mnist/io/files.h"
#include "mnist/io/run_folder.h"
#include "mnist/tools/bench.h"
#include "mnist/tools/train_profile.h"
#ifdef MNIST_WITH_VISION
#include "mnist/tools/stage_profile.h"
#endif

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path source(MNIST_SOURCE_DIR);
  mnist::bench::Options o;
  o.data_dir = (source / "data/mnist").string();
  o.tutorial_config = (source / "configs/mnist_mlp_seed.json").string();
  o.fast_config = (source / "configs/mnist_mlp_fast.json").string();
  o.peer = (source / "scripts/bench_peer.py").string();
  o.cnn_config = (source / "configs/mnist_cnn.json").string();
  o.cnn_fast_config = (source / "configs/mnist_cnn_fast.json").string();
  o.bin_dir = fs::canonical("/proc/self/exe").parent_path().string();
  std::string json_path;
  std::string profile_run;
  int profile_iterations = 200;
  std::string profile_config;
  std::vector<std::string> profile_sets;
  int profile_steps = 20, profile_rounds = 5;

  CLI::App cli{"Benchmark this project against the Python PyTorch peer, side by side."};
  cli.add_option("--data", o.data_dir, "folder with the MNIST IDX files")->capture_default_str();
  cli.add_option("--work-dir", o.work_dir, "new folder for the runs (default: runs/bench-<time>)");
  cli.add_option("--json", json_path, "write the report here (default: <work-dir>/bench.json)");
  cli.add_option("--repeats", o.repeats, "runs of each measurement; medians are reported")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cli.add_option("--epochs", o.tutorial_epochs, "epochs per training-throughput run")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cli.add_option("--iterations", o.latency_iterations, "timed one-image inferences per repeat")
      ->check(CLI::Range(10, 1000000))
      ->capture_default_str();
  cli.add_option("--tutorial-config", o.tutorial_config, "the tutorial recipe")
      ->capture_default_str();
  cli.add_option("--fast-config", o.fast_config, "the speed recipe")->capture_default_str();
  cli.add_option("--suite", o.suite,
                 "which rows: mlp (the tutorial's recipes), cnn (the CNN recipes) or all")
      ->check(CLI::IsMember({"mlp", "cnn", "all"}))
      ->capture_default_str();
  cli.add_option("--cnn-config", o.cnn_config, "the CNN recipe for training throughput")
      ->capture_default_str();
  cli.add_option("--cnn-fast-config", o.cnn_fast_config, "the CNN speed recipe (time to 99%)")
      ->capture_default_str();
  cli.add_option("--cnn-epochs", o.cnn_epochs, "epochs per CNN throughput run")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cli.add_option("--cnn-recipe", o.cnn_recipe_config,
                 "also train this CNN config whole on both sides for its time to accuracy "
                 "(minutes per repeat)");
  cli.add_option("--python", o.python, "Python with torch (Debian: python3-torch)")
      ->capture_default_str();
  cli.add_option("--peer", o.peer, "the Python peer script")->capture_default_str();

  cli.add_option("--profile-training", profile_config,
                 "only profile a training step of this config stage by stage (augmentation, "
                 "forward, backward, optimiser, weight average), its fast paths on and off");
  cli.add_option("--set", profile_sets, "with --profile-training: KEY=VALUE config overrides");
  cli.add_option("--profile-steps", profile_steps, "with --profile-training: timed steps a round")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cli.add_option("--profile-rounds", profile_rounds,
                 "with --profile-training: rounds, the variants taking turns")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
#ifdef MNIST_WITH_VISION
  cli.add_option("--profile-preprocessing", profile_run,
                 "only profile one prediction stage by stage (decode, preprocessing, inference) "
                 "with the model of this run folder, for a drawing, a scan and two photos");
  cli.add_option("--profile-iterations", profile_iterations, "timed calls per image and route")
      ->check(CLI::Range(10, 100000))
      ->capture_default_str();
#endif

  return mnist::app::run(cli, argc, argv, [&] {
    using namespace mnist;
    if (!profile_config.empty()) {
      const Config config = load_config(profile_config, profile_sets);
      configure_runtime(static_cast<int>(config.threads), static_cast<int>(config.blas_threads));
      const auto rows = bench::profile_training(config, profile_steps, profile_rounds);
      std::printf(
          "%s\n\nOne training step of %s, stage by stage (batch %lld, %lld thread(s); medians of "
          "%d steps in %d rounds; ms):\n\n%s",
          bench::machine_description().c_str(), profile_config.c_str(),
          static_cast<long long>(config.train.batch_size), static_cast<long long>(config.threads),
          profile_steps * profile_rounds, profile_rounds, bench::train_stage_table(rows).c_str());
      return 0;
    }
#ifdef MNIST_WITH_VISION
    if (!profile_run.empty()) {
      configure_runtime(/*threads=*/1);  // as mnist-serve's workers run
      const Predictor predictor = Predictor::open(profile_run);
      const auto rows = bench::profile_stages(predictor, profile_iterations);
      std::printf(
          "%s\n\nOne prediction, stage by stage (medians of %d calls, one thread; ms):\n\n%s",
          bench::machine_description().c_str(), profile_iterations,
          bench::stage_table(rows).c_str());
      return 0;
    }
#endif
    // In-process measurements (inference) run with the speed recipe's thread settings, as
    // mnist-train and the peer do.
    const Config fast = load_config(o.fast_config, {});
    configure_runtime(static_cast<int>(fast.threads), static_cast<int>(fast.blas_threads));
    if (o.work_dir.empty()) o.work_dir = "runs/bench-" + utc_timestamp();
    if (json_path.empty()) json_path = (fs::path(o.work_dir) / "bench.json").string();
    o.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    const auto figures = bench::run(o);
    write_file_atomic(json_path, bench::report_json(figures, o).dump(2) + "\n");
    std::printf("%s\n\n%s\nreport: %s\n", bench::machine_description().c_str(),
                bench::markdown_table(figures).c_str(), json_path.c_str());
    return 0;
  });
}
