// mnist-predict's command-line contract (../shared/DESIGN.md) through the real binary: JSON lines
// in the order given (a folder's images sorted), one error entry per bad file while the others are
// still predicted, exit 1 when any failed, usage errors, an unloadable model, --save-input,
// --top-k.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/tools/userset.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/preprocess.h"
#include "support.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::quote;

const std::string kTrain = MNIST_TRAIN_BIN;
const std::string kPredict = std::string("env -u DISPLAY -u WAYLAND_DISPLAY ") + MNIST_PREDICT_BIN;

// One finished run and a folder of images, shared by every process of this suite (SharedDir).
class Predict : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = new testing::SharedDir("predict", [](const std::string& dir) {
        testing::write_synthetic_mnist(dir + "/data", 300, 50);
        testing::write_bytes(dir + "/tiny.json", testing::tiny_config(dir + "/data", 1));
        const auto r = testing::run_command(kTrain + " --config " + quote(dir + "/tiny.json") +
                                            " --run-dir " + quote(dir + "/run"));
        if (r.status != 0) throw std::runtime_error("training failed: " + r.out + r.err);
        // Two good images (a digit-like ring, dark on white and light on black) in a folder with
        // a file that is not an image.
        fs::create_directories(dir + "/good");
        cv::Mat img(80, 60, CV_8UC1, cv::Scalar(255));
        cv::circle(img, {30, 40}, 20, cv::Scalar(0), 6);
        cv::imwrite(dir + "/good/b.png", img);
        cv::imwrite(dir + "/good/a.jpg", 255 - img);
        testing::write_bytes(dir + "/good/notes.txt", "not an image, not listed");
      });
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  // A failed fixture fails every test (GoogleTest would otherwise report them skipped).
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static std::string path(const std::string& name) { return *dir_ / name; }
  static std::string predict(const std::string& args) {
    return kPredict + " --run " + quote(path("run")) + " " + args;
  }
  static testing::SharedDir* dir_;
  static std::string setup_error_;
};
testing::SharedDir* Predict::dir_ = nullptr;
std::string Predict::setup_error_;

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> v;
  for (const auto& line : testing::lines(out)) v.push_back(json::parse(line));
  return v;
}

void expect_prediction(const json& j, int top_k = 3) {
  ASSERT_FALSE(j.contains("error")) << j.dump();
  const auto p = j.at("probabilities").get<std::vector<double>>();
  ASSERT_EQ(p.size(), 10u);
  EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-4);
  const auto best = std::max_element(p.begin(), p.end()) - p.begin();
  EXPECT_EQ(j.at("digit").get<int64_t>(), best);
  EXPECT_EQ(j.at("class").get<std::string>(), std::to_string(best));
  EXPECT_DOUBLE_EQ(j.at("confidence").get<double>(), p[static_cast<size_t>(best)]);
  ASSERT_EQ(j.at("top_k").size(), static_cast<size_t>(top_k));
  EXPECT_EQ(j["top_k"][0]["digit"], best);
  for (size_t i = 1; i < j["top_k"].size(); ++i) {
    EXPECT_GE(j["top_k"][i - 1]["probability"].get<double>(),
              j["top_k"][i]["probability"].get<double>());
  }
}

TEST_F(Predict, FolderOfGoodImagesGivesSortedJsonLinesAndExitZero) {
  const auto r = testing::run_command(predict("--no-window --json " + quote(path("good"))));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;  // notes.txt is not an image: skipped
  EXPECT_EQ(lines[0]["path"], path("good") + "/a.jpg");
  EXPECT_EQ(lines[1]["path"], path("good") + "/b.png");
  for (const auto& j : lines) expect_prediction(j);
  // Both polarities of the same ring are the same input to the model.
  EXPECT_EQ(lines[0]["digit"], lines[1]["digit"]);
}

TEST_F(Predict, EveryBadFileIsAnErrorEntryAndTheOthersArePredicted) {
  testing::TempDir tmp;
  const auto bad = vision::write_bad_images(tmp / "bad");
  std::string args = quote(path("good/b.png"));
  for (const auto& p : bad) args += " " + quote(p);
  const std::string missing = path("missing.png");
  args += " " + quote(missing) + " " + quote(path("good/a.jpg"));
  std::string unreadable = "/proc/self/mem";  // root reads any file mode; this one fails anyway
  if (geteuid() != 0) {
    unreadable = tmp / "locked.png";
    cv::imwrite(unreadable, cv::Mat(20, 20, CV_8UC1, cv::Scalar(0)));
    fs::permissions(unreadable, fs::perms::none);
  }
  args += " " + quote(unreadable);
  const auto r = testing::run_command(predict("--no-window --json " + args));
  EXPECT_EQ(r.status, 1) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), bad.size() + 4) << r.out;
  expect_prediction(lines.front());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(lines[i + 1]["path"], bad[i]);
    EXPECT_EQ(lines[i + 1].size(), 2u) << lines[i + 1].dump();  // exactly {"path", "error"}
    EXPECT_FALSE(lines[i + 1]["error"].get<std::string>().empty());
  }
  EXPECT_EQ(lines[bad.size() + 1]["path"], missing);
  EXPECT_EQ(lines[bad.size() + 1]["error"], "no such file");
  expect_prediction(lines[bad.size() + 2]);
  EXPECT_EQ(lines.back()["path"], unreadable);
  EXPECT_TRUE(lines.back().contains("error")) << lines.back().dump();
}

TEST_F(Predict, TextOutputPutsErrorsOnStderr) {
  const auto r = testing::run_command(
      predict("--no-window " + quote(path("good/b.png")) + " " + quote(path("nothing.png"))));
  EXPECT_EQ(r.status, 1);
  ASSERT_EQ(testing::lines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(r.out.rfind(path("good/b.png") + ": ", 0), 0u) << r.out;
  EXPECT_EQ(r.err, "error: " + path("nothing.png") + ": no such file\n");
}

TEST_F(Predict, SaveInputWritesTheModelsView) {
  testing::TempDir tmp;
  const std::string out_dir = tmp / "seen";
  const auto r = testing::run_command(predict("--no-window --json --top-k 5 --save-input " +
                                              quote(out_dir) + " " + quote(path("good"))));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["input_image"], out_dir + "/0001_a.png");
  EXPECT_EQ(lines[1]["input_image"], out_dir + "/0002_b.png");
  for (const auto& j : lines) {
    expect_prediction(j, 5);
    const cv::Mat seen = cv::imread(j["input_image"].get<std::string>(), cv::IMREAD_UNCHANGED);
    EXPECT_EQ(seen.type(), CV_8UC1);
    EXPECT_EQ(seen.size(), cv::Size(28, 28));
    EXPECT_EQ(seen.at<uint8_t>(0, 0), 0);  // bright digit on black, as in training
  }
}

// --explain writes, per file, the input the model saw with the attribution over it (10x, red up,
// blue down); --explain-class and --explain-method change what is explained, and bad values of
// either are one error line.
TEST_F(Predict, ExplainWritesWhyTheModelAnsweredAsAHeatmap) {
  testing::TempDir tmp;
  const std::string out_dir = tmp / "why";
  const auto r =
      testing::run_command(predict("--no-window --json --save-input " + quote(tmp / "seen") +
                                   " --explain " + quote(out_dir) + " " + quote(path("good"))));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["explanation_image"], out_dir + "/0001_a_explain.png");
  for (const auto& j : lines) {
    const cv::Mat why = cv::imread(j["explanation_image"].get<std::string>(), cv::IMREAD_COLOR);
    const cv::Mat seen = cv::imread(j["input_image"].get<std::string>(), cv::IMREAD_GRAYSCALE);
    ASSERT_EQ(why.size(), cv::Size(280, 280));
    // Coloured where the model looked: the ink of what it saw, never the empty background only.
    cv::Mat bgr[3];
    cv::split(why, bgr);
    cv::Mat red = bgr[2] > bgr[0] + 60, blue = bgr[0] > bgr[2] + 60;
    cv::Mat ink;
    cv::resize(seen > 60, ink, why.size(), 0, 0, cv::INTER_NEAREST);
    EXPECT_GT(cv::countNonZero(red | blue), 50);
    EXPECT_GT(cv::countNonZero((red | blue) & ink), cv::countNonZero((red | blue) & ~ink))
        << "the attribution lies off the digit";
  }
  // Another class and method give another picture.
  const auto other = testing::run_command(
      predict("--no-window --json --explain-class 3 --explain-method occlusion --explain " +
              quote(tmp / "other") + " " + quote(path("good/b.png"))));
  ASSERT_EQ(other.status, 0) << other.err;
  EXPECT_NE(testing::read_bytes(tmp / "other/0001_b_explain.png"),
            testing::read_bytes(out_dir + "/0002_b_explain.png"));
  testing::expect_one_error_line(
      testing::run_command(predict("--no-window --explain-method saliency --explain " +
                                   quote(tmp / "x") + " " + quote(path("good")))),
      2, "--explain-method: \"saliency\" is not a method");
  testing::expect_one_error_line(
      testing::run_command(predict("--no-window --explain-class 10 --explain " + quote(tmp / "x") +
                                   " " + quote(path("good")))),
      2, "--explain-class: the model has classes 0 to 9");
}

// mnist-predict decodes a large JPEG photo reduced (libjpeg's DCT scaling, chosen from the header:
// a 4000x3000 photo at 1/4), as the web server does: the model's input is the reduced decode's,
// and it differs from the full decode's by little.
TEST_F(Predict, LargeJpegPhotosAreDecodedReduced) {
  testing::TempDir tmp;
  cv::Mat photo(3000, 4000, CV_8UC3);
  cv::RNG rng(11);
  for (int y = 0; y < photo.rows; ++y) {
    auto* row = photo.ptr<cv::Vec3b>(y);
    for (int x = 0; x < photo.cols; ++x) {
      const int base = 205 + 25 * x / photo.cols - 15 * y / photo.rows + rng.uniform(-6, 7);
      row[x] = cv::Vec3b(static_cast<uint8_t>(base - 12), static_cast<uint8_t>(base - 5),
                         static_cast<uint8_t>(base));
    }
  }
  cv::circle(photo, {2000, 1500}, 700, cv::Scalar(50, 40, 35), 120);
  cv::line(photo, {2000, 800}, {2000, 2200}, cv::Scalar(50, 40, 35), 90);
  const std::string file = tmp / "photo.jpg";
  cv::imwrite(file, photo, {cv::IMWRITE_JPEG_QUALITY, 90});
  const std::string out_dir = tmp / "seen";
  const auto r = testing::run_command(
      predict("--no-window --json --save-input " + quote(out_dir) + " " + quote(file)));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  expect_prediction(lines[0]);
  const cv::Mat seen = cv::imread(lines[0]["input_image"].get<std::string>(), cv::IMREAD_UNCHANGED);
  int reduction = 0;
  const cv::Mat reduced = vision::read_image(file, vision::digit_decode_limits(), &reduction);
  EXPECT_EQ(reduction, 4);
  EXPECT_EQ(reduced.size(), cv::Size(1000, 750));
  const cv::Mat from_reduced = vision::preprocess_digit(reduced, "reduced").digit;
  const cv::Mat from_full = vision::preprocess_digit(vision::read_image(file), "full").digit;
  EXPECT_EQ(cv::norm(seen, from_reduced, cv::NORM_INF), 0) << "not the reduced decode's input";
  EXPECT_GT(cv::norm(from_full, from_reduced, cv::NORM_INF), 0)
      << "the two decodes give the same input: this test cannot tell them apart";
  EXPECT_LT(cv::norm(from_full, from_reduced, cv::NORM_L1) / 784, 3.0)
      << "mean difference of the 28x28 inputs (0..255)";
}

// SIGTERM in the middle of a long --save-input batch: exit 143 at once, every saved image whole,
// no temporary file left, every printed JSON line complete.
TEST_F(Predict, SigtermLeavesNoHalfWrittenOutput) {
  testing::TempDir tmp;
  fs::create_directories(tmp / "many");
  for (int i = 0; i < 4000; ++i) {
    fs::copy_file(path("good/b.png"), tmp / ("many/" + std::to_string(100000 + i) + ".png"));
  }
  const std::string out_dir = tmp / "seen";
  testing::Background run(
      predict("--no-window --json --save-input " + quote(out_dir) + " " + quote(tmp / "many")),
      tmp / "predict");
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return fs::exists(out_dir) &&
               std::distance(fs::directory_iterator(out_dir), fs::directory_iterator()) >= 20;
      },
      std::chrono::seconds(60)));
  ASSERT_EQ(::kill(run.pid(), SIGTERM), 0);
  ASSERT_EQ(run.wait(std::chrono::seconds(30)), 143) << run.err();
  int64_t saved = 0;
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << "left behind: " << name;
    const cv::Mat seen = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
    EXPECT_EQ(seen.size(), cv::Size(28, 28)) << name;
    ++saved;
  }
  EXPECT_LT(saved, 4000) << "the batch finished before the signal";
  for (const auto& line : testing::lines(run.out())) EXPECT_NO_THROW(json::parse(line)) << line;
}

TEST_F(Predict, UsageErrorsExitTwo) {
  testing::expect_one_error_line(testing::run_command(predict("--no-window --json")), 2,
                                 "no image paths given");
  testing::expect_one_error_line(
      testing::run_command(predict("--no-window --preprocess fancy " + quote(path("good")))), 2,
      "--preprocess");
  testing::expect_one_error_line(testing::run_command(predict(quote(path("good")))), 2,
                                 "no display");
  testing::expect_one_error_line(testing::run_command(predict("--no-window --draw")), 2,
                                 "--draw needs the window");
}

TEST_F(Predict, UnloadableModelIsOneErrorAndNoJson) {
  testing::TempDir tmp;
  const std::string broken = tmp / "broken-run";
  fs::create_directories(broken);
  fs::copy_file(path("run/config.json"), broken + "/config.json");
  testing::write_bytes(broken + "/model.pt", "not a model");
  const auto r = testing::run_command(kPredict + " --run " + quote(broken) +
                                      " --no-window --json " + quote(path("good")));
  testing::expect_one_error_line(r, 1, broken + "/model.pt");
  EXPECT_EQ(r.out, "");
  testing::expect_one_error_line(testing::run_command(kPredict + " --run " + quote(path("no-run")) +
                                                      " --no-window " + quote(path("good"))),
                                 1, path("no-run"));
}

// Every model type on both data sets: the run folder is complete (figures, metrics with the data
// set's class names), mnist-eval recomputes the metrics, mnist-predict names the class.
TEST(EveryModel, RunFolderEvaluationFiguresAndPredictionForMlpAndCnnOnBothDataSets) {
  testing::TempDir tmp;
  testing::write_synthetic_mnist(tmp / "data", 300, 50);
  cv::Mat img(60, 60, CV_8UC1, cv::Scalar(255));
  cv::rectangle(img, {15, 10}, {45, 50}, cv::Scalar(0), cv::FILLED);
  ASSERT_TRUE(cv::imwrite(tmp / "item.png", img));
  const std::string cnn =
      " --set model.type=cnn --set 'model.channels=[4,8]' --set 'model.kernel_sizes=[3,3]'"
      " --set 'model.hidden_sizes=[16]' --set train.ema_decay=0.9"
      " --set augment.rotation=5 --set early_stopping.restore_best=true";
  for (const std::string dataset : {"mnist", "fashion-mnist"}) {
    for (const std::string model : {"mlp", "cnn"}) {
      SCOPED_TRACE(dataset + " " + model);
      const std::string run = tmp / (dataset + "-" + model);
      const auto r = testing::run_command(
          kTrain + " --config " + quote(std::string(MNIST_SOURCE_DIR) + "/configs/mnist_mlp.json") +
          " --set train.epochs=2 --set data.val_size=50 --set " +
          quote("data.dir=" + tmp / "data") + " --set data.dataset=" + dataset +
          (model == "cnn" ? cnn : "") + " --run-dir " + quote(run));
      ASSERT_EQ(r.status, 0) << r.out << r.err;
      for (const char* plot : {"samples", "curves", "confusion", "misclassified"}) {
        EXPECT_TRUE(fs::exists(run + "/plots/" + plot + ".png")) << plot;
      }
      const auto metrics = json::parse(testing::read_bytes(run + "/metrics.json"));
      const auto names = metrics.at("class_names").get<std::vector<std::string>>();
      ASSERT_EQ(names.size(), 10u);
      EXPECT_EQ(names[0], dataset == "mnist" ? "0" : "T-shirt/top");
      EXPECT_EQ(metrics.at("training").at("epochs"), 2);

      const auto e =
          testing::run_command(std::string(MNIST_EVAL_BIN) + " --json --run " + quote(run));
      ASSERT_EQ(e.status, 0) << e.err;
      EXPECT_DOUBLE_EQ(json::parse(e.out)["test_accuracy"].get<double>(),
                       metrics["test_accuracy"].get<double>());

      const auto p = testing::run_command(kPredict + " --run " + quote(run) +
                                          " --no-window --json " + quote(tmp / "item.png"));
      ASSERT_EQ(p.status, 0) << p.err;
      const auto j = json::parse(p.out);
      const auto k = j.at("digit").get<size_t>();
      ASSERT_LT(k, 10u);
      EXPECT_EQ(j.at("class").get<std::string>(), names[k]);
    }
  }
}

// The fixed point end to end: MNIST test digits saved as PNG files get the prediction the run's
// evaluation made from the data set's tensors (predictions.csv).
TEST(PredictRealMnist, MnistCropsGetTheDataSetTensorsPrediction) {
  const char* env = std::getenv("MNIST_DATA_DIR");
  const std::string data = env ? env : std::string(MNIST_SOURCE_DIR) + "/data/mnist";
  const std::string images = data + "/t10k-images-idx3-ubyte";
  if (!fs::exists(images)) {
    MNIST_SKIP_OR_REQUIRE("no MNIST in " << data << "; run scripts/fetch_mnist.sh");
  }
  testing::TempDir tmp;
  const auto r = testing::run_command(
      kTrain + " --config " + quote(std::string(MNIST_SOURCE_DIR) + "/configs/mnist_mlp.json") +
      " --set train.epochs=1 --set " + quote("data.dir=" + data) + " --run-dir " +
      quote(tmp / "run"));
  ASSERT_EQ(r.status, 0) << r.err;
  const int n = 500;
  const std::string raw = testing::read_bytes(images);
  fs::create_directories(tmp / "png");
  for (int i = 0; i < n; ++i) {
    const cv::Mat digit(28, 28, CV_8UC1, const_cast<char*>(raw.data()) + 16 + 784 * i);
    char name[32];
    std::snprintf(name, sizeof name, "/%04d.png", i);
    ASSERT_TRUE(cv::imwrite(tmp / "png" + name, digit));
  }
  const auto p = testing::run_command(kPredict + " --run " + quote(tmp / "run") +
                                      " --no-window --json " + quote(tmp / "png"));
  ASSERT_EQ(p.status, 0) << p.err;
  const auto lines = json_lines(p.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(n));
  const auto csv = testing::lines(testing::read_bytes(tmp / "run/predictions.csv"));
  int agree = 0;
  for (int i = 0; i < n; ++i) {
    // predictions.csv: index,label,predicted,...
    const std::string& row = csv[static_cast<size_t>(i) + 1];
    const size_t a = row.find(',', row.find(',') + 1) + 1;
    const int from_tensor = std::stoi(row.substr(a, row.find(',', a) - a));
    agree += lines[static_cast<size_t>(i)]["digit"].get<int>() == from_tensor;
  }
  EXPECT_GE(agree, n - 2) << agree << " of " << n << " agree";
}

}  // namespace
}  // namespace mnist
