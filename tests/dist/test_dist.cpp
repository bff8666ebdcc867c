// Data-parallel training on c10d, through the real binaries on loopback: the launcher and the
// torchrun variables, the single-process equivalence of N ranks (MLP and CNN), the run folder of a
// two-rank run, resuming one, and the faults (a dead rank, a hung rank, a port in use, an
// unreachable master, ranks with different configs), each of which must end in an `error:` line
// and a non-zero exit within a bounded time, never a hang.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mnist/core/error.h"
#include "mnist/dist/communicator.h"
#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Background;
using testing::CommandResult;
using testing::TempDir;
using testing::wait_until;
using Clock = std::chrono::steady_clock;

const std::string kTrain = MNIST_TRAIN_BIN;
const std::string kLaunch = MNIST_LAUNCH_BIN;

std::string q(const std::string& s) {
  return testing::quote(s);
}

// A TCP port nobody listens on now (the kernel's choice for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The pids of `parent`'s children whose environment has RANK=`rank`.
pid_t child_with_rank(pid_t parent, int rank) {
  std::ifstream children("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                         "/children");
  for (pid_t pid; children >> pid;) {
    const std::string env = testing::read_bytes("/proc/" + std::to_string(pid) + "/environ");
    std::stringstream vars(env);
    for (std::string var; std::getline(vars, var, '\0');) {
      if (var == "RANK=" + std::to_string(rank)) return pid;
    }
  }
  return -1;
}

// The pids of ranks 0 and 1 under `launcher` once rank 0 has started its first epoch (a line
// "epoch 1/..."), or {-1, -1} when that has not happened within two minutes.
std::pair<pid_t, pid_t> wait_for_first_epoch(const Background& launcher) {
  pid_t rank0 = -1, rank1 = -1;
  const bool started = wait_until(
      [&] {
        rank0 = child_with_rank(launcher.pid(), 0);
        rank1 = child_with_rank(launcher.pid(), 1);
        return rank0 > 0 && rank1 > 0 && launcher.out().find("epoch 1/") != std::string::npos;
      },
      std::chrono::seconds(120));
  return started ? std::make_pair(rank0, rank1) : std::make_pair(pid_t{-1}, pid_t{-1});
}

std::string env(int world, int rank, int port) {
  return "env WORLD_SIZE=" + std::to_string(world) + " RANK=" + std::to_string(rank) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

std::string launch(int nproc, int port) {
  return kLaunch + " --nproc-per-node " + std::to_string(nproc) + " --master-port " +
         std::to_string(port) + " -- ";
}

// history.csv's columns other than the timings: epoch, train_loss, train_accuracy, val_loss,
// val_accuracy, lr.
std::vector<std::vector<double>> history(const std::string& run) {
  std::vector<std::vector<double>> rows;
  const auto all = testing::lines(testing::read_bytes(run + "/history.csv"));
  for (size_t i = 1; i < all.size(); ++i) {
    std::stringstream cells(all[i]);
    std::vector<double> row;
    std::string cell;
    for (int c = 0; c < 6 && std::getline(cells, cell, ','); ++c) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

json metrics(const std::string& run) {
  return json::parse(testing::read_bytes(run + "/metrics.json"));
}

// Shared: a synthetic data set whose training split (417 images after 100 for validation) leaves a
// last step of one image when 2 ranks take 16 each: one rank gets it, the other none.
class Dist : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    testing::write_synthetic_mnist(*dir_ / "data", 517, 300);
    testing::write_bytes(*dir_ / "tiny.json", testing::tiny_config(*dir_ / "data", 3));
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string path(const std::string& name) { return *dir_ / name; }
  // mnist-train on the shared data with `sets` (--set ...) into `run`.
  static std::string train(const std::string& run, const std::string& sets = "") {
    return kTrain + " --config " + q(path("tiny.json")) + " --run-dir " + q(run) + " " + sets;
  }
  // --set flags for a run long enough to be interrupted (50 epochs of 20,000 images), its data
  // written into `tmp`.
  static std::string long_run(const TempDir& tmp) {
    testing::write_synthetic_mnist(tmp / "data", 20000, 100);
    return "--set data.dir=" + q(tmp / "data") + " --set train.epochs=50";
  }
  static TempDir* dir_;
};
TempDir* Dist::dir_ = nullptr;

TEST(DistUnit, ShardsCoverTheRowsInOrderWithoutOverlap) {
  for (int64_t n : {0, 1, 2, 7, 32, 33}) {
    for (int world : {1, 2, 3, 5}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        const Shard s = shard_of(n, r, world);
        EXPECT_EQ(s.begin, next) << n << " " << r << "/" << world;
        EXPECT_LE(s.count, n / world + 1);
        EXPECT_GE(s.count, n / world);
        next += s.count;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(DistUnit, TorchrunVariablesAreReadAndCheckedByName) {
  const auto with = [](std::vector<std::pair<const char*, const char*>> vars) {
    for (const char* name :
         {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "MNIST_DIST_TIMEOUT"})
      ::unsetenv(name);
    for (const auto& [name, value] : vars) ::setenv(name, value, 1);
  };
  with({});
  EXPECT_EQ(world_from_environment().world_size, 1);
  with({{"WORLD_SIZE", "4"},
        {"RANK", "3"},
        {"LOCAL_RANK", "1"},
        {"MASTER_ADDR", "10.0.0.2"},
        {"MASTER_PORT", "1234"},
        {"MNIST_DIST_TIMEOUT", "7"}});
  const auto w = world_from_environment();
  EXPECT_EQ(w.world_size, 4);
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.master_addr, "10.0.0.2");
  EXPECT_EQ(w.master_port, 1234);
  EXPECT_EQ(w.timeout.count(), 7);
  const auto refused = [&](std::vector<std::pair<const char*, const char*>> vars,
                           const std::string& name) {
    with(vars);
    try {
      world_from_environment();
      ADD_FAILURE() << name << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  refused({{"WORLD_SIZE", "2"}, {"RANK", "2"}}, "RANK=2");
  refused({{"WORLD_SIZE", "two"}}, "WORLD_SIZE=two");
  refused({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=70000");
  refused({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MNIST_DIST_TIMEOUT", "0"}}, "MNIST_DIST_TIMEOUT");
  with({});
}

TEST_F(Dist, TwoRanksWriteTheRunFolderOfOneProcess) {
  TempDir tmp;
  const auto r = testing::run_command("timeout 300 " + launch(2, free_port()) + train(tmp / "run"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("data-parallel: 2 ranks"), std::string::npos) << r.out;
  for (const char* f : {"config.json", "meta.json", "model.pt", "best_model.pt", "checkpoint.pt",
                        "history.csv", "metrics.json", "predictions.csv", "plots/samples.png",
                        "plots/curves.png", "plots/confusion.png", "plots/misclassified.png"}) {
    EXPECT_TRUE(fs::exists(tmp / "run/" + std::string(f))) << f;
  }
  EXPECT_EQ(history(tmp / "run").size(), 3u);
  EXPECT_EQ(json::parse(testing::read_bytes(tmp / "run/meta.json"))["world_size"], 2);
  // The test metrics cover the whole test split, not one rank's half.
  const auto m = metrics(tmp / "run");
  EXPECT_EQ(m["num_samples"], 300);
  EXPECT_EQ(testing::lines(testing::read_bytes(tmp / "run/predictions.csv")).size(), 301u);
  EXPECT_GT(m["test_accuracy"].get<double>(), 0.5);
  // Only rank 0 wrote: nothing else appeared next to the run folder.
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);

  // The same shape as a single process's folder: the same files, history columns and JSON keys.
  ASSERT_EQ(testing::run_command(train(tmp / "one")).status, 0);
  const auto files = [](const std::string& dir) {
    std::set<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      names.insert(fs::relative(e.path(), dir).string());
    return names;
  };
  EXPECT_EQ(files(tmp / "run"), files(tmp / "one"));
  const auto keys = [](const json& j) {
    std::set<std::string> out;
    for (const auto& item : j.items()) out.insert(item.key());
    return out;
  };
  EXPECT_EQ(keys(m), keys(metrics(tmp / "one")));
  EXPECT_EQ(keys(json::parse(testing::read_bytes(tmp / "run/meta.json"))),
            keys(json::parse(testing::read_bytes(tmp / "one/meta.json"))));
  EXPECT_EQ(testing::lines(testing::read_bytes(tmp / "run/history.csv"))[0],
            testing::lines(testing::read_bytes(tmp / "one/history.csv"))[0]);
}

// N ranks with batch B each take the steps of one process with batch N*B over the same order.
void expect_same_trajectory(const std::string& one, const std::string& two) {
  const auto a = history(one), b = history(two);
  ASSERT_EQ(a.size(), b.size());
  for (size_t e = 0; e < a.size(); ++e) {
    for (size_t c = 1; c < a[e].size(); ++c) {
      EXPECT_NEAR(a[e][c], b[e][c], 2e-4 * (1 + std::abs(a[e][c])))
          << "epoch " << e + 1 << ", history column " << c;
    }
  }
  const auto ma = metrics(one), mb = metrics(two);
  EXPECT_NEAR(ma["test_loss"].get<double>(), mb["test_loss"].get<double>(), 2e-4);
  EXPECT_NEAR(ma["test_accuracy"].get<double>(), mb["test_accuracy"].get<double>(), 1.5 / 300);
}

TEST_F(Dist, TwoRanksFollowTheSingleProcessTrajectoryMlp) {
  TempDir tmp;
  ASSERT_EQ(testing::run_command(train(tmp / "one", "--set train.batch_size=32")).status, 0);
  const auto r = testing::run_command("timeout 300 " + launch(2, free_port()) +
                                      train(tmp / "two", "--set train.batch_size=16"));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_trajectory(tmp / "one", tmp / "two");
}

// (The MLP runs on FusedAdam, whose gradients are one buffer already.)
TEST_F(Dist, TwoRanksFollowTheSingleProcessTrajectoryCnn) {
  TempDir tmp;
  const std::string cnn =
      "--set model.type=cnn --set 'model.channels=[4,8]' --set 'model.kernel_sizes=[3,3]' "
      "--set 'model.hidden_sizes=[16]' --set model.batch_norm=false --set train.epochs=2 "
      "--set optim.name=adamw ";  // AdamW: the gradients are copied to one buffer and back
  ASSERT_EQ(testing::run_command(train(tmp / "one", cnn + "--set train.batch_size=32")).status, 0);
  const auto r = testing::run_command("timeout 300 " + launch(2, free_port()) +
                                      train(tmp / "two", cnn + "--set train.batch_size=16"));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_trajectory(tmp / "one", tmp / "two");
}

TEST_F(Dist, KillingOneRankMakesTheLauncherAndTheOtherRankExit) {
  TempDir tmp;
  Background run(launch(2, free_port()) + train(tmp / "run", long_run(tmp)), tmp / "launch");
  const auto [rank0, rank1] = wait_for_first_epoch(run);
  ASSERT_GT(rank0, 0) << run.out() << run.err();
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  const int status = run.wait(std::chrono::seconds(60));
  ASSERT_NE(status, -1) << "the launcher still runs a minute after rank 1 died";
  EXPECT_NE(status, 0);
  EXPECT_NE(
      run.err().find("error: rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9"),
      std::string::npos)
      << run.err();
  EXPECT_NE(::kill(rank0, 0), 0) << "rank 0 outlived the launcher";
  EXPECT_FALSE(fs::exists(tmp / "run/metrics.json"));
}

TEST_F(Dist, WithoutTheLauncherADeadRankIsAnErrorOnTheOther) {
  TempDir tmp;
  const int port = free_port();
  const std::string sets = long_run(tmp);
  Background rank0(env(2, 0, port) + train(tmp / "run", sets), tmp / "r0");
  Background rank1(env(2, 1, port) + train(tmp / "run1", sets), tmp / "r1");
  ASSERT_TRUE(wait_until([&] { return rank0.out().find("epoch 1/50") != std::string::npos; },
                         std::chrono::seconds(120)))
      << rank0.out() << rank0.err();
  ASSERT_EQ(::kill(rank1.pid(), SIGKILL), 0);
  const int status = rank0.wait(std::chrono::seconds(60));
  ASSERT_NE(status, -1) << "rank 0 still runs a minute after rank 1 died";
  EXPECT_EQ(status, 1);
  const auto err = testing::lines(rank0.err());
  ASSERT_EQ(err.size(), 1u) << rank0.err();
  EXPECT_EQ(err[0].rfind("error: rank 0 of 2: ", 0), 0u) << err[0];
  EXPECT_FALSE(fs::exists(tmp / "run1")) << "rank 1 wrote a run folder";
}

TEST_F(Dist, AHungRankMakesTheOtherExitAfterTheTimeout) {
  TempDir tmp;
  const int port = free_port();
  const std::string sets = "--dist-timeout 5 " + long_run(tmp);
  Background rank0(env(2, 0, port) + train(tmp / "run", sets), tmp / "r0");
  Background rank1(env(2, 1, port) + train(tmp / "run1", sets), tmp / "r1");
  ASSERT_TRUE(wait_until([&] { return rank0.out().find("epoch 1/50") != std::string::npos; },
                         std::chrono::seconds(120)))
      << rank0.out() << rank0.err();
  ASSERT_EQ(::kill(rank1.pid(), SIGSTOP), 0);
  const auto stopped = Clock::now();
  const int status = rank0.wait(std::chrono::seconds(60));
  ::kill(rank1.pid(), SIGKILL);
  ASSERT_NE(status, -1) << "rank 0 still runs a minute after rank 1 stopped (timeout 5 s)";
  EXPECT_GE(Clock::now() - stopped, std::chrono::seconds(4));
  testing::expect_one_error_line({status, rank0.out(), rank0.err()}, 1, "rank 0 of 2: ");
}

TEST_F(Dist, APortInUseIsAClearError) {
  TempDir tmp;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  const auto r = testing::run_command("timeout 120 " + env(2, 0, port) +
                                      train(tmp / "run", "--dist-timeout 5"));
  ::close(fd);
  testing::expect_one_error_line(r, 1, "MASTER_PORT");
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
}

TEST_F(Dist, AnUnreachableMasterIsAClearErrorWithinTheTimeout) {
  TempDir tmp;
  const auto start = Clock::now();
  const auto r = testing::run_command("timeout 120 " + env(2, 1, free_port()) +
                                      train(tmp / "run", "--dist-timeout 3"));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
  testing::expect_one_error_line(r, 1, "cannot reach the master at 127.0.0.1:");
}

TEST_F(Dist, RanksWithDifferentConfigsAreRefused) {
  TempDir tmp;
  const int port = free_port();
  Background rank0(env(2, 0, port) + train(tmp / "run", "--dist-timeout 60"), tmp / "r0");
  Background rank1(env(2, 1, port) + train(tmp / "run1", "--dist-timeout 60 --set train.epochs=7"),
                   tmp / "r1");
  const int s0 = rank0.wait(std::chrono::seconds(90)), s1 = rank1.wait(std::chrono::seconds(90));
  testing::expect_one_error_line({s1, rank1.out(), rank1.err()}, 2,
                                 "rank 1: its resolved config differs from rank 0's at "
                                 "train.epochs (7 here, 3 on rank 0)");
  testing::expect_one_error_line({s0, rank0.out(), rank0.err()}, 2, "different configs");
  EXPECT_FALSE(fs::exists(tmp / "run/metrics.json"));
}

// Killed after its first epoch, a two-rank run resumes (with two ranks) to the result of an
// uninterrupted one; with one rank it is refused.
TEST_F(Dist, ADistributedRunResumesToTheSameResult) {
  TempDir tmp;
  testing::write_synthetic_mnist(tmp / "data", 8000, 300);
  const std::string sets = "--set data.dir=" + q(tmp / "data") + " --set train.epochs=4";
  ASSERT_EQ(
      testing::run_command("timeout 300 " + launch(2, free_port()) + train(tmp / "whole", sets))
          .status,
      0);
  {
    Background cut(launch(2, free_port()) + train(tmp / "cut", sets), tmp / "cut");
    std::vector<pid_t> ranks;
    ASSERT_TRUE(wait_until(
        [&] {
          ranks = {child_with_rank(cut.pid(), 0), child_with_rank(cut.pid(), 1)};
          return testing::lines(testing::read_bytes(tmp / "cut/history.csv")).size() >= 2;
        },
        std::chrono::seconds(120)))
        << cut.err();
    ::kill(cut.pid(), SIGKILL);  // the ranks die with their launcher
    cut.wait(std::chrono::seconds(10));
    for (pid_t pid : ranks) {
      ASSERT_GT(pid, 0);
      ASSERT_TRUE(wait_until([&] { return ::kill(pid, 0) != 0; }, std::chrono::seconds(30)))
          << "a rank outlived its launcher";
    }
  }
  ASSERT_FALSE(fs::exists(tmp / "cut/metrics.json")) << "the run finished before it was killed";

  testing::expect_one_error_line(
      testing::run_command("timeout 120 " + kTrain + " --resume " + q(tmp / "cut")), 2,
      "the run was trained by 2 rank(s); resume it with as many");
  const auto resumed = testing::run_command("timeout 300 " + launch(2, free_port()) + kTrain +
                                            " --resume " + q(tmp / "cut"));
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(history(tmp / "cut"), history(tmp / "whole"));
  EXPECT_EQ(testing::read_bytes(tmp / "cut/metrics.json"),
            testing::read_bytes(tmp / "whole/metrics.json"));
}

// SIGTERM to the launcher reaches every rank; they stop together at a log step, rank 0 keeps the
// stopped epoch in the checkpoint (every rank's running figures and generators), all exit 143, and
// the run resumes from there with two ranks to the figures of an uninterrupted run.
TEST_F(Dist, TheLauncherForwardsSigtermAndExits143) {
  TempDir tmp;
  // Three epochs: the stop comes in the second or third, mid-epoch.
  const std::string sets = long_run(tmp) + " --set train.epochs=3";
  ASSERT_EQ(
      testing::run_command("timeout 300 " + launch(2, free_port()) + train(tmp / "whole", sets))
          .status,
      0);
  Background run(launch(2, free_port()) + train(tmp / "run", sets), tmp / "launch");
  const auto [rank0, rank1] = wait_for_first_epoch(run);
  ASSERT_GT(rank1, 0) << run.out() << run.err();
  ASSERT_EQ(::kill(run.pid(), SIGTERM), 0);
  EXPECT_EQ(run.wait(std::chrono::seconds(30)), 143) << run.err();
  EXPECT_NE(::kill(rank0, 0), 0) << "rank 0 outlived the launcher";
  EXPECT_NE(::kill(rank1, 0), 0) << "rank 1 outlived the launcher";
  EXPECT_NE(run.err().find("stopped by SIGTERM"), std::string::npos) << run.err();
  EXPECT_NE(run.err().find("resume with:"), std::string::npos) << run.err();
  ASSERT_FALSE(fs::exists(tmp / "run/metrics.json")) << "the run finished before the signal";

  const auto resumed = testing::run_command("timeout 300 " + launch(2, free_port()) + kTrain +
                                            " --resume " + q(tmp / "run"));
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(history(tmp / "run"), history(tmp / "whole"));
  EXPECT_EQ(testing::read_bytes(tmp / "run/metrics.json"),
            testing::read_bytes(tmp / "whole/metrics.json"));
}

TEST(DistLaunch, BadUsageIsOneErrorLine) {
  testing::expect_one_error_line(testing::run_command(kLaunch + " --nproc-per-node 0 -- true"), 2,
                                 "--nproc-per-node");
  testing::expect_one_error_line(
      testing::run_command(kLaunch + " --nnodes 2 --node-rank 2 -- true"), 2, "--node-rank");
  testing::expect_one_error_line(testing::run_command(kLaunch + " --nproc-per-node 2"), 2,
                                 "command");
  const auto missing =
      testing::run_command("timeout 60 " + kLaunch + " --nproc-per-node 2 -- /nonexistent/program");
  EXPECT_EQ(missing.status, 127) << missing.err;
  EXPECT_NE(missing.err.find("cannot run /nonexistent/program"), std::string::npos) << missing.err;
}

TEST(DistLaunch, EveryRankGetsTorchrunsVariables) {
  TempDir tmp;
  const auto r = testing::run_command(
      "timeout 60 " + kLaunch +
      " --nproc-per-node 2 --nnodes 3 --node-rank 1 --master-addr 10.1.2.3 --master-port 4567 -- "
      "sh -c 'echo $WORLD_SIZE $RANK $LOCAL_RANK $MASTER_ADDR $MASTER_PORT > " +
      tmp.path() + "/rank$RANK'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(testing::read_bytes(tmp / "rank2"), "6 2 0 10.1.2.3 4567\n");
  EXPECT_EQ(testing::read_bytes(tmp / "rank3"), "6 3 1 10.1.2.3 4567\n");
}

}  // namespace
}  // namespace mnist
