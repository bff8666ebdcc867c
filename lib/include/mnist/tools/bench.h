#pragma once
// The side-by-side benchmark behind mnist-bench: this project against a Python PyTorch peer
// (scripts/bench_peer.py) on the same recipes, in one run. Each figure is measured `repeats` times
// on both sides, alternating, and reported as the median with the ratio.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnist::bench {

/// A child process's outcome: exit status, wall time from start to exit, peak memory, output.
struct ProcessResult {
  int status = -1;  // exit status; 128 + signal when killed
  double wall_seconds = 0.0;
  double max_rss_mb = 0.0;  // ru_maxrss of the child
  std::string out, err;
};

/// Runs `argv` (argv[0] a path) to completion, capturing stdout and stderr.
ProcessResult run_process(const std::vector<std::string>& argv);

/// Percentiles of the time `call` takes, in microseconds, after `warmup` untimed calls.
struct Latency {
  double p50_us = 0.0, p99_us = 0.0;
};
Latency measure_latency(const std::function<void()>& call, int warmup, int iterations);

double median(std::vector<double> values);

/// One row of the report.
struct Figure {
  Figure(std::string name_, std::string unit_, bool higher_is_better_ = true)
      : name(std::move(name_)), unit(std::move(unit_)), higher_is_better(higher_is_better_) {}
  std::string name;
  std::string unit;
  bool higher_is_better = true;
  std::vector<double> ours, python;  // one value per repeat
  /// How many times better ours is (>1: ours is better), from the medians.
  double ratio() const;
};

struct Options {
  std::string data_dir;         // the four MNIST IDX files
  std::string tutorial_config;  // the Keras tutorial's recipe (training throughput, memory)
  std::string fast_config;      // the speed recipe (time to target, the model inference uses)
  std::string bin_dir;          // where mnist-train and mnist-predict are
  std::string python = "python3";
  std::string peer;      // scripts/bench_peer.py
  std::string work_dir;  // run folders and scratch files go here (must not exist)
  int repeats = 3;
  int tutorial_epochs = 2;  // epochs per training-throughput run
  int latency_iterations = 2000;
  // Which rows: "mlp" (the tutorial's recipes, above), "cnn" (below) or "all".
  std::string suite = "mlp";
  std::string cnn_config;       // CNN training throughput and memory (configs/mnist_cnn.json)
  std::string cnn_fast_config;  // time to 99% and the CNN inference model (mnist_cnn_fast.json)
  int cnn_epochs = 1;           // epochs per CNN throughput run
  // When set: the whole recipe once per repeat on each side, for its time to accuracy (minutes).
  std::string cnn_recipe_config;
  std::function<void(const std::string&)> log;  // progress lines
};

/// Runs every measurement on both sides; UsageError/DataError/RunError naming what failed.
std::vector<Figure> run(const Options& options);

/// The report: a Markdown table (figure, ours, Python, ratio) and the JSON with every run.
std::string markdown_table(const std::vector<Figure>& figures);
nlohmann::json report_json(const std::vector<Figure>& figures, const Options& options);

/// "AMD EPYC ... , 2 cores, 24 GiB, Debian ..., LibTorch x, Python torch y" for the report.
std::string machine_description();

}  // namespace mnist::bench
