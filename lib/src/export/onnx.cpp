#include "mnist/export/onnx.h"

#include <cmath>
#include <functional>
#include <type_traits>
#include <variant>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mnist/config/config.h"
#include "mnist/core/build_info.h"
#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/models/head.h"

namespace mnist {
namespace {

using Attributes = std::function<void(onnx::NodeProto&)>;

void add_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (const int64_t v : values) a->add_ints(v);
}

void add_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void add_float(onnx::NodeProto& node, const std::string& name, float value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

// Adds nodes and float initialisers to a graph, naming each value uniquely.
class Graph {
 public:
  explicit Graph(onnx::GraphProto* graph) : graph_(graph) {}

  std::string constant(const std::string& name, const at::Tensor& values) {
    const auto t = values.detach().to(at::kCPU, at::kFloat).contiguous();
    auto* init = graph_->add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (const int64_t d : t.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(reinterpret_cast<const char*>(t.data_ptr<float>()),
                                   static_cast<size_t>(t.numel()) * sizeof(float)));
    return name;
  }

  // Output named `name` + "_out", or `output` when given (the graph's outputs).
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::string& name, const Attributes& attributes = {},
                   const std::string& output = "") {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& in : inputs) n->add_input(in);
    const std::string out = output.empty() ? name + "_out" : output;
    n->add_output(out);
    if (attributes) attributes(*n);
    return out;
  }

 private:
  onnx::GraphProto* graph_;
};

std::vector<int64_t> pair_of(const torch::ExpandingArray<2>& a) {
  return {a->at(0), a->at(1)};
}

// A 2-D window's kernel_shape, strides and pads (`pads` [h, w], the same before and after, as
// LibTorch pads): convolutions and pools.
void add_window(onnx::NodeProto& node, const torch::ExpandingArray<2>& kernel,
                const torch::ExpandingArray<2>& stride, const std::vector<int64_t>& pads) {
  add_ints(node, "kernel_shape", pair_of(kernel));
  add_ints(node, "strides", pair_of(stride));
  add_ints(node, "pads", {pads[0], pads[1], pads[0], pads[1]});
}

// A convolution's padding when it is explicit numbers, else empty ("valid", "same"). The options
// hold c10::variant in LibTorch 1.x and std::variant in 2.x: `visit` is found by argument lookup.
template <class Variant>
std::vector<int64_t> explicit_padding(const Variant& padding) {
  std::vector<int64_t> out;
  visit(
      [&](const auto& p) {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, torch::ExpandingArray<2>>)
          out = pair_of(p);
      },
      padding);
  return out;
}

template <class Variant>
bool pads_with_zeros(const Variant& mode) {
  bool zeros = false;
  visit(
      [&](const auto& m) {
        zeros = std::is_same_v<std::decay_t<decltype(m)>, torch::enumtype::kZeros>;
      },
      mode);
  return zeros;
}

[[noreturn]] void no_onnx_form(const std::string& name, const std::string& why) {
  throw UsageError("model: layer \"" + name + "\" " + why +
                   ": it has no ONNX form in mnist-export (docs/export.md)");
}

// One layer of the model as ONNX nodes after `x`; returns the new value (x itself for layers that
// do nothing at inference).
std::string add_layer(Graph& g, const std::string& name, const torch::nn::Module& module,
                      const std::string& x) {
  namespace nn = torch::nn;
  const std::string id = name.empty() ? "layer" : name;
  if (dynamic_cast<const nn::DropoutImpl*>(&module)) return x;
  if (const auto* flatten = dynamic_cast<const nn::FlattenImpl*>(&module)) {
    if (flatten->options.start_dim() != 1 || flatten->options.end_dim() != -1)
      no_onnx_form(id, "flattens other dimensions than [C, H, W]");
    return g.node("Flatten", {x}, id, [](auto& n) { add_int(n, "axis", 1); });
  }
  if (const auto* linear = dynamic_cast<const nn::LinearImpl*>(&module)) {
    std::vector<std::string> in = {x, g.constant(id + ".weight", linear->weight)};
    if (linear->bias.defined()) in.push_back(g.constant(id + ".bias", linear->bias));
    return g.node("Gemm", in, id, [](auto& n) { add_int(n, "transB", 1); });
  }
  if (const auto* conv = dynamic_cast<const nn::Conv2dImpl*>(&module)) {
    const auto& o = conv->options;
    const auto pads = explicit_padding(o.padding());
    if (pads.empty() || !pads_with_zeros(o.padding_mode()))
      no_onnx_form(id, "pads other than by explicit zeros");
    std::vector<std::string> in = {x, g.constant(id + ".weight", conv->weight)};
    if (conv->bias.defined()) in.push_back(g.constant(id + ".bias", conv->bias));
    return g.node("Conv", in, id, [&](auto& n) {
      add_window(n, o.kernel_size(), o.stride(), pads);
      add_ints(n, "dilations", pair_of(o.dilation()));
      add_int(n, "group", o.groups());
    });
  }
  if (const auto* bn = dynamic_cast<const nn::BatchNorm2dImpl*>(&module)) {
    if (!bn->options.track_running_stats()) no_onnx_form(id, "keeps no running statistics");
    const int64_t c = bn->options.num_features();
    const auto scale = bn->options.affine() ? bn->weight : torch::ones({c});
    const auto shift = bn->options.affine() ? bn->bias : torch::zeros({c});
    return g.node("BatchNormalization",
                  {x, g.constant(id + ".weight", scale), g.constant(id + ".bias", shift),
                   g.constant(id + ".running_mean", bn->running_mean),
                   g.constant(id + ".running_var", bn->running_var)},
                  id, [&](auto& n) { add_float(n, "epsilon", bn->options.eps()); });
  }
  if (dynamic_cast<const nn::ReLUImpl*>(&module)) return g.node("Relu", {x}, id);
  if (dynamic_cast<const nn::TanhImpl*>(&module)) return g.node("Tanh", {x}, id);
  if (dynamic_cast<const nn::SigmoidImpl*>(&module)) return g.node("Sigmoid", {x}, id);
  if (const auto* gelu = dynamic_cast<const nn::GELUImpl*>(&module)) {
    if (gelu->options.approximate() != "none") no_onnx_form(id, "is the tanh-approximated GELU");
    // Opset 13 has no GELU: x * 0.5 * (1 + erf(x / sqrt(2))), as LibTorch's exact GELU.
    const auto scaled =
        g.node("Div", {x, g.constant(id + ".sqrt2", torch::tensor(std::sqrt(2.f)))}, id + "_div");
    const auto erf = g.node("Erf", {scaled}, id + "_erf");
    const auto plus =
        g.node("Add", {erf, g.constant(id + ".one", torch::tensor(1.f))}, id + "_add");
    const auto half =
        g.node("Mul", {x, g.constant(id + ".half", torch::tensor(0.5f))}, id + "_half");
    return g.node("Mul", {half, plus}, id);
  }
  if (const auto* pool = dynamic_cast<const nn::MaxPool2dImpl*>(&module)) {
    const auto& o = pool->options;
    if (o.ceil_mode() || pair_of(o.dilation()) != std::vector<int64_t>{1, 1})
      no_onnx_form(id, "pools with ceil mode or dilation");
    return g.node("MaxPool", {x}, id, [&](auto& n) {
      add_window(n, o.kernel_size(), o.stride(), pair_of(o.padding()));
    });
  }
  if (const auto* pool = dynamic_cast<const nn::AvgPool2dImpl*>(&module)) {
    const auto& o = pool->options;
    if (o.ceil_mode() || o.divisor_override())
      no_onnx_form(id, "pools with ceil mode or a divisor");
    return g.node("AveragePool", {x}, id, [&](auto& n) {
      add_window(n, o.kernel_size(), o.stride(), pair_of(o.padding()));
      add_int(n, "count_include_pad", o.count_include_pad() ? 1 : 0);
    });
  }
  if (const auto* pool = dynamic_cast<const nn::AdaptiveAvgPool2dImpl*>(&module)) {
    const auto& size = pool->options.output_size();
    if (!size->at(0) || !size->at(1) || *size->at(0) != 1 || *size->at(1) != 1)
      no_onnx_form(id, "pools adaptively to more than 1x1");
    return g.node("GlobalAveragePool", {x}, id);
  }
  no_onnx_form(id, "is a " + module.name());
}

onnx::ValueInfoProto* describe(onnx::ValueInfoProto* v, const std::string& name,
                               const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (const int64_t d : dims) shape->add_dim()->set_dim_value(d);
  return v;
}

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  auto* p = model.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

}  // namespace

std::string onnx_model(const Predictor& predictor, const std::string& run_dir) {
  return onnx_model(*predictor.model(), predictor.config(), predictor.info(), run_dir);
}

std::string onnx_model(const ClassifierImpl& classifier, const Config& config,
                       const DatasetInfo& info, const std::string& run_dir) {
  onnx::ModelProto model;
  model.set_ir_version(8);  // ONNX 1.12's; every runtime of the last years reads it
  model.set_producer_name("mnist-export");
  model.set_producer_version(project_version());
  model.set_model_version(1);
  model.set_doc_string("Digit classifier trained by this project (" + run_dir +
                       "). Input: float [N, C, H, W], pixels / 255. Outputs: probabilities and "
                       "logits [N, classes].");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  auto* graph = model.mutable_graph();
  graph->set_name(std::string("mnist_") + name_of(config.model.type));
  Graph g(graph);

  std::string x = "image";
  describe(graph->add_input(), x, {info.channels, info.height, info.width});
  if (!info.normalization.empty()) {
    // [C, 1, 1]: broadcast against [N, C, H, W] (OpenCV 4.6 refuses a leading 1 for Sub).
    const auto shape = std::vector<int64_t>{info.channels, 1, 1};
    const auto mean = torch::tensor(info.normalization.mean).view(shape);
    const auto std = torch::tensor(info.normalization.std).view(shape);
    x = g.node("Sub", {x, g.constant("normalization.mean", mean)}, "normalize_mean");
    x = g.node("Div", {x, g.constant("normalization.std", std)}, "normalize_std");
  }
  for (const auto& item : classifier.named_modules("", /*include_self=*/false)) {
    const auto& module = *item.value();
    if (dynamic_cast<const torch::nn::SequentialImpl*>(&module)) continue;  // containers
    x = add_layer(g, item.key(), module, x);
  }
  const int64_t k = info.num_classes();
  const std::string logits = g.node("Identity", {x}, "logits", {}, "logits");
  std::string scores = logits;
  if (config.model.output == OutputHead::kSigmoid) {
    // The tutorial's head: softmax(log(clamp(sigmoid(z), e, 1 - e))), as LibTorch computes it,
    // written so that every runtime computes it to float precision: log(sigmoid(z)) as
    // -log(1 + exp(-z)) (onnxruntime's Sigmoid approximation is off by 1e-4 relative for small
    // values, which the normalisation turns into 5e-5 on a probability), and the clamp in the
    // log domain with Relu (OpenCV 4.6 reads no Clip with bounds as inputs, which opset 13 has).
    const float low = std::log(static_cast<float>(kKerasEpsilon));
    const float high = std::log(static_cast<float>(1.0 - kKerasEpsilon));
    scores = g.node("Neg", {scores}, "head_neg");
    scores = g.node("Exp", {scores}, "head_exp");
    scores = g.node("Add", {scores, g.constant("head.one", torch::tensor(1.f))}, "head_add");
    scores = g.node("Log", {scores}, "head_log");
    scores = g.node("Neg", {scores}, "head_log_sigmoid");  // log(sigmoid(z))
    // max(x, low) = low + relu(x - low)
    const auto low_value = g.constant("head.log_min", torch::tensor(low));
    scores = g.node("Sub", {scores, low_value}, "head_above_min");
    scores = g.node("Relu", {scores}, "head_relu_min");
    scores = g.node("Add", {scores, low_value}, "head_max");
    // min(x, high) = high - relu(high - x), as -(relu(-x + high)) + high
    const auto high_value = g.constant("head.log_max", torch::tensor(high));
    scores = g.node("Neg", {scores}, "head_neg_x");
    scores = g.node("Add", {scores, high_value}, "head_below_max");
    scores = g.node("Relu", {scores}, "head_relu_max");
    scores = g.node("Neg", {scores}, "head_neg_relu");
    scores = g.node("Add", {scores, high_value}, "head_min");
  }
  g.node(
      "Softmax", {scores}, "head_softmax", [](auto& n) { add_int(n, "axis", 1); }, "probabilities");
  describe(graph->add_output(), "probabilities", {k});
  describe(graph->add_output(), "logits", {k});

  nlohmann::json normalization = nullptr;
  if (!info.normalization.empty())
    normalization = {{"mean", info.normalization.mean}, {"std", info.normalization.std}};
  add_metadata(model, "class_names", nlohmann::json(info.class_names).dump());
  add_metadata(
      model, "input",
      "image: float32 [N, " + std::to_string(info.channels) + ", " + std::to_string(info.height) +
          ", " + std::to_string(info.width) + "], " +
          std::string(info.channels == 1 ? "gray, white digit on black (as MNIST)" : "RGB") +
          ", pixel values / 255 in [0, 1]; the normalisation is inside the graph");
  add_metadata(model, "normalization", normalization.dump());
  add_metadata(model, "image_size", std::to_string(info.height) + "x" + std::to_string(info.width));
  add_metadata(model, "channels", std::to_string(info.channels));
  add_metadata(model, "dataset", info.name);
  add_metadata(model, "output_head", name_of(config.model.output));
  add_metadata(
      model, "outputs",
      "probabilities [N, " + std::to_string(k) + "], logits [N, " + std::to_string(k) + "]");
  add_metadata(model, "run", run_dir);
  add_metadata(model, "opset", std::to_string(kOnnxOpset));

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw std::logic_error(std::string("mnist-export built an invalid ONNX graph: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw std::runtime_error("ONNX model: serialisation failed");
  return bytes;
}

void write_onnx_model(const Predictor& predictor, const std::string& run_dir,
                      const std::string& path) {
  write_file_atomic(path, onnx_model(predictor, run_dir));
}

}  // namespace mnist
