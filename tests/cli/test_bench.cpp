// mnist-bench end to end on a small synthetic data set, against the real Python peer: every figure
// measured on both sides, the JSON report and the table; and its errors. The peer needs Debian's
// python3-torch; without it the test is skipped, unless MNIST_REQUIRE_ALL says it must run.

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mnist/bench/bench.h"
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
  for (const auto& f : report.at("figures")) {
    SCOPED_TRACE(f.at("name").get<std::string>());
    ASSERT_EQ(f.at("ours").size(), 2u);
    ASSERT_EQ(f.at("python").size(), 2u);
    EXPECT_GT(f.at("ours_median").get<double>(), 0.0);
    EXPECT_GT(f.at("python_median").get<double>(), 0.0);
    EXPECT_GT(f.at("ratio").get<double>(), 0.0);
  }
  EXPECT_NE(r.out.find("| training images/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| predict one image file"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir / "bench/tutorial-2/metrics.json"));
  EXPECT_TRUE(fs::exists(dir / "bench/fast-2/model.pt"));
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
