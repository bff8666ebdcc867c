// The research cockpit's API (/api/runs...) and POST /api/explain through the real mnist-serve, on
// run folders the test makes: complete, interrupted (a checkpoint, no metrics), failed (stopped
// before its first checkpoint), damaged (config.json not JSON), and a training started while the
// server runs, whose progress is watched as it advances. Every route, paging, the images of a
// confusion cell against predictions.csv and the IDX test set, and traversal attempts.

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "mnist/data/dataset.h"
#include "serve_fixture.h"
#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;
using testing::raw_http;
using testing::ServerProcess;

const std::string kTrain = MNIST_TRAIN_BIN;

class RunsApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new testing::SharedDir("runs_api", [](const std::string& dir) {
        testing::write_synthetic_mnist(dir + "/data", 300, 60);
        testing::write_bytes(dir + "/tiny.json", testing::tiny_config(dir + "/data", 2));
        for (const std::string run : {"complete", "interrupted"}) {
          const auto r = testing::run_command(kTrain + " --config " + quote(dir + "/tiny.json") +
                                              " --run-dir " + quote(dir + "/runs/" + run));
          if (r.status != 0) throw std::runtime_error("training failed: " + r.err);
        }
        // Interrupted: what a kill between epochs leaves (a checkpoint, no model, no metrics).
        for (const std::string f : {"metrics.json", "model.pt", "predictions.csv", "progress.json"})
          fs::remove(dir + "/runs/interrupted/" + f);
        // Failed: stopped before its first checkpoint.
        fs::create_directories(dir + "/runs/failed");
        fs::copy_file(dir + "/runs/complete/config.json", dir + "/runs/failed/config.json");
        fs::copy_file(dir + "/runs/complete/meta.json", dir + "/runs/failed/meta.json");
        // Damaged: a config.json cut short.
        fs::create_directories(dir + "/runs/damaged");
        testing::write_bytes(dir + "/runs/damaged/config.json", "{\"model\": ");
      });
      own_ = new testing::TempDir;
      fs::create_directories(*own_ / "live");
      server_ = new ServerProcess({"--run", *dir_ / "runs", "--run", *own_ / "live"});
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete own_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  static json get_json(const std::string& path, int status = 200) {
    auto c = client();
    const auto r = c.Get(path);
    if (!r) throw std::runtime_error(path + ": no answer");
    if (status >= 0) {  // -1: any
      EXPECT_EQ(r->status, status) << path << ": " << r->body;
    }
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    return json::parse(r->body);
  }
  static json run_of(const json& list, const std::string& name) {
    for (const auto& r : list["runs"]) {
      if (r["name"] == name) return r;
    }
    return json();
  }

  static testing::SharedDir* dir_;
  static testing::TempDir* own_;
  static ServerProcess* server_;
  static std::string setup_error_;
};
testing::SharedDir* RunsApi::dir_ = nullptr;
testing::TempDir* RunsApi::own_ = nullptr;
ServerProcess* RunsApi::server_ = nullptr;
std::string RunsApi::setup_error_;

TEST_F(RunsApi, TheTableListsEveryRunWithItsStatusAndPages) {
  const json all = get_json("/api/runs");
  ASSERT_EQ(all["total"], 4) << all.dump();
  std::map<std::string, std::string> status;
  for (const auto& r : all["runs"]) {
    status[r["name"]] = r["status"];
    EXPECT_FALSE(r.contains("dir")) << r.dump();
  }
  EXPECT_EQ(status, (std::map<std::string, std::string>{{"complete", "complete"},
                                                        {"damaged", "damaged"},
                                                        {"failed", "failed"},
                                                        {"interrupted", "interrupted"}}));
  const json done = run_of(all, "complete");
  EXPECT_EQ(done["config_name"], "tiny");  // from meta.json's command line
  EXPECT_EQ(done["model"], "mlp");
  EXPECT_EQ(done["dataset"], "mnist");
  EXPECT_EQ(done["epochs_done"], 2);
  EXPECT_EQ(done["epochs_planned"], 2);
  EXPECT_GT(done["test_accuracy"].get<double>(), 0.5);
  EXPECT_TRUE(done["best_val_accuracy"].is_number());
  EXPECT_EQ(done["config"]["train.epochs"], 2);  // flattened, for the table's config columns
  EXPECT_EQ(run_of(all, "interrupted")["epochs_done"], 2);
  EXPECT_TRUE(run_of(all, "interrupted")["test_accuracy"].is_null());
  const std::string problem = run_of(all, "damaged")["problem"];
  EXPECT_NE(problem.find("config.json: not valid JSON"), std::string::npos) << problem;
  EXPECT_EQ(problem.find(dir_->path()), std::string::npos) << "server path in " << problem;

  const json page = get_json("/api/runs?offset=1&limit=2");
  ASSERT_EQ(page["runs"].size(), 2u);
  EXPECT_EQ(page["runs"][0]["name"], all["runs"][1]["name"]);
  EXPECT_EQ(page["total"], 4);
  EXPECT_TRUE(get_json("/api/runs?offset=9").at("runs").empty());
  EXPECT_NE(get_json("/api/runs?limit=201", 400)["error"].get<std::string>().find("limit"),
            std::string::npos);
  get_json("/api/runs?offset=-1", 400);
}

TEST_F(RunsApi, ARunsPageHasItsConfigMetricsHistoryAndItsOwnFilesOnly) {
  const json r = get_json("/api/runs/complete");
  EXPECT_EQ(r["status"], "complete");
  EXPECT_EQ(r["config"]["train"]["epochs"], 2);
  EXPECT_EQ(r["metrics"]["confusion_matrix"].size(), 10u);
  EXPECT_EQ(r["metrics"]["per_class"].size(), 10u);
  ASSERT_EQ(r["history"]["rows"].size(), 2u);
  EXPECT_EQ(r["history"]["columns"][0], "epoch");
  EXPECT_EQ(r["base"], "/api/runs/complete");
  std::set<std::string> files(r["files"].begin(), r["files"].end());
  for (const std::string f :
       {"config.json", "dataset.json", "meta.json", "history.csv", "metrics.json",
        "predictions.csv", "progress.json", "plots/confusion.png", "plots/samples.png"}) {
    EXPECT_TRUE(files.count(f)) << f << " missing from " << r["files"].dump();
  }
  EXPECT_FALSE(files.count("model.pt"));
  EXPECT_FALSE(files.count("checkpoint.pt"));
  auto c = client();
  for (const auto& f : files) {
    const auto got = c.Get("/api/runs/complete/files/" + f);
    ASSERT_TRUE(got) << f;
    EXPECT_EQ(got->status, 200) << f;
    EXPECT_EQ(got->body, testing::read_bytes(*dir_ / ("runs/complete/" + f))) << f;
  }
  EXPECT_EQ(c.Get("/api/runs/complete/files/plots/curves.png")->get_header_value("Content-Type"),
            "image/png");
  // Weights, checkpoints and anything not listed are not files of the API.
  for (const std::string f : {"model.pt", "checkpoint.pt", "best_model.pt", "plots/none.png"}) {
    EXPECT_EQ(c.Get("/api/runs/complete/files/" + f)->status, 404) << f;
  }
  // An interrupted run shows its history and says why there is nothing to click yet.
  const json i = get_json("/api/runs/interrupted");
  EXPECT_EQ(i["status"], "interrupted");
  EXPECT_TRUE(i["metrics"].is_null());
  EXPECT_EQ(i["history"]["rows"].size(), 2u);
  const json refused = get_json("/api/runs/interrupted/confusion/1/1", 409);
  EXPECT_EQ(refused["status"], "interrupted");
  EXPECT_EQ(get_json("/api/runs/damaged/misclassified", 409)["status"], "damaged");
  EXPECT_EQ(get_json("/api/runs/failed")["status"], "failed");
  get_json("/api/runs/nope", 404);
}

// The images behind every cell: exactly the test images whose label and prediction are the
// cell's in predictions.csv, most confident first, over all pages; and each image is the IDX
// test set's image of that index.
TEST_F(RunsApi, ConfusionCellsHoldExactlyTheTestImagesOfThatLabelAndPrediction) {
  std::map<std::pair<int, int>, std::vector<std::pair<double, int64_t>>> want;
  const auto rows = testing::lines(testing::read_bytes(*dir_ / "runs/complete/predictions.csv"));
  for (size_t i = 1; i < rows.size(); ++i) {
    int64_t index = 0;
    int label = 0, pred = 0;
    double conf = 0;
    ASSERT_EQ(std::sscanf(rows[i].c_str(), "%ld,%d,%d,%lf", &index, &label, &pred, &conf), 4);
    want[{label, pred}].push_back({conf, index});
  }
  const json r = get_json("/api/runs/complete");
  int64_t total = 0, wrong = 0;
  for (int t = 0; t < 10; ++t) {
    for (int p = 0; p < 10; ++p) {
      const int64_t count = r["metrics"]["confusion_matrix"][t][p];
      auto expected = want[{t, p}];
      ASSERT_EQ(static_cast<int64_t>(expected.size()), count) << t << "," << p;
      std::stable_sort(expected.begin(), expected.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      std::vector<int64_t> got;
      for (int page = 1;; ++page) {
        const json j = get_json("/api/runs/complete/confusion/" + std::to_string(t) + "/" +
                                std::to_string(p) + "?per_page=4&page=" + std::to_string(page));
        EXPECT_EQ(j["total"], count);
        for (const auto& it : j["items"]) {
          EXPECT_EQ(it["label"], t);
          EXPECT_EQ(it["predicted"], p);
          EXPECT_EQ(it["image"], "/api/runs/complete/images/" +
                                     std::to_string(it["index"].get<int64_t>()) + ".png");
          got.push_back(it["index"]);
        }
        if (page >= j["pages"].get<int64_t>()) break;
      }
      std::vector<int64_t> want_order;
      for (const auto& e : expected) want_order.push_back(e.second);
      EXPECT_EQ(got, want_order) << "cell " << t << "," << p;
      total += count;
      if (t != p) wrong += count;
    }
  }
  EXPECT_EQ(total, 60);
  EXPECT_EQ(get_json("/api/runs/complete/misclassified")["total"], wrong);
  get_json("/api/runs/complete/confusion/10/0", 404);
  get_json("/api/runs/complete/confusion/1/x", 400);
  get_json("/api/runs/complete/confusion/1/1?per_page=101", 400);

  DataConfig data;
  data.dir = *dir_ / "data";
  const Dataset test = load_test_split(data);
  auto c = client();
  for (const int64_t i : {int64_t{0}, int64_t{17}, int64_t{59}}) {
    const auto png = c.Get("/api/runs/complete/images/" + std::to_string(i) + ".png");
    ASSERT_TRUE(png);
    ASSERT_EQ(png->status, 200);
    EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
    const cv::Mat img = cv::imdecode(std::vector<uint8_t>(png->body.begin(), png->body.end()),
                                     cv::IMREAD_UNCHANGED);
    ASSERT_EQ(img.type(), CV_8UC1);
    ASSERT_EQ(img.rows, 28);
    const auto want_img = test.images[i].contiguous();
    EXPECT_EQ(std::memcmp(img.data, want_img.data_ptr<uint8_t>(), 28 * 28), 0) << "image " << i;
  }
  EXPECT_EQ(c.Get("/api/runs/complete/images/60.png")->status, 404);
  EXPECT_EQ(c.Get("/api/runs/complete/images/1.jpg")->status, 404);
}

// Names come from the scan; no path in a request reaches a file outside the run folder.
TEST_F(RunsApi, TraversalAttemptsAndLinksOutOfTheFolderAreRefused) {
  // A link in plots/ to the data set, and one named like a run file: neither is served.
  const std::string plots = *dir_ / "runs/complete/plots";
  std::error_code ec;
  fs::create_symlink(*dir_ / "data/t10k-images-idx3-ubyte", plots + "/link.png", ec);
  const std::string secret = testing::read_bytes(*dir_ / "tiny.json");
  for (const std::string target :
       {"/api/runs/../tiny.json", "/api/runs/complete/../../tiny.json",
        "/api/runs/complete/files/../../tiny.json",
        "/api/runs/complete/files/%2e%2e%2f%2e%2e%2ftiny.json",
        "/api/runs/complete/files/plots/..%2f..%2f..%2ftiny.json",
        "/api/runs/%2e%2e/files/tiny.json", "/api/runs/complete/files/plots/link.png",
        "/api/runs/complete/files//etc/passwd", "/api/runs/complete/images/..%2f..%2ftiny.json",
        "/api/runs/complete/files/plots/../config.json"}) {
    const std::string answer = raw_http(server_->port(), "GET " + target +
                                                             " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                             "Connection: close\r\n\r\n");
    ASSERT_FALSE(answer.empty()) << target;
    EXPECT_TRUE(answer.rfind("HTTP/1.1 404", 0) == 0 || answer.rfind("HTTP/1.1 400", 0) == 0)
        << target << ": " << answer.substr(0, 200);
    EXPECT_EQ(answer.find("\"dataset\""), std::string::npos) << target;
    EXPECT_EQ(answer.find(secret), std::string::npos) << target;
  }
  const json r = get_json("/api/runs/complete");
  for (const auto& f : r["files"]) EXPECT_NE(f, "plots/link.png");
}

// A training started while the server runs appears without a restart, its progress advances
// through /events, and a kill leaves it interrupted.
TEST_F(RunsApi, ALiveTrainingAppearsAndItsProgressAdvances) {
  const std::string run = *own_ / "live/watched";
  testing::Background train(kTrain + " --config " + quote(*dir_ / "tiny.json") +
                                " --set train.epochs=400 --set train.log_every=2 --run-dir " +
                                quote(run),
                            *own_ / "train");
  json first;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const json e = get_json("/api/runs/watched/events", -1);
        if (!e.contains("status") || e["status"] != "running" || !e["progress"].is_object()) {
          return false;
        }
        first = e;
        return true;
      },
      std::chrono::seconds(60)))
      << train.err();
  const auto position = [](const json& p) {
    return p["epoch"].get<int64_t>() * 100000 + p["step"].get<int64_t>();
  };
  json later;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        later = get_json("/api/runs/watched/events?after=0", -1);
        return later["progress"].is_object() &&
               position(later["progress"]) > position(first["progress"]) &&
               !later["history"]["rows"].empty();
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(later["status"], "running");
  EXPECT_EQ(later["progress"]["epochs"], 400);
  EXPECT_GT(later["progress"]["images_per_second"].get<double>(), 0);
  EXPECT_TRUE(later["progress"]["eta_seconds"].is_number());
  EXPECT_EQ(later["progress"]["state"], "training");
  const int64_t seen = later["history"]["rows"].back()[0];
  const json rest = get_json("/api/runs/watched/events?after=" + std::to_string(seen));
  for (const auto& row : rest["history"]["rows"]) EXPECT_GT(row[0].get<int64_t>(), seen);
  EXPECT_EQ(run_of(get_json("/api/runs"), "watched")["status"], "running");
  kill(train.pid(), SIGKILL);
  train.wait(std::chrono::seconds(10));
  EXPECT_EQ(get_json("/api/runs/watched")["status"], "interrupted");
}

TEST_F(RunsApi, ExplainGivesTheAnswerAndAMapForAnyClass) {
  auto c = client();
  const std::string png = testing::png_bytes(testing::drawing(1));
  const auto r = c.Post("/api/explain?model=complete", png, "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json a = json::parse(r->body);
  const json& e = a["explanation"];
  EXPECT_EQ(e["class"], a["digit"]);
  EXPECT_EQ(e["method"], "integrated-gradients");
  ASSERT_EQ(e["values"].size(), 28u * 28u);
  EXPECT_EQ(e["width"], 28);
  // Complete: the map sums to the score difference (within 2%).
  const double diff = e["score"].get<double>() - e["baseline_score"].get<double>();
  EXPECT_NEAR(e["sum"].get<double>(), diff, 0.02 * std::abs(diff) + 1e-3);
  const auto other =
      c.Post("/api/explain?model=complete&class=3&method=occlusion", png, "image/png");
  ASSERT_EQ(other->status, 200) << other->body;
  EXPECT_EQ(json::parse(other->body)["explanation"]["class"], 3);
  EXPECT_EQ(json::parse(other->body)["explanation"]["method"], "occlusion");
  EXPECT_EQ(c.Post("/api/explain?model=complete&class=10", png, "image/png")->status, 400);
  EXPECT_EQ(c.Post("/api/explain?model=complete&class=x", png, "image/png")->status, 400);
  EXPECT_EQ(c.Post("/api/explain?model=complete&method=magic", png, "image/png")->status, 400);
  EXPECT_EQ(c.Post("/api/explain?model=nope", png, "image/png")->status, 404);
  EXPECT_EQ(c.Get("/api/explain")->status, 405);
}

}  // namespace
}  // namespace mnist
