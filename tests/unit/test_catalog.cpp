// Run folders read back (run/catalog.h): the status of a run in each of its states, the history
// and predictions tables with their errors, and progress.json as training writes it (every
// report, whole files only, read as "running" while the process lives).

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/run/catalog.h"
#include "train_fixture.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;

class CatalogTest : public TrainTest {};

// Records what progress.json held at each report, as a reader polling it would see it.
class Snapshots : public TrainObserver {
 public:
  explicit Snapshots(std::string path) : path_(std::move(path)) {}
  void on_progress(int64_t, int64_t, int64_t, double, double, double) override { look(); }
  void on_epoch_end(const EpochStats&) override { look(); }
  std::vector<nlohmann::json> seen;

 private:
  void look() {
    // The inner observer is called first, so this is the state before this report's write.
    if (fs::exists(path_)) seen.push_back(nlohmann::json::parse(read_text_file(path_)));
  }
  std::string path_;
};

TEST_F(CatalogTest, ProgressFileFollowsTrainingAndMakesTheRunRunning) {
  const std::string dir = runs_ / "run";
  const RunFolder run = RunFolder::create(dir);
  run.write_json(run_files::kConfig, config_to_json(config_));
  run.write_json(run_files::kDataset, dataset_info_json(splits_.info));
  Snapshots inner(run.file(run_files::kProgress));
  ProgressFile progress(run, inner);
  train_run(config_, splits_, run, torch::kCPU, progress);

  // 500 training images, batch 16: 32 steps per epoch, a report every 5 steps and at each end.
  ASSERT_GE(inner.seen.size(), 3 * 7u);
  int64_t last = -1;
  for (const auto& j : inner.seen) {
    EXPECT_EQ(j["pid"], static_cast<int64_t>(getpid()));
    EXPECT_EQ(j["state"], "training");
    EXPECT_EQ(j["epochs"], 3);
    const int64_t at = j["epoch"].get<int64_t>() * 1000 + j["step"].get<int64_t>();
    EXPECT_GE(at, last) << j.dump();
    last = at;
  }
  const auto final_state = nlohmann::json::parse(read_text_file(run.file(run_files::kProgress)));
  EXPECT_EQ(final_state["epoch"], 3);
  EXPECT_EQ(final_state["epoch_done"], 3);
  EXPECT_TRUE(final_state["loss"].is_number());
  EXPECT_TRUE(final_state["eta_seconds"].is_number());
  EXPECT_EQ(progress.writes(), static_cast<int64_t>(inner.seen.size()) + 1);
  std::printf("progress.json: %lld writes, %.1f us each (the training: 3 epochs)\n",
              static_cast<long long>(progress.writes()),
              1e6 * progress.write_seconds() / static_cast<double>(progress.writes()));
  // No temporary file left behind; the process is alive, so the run is running.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_EQ(read_run_summary(dir).status, RunStatus::kRunning);
  EXPECT_EQ(read_run_summary(dir).epochs_done, 3);
}

TEST_F(CatalogTest, EachStateOfARunFolderHasItsStatus) {
  const std::string dir = runs_ / "run";
  TrainObserver quiet;
  const TrainResult trained = train_in(dir, quiet);
  // A checkpoint, no metrics, nobody training: interrupted (resumable).
  RunSummary s = read_run_summary(dir);
  EXPECT_EQ(s.status, RunStatus::kInterrupted);
  EXPECT_EQ(s.epochs_done, 3);
  EXPECT_EQ(s.epochs_planned, 3);
  EXPECT_GT(s.best_val_accuracy, 0.5);
  EXPECT_EQ(s.test_accuracy, -1);
  // A progress file of a process that is gone changes nothing.
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const double now = static_cast<double>(std::time(nullptr));
  write_file_atomic(
      RunFolder::open(dir).file(run_files::kProgress),
      nlohmann::json({{"pid", 999999999}, {"host", host}, {"updated_unix", now}}).dump());
  EXPECT_EQ(read_run_summary(dir).status, RunStatus::kInterrupted);
  write_file_atomic(
      RunFolder::open(dir).file(run_files::kProgress),
      nlohmann::json({{"pid", static_cast<int64_t>(getpid())}, {"host", host}}).dump());
  EXPECT_EQ(read_run_summary(dir).status, RunStatus::kRunning);
  // Another machine's fresh progress: running; stale: not.
  write_file_atomic(
      RunFolder::open(dir).file(run_files::kProgress),
      nlohmann::json({{"pid", 1}, {"host", "elsewhere"}, {"updated_unix", now}}).dump());
  EXPECT_EQ(read_run_summary(dir).status, RunStatus::kRunning);
  write_file_atomic(
      RunFolder::open(dir).file(run_files::kProgress),
      nlohmann::json({{"pid", 1}, {"host", "elsewhere"}, {"updated_unix", now - 600}}).dump());
  EXPECT_EQ(read_run_summary(dir).status, RunStatus::kInterrupted);
  // Evaluated and completed (meta.json as start_run writes it).
  RunFolder::open(dir).write_json(run_files::kMeta, {{"start_time", utc_timestamp()}});
  const EvalResult result =
      evaluate_run(config_, splits_, RunFolder::open(dir), trained, torch::kCPU);
  complete_run(RunFolder::open(dir), result, splits_.info, trained);
  s = read_run_summary(dir);
  EXPECT_EQ(s.status, RunStatus::kComplete);
  EXPECT_DOUBLE_EQ(s.test_accuracy, result.accuracy);
  EXPECT_GE(s.wall_seconds, 0);
  // Damaged metrics: damaged, naming the file only.
  write_file_atomic(RunFolder::open(dir).file(run_files::kMetrics), "{\"test_");
  s = read_run_summary(dir);
  EXPECT_EQ(s.status, RunStatus::kDamaged);
  EXPECT_EQ(s.problem.rfind("metrics.json: ", 0), 0u) << s.problem;
  // No checkpoint and nobody training: failed.
  const std::string failed = runs_ / "failed";
  fs::create_directories(failed);
  fs::copy_file(fs::path(dir) / run_files::kConfig, fs::path(failed) / run_files::kConfig);
  EXPECT_EQ(read_run_summary(failed).status, RunStatus::kFailed);
  // A config that is not JSON: damaged; a folder that is gone: damaged.
  write_file_atomic((fs::path(failed) / run_files::kConfig).string(), "[1, 2");
  EXPECT_EQ(read_run_summary(failed).status, RunStatus::kDamaged);
  EXPECT_EQ(read_run_summary(runs_ / "gone").status, RunStatus::kDamaged);

  const auto found = find_run_folders({runs_.path()}, 10);
  EXPECT_EQ(found, (std::vector<std::string>{failed, dir}));
  EXPECT_EQ(find_run_folders({runs_.path()}, 1).size(), 1u);
  EXPECT_EQ(find_run_folders({dir}, 10), std::vector<std::string>{dir});
}

TEST_F(CatalogTest, HistoryAndPredictionTablesAreReadOrRefusedByName) {
  const std::string dir = runs_ / "run";
  fs::create_directories(dir);
  const auto path = [&](const char* f) { return (fs::path(dir) / f).string(); };
  EXPECT_TRUE(read_history_table(dir)["rows"].empty());
  write_file_atomic(path(run_files::kHistory),
                    "epoch,train_loss,val_loss\n1,0.5,\n2,0.25,0.3\n3,0.125,0.2\n");
  const auto all = read_history_table(dir);
  EXPECT_EQ(all["columns"], nlohmann::json({"epoch", "train_loss", "val_loss"}));
  ASSERT_EQ(all["rows"].size(), 3u);
  EXPECT_TRUE(all["rows"][0][2].is_null());
  EXPECT_EQ(all["rows"][1][1], 0.25);
  EXPECT_EQ(read_history_table(dir, 2)["rows"].size(), 1u);
  write_file_atomic(path(run_files::kHistory), "epoch,a\n1,2,3\n");
  EXPECT_THROW(read_history_table(dir), DataError);
  write_file_atomic(path(run_files::kHistory), "loss\n1\n");
  EXPECT_THROW(read_history_table(dir), DataError);

  write_file_atomic(
      path(run_files::kPredictions),
      "index,label,predicted,confidence,p0,p1\n0,1,1,0.9,0.1,0.9\n1,0,1,0.75,0.25,0.75\n");
  const auto rows = read_predictions(dir);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].index, 1);
  EXPECT_EQ(rows[1].label, 0);
  EXPECT_EQ(rows[1].predicted, 1);
  EXPECT_DOUBLE_EQ(rows[1].confidence, 0.75);
  write_file_atomic(path(run_files::kPredictions), "index,label,predicted,confidence\n0,1,x,0.5\n");
  try {
    read_predictions(dir);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "predictions.csv: line 2 is not a prediction");
  }
  fs::remove(path(run_files::kPredictions));
  try {
    read_predictions(dir);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()).find(dir), std::string::npos) << "path in " << e.what();
  }
}

}  // namespace
}  // namespace mnist
