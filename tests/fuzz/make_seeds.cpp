// Writes the fuzzers' seed corpora into ARGV[1]/<harness>/, from what the tests use: synthetic IDX
// files (raw and gzip), the repository's configs with and without overrides, a digit image in every
// format OpenCV writes here, a real checkpoint and model of the checkpoint harness's network,
// request bodies (image files and a canvas), and whole HTTP requests for the server. ARGV[2] is the
// source tree (for configs/).

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/models/factory.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/optim.h"
#include "support.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uint8_t> buf;
  if (!cv::imencode(ext, image, buf)) throw std::runtime_error("cannot encode " + ext);
  return std::string(buf.begin(), buf.end());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: mnist_fuzz_seeds OUT_DIR SOURCE_DIR\n";
    return 2;
  }
  const fs::path out = argv[1], source = argv[2];
  try {
    // IDX: small synthetic sets, raw and gzip.
    for (const bool gz : {false, true}) {
      const mnist::testing::TempDir tmp;
      mnist::testing::write_synthetic_mnist(tmp.path(), 3, 2, gz);
      for (const auto& e : fs::directory_iterator(tmp.path())) {
        write(out / "idx" / e.path().filename(), mnist::testing::read_bytes(e.path().string()));
      }
    }
    // Configs: every shipped one, alone and with overrides.
    for (const auto& e : fs::directory_iterator(source / "configs")) {
      if (!e.is_regular_file() || e.path().extension() != ".json") continue;  // not sweeps/
      const std::string text = mnist::testing::read_bytes(e.path().string());
      const std::string name = e.path().stem().string();
      write(out / "config" / (name + "-plain"), std::string(1, '\0') + text);
      write(out / "config" / (name + "-set"),
            "train.epochs=3\nmodel.hidden_sizes=[64,32]\ndata.val_size=100" + std::string(1, '\0') +
                text);
    }
    // Images: a digit-like ring, dark on light, in every format.
    cv::Mat gray(40, 32, CV_8UC1, cv::Scalar(250));
    cv::circle(gray, {16, 20}, 11, cv::Scalar(10), 4);
    cv::Mat colour, rgba, deep;
    cv::cvtColor(gray, colour, cv::COLOR_GRAY2BGR);
    cv::cvtColor(gray, rgba, cv::COLOR_GRAY2BGRA);
    gray.convertTo(deep, CV_16U, 257);
    const std::vector<std::pair<std::string, std::string>> images = {
        {"gray.png", encode(gray, ".png")},       {"rgba.png", encode(rgba, ".png")},
        {"deep.png", encode(deep, ".png")},       {"colour.jpg", encode(colour, ".jpg")},
        {"gray.bmp", encode(gray, ".bmp")},       {"colour.tiff", encode(colour, ".tiff")},
        {"colour.webp", encode(colour, ".webp")}, {"gray.pgm", encode(gray, ".pgm")},
        {"colour.ppm", encode(colour, ".ppm")}};
    for (const auto& [name, bytes] : images) {
      write(out / "image" / name, bytes);
      write(out / "request" / name, std::string(1, '\0') + bytes);
    }
    // A canvas body (the page's getImageData, RGBA).
    nlohmann::json canvas = {{"width", 8}, {"height", 8}, {"pixels", nlohmann::json::array()}};
    for (int i = 0; i < 64; ++i) {
      const int v = (i % 8 == 3 || i % 8 == 4) ? 255 : 0;
      for (int c = 0; c < 3; ++c) canvas["pixels"].push_back(v);
      canvas["pixels"].push_back(255);
    }
    write(out / "request" / "canvas.json", std::string(1, '\2') + canvas.dump());
    // Whole HTTP requests for the server's harness: every route, every body form.
    const std::string png = encode(gray, ".png");
    auto post = [](const std::string& path, const std::string& type, const std::string& body,
                   const std::string& more) {
      return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + type +
             "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + more + "\r\n" + body;
    };
    const std::string form =
        "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
        "Content-Type: image/png\r\n\r\n" +
        png + "\r\n--XyZ--\r\n";
    const std::vector<std::pair<std::string, std::string>> requests = {
        {"page", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /app.js HTTP/1.1\r\n\r\n"},
        {"models", "GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"},
        {"metrics", "HEAD /metrics HTTP/1.0\r\n\r\n"},
        {"predict", post("/api/predict?model=run&preprocess=naive", "image/png", png, "")},
        {"multipart", post("/api/predict", "multipart/form-data; boundary=XyZ", form, "")},
        {"canvas", post("/api/predict", "application/json", canvas.dump(), "")},
        {"chunked",
         "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
         "Transfer-Encoding: chunked\r\n\r\n" +
             [&] {
               char size[16];
               std::snprintf(size, sizeof size, "%zx", png.size());
               return std::string(size) + "\r\n" + png + "\r\n0\r\n\r\n";
             }()},
        {"feedback", post("/api/feedback?label=3", "image/png", png,
                          "Origin: http://127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n"
                          "Expect: 100-continue\r\n")},
        {"options", "OPTIONS /api/predict HTTP/1.1\r\nHost: x\r\n\r\n"},
    };
    for (const auto& [name, bytes] : requests) write(out / "http" / name, bytes);
    // The checkpoint harness's network: a checkpoint and a model file.
    torch::manual_seed(1);
    mnist::ModelConfig m;
    m.hidden_sizes = {8};
    const auto& info = mnist::dataset_info(mnist::DatasetName::kMnist);
    auto model = mnist::build_model(m, info);
    auto optimizer = mnist::make_optimizer(mnist::OptimConfig(), model->parameters());
    mnist::TrainingState state;
    const mnist::testing::TempDir tmp;
    mnist::save_checkpoint(tmp / "checkpoint.pt", *model, *optimizer, state);
    mnist::save_model(model, tmp / "model.pt");
    write(out / "checkpoint" / "checkpoint.pt", mnist::testing::read_bytes(tmp / "checkpoint.pt"));
    write(out / "checkpoint" / "model.pt", mnist::testing::read_bytes(tmp / "model.pt"));
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
