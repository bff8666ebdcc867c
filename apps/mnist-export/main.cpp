// mnist-export: writes a run's model in a format other runtimes read. ONNX (opset 13): the input
// "image" float [N, C, H, W] (pixels / 255; the run's normalisation inside the graph), the outputs
// "probabilities" and "logits", the class names and input description in the metadata
// (lib/include/mnist/export/onnx.h, docs/export.md). The file appears whole or not at all.

#include <cstdio>

#include "app.h"
#include "mnist/eval/predictor.h"
#include "mnist/export/onnx.h"

int main(int argc, char** argv) {
  CLI::App cli{"Export a run's model (ONNX) for other runtimes."};
  std::string run_dir, format = "onnx", out;
  cli.add_option("--run", run_dir, "run folder written by mnist-train")->required();
  cli.add_option("--format", format, "the file format")
      ->check(CLI::IsMember({"onnx"}))
      ->capture_default_str();
  cli.add_option("--out", out, "the file to write (default: <run>/model.onnx)");
  return mnist::app::run(cli, argc, argv, [&] {
    if (out.empty()) out = run_dir + "/model.onnx";
    const auto predictor = mnist::Predictor::open(run_dir);
    mnist::write_onnx_model(predictor, run_dir, out);
    const auto& info = predictor.info();
    std::printf(
        "wrote %s: ONNX opset %lld, input image [N, %lld, %lld, %lld] (pixels / 255), "
        "outputs probabilities and logits [N, %lld]\n",
        out.c_str(), static_cast<long long>(mnist::kOnnxOpset),
        static_cast<long long>(info.channels), static_cast<long long>(info.height),
        static_cast<long long>(info.width), static_cast<long long>(info.num_classes()));
    return 0;
  });
}
