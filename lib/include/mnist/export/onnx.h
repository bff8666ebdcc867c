#pragma once
// A run's model as an ONNX file, for runtimes outside this project (onnxruntime, OpenCV's DNN
// module, TensorRT, the browser). Written with the ONNX project's own protobuf schema and checked
// with its checker (Debian: libonnx-dev).
//
// The graph: input "image", float [N, C, H, W], the pixels divided by 255 (gray: white digit on
// black, as MNIST; colour: RGB), any batch size; the run's normalisation (if any) is the graph's
// first two nodes. Outputs "probabilities" [N, K] (the output head's: softmax, or the tutorial's
// normalised clipped sigmoids, computed as LibTorch computes them) and "logits" [N, K]. Dropout is
// left out (inference); batch norm is a BatchNormalization node with the running statistics.
// Metadata (metadata_props): class names, the input's layout and scaling, the normalisation, image
// size, channels, output head and the run it came from.

#include <string>

#include "mnist/eval/predictor.h"

namespace mnist {

/// The operator set the exported graphs use.
constexpr int64_t kOnnxOpset = 13;

/// The ONNX model (serialised ModelProto) of `model` (in evaluation mode), trained as `config`
/// says on data described by `info`; `source` (the run folder) goes into the metadata. UsageError
/// naming the layer when a layer has no ONNX form here.
std::string onnx_model(const ClassifierImpl& model, const Config& config, const DatasetInfo& info,
                       const std::string& source);

/// The ONNX model of `predictor`'s model, from the run folder `run_dir`.
std::string onnx_model(const Predictor& predictor, const std::string& run_dir);

/// Writes onnx_model() to `path` atomically (temporary file renamed into place): a failure leaves
/// no file, never a partial one. RunError naming `path` when it cannot be written.
void write_onnx_model(const Predictor& predictor, const std::string& run_dir,
                      const std::string& path);

}  // namespace mnist
