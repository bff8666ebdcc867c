#include "mnist/train/mlp_step.h"

#include <ATen/CPUFunctions.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/core/small_gemm.h"
#include "mnist/models/head.h"

namespace mnist {
namespace {

// With two or more intra-op threads, the first layer's large matrix products are split between
// them by output features: each thread computes its half of the layer's outputs (into a buffer of
// its own, then copied into place) and its half of the weight gradient, so it reads and writes
// the same half of the weights every step, which stays in its core's cache. OpenBLAS computes every
// output of these shapes the same way in either half, so the result does not depend on the thread
// count (a unit test checks this; where a BLAS kernel does not, split() finds out and keeps the
// products whole). Measured and rejected: splitting the forward product by images
// (5% slower), writing the halves straight into the strided output (40% slower), splitting the
// smaller second layer (slower, and it rounds differently at half the size).
// Where the BLAS rounds a half differently from the whole (OpenBLAS's AVX2 kernels: every cut
// point tried changed bits, and so does OpenBLAS's own threading), the products go to
// small_gemm's kernels instead (train.own_kernels), which are exact at any cut by construction.
constexpr int64_t kSplitMacs = 1 << 15;  // smaller products are not worth a second thread

// True when a layer's weight is large enough for its products to be split.
bool worth_splitting(const at::Tensor& weight) {
  return weight.size(0) >= 2 && weight.numel() >= kSplitMacs;
}

// True when small_gemm's kernels can read and write these tensors: float rows with unit stride.
bool rows_of_floats(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat && t.dim() == 2 && t.stride(1) == 1;
}

// out[:, first .. first+count) = bias + a weight^T, by small_gemm.
void own_forward(const at::Tensor& a, const at::Tensor& weight, const at::Tensor& bias,
                 at::Tensor& out, int64_t first, int64_t count) {
  small_gemm::linear_forward(a.data_ptr<float>(), a.stride(0), weight.data_ptr<float>(),
                             weight.stride(0), bias.data_ptr<float>(), out.data_ptr<float>(),
                             out.stride(0), a.size(0), a.size(1), first, first + count);
}

// grad_weight[first .. first+count) = g[:, first .. first+count)^T a, by small_gemm.
void own_weight_grad(const at::Tensor& g, const at::Tensor& a, at::Tensor& grad_weight,
                     int64_t first, int64_t count) {
  small_gemm::linear_weight_grad(g.data_ptr<float>(), g.stride(0), a.data_ptr<float>(), a.stride(0),
                                 grad_weight.data_ptr<float>(), grad_weight.stride(0), g.size(0),
                                 a.size(1), first, first + count);
}

// True when the layer's products for batches of `b`, split by output features, give the whole
// products' bits with this BLAS (exact_in_halves). Decided once per batch size, in views().
bool halves_exact(const at::Tensor& weight, int64_t b) {
  if (!worth_splitting(weight)) return false;
  const int64_t n = weight.size(0), k = weight.size(1);
  const std::string key =
      "mlp_step " + std::to_string(b) + "x" + std::to_string(k) + "x" + std::to_string(n);
  return exact_in_halves(key, [&] {
    namespace cpu = at::cpu;
    const auto a = probe_values({b, k}), w = probe_values({n, k}, 1.0),
               bias = probe_values({n}, 2.0);
    const auto g = probe_values({b, n}, 3.0);
    const auto whole = cpu::addmm(bias, a, w.t());
    const auto grad = cpu::mm(g.t(), a);
    auto halves = at::empty_like(whole);
    auto grad_halves = at::empty_like(grad);
    for (const int64_t first : {int64_t{0}, n / 2}) {
      const int64_t count = first == 0 ? n / 2 : n - first;
      halves.narrow(1, first, count)
          .copy_(cpu::addmm(bias.narrow(0, first, count), a, w.t().narrow(1, first, count)));
      auto part = grad_halves.narrow(0, first, count);
      cpu::mm_out(part, g.narrow(1, first, count).t(), a);
    }
    return at::equal(whole, halves) && at::equal(grad, grad_halves);
  });
}

// The gradient tensor of `p`, allocated when it has none yet.
at::Tensor& grad_of(at::Tensor& p) {
  auto& g = p.mutable_grad();
  if (!g.defined()) g = at::zeros_like(p);
  return g;
}

// The Linear layers of a network that is one Sequential of Flatten -> [Linear -> ReLU] ... ->
// Linear and nothing else (a plain MLP: logits = L_n(relu(... relu(L_1(flatten(x)))))), or
// nothing.
std::vector<torch::nn::Linear> plain_linear_layers(const ClassifierImpl& model) {
  const auto children = model.children();
  if (children.size() != 1) return {};
  const auto modules = children.front()->children();
  if (modules.size() < 2 || !std::dynamic_pointer_cast<torch::nn::FlattenImpl>(modules.front()))
    return {};
  std::vector<torch::nn::Linear> linears;
  for (size_t i = 1; i < modules.size(); ++i) {
    const bool linear_here = i % 2 == 1;  // Linear at 1, 3, ...; ReLU between them
    if (linear_here) {
      auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(modules[i]);
      if (!linear) return {};
      linears.emplace_back(linear);
    } else if (!std::dynamic_pointer_cast<torch::nn::ReLUImpl>(modules[i])) {
      return {};
    }
  }
  if (modules.size() % 2 != 0) return {};  // ends with a ReLU, not a Linear
  return linears;
}

}  // namespace

std::unique_ptr<MLPStep> MLPStep::create(const Config& config, Classifier model,
                                         int64_t max_batch) {
  const Head head = Head::training(config);
  if (!config.train.fast_step || !HeadBackward::supports(head)) return nullptr;
  const auto linears = plain_linear_layers(*model);
  if (linears.empty()) return nullptr;
  std::unique_ptr<MLPStep> step(new MLPStep());
  for (const auto& linear : linears) {
    Layer layer;
    layer.weight = linear->weight;
    layer.bias = linear->bias;
    if (!layer.bias.defined() || layer.weight.scalar_type() != at::kFloat || !layer.weight.is_cpu())
      return nullptr;
    const auto opts = layer.weight.options().requires_grad(false);
    const int64_t out = layer.weight.size(0), in = layer.weight.size(1);
    layer.out = at::empty({max_batch, out}, opts);
    layer.grad_out = at::empty({max_batch, out}, opts);
    layer.half_out = {at::empty({max_batch, out / 2}, opts),
                      at::empty({max_batch, out - out / 2}, opts)};
    if (!step->layers_.empty()) layer.grad_in = at::empty({max_batch, in}, opts);
    step->layers_.push_back(std::move(layer));
  }
  const auto& last = step->layers_.back().weight;
  step->head_.emplace(head, max_batch, last.size(0), last.options());
  step->max_batch_ = max_batch;
  step->own_kernels_ = config.train.own_kernels && !plain_paths() && small_gemm::available() &&
                       step->layers_.front().weight.is_contiguous();
  return step;
}

const MLPStep::Views& MLPStep::views(int64_t b) {
  Views& v = b == max_batch_ ? full_ : partial_;
  if (v.batch == b) return v;
  v = Views{};
  v.batch = b;
  const auto rows = [b](const at::Tensor& t) { return t.narrow(0, 0, b); };
  for (const auto& layer : layers_) {
    v.out.push_back(rows(layer.out));
    v.grad_out.push_back(rows(layer.grad_out));
    v.half_out.push_back({rows(layer.half_out[0]), rows(layer.half_out[1])});
    v.grad_in.push_back(layer.grad_in.defined() ? rows(layer.grad_in) : at::Tensor());
    Products how = Products::kWhole;
    if (halves_exact(layer.weight, b))
      how = Products::kBlasHalves;
    else if (own_kernels_ && &layer == &layers_.front() && worth_splitting(layer.weight))
      how = Products::kOwnHalves;
    v.products.push_back(how);
  }
  return v;
}

MLPStep::Products MLPStep::products(size_t index, int64_t batch) {
  return views(batch).products.at(index);
}

std::pair<at::Tensor, at::Tensor> MLPStep::forward_backward(const at::Tensor& images,
                                                            const at::Tensor& labels) {
  // No autograd (lighter dispatch than NoGradGuard), and the CPU kernels called directly.
  c10::InferenceMode guard;
  namespace cpu = at::cpu;
  const int64_t b = images.size(0);
  const Views& v = views(b);
  const bool two_threads = at::get_num_threads() > 1;  // the BLAS's halves only then
  const auto input = images.view({b, -1});             // Flatten

  // Forward: addmm as nn::Linear, ReLU in place (its output is what its backward needs).
  at::Tensor a = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    at::Tensor z = v.out[i];
    const auto weight_t = layer.weight.t();
    if (v.products[i] == Products::kOwnHalves && rows_of_floats(a)) {
      // Halves on two threads, or one after the other on one: the same bits either way.
      in_two_halves(layer.weight.size(0), [&](int64_t first, int64_t count) {
        own_forward(a, layer.weight, layer.bias, z, first, count);
      });
    } else if (v.products[i] == Products::kBlasHalves && two_threads) {
      in_two_halves(layer.weight.size(0), [&](int64_t first, int64_t count) {
        at::Tensor part = v.half_out[i][first == 0 ? 0 : 1];
        cpu::addmm_out(part, layer.bias.narrow(0, first, count), a,
                       weight_t.narrow(1, first, count));
        z.narrow(1, first, count).copy_(part);
      });
    } else {
      cpu::addmm_out(z, layer.bias, a, weight_t);
    }
    if (i + 1 < layers_.size()) cpu::relu_(z);
    a = z;
  }
  const at::Tensor logits = a;

  // The loss and its gradient (models/head.h), then backward through the layers in autograd's
  // order and with its functions.
  const auto [loss, g_scores] = (*head_)(logits, labels);
  for (size_t j = layers_.size(); j-- > 0;) {
    Layer& layer = layers_[j];
    at::Tensor g_out = g_scores;
    if (j + 1 < layers_.size()) {
      g_out = v.grad_out[j];
      cpu::threshold_backward_out(g_out, v.grad_in[j + 1], v.out[j], 0);
    }
    const at::Tensor& layer_input = j == 0 ? input : v.out[j - 1];
    auto& grad_weight = grad_of(layer.weight);
    if (v.products[j] == Products::kOwnHalves && rows_of_floats(g_out) &&
        rows_of_floats(layer_input) && rows_of_floats(grad_weight)) {
      in_two_halves(grad_weight.size(0), [&](int64_t first, int64_t count) {
        own_weight_grad(g_out, layer_input, grad_weight, first, count);
      });
    } else if (v.products[j] == Products::kBlasHalves && two_threads) {
      in_two_halves(grad_weight.size(0), [&](int64_t first, int64_t count) {
        auto part = grad_weight.narrow(0, first, count);
        cpu::mm_out(part, g_out.narrow(1, first, count).t(), layer_input);
      });
    } else {
      cpu::mm_out(grad_weight, g_out.t(), layer_input);
    }
    cpu::sum_out(grad_of(layer.bias), g_out, {0});
    if (j > 0) {
      at::Tensor g_in = v.grad_in[j];
      cpu::mm_out(g_in, g_out, layer.weight);
    }
  }
  return {logits, loss};
}

}  // namespace mnist
