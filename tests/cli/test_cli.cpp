// The command-line contract of mnist-train and mnist-eval (../shared/DESIGN.md), through the real
// binaries: exit statuses, one `error:` line naming the file or key, run folders never overwritten
// and never looking complete after a failure, the run folder's files, eval --json, and --resume.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CommandResult;
using testing::TempDir;

const std::string kTrain = MNIST_TRAIN_BIN;
const std::string kEval = MNIST_EVAL_BIN;

using testing::expect_one_error_line;
std::string q(const std::string& s) {
  return testing::quote(s);
}

// One synthetic data set and one finished run, shared by the tests that only read them (and by
// every process of this suite: testing::SharedDir).
class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new testing::SharedDir("cli", [](const std::string& dir) {
        testing::write_synthetic_mnist(dir + "/data", 500, 200);
        testing::write_bytes(dir + "/tiny.json", testing::tiny_config(dir + "/data"));
        const auto r = testing::run_command(kTrain + " --config " + q(dir + "/tiny.json") +
                                            " --run-dir " + q(dir + "/run"));
        if (r.status != 0) throw std::runtime_error("training failed: " + r.out + r.err);
        testing::write_bytes(dir + "/train.out", r.out);
      });
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  // A failed fixture fails every test (GoogleTest would otherwise report them skipped).
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static std::string path(const std::string& name) { return *dir_ / name; }
  static std::string config() { return path("tiny.json"); }
  static std::string run() { return path("run"); }
  static testing::SharedDir* dir_;
  static std::string setup_error_;
};
testing::SharedDir* Cli::dir_ = nullptr;
std::string Cli::setup_error_;

TEST_F(Cli, TrainWritesACompleteRunFolder) {
  for (const char* f : {"config.json", "meta.json", "model.pt", "checkpoint.pt", "history.csv",
                        "metrics.json", "predictions.csv", "plots/samples.png", "plots/curves.png",
                        "plots/confusion.png", "plots/misclassified.png"}) {
    EXPECT_TRUE(fs::exists(run() + "/" + f)) << f;
  }
  for (const char* png : {"samples", "curves", "confusion", "misclassified"}) {
    const std::string bytes = testing::read_bytes(run() + "/plots/" + png + ".png");
    EXPECT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n") << png;
    EXPECT_GT(bytes.size(), 5000u) << png;  // a drawn figure, not an empty canvas
  }
  const json config = json::parse(testing::read_bytes(run() + "/config.json"));
  EXPECT_EQ(config["data"]["dir"], path("data"));  // resolved: absolute, every key present
  EXPECT_EQ(config["train"]["epochs"], 2);
  EXPECT_TRUE(config["optim"].contains("weight_decay"));
  const json meta = json::parse(testing::read_bytes(run() + "/meta.json"));
  for (const char* key :
       {"git_commit", "torch_version", "device", "seed", "start_time", "end_time"}) {
    EXPECT_TRUE(meta.contains(key)) << key;
  }
  const auto history = testing::lines(testing::read_bytes(run() + "/history.csv"));
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0],
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_second");
  const json metrics = json::parse(testing::read_bytes(run() + "/metrics.json"));
  EXPECT_GT(metrics["test_accuracy"].get<double>(), 0.9);
  EXPECT_EQ(metrics["confusion_matrix"].size(), 10u);
  EXPECT_EQ(testing::lines(testing::read_bytes(run() + "/predictions.csv")).size(), 201u);
  const std::string train_out = testing::read_bytes(path("train.out"));
  EXPECT_NE(train_out.find("test accuracy"), std::string::npos);
  EXPECT_NE(train_out.find(run()), std::string::npos);  // tells the user where the run is
}

TEST_F(Cli, EvalJsonIsOneLineWithTheKeysOfMetricsJson) {
  const auto r = testing::run_command(kEval + " --run " + q(run()) + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = testing::lines(r.out);
  ASSERT_EQ(out.size(), 1u) << r.out;
  const json printed = json::parse(out[0]);
  const json saved = json::parse(testing::read_bytes(run() + "/metrics.json"));
  for (const auto& item : saved.items()) EXPECT_TRUE(printed.contains(item.key())) << item.key();
  EXPECT_EQ(printed["confusion_matrix"], saved["confusion_matrix"]);
  EXPECT_DOUBLE_EQ(printed["test_accuracy"].get<double>(), saved["test_accuracy"].get<double>());
}

TEST_F(Cli, EvalWritesNothingIntoTheRunFolder) {
  TempDir tmp;
  fs::copy(run(), tmp / "run", fs::copy_options::recursive);
  fs::remove_all(tmp / "run/plots");
  const auto count = [&] {
    return std::distance(fs::recursive_directory_iterator(tmp / "run"), {});
  };
  const auto before = count();
  ASSERT_EQ(testing::run_command(kEval + " --run " + q(tmp / "run") + " --json").status, 0);
  EXPECT_EQ(count(), before);
}

TEST_F(Cli, EvalReportIsReadable) {
  const auto r = testing::run_command(kEval + " --run " + q(run()));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos);
  EXPECT_NE(r.out.find("precision"), std::string::npos);
  EXPECT_NE(r.out.find("confusion matrix"), std::string::npos);
}

TEST_F(Cli, ResumeOfAFinishedRunDoesNothing) {
  const auto before = testing::read_bytes(run() + "/metrics.json");
  const auto r = testing::run_command(kTrain + " --resume " + q(run()));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("nothing to do"), std::string::npos);
  EXPECT_EQ(testing::read_bytes(run() + "/metrics.json"), before);
}

TEST_F(Cli, CommandLineErrorsExitTwo) {
  expect_one_error_line(testing::run_command(kTrain), 2, "--config");
  expect_one_error_line(testing::run_command(kTrain + " --config " + q(config()) + " --bogus"), 2,
                        "--bogus");
  expect_one_error_line(testing::run_command(kTrain + " --config " + q(path("nope.json"))), 2,
                        path("nope.json"));
  expect_one_error_line(
      testing::run_command(kTrain + " --config " + q(config()) + " --set train.epochs=2.5"), 2,
      "train.epochs");
  expect_one_error_line(
      testing::run_command(kTrain + " --config " + q(config()) + " --set train.epochs=0"), 2,
      "train.epochs");
  expect_one_error_line(
      testing::run_command(kTrain + " --config " + q(config()) + " --set seed=-1"), 2, "seed");
  expect_one_error_line(
      testing::run_command(kTrain + " --config " + q(config()) + " --set optim.nmae=adam"), 2,
      "optim.nmae");
  expect_one_error_line(testing::run_command(kEval), 2, "--run");
  expect_one_error_line(testing::run_command(kEval + " --run " + q(path("no-such-run"))), 2,
                        path("no-such-run"));
  EXPECT_EQ(testing::run_command(kTrain + " --help").status, 0);
}

// --print-config prints what a run would use, every key resolved, and trains nothing;
// --config-reference prints docs/config.md.
TEST_F(Cli, PrintConfigResolvesWithoutTraining) {
  TempDir tmp;
  const auto r = testing::run_command("cd " + q(tmp.path()) + " && " + kTrain + " --config " +
                                      q(config()) + " --set train.epochs=3 --print-config");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["train"]["epochs"], 3);
  EXPECT_EQ(j["model"]["output"], "softmax");
  EXPECT_EQ(j["schedule"]["final_div_factor"], 1e4);  // a key the file does not give
  EXPECT_FALSE(std::filesystem::exists(tmp / "runs")) << "a run folder was made";
  const auto defaults = testing::run_command(kTrain + " --print-config --set seed=5");
  ASSERT_EQ(defaults.status, 0) << defaults.err;
  EXPECT_EQ(nlohmann::json::parse(defaults.out)["seed"], 5);
  expect_one_error_line(testing::run_command(kTrain + " --print-config --set model.pool=min"), 2,
                        "model.pool: must be one of max, avg, none");
  const auto reference = testing::run_command(kTrain + " --config-reference");
  ASSERT_EQ(reference.status, 0);
  EXPECT_EQ(reference.out, testing::read_bytes(std::string(MNIST_SOURCE_DIR) + "/docs/config.md"));
}

TEST_F(Cli, BadKeyInAConfigFileNamesFileAndKey) {
  TempDir tmp;
  testing::write_bytes(tmp / "bad.json", R"({"train": {"epochs": 1, "batchsize": 8}})");
  expect_one_error_line(testing::run_command(kTrain + " --config " + q(tmp / "bad.json")), 2,
                        tmp / "bad.json" + ": train.batchsize: unknown key");
  testing::write_bytes(tmp / "broken.json", "{ \"seed\": ");
  expect_one_error_line(testing::run_command(kTrain + " --config " + q(tmp / "broken.json")), 2,
                        tmp / "broken.json");
}

// Found by trying it: this killed mnist-train with SIGSEGV, and 1e400 was exit 1.
TEST_F(Cli, HostileConfigsAreOneErrorLineAndExitTwo) {
  TempDir tmp;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  testing::write_bytes(tmp / "deep.json", R"({"train": {"epochs": )" + deep + "}}");
  expect_one_error_line(testing::run_command(kTrain + " --config " + q(tmp / "deep.json")), 2,
                        tmp / "deep.json" + ": nested deeper than 32 levels");
  testing::write_bytes(tmp / "huge.json", R"({"train": {"epochs": 1e400}})");
  expect_one_error_line(testing::run_command(kTrain + " --config " + q(tmp / "huge.json")), 2,
                        tmp / "huge.json" + ": train.epochs: number out of range");
}

TEST_F(Cli, ExistingRunFolderIsNeverOverwritten) {
  const auto before = testing::read_bytes(run() + "/metrics.json");
  expect_one_error_line(
      testing::run_command(kTrain + " --config " + q(config()) + " --run-dir " + q(run())), 2,
      "not empty");
  EXPECT_EQ(testing::read_bytes(run() + "/metrics.json"), before);
}

TEST_F(Cli, CorruptDataExitsOneAndLeavesNoRunFolder) {
  TempDir bad;
  testing::write_synthetic_mnist(bad / "data", 100, 50);
  const std::string images = bad / "data/t10k-images-idx3-ubyte";
  const std::string bytes = testing::read_bytes(images);
  testing::write_bytes(images, bytes.substr(0, bytes.size() - 100));
  const std::string cmd = kTrain + " --config " + q(config()) +
                          " --set data.dir=" + q(bad / "data") + " --run-dir " + q(bad / "run");
  expect_one_error_line(testing::run_command(cmd), 1, images);
  EXPECT_FALSE(fs::exists(bad / "run"));

  testing::write_bytes(images, "not gzip");
  fs::rename(images, images + ".gz");
  expect_one_error_line(testing::run_command(cmd), 1, "not a gzip file");
}

TEST_F(Cli, DivergenceExitsOneWithoutMetrics) {
  TempDir tmp;
  const auto r =
      testing::run_command(kTrain + " --config " + q(config()) + " --run-dir " + q(tmp / "run") +
                           " --set optim.name=sgd --set optim.lr=10 --set optim.momentum=0.99" +
                           " --set 'model.hidden_sizes=[256,256,256]'");
  expect_one_error_line(r, 1, "diverged");
  EXPECT_FALSE(fs::exists(tmp / "run/metrics.json"));
}

TEST_F(Cli, ResumeWithACorruptCheckpointExitsOne) {
  TempDir tmp;
  fs::copy(run(), tmp / "run", fs::copy_options::recursive);
  fs::remove(tmp / "run/metrics.json");  // an unfinished run
  testing::write_bytes(tmp / "run/checkpoint.pt", "garbage");
  expect_one_error_line(testing::run_command(kTrain + " --resume " + q(tmp / "run")), 1,
                        tmp / "run/checkpoint.pt");
  EXPECT_FALSE(fs::exists(tmp / "run/metrics.json"));
}

TEST_F(Cli, ResumeFinishesAnUnfinishedRun) {
  TempDir tmp;
  fs::copy(run(), tmp / "run", fs::copy_options::recursive);
  fs::remove(tmp / "run/metrics.json");  // died after the last checkpoint, before the end
  fs::remove(tmp / "run/model.pt");
  const auto r = testing::run_command(kTrain + " --resume " + q(tmp / "run"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(testing::read_bytes(tmp / "run/metrics.json"),
            testing::read_bytes(run() + "/metrics.json"));
  EXPECT_EQ(json::parse(testing::read_bytes(tmp / "run/meta.json"))["resumes"].size(), 1u);
}

// The real thing: SIGKILL at an arbitrary moment after the first epoch, then --resume. The resumed
// run must end with exactly the history and metrics of an uninterrupted one.
// Every column of history.csv but the two timings (seconds, images_per_second).
std::string without_times(const std::string& csv) {
  std::string out;
  for (const auto& line : testing::lines(csv)) {
    std::stringstream cells(line);
    std::string cell;
    for (int i = 0; i < 6 && std::getline(cells, cell, ','); ++i) out += cell + ",";
    out += "\n";
  }
  return out;
}

// Expects run folder `run` to have ended as `whole` did: every history column but the timings, and
// metrics.json byte for byte.
void expect_same_result(const std::string& run, const std::string& whole) {
  EXPECT_EQ(without_times(testing::read_bytes(run + "/history.csv")),
            without_times(testing::read_bytes(whole + "/history.csv")));
  EXPECT_EQ(testing::read_bytes(run + "/metrics.json"),
            testing::read_bytes(whole + "/metrics.json"));
}

// A training command long enough to interrupt (4 epochs of 12,000 synthetic images, written into
// `tmp`/data), without --run-dir; its uninterrupted run is trained into `tmp`/whole.
std::string interruptible_run(const TempDir& tmp, const std::string& config) {
  testing::write_synthetic_mnist(tmp / "data", 12000, 500);
  const std::string base = kTrain + " --config " + q(config) +
                           " --set data.dir=" + q(tmp / "data") +
                           " --set train.epochs=4 --set 'model.hidden_sizes=[128]'";
  EXPECT_EQ(testing::run_command(base + " --run-dir " + q(tmp / "whole")).status, 0);
  return base;
}

// Ctrl-C (SIGINT) or SIGTERM while training: the step finishes, the checkpoint keeps it, one line
// says how to resume, the exit status is 130 / 143; a second signal stops at once. Either way no
// temporary file is left, and the resumed run ends exactly as the uninterrupted one.
TEST_F(Cli, SignalsStopTrainingResumablyWith130Or143) {
  TempDir tmp;
  const std::string base = interruptible_run(tmp, config());
  ASSERT_FALSE(HasFailure());

  struct Case {
    const char* name;
    int signal, count, status;
  };
  for (const Case c : {Case{"int", SIGINT, 1, 130}, Case{"term", SIGTERM, 1, 143},
                       Case{"int-twice", SIGINT, 2, 130}}) {
    SCOPED_TRACE(c.name);
    const std::string run = tmp / c.name;
    testing::Background train(base + " --run-dir " + q(run), tmp / c.name);
    // In the second epoch: once the first one's row is in history.csv.
    ASSERT_TRUE(testing::wait_until(
        [&] { return testing::lines(testing::read_bytes(run + "/history.csv")).size() >= 2; },
        std::chrono::seconds(120)));
    for (int k = 0; k < c.count; ++k) ASSERT_EQ(::kill(train.pid(), c.signal), 0);
    ASSERT_EQ(train.wait(std::chrono::seconds(60)), c.status) << train.err();
    EXPECT_EQ(testing::temporary_files(run), "");
    ASSERT_FALSE(fs::exists(run + "/metrics.json")) << "the run finished before the signal";
    if (c.count == 1) {
      const auto err = testing::lines(train.err());
      ASSERT_FALSE(err.empty());
      EXPECT_NE(
          err.back().find("stopped by " + std::string(c.signal == SIGINT ? "SIGINT" : "SIGTERM")),
          std::string::npos)
          << train.err();
      EXPECT_NE(err.back().find("resume with: " + kTrain + " --resume " + run), std::string::npos)
          << train.err();
    }
    const auto resumed = testing::run_command(kTrain + " --resume " + q(run));
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    expect_same_result(run, tmp / "whole");
  }
}

// A full disk: the run folder on a tmpfs with room for the first epoch's files only. A later write
// fails with one error line naming the file (exit 1); the previous checkpoint and history stay
// whole, no temporary file is left; once there is room again, --resume ends as an uninterrupted run
// does. A read-only run folder is one error line too. (The file systems are mounted in a private
// mount namespace: unshare -rm, no privileges needed where user namespaces are allowed.)
TEST_F(Cli, AFullOrReadOnlyDiskIsOneErrorAndTheRunResumesOnceThereIsRoom) {
  if (testing::run_command("unshare -rm true").status != 0) {
    MNIST_SKIP_OR_REQUIRE("unshare -rm is not allowed here (user namespaces)");
  }
  TempDir tmp;
  const std::string base = kTrain + " --config " + q(config()) + " --set train.epochs=3";
  ASSERT_EQ(testing::run_command(base + " --run-dir " + q(tmp / "whole")).status, 0);
  fs::create_directories(tmp / "disk");
  fs::create_directories(tmp / "ro");
  // One epoch writes config, meta, best_model (~100 kB) and checkpoint (~310 kB): 480 kB has no
  // room for a second epoch's temporary file next to them.
  const std::string script =
      "set -u; D=" + q(tmp / "disk") + "; R=" + q(tmp / "ro") + "; O=" + q(tmp.path()) +
      "; mount -t tmpfs -o size=480k tmpfs \"$D\" || exit 99; " + base +
      " --run-dir \"$D/run\" >\"$O/full.out\" 2>\"$O/full.err\"; echo $? >\"$O/full.status\"; "
      "cp -r \"$D/run\" \"$O/after_full\"; "
      // A read-only copy of the stopped run: --resume cannot even note itself in meta.json.
      "mount -t tmpfs tmpfs \"$R\" && cp -r \"$D/run\" \"$R/run\" && "
      "mount -o remount,ro \"$R\" && " +
      kTrain + " --resume \"$R/run\" >/dev/null 2>\"$O/ro.err\"; echo $? >\"$O/ro.status\"; " +
      "mount -o remount,size=64m \"$D\" && " + kTrain + " --resume \"$D/run\" >\"$O/room.out\" " +
      "2>\"$O/room.err\"; echo $? >\"$O/room.status\"; cp -r \"$D/run\" \"$O/final\"";
  const auto r = testing::run_command("unshare -rm sh -c " + q(script));
  ASSERT_NE(r.status, 99) << "tmpfs mount failed: " << r.err;

  const auto status = [&](const std::string& name) {
    return std::stoi(testing::read_bytes(tmp / (name + ".status")));
  };
  // The full disk: exit 1, one line naming a file of the run folder and the reason.
  testing::CommandResult full{status("full"), testing::read_bytes(tmp / "full.out"),
                              testing::read_bytes(tmp / "full.err")};
  testing::expect_one_error_line(full, 1, "No space left on device");
  EXPECT_NE(full.err.find(tmp / "disk/run/"), std::string::npos) << full.err;
  EXPECT_EQ(testing::temporary_files(tmp / "after_full"), "");
  EXPECT_FALSE(fs::exists(tmp / "after_full/metrics.json"));
  const auto rows = testing::lines(testing::read_bytes(tmp / "after_full/history.csv"));
  ASSERT_GE(rows.size(), 2u);  // the epochs whose checkpoint was written
  // The read-only folder: exit 1, one line naming meta.json.
  testing::CommandResult ro{status("ro"), "", testing::read_bytes(tmp / "ro.err")};
  testing::expect_one_error_line(ro, 1, "Read-only file system");
  EXPECT_NE(ro.err.find("meta.json"), std::string::npos) << ro.err;
  // Room again: the run resumes from the kept checkpoint and ends as the uninterrupted one.
  ASSERT_EQ(status("room"), 0) << testing::read_bytes(tmp / "room.err");
  expect_same_result(tmp / "final", tmp / "whole");
}

TEST_F(Cli, KilledRunResumesToTheSameResult) {
  TempDir tmp;
  const std::string base = interruptible_run(tmp, config());
  ASSERT_FALSE(HasFailure());

  const auto started = testing::run_command("exec " + base + " --run-dir " + q(tmp / "cut") +
                                            " >/dev/null 2>&1 & echo $!");
  const pid_t pid = std::stoi(started.out);
  // Kill once the first epoch's row is in history.csv (the checkpoint is on disk before it).
  auto rows = [&] {
    return fs::exists(tmp / "cut/history.csv")
               ? testing::lines(testing::read_bytes(tmp / "cut/history.csv")).size()
               : size_t{0};
  };
  for (int i = 0; i < 3000 && rows() < 2; ++i) ::usleep(5000);
  // Killed before the first checkpoint, --resume would train from scratch and this test would pass
  // without resuming anything.
  if (rows() < 2) ::kill(pid, SIGKILL);
  ASSERT_GE(rows(), 2u) << "no epoch was finished within 15 s: nothing to resume from";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ::waitpid(pid, &status, 0);  // not our child when started through sh; then this returns at once
  for (int i = 0; i < 200 && ::kill(pid, 0) == 0; ++i) ::usleep(10000);
  ASSERT_FALSE(fs::exists(tmp / "cut/metrics.json")) << "the run finished before it was killed";

  const auto resumed = testing::run_command(kTrain + " --resume " + q(tmp / "cut"));
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  expect_same_result(tmp / "cut", tmp / "whole");
}

TEST_F(Cli, EvalSetEvaluatesOnOtherDataAndRefusesWhatDoesNotFit) {
  TempDir tmp;
  testing::write_synthetic_mnist(tmp / "other", 100, 60, /*gzip=*/true, /*seed=*/11);
  const auto r = testing::run_command(kEval + " --run " + q(run()) +
                                      " --set data.dir=" + q(tmp / "other") + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json printed = json::parse(r.out);
  EXPECT_EQ(printed["num_samples"], 60);  // the other set's test split, not the run's 200
  int64_t total = 0;
  for (const auto& row : printed["confusion_matrix"])
    for (const auto& v : row) total += v.get<int64_t>();
  EXPECT_EQ(total, 60);
  EXPECT_GT(printed["test_accuracy"].get<double>(), 0.8);  // the same classes, other noise
  EXPECT_EQ(json::parse(testing::read_bytes(run() + "/metrics.json"))["num_samples"], 200);
  // A model the weights do not fit, a key that does not exist, data that is not there.
  expect_one_error_line(
      testing::run_command(kEval + " --run " + q(run()) + " --set model.hidden_sizes=[64]"), 1,
      run() + "/model.pt");
  expect_one_error_line(testing::run_command(kEval + " --run " + q(run()) + " --set train.nope=1"),
                        2, "train.nope");
  expect_one_error_line(
      testing::run_command(kEval + " --run " + q(run()) + " --set data.dir=" + q(tmp / "none")), 1,
      tmp / "none");
}

TEST_F(Cli, EvalOfABrokenRunFolderExitsOne) {
  TempDir tmp;
  fs::copy(run(), tmp / "run", fs::copy_options::recursive);
  testing::write_bytes(tmp / "run/model.pt", "garbage");
  expect_one_error_line(testing::run_command(kEval + " --run " + q(tmp / "run")), 1,
                        tmp / "run/model.pt");
  testing::write_bytes(tmp / "run/config.json", "{\"model\": {\"type\": 3}}");
  expect_one_error_line(testing::run_command(kEval + " --run " + q(tmp / "run")), 1, "model.type");
}

}  // namespace
}  // namespace mnist
