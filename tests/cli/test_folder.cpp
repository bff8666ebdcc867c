// Users' own data through the real binaries: a short colour training on an image folder (class
// names with spaces, mixed sizes and formats), dataset.json in the run folder, mnist-predict and
// mnist-eval with the colour model, and fine-tuning from a run (init.from) with corrections added
// by data.extra, end to end: the corrected images are predicted right afterwards. And the errors:
// another architecture, other classes or another input, a folder that is not there.

#include <cstdio>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;

const std::string kTrain = MNIST_TRAIN_BIN;
const std::string kEval = MNIST_EVAL_BIN;
const std::string kPredict = std::string("env -u DISPLAY -u WAYLAND_DISPLAY ") + MNIST_PREDICT_BIN;

// Three classes a colour model tells apart by colour and shape, on backgrounds of random colour,
// in random sizes, as PNG and JPEG.
const std::vector<std::string> kClasses = {"blue cross", "green square", "red disc"};

cv::Mat colour_shape(int k, std::mt19937& rng) {
  std::uniform_int_distribution<int> side(24, 64), bg(0, 90), jitter(-4, 4);
  const int w = side(rng), h = side(rng);
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(bg(rng), bg(rng), bg(rng)));
  const cv::Point c(w / 2 + jitter(rng), h / 2 + jitter(rng));
  const int r = std::min(w, h) / 3;
  if (k == 0) {
    cv::line(img, {c.x - r, c.y}, {c.x + r, c.y}, {255, 60, 40}, std::max(2, r / 3));
    cv::line(img, {c.x, c.y - r}, {c.x, c.y + r}, {255, 60, 40}, std::max(2, r / 3));
  } else if (k == 1) {
    cv::rectangle(img, {c.x - r, c.y - r}, {c.x + r, c.y + r}, {40, 230, 40}, cv::FILLED);
  } else {
    cv::circle(img, c, r, {30, 30, 240}, cv::FILLED);
  }
  return img;
}

void write_colour_set(const fs::path& root, int n_train, int n_test, unsigned seed) {
  std::mt19937 rng(seed);
  for (const char* split : {"train", "test"}) {
    const int n = std::string(split) == "train" ? n_train : n_test;
    for (int k = 0; k < 3; ++k) {
      fs::create_directories(root / split / kClasses[static_cast<size_t>(k)]);
      for (int i = 0; i < n; ++i) {
        const auto name = std::to_string(i) + (i % 3 == 0 ? ".jpg" : ".png");
        cv::imwrite((root / split / kClasses[static_cast<size_t>(k)] / name).string(),
                    colour_shape(k, rng));
      }
    }
  }
}

std::string colour_config(const std::string& data_dir, const std::string& cache_dir) {
  const json j = {{"seed", 5},
                  {"device", "cpu"},
                  {"data",
                   {{"dataset", "folder"},
                    {"dir", data_dir},
                    {"image_size", {16, 16}},
                    {"channels", 3},
                    {"val_size", 20},
                    {"cache_dir", cache_dir}}},
                  {"model", {{"hidden_sizes", {32}}}},
                  {"train", {{"epochs", 8}, {"batch_size", 16}, {"log_every", 5}}},
                  {"optim", {{"lr", 0.003}}}};
  return j.dump(2);
}

class Folder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new testing::SharedDir("folder", [](const std::string& dir) {
        // The colour run.
        write_colour_set(dir + "/colour", 60, 15, 1);
        testing::write_bytes(dir + "/colour.json", colour_config(dir + "/colour", dir + "/cache"));
        auto r = testing::run_command(kTrain + " --config " + quote(dir + "/colour.json") +
                                      " --run-dir " + quote(dir + "/colour_run"));
        if (r.status != 0) throw std::runtime_error("colour training failed: " + r.out + r.err);
        // A gray IDX run to fine-tune.
        testing::write_synthetic_mnist(dir + "/mnist", 300, 50);
        testing::write_bytes(dir + "/tiny.json", testing::tiny_config(dir + "/mnist", 2));
        r = testing::run_command(kTrain + " --config " + quote(dir + "/tiny.json") + " --run-dir " +
                                 quote(dir + "/base_run"));
        if (r.status != 0) throw std::runtime_error("base training failed: " + r.out + r.err);
      });
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static std::string path(const std::string& name) { return *dir_ / name; }
  static testing::SharedDir* dir_;
  static std::string setup_error_;
};
testing::SharedDir* Folder::dir_ = nullptr;
std::string Folder::setup_error_;

json read_json(const std::string& path) {
  return json::parse(testing::read_bytes(path));
}

TEST_F(Folder, AColourRunKeepsItsClassesSizeAndNormalisationInTheRunFolder) {
  const json info = read_json(path("colour_run/dataset.json"));
  EXPECT_EQ(info["name"], "folder");
  EXPECT_EQ(info["channels"], 3);
  EXPECT_EQ(info["height"], 16);
  EXPECT_EQ(info["width"], 16);
  EXPECT_EQ(info["class_names"].get<std::vector<std::string>>(), kClasses);
  ASSERT_EQ(info["normalization"]["mean"].size(), 3u);
  ASSERT_EQ(info["normalization"]["std"].size(), 3u);
  const json metrics = read_json(path("colour_run/metrics.json"));
  EXPECT_EQ(metrics["class_names"].get<std::vector<std::string>>(), kClasses);
  EXPECT_EQ(metrics["num_samples"], 45);
  EXPECT_GT(metrics["test_accuracy"].get<double>(), 0.9);
  for (const char* plot : {"samples", "curves", "confusion", "misclassified"}) {
    EXPECT_TRUE(fs::exists(path("colour_run/plots/") + plot + ".png")) << plot;
  }
}

TEST_F(Folder, PredictGivesTheColourModelColourImagesAndAnswersWithClassNames) {
  testing::TempDir tmp;
  std::mt19937 rng(99);
  // A large red disc and a small blue cross, never seen in training.
  cv::Mat disc = colour_shape(2, rng), cross = colour_shape(0, rng);
  cv::resize(disc, disc, {300, 200});
  cv::imwrite(tmp / "disc.jpg", disc);
  cv::imwrite(tmp / "cross.png", cross);
  const auto r = testing::run_command(
      kPredict + " --run " + quote(path("colour_run")) + " --no-window --json --save-input " +
      quote(tmp / "seen") + " " + quote(tmp / "cross.png") + " " + quote(tmp / "disc.jpg"));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = testing::lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(json::parse(lines[0])["class"], "blue cross") << lines[0];
  EXPECT_EQ(json::parse(lines[1])["class"], "red disc") << lines[1];
  EXPECT_EQ(json::parse(lines[1])["probabilities"].size(), 3u);
  // What the model saw: 16x16 colour, not MNIST's 28x28 gray.
  int saved = 0;
  for (const auto& e : fs::directory_iterator(tmp / "seen")) {
    const cv::Mat seen = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
    EXPECT_EQ(seen.rows, 16);
    EXPECT_EQ(seen.cols, 16);
    EXPECT_EQ(seen.channels(), 3);
    ++saved;
  }
  EXPECT_EQ(saved, 2);
}

/// A photographed digit: `text` in dark ink on tinted paper, in an image far from MNIST's size.
cv::Mat paper_digit(const std::string& text, int rows, int cols, int shift) {
  cv::Mat img(rows, cols, CV_8UC3, cv::Scalar(200, 215, 225));
  cv::putText(img, text, {cols / 5 + shift, rows * 3 / 4}, cv::FONT_HERSHEY_SIMPLEX, rows / 60.0,
              cv::Scalar(50, 35, 30), std::max(2, rows / 25), cv::LINE_AA);
  return img;
}

// A run trained with data.preprocess "digit" reads every image it predicts as its folder was read
// (the digit framed as MNIST's, the paper gone), not resized whole; a "resize" run resizes.
TEST_F(Folder, PredictionWithADigitFolderRunFramesTheDigitAsTrainingDid) {
  testing::TempDir tmp;
  for (int i = 0; i < 12; ++i) {
    for (const std::string digit : {"3", "7"}) {
      fs::create_directories(tmp / ("photos/" + digit));
      cv::imwrite(tmp / ("photos/" + digit + "/" + std::to_string(i) + ".jpg"),
                  paper_digit(digit, 120 + 10 * (i % 4), 100 + 12 * (i % 5), i % 6));
    }
  }
  cv::imwrite(tmp / "mine.png", paper_digit("7", 400, 300, 20));
  for (const std::string how : {"digit", "resize"}) {
    const json config = {{"seed", 1},
                         {"device", "cpu"},
                         {"data",
                          {{"dataset", "folder"},
                           {"dir", tmp / "photos"},
                           {"preprocess", how},
                           {"cache_dir", tmp / "cache"}}},
                         {"model", {{"hidden_sizes", {16}}}},
                         {"train", {{"epochs", 1}, {"batch_size", 8}}}};
    testing::write_bytes(tmp / (how + ".json"), config.dump());
    auto r = testing::run_command(kTrain + " --config " + quote(tmp / (how + ".json")) +
                                  " --run-dir " + quote(tmp / (how + "_run")));
    ASSERT_EQ(r.status, 0) << r.err;
    // The default validation split of a folder is a share of its images (10% of those left
    // after the test split), where the IDX sets' 5,000 would refuse this folder.
    long long train = 0, val = 0, test = 0;
    const auto at = r.out.find("data: folder, ");
    ASSERT_NE(at, std::string::npos) << r.out;
    ASSERT_EQ(
        std::sscanf(r.out.c_str() + at, "data: folder, %lld train / %lld validation / %lld test",
                    &train, &val, &test),
        3)
        << r.out;
    EXPECT_EQ(val, (train + val) / 10) << r.out;
    EXPECT_EQ(train + val + test, 24);
    r = testing::run_command(kPredict + " --run " + quote(tmp / (how + "_run")) +
                             " --no-window --json --save-input " + quote(tmp / (how + "_seen")) +
                             " " + quote(tmp / "mine.png"));
    ASSERT_EQ(r.status, 0) << r.err;
    const auto seen = fs::directory_iterator(tmp / (how + "_seen"))->path();
    const cv::Mat input = cv::imread(seen.string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(input.size(), cv::Size(28, 28)) << seen;
    if (how == "digit") {
      EXPECT_EQ(input.at<uint8_t>(0, 0), 0) << "the paper is gone, the ink bright";
      EXPECT_GT(cv::countNonZero(input > 128), 20);
    } else {
      EXPECT_GT(input.at<uint8_t>(0, 0), 150) << "the whole photo resized: the paper stays";
    }
  }
}

TEST_F(Folder, EvalTakesAnotherFolderWithTheSameClassesAndRefusesOtherClasses) {
  testing::TempDir tmp;
  write_colour_set(tmp / "other", 1, 10, 7);
  auto r = testing::run_command(kEval + " --run " + quote(path("colour_run")) +
                                " --set data.dir=" + quote(tmp / "other") + " --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["num_samples"], 30);
  EXPECT_GT(json::parse(r.out)["test_accuracy"].get<double>(), 0.8);
  // The gray MNIST-like run on the colour folder: its classes are not the model's.
  testing::expect_one_error_line(
      testing::run_command(kEval + " --run " + quote(path("base_run")) +
                           " --set data.dataset=folder --set data.dir=" + quote(tmp / "other")),
      2, "are not the model's");
}

// Three patterns unlike the training digits; their "right" labels are chosen unlike the base
// model's answers, so the base model gets every one wrong.
std::vector<cv::Mat> correction_images() {
  cv::Mat diagonal(28, 28, CV_8UC1, cv::Scalar(0)), frame = diagonal.clone(),
                                                    checker = diagonal.clone();
  cv::line(diagonal, {2, 2}, {25, 25}, cv::Scalar(255), 3);
  cv::rectangle(frame, {3, 3}, {24, 24}, cv::Scalar(255), 2);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x)
      if ((x / 4 + y / 4) % 2 == 0) checker.at<uint8_t>(y, x) = 200;
  return {diagonal, frame, checker};
}

std::vector<int> predicted_digits(const std::string& run, const std::vector<std::string>& files) {
  std::string args;
  for (const auto& f : files) args += " " + quote(f);
  const auto r = testing::run_command(kPredict + " --run " + quote(run) +
                                      " --no-window --json --preprocess naive" + args);
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<int> out;
  for (const auto& line : testing::lines(r.out))
    out.push_back(json::parse(line)["digit"].get<int>());
  return out;
}

TEST_F(Folder, FineTuningWithCorrectionsMakesTheCorrectedImagesPredictedRight) {
  testing::TempDir tmp;
  const auto images = correction_images();
  std::vector<std::string> files;
  for (size_t i = 0; i < images.size(); ++i) {
    files.push_back(tmp / ("probe" + std::to_string(i) + ".png"));
    cv::imwrite(files.back(), images[i]);
  }
  const auto before = predicted_digits(path("base_run"), files);
  ASSERT_EQ(before.size(), images.size());
  // The corrections, saved as the web page saves them: FEEDBACK/<dataset>/<class>/<id>.png.
  std::vector<int> labels;
  for (size_t i = 0; i < images.size(); ++i) {
    labels.push_back((before[i] + 1 + static_cast<int>(i)) % 10);
    const auto dir = fs::path(tmp / "feedback/mnist") / std::to_string(labels.back());
    fs::create_directories(dir);
    cv::imwrite((dir / ("fix" + std::to_string(i) + ".png")).string(), images[i]);
  }
  const std::string tune = " --config " + quote(path("tiny.json")) +
                           " --set init.from=" + quote(path("base_run")) + " --set " +
                           quote("data.extra=[\"" + (tmp / "feedback/mnist") + "\"]") +
                           " --set data.cache_dir=" + quote(tmp / "cache");
  auto r = testing::run_command(kTrain + tune +
                                " --set data.extra_repeat=30 --set train.epochs=3 --run-dir " +
                                quote(tmp / "tuned"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(read_json(tmp / "tuned/config.json")["init"]["from"], path("base_run"));
  const auto after = predicted_digits(tmp / "tuned", files);
  for (size_t i = 0; i < images.size(); ++i) {
    EXPECT_NE(before[i], labels[i]);
    EXPECT_EQ(after[i], labels[i]) << "correction " << i << " not learned";
  }
  // It still knows the digits.
  EXPECT_GT(read_json(tmp / "tuned/metrics.json")["test_accuracy"].get<double>(), 0.8);

  // The run really starts from the base run's weights: with a learning rate of almost zero the
  // tuned model answers as the base model on every test image.
  r = testing::run_command(kTrain + " --config " + quote(path("tiny.json")) +
                           " --set init.from=" + quote(path("base_run")) +
                           " --set optim.lr=1e-12 --set train.epochs=1 --run-dir " +
                           quote(tmp / "still"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(read_json(tmp / "still/metrics.json")["confusion_matrix"],
            read_json(path("base_run/metrics.json"))["confusion_matrix"]);
}

TEST_F(Folder, FineTuningRefusesAnotherArchitectureOtherInputOrNoRun) {
  testing::TempDir tmp;
  const std::string base = kTrain + " --config " + quote(path("tiny.json")) + " --run-dir " +
                           quote(tmp / "run") + " --set init.from=";
  // Another architecture: the hidden layer's width differs.
  auto r = testing::run_command(base + quote(path("base_run")) + " --set model.hidden_sizes=[48]");
  testing::expect_one_error_line(r, 2, "init.from: " + path("base_run") + "/model.pt");
  // Another input: the colour run was trained on 16x16x3 images of other classes.
  r = testing::run_command(base + quote(path("colour_run")));
  testing::expect_one_error_line(r, 2, "16x16x3");
  // No such run.
  r = testing::run_command(base + quote(tmp / "nowhere"));
  testing::expect_one_error_line(r, 2, tmp / "nowhere");
  EXPECT_FALSE(fs::exists(tmp / "run")) << "a refused run left a folder behind";
}

TEST_F(Folder, BadFolderConfigsAreOneErrorLine) {
  testing::TempDir tmp;
  const std::string cmd =
      kTrain + " --config " + quote(path("colour.json")) + " --run-dir " + quote(tmp / "run");
  testing::expect_one_error_line(testing::run_command(cmd + " --set data.dir="), 2, "data.dir");
  testing::expect_one_error_line(
      testing::run_command(cmd + " --set data.dir=" + quote(tmp / "missing")), 1, tmp / "missing");
  testing::expect_one_error_line(testing::run_command(cmd + " --set data.channels=2"), 2,
                                 "data.channels");
  testing::expect_one_error_line(testing::run_command(cmd + " --set data.image_size=[16]"), 2,
                                 "data.image_size");
  // A broken image in the folder: stopped with its path, or skipped and counted on request.
  fs::copy(path("colour"), tmp / "set", fs::copy_options::recursive);
  testing::write_bytes(tmp / "set/train/red disc/broken.png", "not a PNG");
  const std::string on_set =
      kTrain + " --config " + quote(path("colour.json")) + " --set data.dir=" + quote(tmp / "set") +
      " --set data.cache_dir=" + quote(tmp / "cache") + " --set train.epochs=1 --run-dir ";
  testing::expect_one_error_line(testing::run_command(on_set + quote(tmp / "run")), 1,
                                 tmp / "set/train/red disc/broken.png");
  EXPECT_FALSE(fs::exists(tmp / "run"));
  const auto r = testing::run_command(on_set + quote(tmp / "run2") + " --set data.skip_bad=true");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning: skipped 1 unreadable image file(s)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mnist
