#include "mnist/train/mlp_step.h"

#include <ATen/CPUFunctions.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/models/head.h"
#include "mnist/models/mlp.h"

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
constexpr int64_t kSplitMacs = 1 << 15;  // smaller products are not worth a second thread

// True when a layer's products are worth splitting: two threads and a weight of at least
// kSplitMacs (they are split only where halves_exact says so too).
bool split_layer(const at::Tensor& weight) {
  return at::get_num_threads() > 1 && weight.size(0) >= 2 && weight.numel() >= kSplitMacs;
}

// True when the layer's products for batches of `b`, split by output features, give the whole
// products' bits with this BLAS (exact_in_halves). Decided once per batch size, in views().
bool halves_exact(const at::Tensor& weight, int64_t b) {
  if (weight.size(0) < 2 || weight.numel() < kSplitMacs) return false;
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

}  // namespace

std::unique_ptr<MLPStep> MLPStep::create(const Config& config, Classifier model,
                                         int64_t max_batch) {
  if (!config.train.fast_step || config.train.label_smoothing > 0.0 ||
      (config.model.output != "sigmoid" && config.model.output != "softmax")) {
    return nullptr;
  }
  const auto* mlp = model->as<MLPImpl>();
  if (mlp == nullptr || mlp->plain_layers().empty()) return nullptr;
  std::unique_ptr<MLPStep> step(new MLPStep());
  for (const auto& linear : mlp->plain_layers()) {
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
  if (step->layers_.empty()) return nullptr;
  step->sigmoid_head_ = config.model.output == "sigmoid";
  const auto opts = step->layers_.front().weight.options().requires_grad(false);
  const int64_t k = step->layers_.back().weight.size(0);
  for (auto* t : {&step->sig_, &step->clamped_, &step->log_scores_, &step->log_probs_,
                  &step->grad_a_, &step->grad_b_}) {
    *t = at::empty({max_batch, k}, opts);
  }
  step->mask_ = at::empty({max_batch, k}, opts.dtype(at::kBool));
  step->one_ = at::ones({}, opts);  // d loss / d loss, as loss.backward() starts with
  step->loss_ = at::empty({}, opts);
  step->total_weight_ = at::empty({}, opts);
  step->max_batch_ = max_batch;
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
    v.halves_exact.push_back(halves_exact(layer.weight, b));
  }
  v.sig = rows(sig_);
  v.clamped = rows(clamped_);
  v.scores = rows(log_scores_);
  v.log_probs = rows(log_probs_);
  v.grad_a = rows(grad_a_);
  v.grad_b = rows(grad_b_);
  v.mask = rows(mask_);
  return v;
}

std::pair<at::Tensor, at::Tensor> MLPStep::forward_backward(const at::Tensor& images,
                                                            const at::Tensor& labels) {
  // No autograd (lighter dispatch than NoGradGuard), and the CPU kernels called directly.
  c10::InferenceMode guard;
  namespace cpu = at::cpu;
  const int64_t b = images.size(0);
  const Views& v = views(b);
  const auto input = images.view({b, -1});  // Flatten

  // Forward: addmm as nn::Linear, ReLU in place (its output is what its backward needs).
  at::Tensor a = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    at::Tensor z = v.out[i];
    const auto weight_t = layer.weight.t();
    if (v.halves_exact[i] && split_layer(layer.weight)) {
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

  // The loss (models/head.h's classification_loss): sigmoid heads as Keras scores them.
  at::Tensor sig = v.sig, clamped = v.clamped, scores = logits, log_probs = v.log_probs;
  if (sigmoid_head_) {
    scores = v.scores;
    cpu::sigmoid_out(sig, logits);
    cpu::clamp_out(clamped, sig, kKerasEpsilon, 1.0 - kKerasEpsilon);
    cpu::log_out(scores, clamped);
  }
  cpu::_log_softmax_out(log_probs, scores, 1, false);
  cpu::nll_loss_forward_out(loss_, total_weight_, log_probs, labels, {}, at::Reduction::Mean, -100);

  // Backward, in autograd's order and with its functions.
  at::Tensor g = v.grad_a, g_scores = v.grad_b, outside = v.mask;
  cpu::nll_loss_backward_out(g, one_, log_probs, labels, {}, at::Reduction::Mean, -100,
                             total_weight_);
  cpu::_log_softmax_backward_data_out(g_scores, g, log_probs, 1, at::kFloat);
  if (sigmoid_head_) {
    cpu::div_out(g, g_scores, clamped);  // log
    // clamp passes the gradient where min <= x <= max, i.e. exactly where clamping changed nothing
    // (NaN included: clamp keeps it, and NaN != NaN).
    cpu::ne_out(outside, clamped, sig);
    cpu::masked_fill_(g, outside, 0.0);
    cpu::sigmoid_backward_out(g_scores, g, sig);
  }
  for (size_t j = layers_.size(); j-- > 0;) {
    Layer& layer = layers_[j];
    at::Tensor g_out = g_scores;
    if (j + 1 < layers_.size()) {
      g_out = v.grad_out[j];
      cpu::threshold_backward_out(g_out, v.grad_in[j + 1], v.out[j], 0);
    }
    const at::Tensor& layer_input = j == 0 ? input : v.out[j - 1];
    auto& grad_weight = grad_of(layer.weight);
    if (v.halves_exact[j] && split_layer(layer.weight)) {
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
  return {logits, loss_};
}

}  // namespace mnist
