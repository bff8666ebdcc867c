#include "mnist/train/mlp_step.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "mnist/train/loss.h"

namespace mnist {
namespace {

// With two or more intra-op threads, the large matrix products are split between them: the forward
// product by images (rows of the output), the weight gradient by output features (rows of the
// gradient). Each output element is still the same dot product over the same terms in the same
// order, so the result does not depend on the thread count (a unit test checks this).
constexpr int64_t kSplitMacs = 1 << 15;  // smaller products are not worth a second thread

bool split(int64_t rows, int64_t macs) {
  return at::get_num_threads() > 1 && rows >= 2 && macs >= kSplitMacs;
}

template <class F>
void in_halves(int64_t rows, const F& f) {
  at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;  // grad mode is per thread
    for (int64_t half = begin; half < end; ++half) {
      const int64_t lo = half * (rows / 2);
      f(lo, half == 0 ? rows / 2 : rows - lo);
    }
  });
}

at::Tensor rows(const at::Tensor& buffer, int64_t n) {
  return buffer.narrow(0, 0, n);
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
  if (!config.train.fast_step || config.model.type != "mlp" || config.model.dropout > 0.0 ||
      config.train.label_smoothing > 0.0 ||
      (config.model.output != "sigmoid" && config.model.output != "softmax")) {
    return nullptr;
  }
  // The network must be exactly Flatten, (Linear, ReLU)*, Linear.
  std::shared_ptr<torch::nn::Module> seq;
  for (const auto& child : model->named_children()) {
    if (child.key() == "layers") seq = child.value();
  }
  if (!seq) return nullptr;
  const auto modules = seq->children();
  if (modules.empty() || modules.front()->as<torch::nn::Flatten>() == nullptr) return nullptr;
  std::unique_ptr<MLPStep> step(new MLPStep());
  for (size_t i = 1; i < modules.size(); ++i) {
    auto* linear = modules[i]->as<torch::nn::Linear>();
    if (linear == nullptr) return nullptr;
    const bool last = i + 1 == modules.size();
    if (!last && modules[++i]->as<torch::nn::ReLU>() == nullptr) return nullptr;
    Layer layer;
    layer.weight = linear->weight;
    layer.bias = linear->bias;
    if (!layer.bias.defined() || layer.weight.scalar_type() != at::kFloat) return nullptr;
    const auto opts = layer.weight.options().requires_grad(false);
    const int64_t out = layer.weight.size(0), in = layer.weight.size(1);
    layer.out = at::empty({max_batch, out}, opts);
    layer.grad_out = at::empty({max_batch, out}, opts);
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
  return step;
}

std::pair<at::Tensor, at::Tensor> MLPStep::forward_backward(const at::Tensor& images,
                                                            const at::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const int64_t b = images.size(0);
  const auto input = images.reshape({b, -1});  // Flatten

  // Forward: addmm as nn::Linear, ReLU in place (its output is what its backward needs).
  at::Tensor a = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    auto z = rows(layer.out, b);
    if (split(b, layer.weight.numel())) {
      in_halves(b, [&](int64_t lo, int64_t n) {
        auto part = z.narrow(0, lo, n);
        at::addmm_out(part, layer.bias, a.narrow(0, lo, n), layer.weight.t());
      });
    } else {
      at::addmm_out(z, layer.bias, a, layer.weight.t());
    }
    if (i + 1 < layers_.size()) z.relu_();
    a = z;
  }
  const at::Tensor logits = a;

  // The loss (train/loss.h's classification_loss): sigmoid heads as Keras scores them.
  at::Tensor sig, clamped, scores = logits;
  if (sigmoid_head_) {
    sig = rows(sig_, b);
    clamped = rows(clamped_, b);
    scores = rows(log_scores_, b);
    at::sigmoid_out(sig, logits);
    at::clamp_out(clamped, sig, kKerasEpsilon, 1.0 - kKerasEpsilon);
    at::log_out(scores, clamped);
  }
  auto log_probs = rows(log_probs_, b);
  at::_log_softmax_out(log_probs, scores, 1, false);
  const auto [loss, total_weight] =
      at::nll_loss_forward(log_probs, labels, {}, at::Reduction::Mean, -100);

  // Backward, in autograd's order and with its functions.
  auto g = rows(grad_a_, b);
  auto g_scores = rows(grad_b_, b);
  at::nll_loss_backward_out(g, one_, log_probs, labels, {}, at::Reduction::Mean, -100,
                            total_weight);
  at::_log_softmax_backward_data_out(g_scores, g, log_probs, 1, at::kFloat);
  at::Tensor g_logits = g_scores;
  if (sigmoid_head_) {
    at::div_out(g, g_scores, clamped);  // log
    // clamp passes the gradient where min <= x <= max, i.e. exactly where clamping changed nothing
    // (NaN included: clamp keeps it, and NaN != NaN).
    auto outside = rows(mask_, b);
    at::ne_out(outside, clamped, sig);
    g.masked_fill_(outside, 0.0);
    at::sigmoid_backward_out(g_scores, g, sig);
  }
  for (size_t j = layers_.size(); j-- > 0;) {
    Layer& layer = layers_[j];
    at::Tensor g_out = g_logits;
    if (j + 1 < layers_.size()) {
      g_out = rows(layer.grad_out, b);
      at::threshold_backward_out(g_out, rows(layers_[j + 1].grad_in, b), rows(layer.out, b), 0);
    }
    const at::Tensor layer_input = j == 0 ? input : rows(layers_[j - 1].out, b);
    auto& grad_weight = grad_of(layer.weight);
    if (split(grad_weight.size(0), grad_weight.numel())) {
      in_halves(grad_weight.size(0), [&](int64_t lo, int64_t n) {
        auto part = grad_weight.narrow(0, lo, n);
        at::mm_out(part, g_out.narrow(1, lo, n).t(), layer_input);
      });
    } else {
      at::mm_out(grad_weight, g_out.t(), layer_input);
    }
    at::sum_out(grad_of(layer.bias), g_out, {0});
    if (j > 0) {
      auto g_in = rows(layer.grad_in, b);
      at::mm_out(g_in, g_out, layer.weight);
    }
  }
  return {logits, loss};
}

}  // namespace mnist
