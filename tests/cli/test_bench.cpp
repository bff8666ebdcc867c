// mnist-bench end to end on a small synthetic data set, against the real Python peer: every figure
// measured on both sides, the JSON report and the table; and its errors. The peer needs Debian's
// python3-torch; without it the test is skipped, unless MNIST_REQUIRE_ALL says it must run.

#include <cstdlib>
#include <filesystem>

#include <algorithm>
#include <map>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mnist/tools/bench.h"
#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kBench = MNIST_BENCH_BIN;
const std::string kPython = "/usr/bin/python3";

bool peer_available() {
  return testing::run_command(kPython + " -c 'import torch, PIL'").status == 0;
}

#define REQUIRE_PEER()   \
  if (!peer_available()) \
  MNIST_SKIP_OR_REQUIRE("no python3-torch / python3-pil (scripts/install_deps.sh)")

TEST(Bench, MeasuresEveryFigureOnBothSidesAndWritesTheReport) {
  REQUIRE_PEER();
  TempDir dir;
  testing::write_synthetic_mnist(dir / "data", 600, 200);
  // The tutorial recipe with a validation split the small set can spare.
  auto tutorial = nlohmann::json::parse(
      testing::read_bytes(fs::path(MNIST_SOURCE_DIR) / "configs/mnist_mlp_seed.json"));
  tutorial["data"] = {{"val_size", 100}};
  testing::write_bytes(dir / "tutorial.json", tutorial.dump());
  const auto r = testing::run_command(
      kBench + " --python " + kPython + " --data " + testing::quote(dir / "data") +
      " --tutorial-config " + testing::quote(dir / "tutorial.json") + " --work-dir " +
      testing::quote(dir / "bench") + " --repeats 2 --epochs 1 --iterations 20");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto report = nlohmann::json::parse(testing::read_bytes(dir / "bench/bench.json"));
  ASSERT_EQ(report.at("figures").size(), 8u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& f : report.at("figures")) {
    const std::string name = f.at("name").get<std::string>();
    SCOPED_TRACE(name);
    by_name[name] = f;
    ASSERT_EQ(f.at("ours").size(), 2u);
    ASSERT_EQ(f.at("python").size(), 2u);
    const auto ours = f.at("ours").get<std::vector<double>>();
    const auto python = f.at("python").get<std::vector<double>>();
    for (const double v : ours) EXPECT_GT(v, 0.0);
    for (const double v : python) EXPECT_GT(v, 0.0);
    // The summary is the samples': medians, and the ratio in the figure's direction.
    const double om = (ours[0] + ours[1]) / 2, pm = (python[0] + python[1]) / 2;
    EXPECT_DOUBLE_EQ(f.at("ours_median").get<double>(), om);
    EXPECT_DOUBLE_EQ(f.at("python_median").get<double>(), pm);
    EXPECT_DOUBLE_EQ(f.at("ratio").get<double>(),
                     f.at("higher_is_better").get<bool>() ? om / pm : pm / om);
  }
  // The figures are the runs' own: our training rate is the median of the run's history.csv
  // images/s, our accuracy its metrics.json; both sides learned the recipe (the synthetic set is
  // easy).
  const auto history_median = [&](const std::string& run) {
    std::vector<double> rates;
    const auto rows = testing::lines(testing::read_bytes(dir / ("bench/" + run + "/history.csv")));
    for (size_t i = 1; i < rows.size(); ++i)
      rates.push_back(std::stod(rows[i].substr(rows[i].rfind(',') + 1)));
    std::sort(rates.begin(), rates.end());
    return rates.size() % 2 ? rates[rates.size() / 2]
                            : (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]) / 2;
  };
  const auto& train =
      by_name.at("training images/s, tutorial recipe (784-150-50-10, Adam, batch 32)");
  EXPECT_NEAR(train.at("ours")[0].get<double>(), history_median("tutorial-1"),
              1e-6 * history_median("tutorial-1"));
  EXPECT_NEAR(train.at("ours")[1].get<double>(), history_median("tutorial-2"),
              1e-6 * history_median("tutorial-2"));
  const auto& accuracy = by_name.at("test accuracy reached by that run");
  for (int k = 0; k < 2; ++k) {
    const auto metrics = nlohmann::json::parse(
        testing::read_bytes(dir / ("bench/fast-" + std::to_string(k + 1) + "/metrics.json")));
    EXPECT_DOUBLE_EQ(accuracy.at("ours")[k].get<double>(),
                     100.0 * metrics.at("test_accuracy").get<double>());
    EXPECT_GT(accuracy.at("ours")[k].get<double>(), 90.0);
    EXPECT_GT(accuracy.at("python")[k].get<double>(), 90.0);
  }
  EXPECT_NE(r.out.find("| training images/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| predict one image file"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir / "bench/tutorial-2/metrics.json"));
  EXPECT_TRUE(fs::exists(dir / "bench/fast-2/model.pt"));
}

TEST(Bench, CnnSuiteMeasuresTheCnnRecipesOnBothSides) {
  REQUIRE_PEER();
  TempDir dir;
  testing::write_synthetic_mnist(dir / "data", 600, 200);
  // The CNN recipe's parts, small: batch norm, pooling, dropout, AdamW, one-cycle, label
  // smoothing, a weight average, the affine and elastic augmentation.
  const nlohmann::json cnn = {
      {"threads", 1},
      {"data", {{"val_size", 100}}},
      {"model",
       {{"type", "cnn"},
        {"channels", {4, 8}},
        {"kernel_sizes", {3, 3}},
        {"hidden_sizes", {16}},
        {"dropout", 0.1}}},
      {"train", {{"epochs", 3}, {"batch_size", 32}, {"label_smoothing", 0.1}, {"ema_decay", 0.9}}},
      {"augment", {{"rotation", 5}, {"elastic_alpha", 1.0}, {"elastic_sigma", 2}}},
      {"optim", {{"name", "adamw"}, {"lr", 0.01}, {"weight_decay", 0.01}}},
      {"schedule", {{"name", "onecycle"}}}};
  testing::write_bytes(dir / "cnn.json", cnn.dump());
  const auto r = testing::run_command(
      kBench + " --python " + kPython + " --data " + testing::quote(dir / "data") +
      " --suite cnn --cnn-config " + testing::quote(dir / "cnn.json") + " --cnn-fast-config " +
      testing::quote(dir / "cnn.json") + " --cnn-recipe " + testing::quote(dir / "cnn.json") +
      " --work-dir " + testing::quote(dir / "bench") + " --repeats 1 --cnn-epochs 1");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto report = nlohmann::json::parse(testing::read_bytes(dir / "bench/bench.json"));
  ASSERT_EQ(report.at("figures").size(), 7u);
  for (const auto& f : report.at("figures")) {
    SCOPED_TRACE(f.at("name").get<std::string>());
    ASSERT_EQ(f.at("ours").size(), 1u);
    ASSERT_EQ(f.at("python").size(), 1u);
    EXPECT_GT(f.at("ours")[0].get<double>(), 0.0);
    EXPECT_GT(f.at("python")[0].get<double>(), 0.0);
  }
  // Our figures are our runs': the throughput from the CNN run's history, the accuracy from the
  // speed run's metrics; both sides learned the synthetic digits.
  const auto& rate = report.at("figures")[0];
  EXPECT_NE(rate.at("name").get<std::string>().find("CNN training images/s"), std::string::npos);
  const auto rows = testing::lines(testing::read_bytes(dir / "bench/cnn-1/history.csv"));
  ASSERT_EQ(rows.size(), 2u);  // --cnn-epochs 1
  EXPECT_NEAR(rate.at("ours")[0].get<double>(), std::stod(rows[1].substr(rows[1].rfind(',') + 1)),
              1.0);
  const auto metrics =
      nlohmann::json::parse(testing::read_bytes(dir / "bench/cnn-fast-1/metrics.json"));
  const auto& accuracy = report.at("figures")[3];
  EXPECT_DOUBLE_EQ(accuracy.at("ours")[0].get<double>(),
                   100.0 * metrics.at("test_accuracy").get<double>());
  EXPECT_GT(accuracy.at("ours")[0].get<double>(), 60.0);
  EXPECT_GT(accuracy.at("python")[0].get<double>(), 60.0);
  EXPECT_TRUE(fs::exists(dir / "bench/cnn-recipe-1/model.pt"));
  EXPECT_NE(r.out.find("| CNN batch inference"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("tutorial recipe"), std::string::npos) << "--suite cnn ran the MLP rows";
}

TEST(Bench, BadInputIsOneErrorLine) {
  TempDir dir;
  auto r = testing::run_command(kBench + " --data " + testing::quote(dir / "nothing") +
                                " --work-dir " + testing::quote(dir / "bench"));
  testing::expect_one_error_line(r, 1, dir / "nothing");
  fs::create_directories(dir / "taken");
  r = testing::run_command(kBench + " --work-dir " + testing::quote(dir / "taken"));
  testing::expect_one_error_line(r, 2, "taken");
  r = testing::run_command(kBench + " --repeats 0");
  EXPECT_EQ(r.status, 2);
  r = testing::run_command(kBench + " --suite gpu");
  EXPECT_EQ(r.status, 2);
  r = testing::run_command(kBench + " --suite cnn --cnn-config " +
                           testing::quote(dir / "none.json") + " --work-dir " +
                           testing::quote(dir / "bench2"));
  testing::expect_one_error_line(r, 2, "none.json");
}

TEST(BenchReport, MediansRatiosAndTable) {
  EXPECT_EQ(bench::median({3, 1, 2}), 2);
  EXPECT_EQ(bench::median({4, 1, 2, 3}), 2.5);
  bench::Figure speed("training", "images/s");
  speed.ours = {300, 100, 200};
  speed.python = {50, 100, 150};
  EXPECT_DOUBLE_EQ(speed.ratio(), 2.0);  // higher is better: 200 / 100
  bench::Figure time("predict", "s", /*higher_is_better=*/false);
  time.ours = {0.5};
  time.python = {1.0};
  EXPECT_DOUBLE_EQ(time.ratio(), 2.0);  // lower is better: 1.0 / 0.5
  const auto table = bench::markdown_table({speed, time});
  EXPECT_NE(table.find("| training | images/s | 200 | 100 | 2.00x"), std::string::npos) << table;
  EXPECT_NE(table.find("| predict | s | 0.50 | 1.00 | 2.00x"), std::string::npos) << table;
}

TEST(BenchReport, ChildProcessStatusOutputAndMemory) {
  const auto ok = bench::run_process({"/bin/sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(ok.status, 0);
  EXPECT_EQ(ok.out, "out\n");
  EXPECT_EQ(ok.err, "err\n");
  EXPECT_GT(ok.max_rss_mb, 0.0);
  EXPECT_EQ(bench::run_process({"/bin/sh", "-c", "exit 3"}).status, 3);
  EXPECT_EQ(bench::run_process({"/nonexistent/program"}).status, 127);
}

}  // namespace
}  // namespace mnist
