// Runs an exported model in OpenCV's DNN module (cv::dnn::readNetFromONNX), an ONNX reader
// independent of onnxruntime and LibTorch: onnx_opencv MODEL.onnx INPUT.f32 N C H W OUTPUT.f32
// writes the "probabilities" output as float32 [N, K]. Exit 1 with an error line on failure.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <opencv2/dnn.hpp>

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: onnx_opencv MODEL INPUT N C H W OUTPUT\n");
    return 2;
  }
  try {
    const int dims[4] = {std::stoi(argv[3]), std::stoi(argv[4]), std::stoi(argv[5]),
                         std::stoi(argv[6])};
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cv::Mat blob(4, dims, CV_32F);
    if (bytes.size() != blob.total() * sizeof(float)) {
      std::fprintf(stderr, "error: %s: %zu bytes, expected %zu\n", argv[2], bytes.size(),
                   blob.total() * sizeof(float));
      return 1;
    }
    std::copy(bytes.begin(), bytes.end(), blob.ptr<char>());
    cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[1]);
    net.setInput(blob, "image");
    const cv::Mat out = net.forward("probabilities");
    std::ofstream o(argv[7], std::ios::binary);
    o.write(out.ptr<char>(), static_cast<std::streamsize>(out.total() * sizeof(float)));
    std::printf("{\"rows\": %d, \"cols\": %d}\n", out.size[0], out.size[1]);
    return o ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: OpenCV DNN: %s\n", e.what());
    return 1;
  }
}
