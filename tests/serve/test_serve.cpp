// mnist-serve through the real binary on an ephemeral loopback port: every route, every error
// status, the page's files and nothing else, limits, security headers, corrections on disk,
// /metrics counting what was asked, answers equal to mnist-predict --json under 8 concurrent
// clients, a clean stop on SIGTERM with a request in flight, and the command line's errors.
// The library's pure parts (body decoding, JSON depth, metrics text) are tested directly.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/io/json.h"
#include "mnist/serve/api.h"
#include "mnist/serve/feedback.h"
#include "mnist/serve/metrics.h"
#include "mnist/vision/image_folder.h"
#include "serve_fixture.h"
#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;

const std::string kTrain = MNIST_TRAIN_BIN;
const std::string kPredict = MNIST_PREDICT_BIN;
using testing::connect_loopback;
using testing::drawing;
using testing::kServe;
using testing::png_bytes;
using testing::raw_http;
using testing::ServerProcess;

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      // Two trained runs, the images and mnist-predict's answers for them: shared by every
      // process of this suite (SharedDir). What the server writes goes into own_, per process.
      dir_ = new testing::SharedDir("serve", [](const std::string& dir) {
        testing::write_synthetic_mnist(dir + "/data", 300, 50);
        testing::write_bytes(dir + "/tiny.json", testing::tiny_config(dir + "/data", 1));
        for (const std::string run : {"alpha", "beta"}) {
          const auto r = testing::run_command(kTrain + " --config " + quote(dir + "/tiny.json") +
                                              " --run-dir " + quote(dir + "/runs/" + run) +
                                              (run == "beta" ? " --set seed=5" : ""));
          if (r.status != 0) throw std::runtime_error("training failed: " + r.err);
        }
        fs::create_directories(dir + "/images");
        std::string images;
        for (int k = 0; k < 5; ++k) {
          const std::string p = dir + "/images/d" + std::to_string(k) + ".png";
          cv::imwrite(p, drawing(k));
          images += " " + quote(p);
        }
        // What mnist-predict --json answers for each image, per model and pipeline: the
        // reference, one JSON line per image in expected-<name>.jsonl.
        for (const std::string name : {"alpha", "beta", "naive"}) {
          const std::string run = name == "naive" ? "alpha" : name;
          const auto r = testing::run_command(kPredict + " --no-window --json" +
                                              (name == "naive" ? " --preprocess naive" : "") +
                                              " --run " + quote(dir + "/runs/" + run) + images);
          if (r.status != 0) throw std::runtime_error("mnist-predict failed: " + r.err);
          testing::write_bytes(dir + "/expected-" + name + ".jsonl", r.out);
        }
      });
      own_ = new testing::TempDir;
      for (int k = 0; k < 5; ++k)
        images_.push_back(*dir_ / ("images/d" + std::to_string(k) + ".png"));
      for (const std::string name : {"alpha", "beta", "naive"}) {
        for (const auto& line :
             testing::lines(testing::read_bytes(*dir_ / ("expected-" + name + ".jsonl"))))
          expected_[name].push_back(json::parse(line));
        if (expected_[name].size() != images_.size())
          throw std::runtime_error("expected-" + name + ".jsonl: one line per image expected");
      }
      server_ = new ServerProcess({"--run", *dir_ / "runs", "--feedback-dir", *own_ / "feedback"});
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete own_;
    delete dir_;
  }
  // A failed fixture fails every test (GoogleTest would otherwise report them skipped).
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    c.set_write_timeout(30, 0);
    return c;
  }
  static json body_json(const httplib::Result& r) { return json::parse(r->body); }
  /// An error answer: the status, a JSON body with "error", no temp paths.
  static void expect_error(const httplib::Result& r, int status, const std::string& fragment = "") {
    ASSERT_TRUE(r) << "no answer";
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    const auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(fragment), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find(dir_->path()), std::string::npos) << "server path in " << r->body;
    EXPECT_EQ(r->body.find(own_->path()), std::string::npos) << "server path in " << r->body;
  }
  static void expect_same_answer(const json& got, const json& want) {
    ASSERT_EQ(got["digit"], want["digit"]) << got.dump() << "\n" << want.dump();
    ASSERT_EQ(got["probabilities"].size(), want["probabilities"].size());
    for (size_t k = 0; k < want["probabilities"].size(); ++k) {
      EXPECT_NEAR(got["probabilities"][k].get<double>(), want["probabilities"][k].get<double>(),
                  1e-6);
    }
    EXPECT_EQ(got["label"], want["class"]);
  }

  static testing::SharedDir* dir_;
  static testing::TempDir* own_;
  static ServerProcess* server_;
  static std::string setup_error_;
  static std::vector<std::string> images_;
  static std::map<std::string, std::vector<json>> expected_;
};
testing::SharedDir* Serve::dir_ = nullptr;
testing::TempDir* Serve::own_ = nullptr;
ServerProcess* Serve::server_ = nullptr;
std::string Serve::setup_error_;
std::vector<std::string> Serve::images_;
std::map<std::string, std::vector<json>> Serve::expected_;

TEST_F(Serve, HealthAndModelsDescribeEveryRunOfTheFolderWithoutPaths) {
  auto c = client();
  const auto h = c.Get("/api/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(body_json(h)["status"], "ok");
  EXPECT_EQ(body_json(h)["models"], 2);

  const auto m = c.Get("/api/models");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  const auto j = body_json(m);
  ASSERT_EQ(j["models"].size(), 2u);
  EXPECT_EQ(j["models"][0]["name"], "alpha");
  EXPECT_EQ(j["models"][1]["name"], "beta");
  EXPECT_EQ(j["default"], "alpha");
  EXPECT_EQ(j["feedback"], true);
  for (const auto& model : j["models"]) {
    EXPECT_EQ(model["dataset"], "mnist");
    EXPECT_EQ(model["type"], "mlp");
    EXPECT_EQ(model["classes"].size(), 10u);
    EXPECT_TRUE(model["test_accuracy"].is_number());
    EXPECT_GT(model["test_accuracy"].get<double>(), 0.0);
  }
  EXPECT_EQ(m->body.find(dir_->path()), std::string::npos) << "server path in /api/models";
}

TEST_F(Serve, ServesThePageFilesWithSecurityHeadersAndNothingElse) {
  auto c = client();
  const auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<canvas id=\"canvas\""), std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page->get_header_value("Content-Security-Policy").rfind("default-src 'self'", 0), 0u);
  EXPECT_FALSE(page->has_header("Access-Control-Allow-Origin"));  // no CORS unless asked
  for (const auto& [path, type] :
       std::vector<std::pair<std::string, std::string>>{{"/index.html", "text/html"},
                                                        {"/app.js", "text/javascript"},
                                                        {"/style.css", "text/css"},
                                                        {"/favicon.svg", "image/svg+xml"}}) {
    const auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->get_header_value("Content-Type").rfind(type, 0), 0u) << path;
    EXPECT_GT(r->body.size(), 100u) << path;
  }
  // Only the fixed list: no files from disk, whatever the path says.
  for (const std::string path :
       {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/app.js/../../../etc/passwd",
        "/appXjs", "/web/app.js", "/CMakeLists.txt", "/lib/src/serve/web/app.js", "//etc/passwd"}) {
    const auto raw = raw_http(server_->port(),
                              "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_NE(raw.find("HTTP/1.1 404"), std::string::npos) << path << ": " << raw.substr(0, 200);
    EXPECT_EQ(raw.find("root:"), std::string::npos) << path;
    EXPECT_NE(raw.find("{\"error\":"), std::string::npos) << path;
  }
}

TEST_F(Serve, PredictsRawMultipartAndCanvasBodiesAsMnistPredictDoes) {
  auto c = client();
  for (size_t i = 0; i < images_.size(); ++i) {
    const std::string png = testing::read_bytes(images_[i]);
    const auto raw = c.Post("/api/predict", png, "image/png");
    ASSERT_TRUE(raw);
    ASSERT_EQ(raw->status, 200) << raw->body;
    const auto a = body_json(raw);
    expect_same_answer(a, expected_["alpha"][i]);
    EXPECT_EQ(a["model"], "alpha");
    EXPECT_EQ(a["input"]["width"], 28);
    EXPECT_EQ(a["input"]["pixels"].size(), 784u);
    EXPECT_GT(a["server_ms"].get<double>(), 0.0);
    const auto naive = c.Post("/api/predict?preprocess=naive", png, "image/png");
    ASSERT_TRUE(naive);
    ASSERT_EQ(naive->status, 200) << naive->body;
    expect_same_answer(body_json(naive), expected_["naive"][i]);

    httplib::MultipartFormDataItems form = {{"note", "ignored", "", "text/plain"},
                                            {"image", png, "d.png", "image/png"}};
    const auto multi = c.Post("/api/predict?model=beta", form);
    ASSERT_TRUE(multi);
    ASSERT_EQ(multi->status, 200) << multi->body;
    expect_same_answer(body_json(multi), expected_["beta"][i]);
    EXPECT_EQ(body_json(multi)["model"], "beta");

    // The canvas form: gray values, and RGBA as getImageData gives them.
    const cv::Mat gray = cv::imread(images_[i], cv::IMREAD_GRAYSCALE);
    json canvas = {{"width", gray.cols},
                   {"height", gray.rows},
                   {"pixels", std::vector<int>(gray.datastart, gray.dataend)}};
    const auto cj = c.Post("/api/predict", canvas.dump(), "application/json");
    ASSERT_TRUE(cj);
    ASSERT_EQ(cj->status, 200) << cj->body;
    expect_same_answer(body_json(cj), expected_["alpha"][i]);
    // RGBA goes through the colour path (as an RGBA file would): the same answer as that file.
    std::vector<int> rgba;
    for (const uint8_t v : std::vector<uint8_t>(gray.datastart, gray.dataend)) {
      rgba.insert(rgba.end(), {v, v, v, 255});
    }
    canvas["pixels"] = rgba;
    const auto cr = c.Post("/api/predict", canvas.dump(), "application/json; charset=utf-8");
    ASSERT_TRUE(cr);
    ASSERT_EQ(cr->status, 200) << cr->body;
    cv::Mat bgra;
    cv::cvtColor(gray, bgra, cv::COLOR_GRAY2BGRA);
    const auto file = c.Post("/api/predict", png_bytes(bgra), "image/png");
    ASSERT_TRUE(file);
    ASSERT_EQ(file->status, 200) << file->body;
    EXPECT_EQ(body_json(cr)["probabilities"], body_json(file)["probabilities"]);
    EXPECT_EQ(body_json(cr)["input"], body_json(file)["input"]);
  }
}

TEST_F(Serve, EveryErrorHasItsStatusAndAJsonBody) {
  auto c = client();
  const std::string png = testing::read_bytes(images_[0]);
  expect_error(c.Post("/api/predict?model=gamma", png, "image/png"), 404, "no model named");
  expect_error(c.Post("/api/predict?preprocess=fancy", png, "image/png"), 400, "preprocess");
  expect_error(c.Get("/nope"), 404, "no such route");
  expect_error(c.Post("/nope", "x", "text/plain"), 404, "no such route");
  expect_error(c.Get("/api/predict"), 405, "not allowed");
  expect_error(c.Post("/api/models", "x", "text/plain"), 405, "not allowed");
  expect_error(c.Delete("/api/health"), 405, "not allowed");
  EXPECT_EQ(c.Get("/api/predict")->get_header_value("Allow"), "POST");
  expect_error(c.Post("/api/predict", "hello", "text/plain"), 415, "unsupported content type");
  expect_error(c.Post("/api/predict", "x=1", "application/x-www-form-urlencoded"), 415);
  expect_error(c.Post("/api/predict", "not an image at all", "image/png"), 400, "not an image");
  expect_error(c.Post("/api/predict", png.substr(0, png.size() / 2), "image/png"), 400,
               "truncated");
  expect_error(c.Post("/api/predict", "", "image/png"), 400);
  expect_error(c.Post("/api/predict", "{\"width\": 2,", "application/json"), 400, "not valid JSON");
  expect_error(c.Post("/api/predict", std::string(100000, '[') + std::string(100000, ']'),
                      "application/json"),
               400, "nested too deeply");
  expect_error(
      c.Post("/api/predict", R"({"width":10,"height":10,"pixels":[1,2,3]})", "application/json"),
      400, "pixels");
  expect_error(c.Post("/api/predict",
                      R"({"width":8,"height":8,"pixels":[)" + std::string("300,") +
                          std::string(62 * 2, ' ') + "]}",
                      "application/json"),
               400);
  httplib::MultipartFormDataItems no_image = {{"file", png, "d.png", "image/png"}};
  expect_error(c.Post("/api/predict", no_image), 400, "no field named \"image\"");
  // 422: a readable image the model cannot use.
  expect_error(
      c.Post("/api/predict", png_bytes(cv::Mat(64, 64, CV_8UC1, cv::Scalar(255))), "image/png"),
      422, "no digit found");
  expect_error(
      c.Post("/api/predict", png_bytes(cv::Mat(4, 4, CV_8UC1, cv::Scalar(0))), "image/png"), 422,
      "too small");
  expect_error(
      c.Post("/api/predict", R"({"width":100000,"height":100000,"pixels":[]})", "application/json"),
      422, "larger than the limit");
  // 413: over the 8 MiB default, with a length or chunked.
  expect_error(c.Post("/api/predict", std::string(9u << 20, 'x'), "image/png"), 413,
               "larger than the limit");
  const auto chunked = raw_http(
      server_->port(),
      "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
      "Transfer-Encoding: chunked\r\n\r\n" +
          [] {
            std::string s;
            const std::string chunk(1 << 20, 'x');
            for (int i = 0; i < 9; ++i) s += "100000\r\n" + chunk + "\r\n";
            return s + "0\r\n\r\n";
          }());
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413", 0), 0u) << chunked.substr(0, 200);
  // 411: a body without a length.
  const auto no_length = raw_http(
      server_->port(), "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n\r\n");
  EXPECT_EQ(no_length.rfind("HTTP/1.1 411", 0), 0u) << no_length;
  EXPECT_NE(no_length.find("{\"error\":\"Content-Length required\"}"), std::string::npos)
      << no_length;
  // A request that is not HTTP.
  const auto junk = raw_http(server_->port(), "\x01\x02 garbage\r\n\r\n");
  EXPECT_EQ(junk.rfind("HTTP/1.1 400", 0), 0u) << junk;
  // Still serving.
  const auto ok = c.Post("/api/predict", png, "image/png");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(Serve, EightConcurrentClientsGetExactlyMnistPredictsAnswers) {
  constexpr int kThreads = 8;
  constexpr int kRequests = 200;
  std::vector<std::string> bodies;
  for (const auto& p : images_) bodies.push_back(testing::read_bytes(p));
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::string> first_failure(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto c = client();
      for (int i = 0; i < kRequests; ++i) {
        const size_t k = static_cast<size_t>(t + i) % bodies.size();
        const std::string model = (t + i) % 2 ? "beta" : "alpha";
        const auto r = c.Post("/api/predict?model=" + model, bodies[k], "image/png");
        bool same = r && r->status == 200;
        if (same) {
          const auto got = json::parse(r->body);
          const auto& want = expected_[model][k];
          same = got["digit"] == want["digit"] && got["model"] == model;
          for (size_t j = 0; same && j < 10; ++j) {
            same = std::abs(got["probabilities"][j].get<double>() -
                            want["probabilities"][j].get<double>()) < 1e-6;
          }
        }
        if (!same && failures[static_cast<size_t>(t)]++ == 0) {
          first_failure[static_cast<size_t>(t)] = r ? r->body : "no answer";
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[static_cast<size_t>(t)], 0)
        << "thread " << t << ": " << first_failure[static_cast<size_t>(t)];
  }
}

// The loop the corrections exist for, end to end: three drawings the model gets wrong are corrected
// on the page (POST /api/feedback), a short fine-tune from the served run reads them
// (init.from + data.extra), and a server of the fine-tuned run answers each with its correction.
TEST_F(Serve, CorrectionsFromThePageFineTuneTheModelIntoAnsweringThem) {
  auto c = client();
  std::vector<int> labels;
  for (int k = 0; k < 3; ++k) {
    const int wrong = expected_["alpha"][static_cast<size_t>(k)]["digit"].get<int>();
    labels.push_back((wrong + 1 + k) % 10);
    const auto r = c.Post("/api/feedback?model=alpha&label=" + std::to_string(labels.back()),
                          testing::read_bytes(images_[static_cast<size_t>(k)]), "image/png");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  const std::string tuned = *own_ / "tuned";
  const auto t = testing::run_command(
      kTrain + " --config " + quote(*dir_ / "tiny.json") +
      " --set init.from=" + quote(*dir_ / "runs/alpha") + " --set " +
      quote("data.extra=[\"" + (*own_ / "feedback/mnist") + "\"]") +
      " --set data.extra_repeat=30 --set train.epochs=3 --set data.cache_dir=" +
      quote(*own_ / "cache") + " --run-dir " + quote(tuned));
  ASSERT_EQ(t.status, 0) << t.out << t.err;
  ServerProcess fine_tuned({"--run", tuned});
  httplib::Client tc("127.0.0.1", fine_tuned.port());
  tc.set_read_timeout(30, 0);
  for (int k = 0; k < 3; ++k) {
    const auto r =
        tc.Post("/api/predict", testing::read_bytes(images_[static_cast<size_t>(k)]), "image/png");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["digit"], labels[static_cast<size_t>(k)]) << "drawing " << k;
  }
}

TEST_F(Serve, CorrectionsAreSavedAsAnImageFolderWithACsvLine) {
  auto c = client();
  const std::string png = testing::read_bytes(images_[2]);
  const auto r = c.Post("/api/feedback?model=beta&label=3", png, "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const auto j = body_json(r);
  EXPECT_EQ(j["label"], 3);
  EXPECT_EQ(j["class"], "3");
  const std::string saved = j["saved"];
  EXPECT_EQ(saved.rfind("mnist/3/", 0), 0u) << saved;
  const cv::Mat input = cv::imread(*own_ / ("feedback/" + saved), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(input.empty()) << saved;
  EXPECT_EQ(input.rows, 28);
  EXPECT_EQ(input.cols, 28);
  EXPECT_EQ(input.type(), CV_8UC1);
  const auto csv = testing::lines(testing::read_bytes(*own_ / "feedback/feedback.csv"));
  ASSERT_GE(csv.size(), 2u);
  EXPECT_EQ(csv[0], "time,id,dataset,model,label,class,predicted,file,original");
  bool found = false;
  for (const auto& line : csv) {
    if (line.find("," + saved + ",") == std::string::npos) continue;
    found = true;
    EXPECT_NE(line.find(",mnist,beta,3,3,"), std::string::npos) << line;
    const std::string original = line.substr(line.rfind(',') + 1);
    const cv::Mat o = cv::imread(*own_ / ("feedback/" + original), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(o.empty()) << original;
    EXPECT_EQ(o.rows, cv::imread(images_[2]).rows);
  }
  EXPECT_TRUE(found) << "no CSV line names " << saved;
  // No temporary files left behind.
  for (const auto& e : fs::recursive_directory_iterator(*own_ / "feedback")) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  expect_error(c.Post("/api/feedback?label=10", png, "image/png"), 400, "label");
  expect_error(c.Post("/api/feedback?label=x", png, "image/png"), 400, "label");
  expect_error(c.Post("/api/feedback", png, "image/png"), 400, "label");
  expect_error(c.Get("/api/feedback"), 405);
}

TEST_F(Serve, MetricsCountRequestsByRouteAndStatusAndPredictionsByClass) {
  auto c = client();
  auto count = [&](const std::string& series) -> long {
    const auto m = c.Get("/metrics");
    if (!m || m->status != 200) return -1;
    const auto at = m->body.find("\n" + series + " ");
    return at == std::string::npos ? 0 : std::stol(m->body.substr(at + series.size() + 2));
  };
  const std::string ok = "mnist_http_requests_total{route=\"/api/predict\",status=\"200\"}";
  const std::string bad = "mnist_http_requests_total{route=\"/api/predict\",status=\"415\"}";
  const std::string hist = "mnist_http_request_duration_seconds_count{route=\"/api/predict\"}";
  const std::string inf =
      "mnist_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"+Inf\"}";
  const std::string png = testing::read_bytes(images_[1]);
  const std::string cls = expected_["alpha"][1]["class"];
  const std::string pred = "mnist_predictions_total{model=\"alpha\",class=\"" + cls + "\"}";
  ASSERT_EQ(c.Get("/no/such/route")->status, 404);
  const long ok0 = count(ok), bad0 = count(bad), hist0 = count(hist), inf0 = count(inf),
             pred0 = count(pred);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.Post("/api/predict", png, "image/png")->status, 200);
  ASSERT_EQ(c.Post("/api/predict", "x", "text/plain")->status, 415);
  EXPECT_EQ(count(ok), ok0 + 3);
  EXPECT_EQ(count(bad), bad0 + 1);
  EXPECT_EQ(count(hist), hist0 + 4);
  EXPECT_EQ(count(inf), inf0 + 4);
  EXPECT_EQ(count(pred), pred0 + 3);
  const auto m = c.Get("/metrics");
  EXPECT_EQ(m->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(m->body.find("# TYPE mnist_http_request_duration_seconds histogram"),
            std::string::npos);
  EXPECT_NE(m->body.find("route=\"other\",status=\"404\""), std::string::npos);
}

TEST_F(Serve, AFullQueueAnswers503AtOnceAndCorsIsOnlyThereWhenAsked) {
  ServerProcess busy({"--run", *dir_ / "runs/alpha", "--workers", "1", "--queue", "0", "--cors",
                      "http://example.test"});
  // Hold the only worker's place with a prediction whose body is still on its way.
  const int fd = connect_loopback(busy.port());
  ASSERT_GE(fd, 0);
  const std::string half =
      "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
      "Content-Length: 5000\r\n\r\nabc";
  ASSERT_EQ(send(fd, half.data(), half.size(), MSG_NOSIGNAL), static_cast<ssize_t>(half.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // admitted, its body being read
  httplib::Client c("127.0.0.1", busy.port());
  c.set_read_timeout(5, 0);
  const auto start = std::chrono::steady_clock::now();
  const auto r = c.Post("/api/predict", testing::read_bytes(images_[0]), "image/png");
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  expect_error(r, 503, "busy");
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_LT(waited, 2.0);
  const auto health = c.Get("/api/health");  // cheap routes are still answered
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->get_header_value("Access-Control-Allow-Origin"), "http://example.test");
  const auto metrics = c.Get("/metrics");
  EXPECT_NE(metrics->body.find("mnist_http_requests_shed_total 1\n"), std::string::npos);
  const auto preflight = c.Options("/api/predict");
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Methods"), "POST, OPTIONS");
  close(fd);
}

TEST_F(Serve, SigtermFinishesTheRequestInFlightThenExitsZero) {
  ServerProcess s({"--run", *dir_ / "runs/alpha"});
  const std::string png = testing::read_bytes(images_[0]);
  const int fd = connect_loopback(s.port());
  ASSERT_GE(fd, 0);
  const std::string head =
      "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
      "Content-Length: " +
      std::to_string(png.size()) + "\r\n\r\n";
  const std::string first = head + png.substr(0, 100);
  ASSERT_EQ(send(fd, first.data(), first.size(), MSG_NOSIGNAL), static_cast<ssize_t>(first.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // accepted and being read
  ASSERT_EQ(kill(s.pid(), SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string rest = png.substr(100);
  ASSERT_EQ(send(fd, rest.data(), rest.size(), MSG_NOSIGNAL), static_cast<ssize_t>(rest.size()));
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer.substr(0, 300);
  EXPECT_NE(answer.find("\"digit\":"), std::string::npos);
  EXPECT_EQ(s.wait_exit(15), 0);
  const std::string out = s.output();
  EXPECT_NE(out.find("SIGTERM: stopping"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped"), std::string::npos) << out;
  // Nothing listens any more.
  EXPECT_EQ(raw_http(s.port(), "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n", 300), "");
}

TEST_F(Serve, CommandLineErrorsAreOneLine) {
  const std::string serve = kServe + " --port 0";
  testing::expect_one_error_line(testing::run_command(serve), 2, "--run");
  testing::expect_one_error_line(testing::run_command(serve + " --run " + quote(*dir_ / "missing")),
                                 1, "missing: no such run folder");
  testing::expect_one_error_line(testing::run_command(serve + " --run " + quote(*dir_ / "images")),
                                 1, "neither a run folder");
  testing::expect_one_error_line(
      testing::run_command(serve + " --run " + quote(*dir_ / "runs") + " --workers 0"), 2,
      "--workers");
  const auto busy_port = kServe + " --port " + std::to_string(server_->port()) + " --run " +
                         quote(*dir_ / "runs/alpha");
  testing::expect_one_error_line(
      testing::run_command(busy_port), 1,
      "127.0.0.1:" + std::to_string(server_->port()) + ": cannot listen");
  // A folder of runs with one broken run: the others are served, with a warning for it.
  fs::create_directories(*own_ / "mixed");
  fs::copy(*dir_ / "runs/alpha", *own_ / "mixed/good", fs::copy_options::recursive);
  fs::create_directories(*own_ / "mixed/broken");
  testing::write_bytes(*own_ / "mixed/broken/model.pt", "not a model");
  ServerProcess mixed({"--run", *own_ / "mixed"});
  httplib::Client c("127.0.0.1", mixed.port());
  const auto models = c.Get("/api/models");
  ASSERT_TRUE(models);
  const auto j = json::parse(models->body);
  ASSERT_EQ(j["models"].size(), 1u);
  EXPECT_EQ(j["models"][0]["name"], "good");
  EXPECT_EQ(j["feedback"], false);
  expect_error(c.Post("/api/feedback?label=1", testing::read_bytes(images_[0]), "image/png"), 404,
               "feedback is off");
}

// ---- the library's pure parts ----------------------------------------------------------------

TEST(ServeApi, BodyTypesMapToTheirStatuses) {
  using serve::ApiError;
  auto status_of = [](const std::string& type, const std::string& body) {
    try {
      serve::decode_image_body(type, body);
      return 200;
    } catch (const ApiError& e) {
      return e.status();
    }
  };
  EXPECT_EQ(serve::media_type(" Image/PNG ; q=1"), "image/png");
  EXPECT_EQ(status_of("text/plain", "x"), 415);
  EXPECT_EQ(status_of("image/png", "x"), 400);
  EXPECT_EQ(status_of("application/json", "[]"), 400);
  EXPECT_EQ(status_of("application/json", R"({"width":2,"height":2,"pixels":[0,0,0,0]})"), 422);
  EXPECT_EQ(status_of("application/json", R"({"width":8,"height":8,"pixels":[]})"), 400);
  EXPECT_EQ(status_of("application/json", R"({"width":8.5,"height":8,"pixels":[]})"), 400);
  const std::vector<int> ok(64, 7);
  EXPECT_EQ(status_of("application/json", json{{"width", 8}, {"height", 8}, {"pixels", ok}}.dump()),
            200);
  EXPECT_EQ(status_of("application/octet-stream", png_bytes(drawing(1))), 200);
  EXPECT_EQ(mnist::json_nesting_depth(R"({"a":[1,[2]],"s":"[[[[\"]]"})"), 3);
  EXPECT_EQ(mnist::json_nesting_depth("[]"), 1);
}

TEST(ServeMetrics, RenderCumulativeBucketsAndEscapedLabels) {
  serve::ServerMetrics m;
  m.observe_request("/api/predict", 200, 0.0007);
  m.observe_request("/api/predict", 200, 0.003);
  m.observe_request("/api/predict", 422, 10.0);
  m.count_prediction("a\"b", "T-shirt/top");
  const std::string text = m.render();
  EXPECT_NE(text.find("mnist_http_requests_total{route=\"/api/predict\",status=\"200\"} 2\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "mnist_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"0.0005\"} 0\n"),
      std::string::npos);
  EXPECT_NE(
      text.find(
          "mnist_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"0.001\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      text.find(
          "mnist_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"0.005\"} 2\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("mnist_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"5\"} 2\n"),
      std::string::npos);
  EXPECT_NE(
      text.find(
          "mnist_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"+Inf\"} 3\n"),
      std::string::npos);
  EXPECT_NE(text.find("mnist_http_request_duration_seconds_count{route=\"/api/predict\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("mnist_predictions_total{model=\"a\\\"b\",class=\"T-shirt/top\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(vision::folder_name("T-shirt/top"), "T-shirt_top");
  EXPECT_EQ(vision::folder_name("../x"), "___x");
}

}  // namespace
}  // namespace mnist
