#include "mnist/models/head.h"

#include <ATen/CPUFunctions.h>
#include <torch/torch.h>

namespace mnist {

Head::Head(OutputHead kind, double label_smoothing)
    : kind_(kind), label_smoothing_(label_smoothing) {}

Head Head::training(const Config& config) {
  return Head(config.model.output, config.train.label_smoothing);
}

namespace {

// Log-scores whose log-softmax is the head's log-probability.
at::Tensor log_scores(const at::Tensor& logits, OutputHead kind) {
  if (kind == OutputHead::kSoftmax) return logits;
  return torch::sigmoid(logits).clamp(kKerasEpsilon, 1.0 - kKerasEpsilon).log();
}

}  // namespace

at::Tensor Head::loss(const at::Tensor& logits, const at::Tensor& targets) const {
  if (label_smoothing_ <= 0.0)
    return torch::nn::functional::cross_entropy(log_scores(logits, kind_), targets);
  // Written out rather than through CrossEntropyFuncOptions::label_smoothing, which not every
  // LibTorch has: -(1 - s) log p_y - s * mean_k log p_k.
  const auto log_p = torch::log_softmax(log_scores(logits, kind_), /*dim=*/1);
  const auto nll = -log_p.gather(1, targets.unsqueeze(1)).squeeze(1);
  const auto uniform = -log_p.mean(/*dim=*/1);
  return ((1.0 - label_smoothing_) * nll + label_smoothing_ * uniform).mean();
}

at::Tensor Head::loss_per_sample(const at::Tensor& logits, const at::Tensor& targets) const {
  namespace F = torch::nn::functional;
  return F::cross_entropy(log_scores(logits, kind_), targets,
                          F::CrossEntropyFuncOptions().reduction(torch::kNone));
}

at::Tensor Head::probabilities(const at::Tensor& logits) const {
  return torch::softmax(log_scores(logits, kind_), /*dim=*/1);
}

HeadBackward::HeadBackward(const Head& head, int64_t max_batch, int64_t classes,
                           const at::TensorOptions& options)
    : sigmoid_(head.kind() == OutputHead::kSigmoid), max_batch_(max_batch) {
  const auto opts = options.requires_grad(false);
  for (auto* t : {&sig_, &clamped_, &scores_, &log_probs_, &grad_, &grad_scores_}) {
    *t = at::empty({max_batch, classes}, opts);
  }
  mask_ = at::empty({max_batch, classes}, opts.dtype(at::kBool));
  one_ = at::ones({}, opts);  // d loss / d loss, as loss.backward() starts with
  loss_ = at::empty({}, opts);
  total_weight_ = at::empty({}, opts);
}

const HeadBackward::Views& HeadBackward::views(int64_t b) {
  Views& v = b == max_batch_ ? full_ : partial_;
  if (v.batch == b) return v;
  const auto rows = [b](const at::Tensor& t) { return t.narrow(0, 0, b); };
  v = Views{b,           rows(sig_),         rows(clamped_), rows(scores_), rows(log_probs_),
            rows(grad_), rows(grad_scores_), rows(mask_)};
  return v;
}

std::pair<at::Tensor, at::Tensor> HeadBackward::operator()(const at::Tensor& logits,
                                                           const at::Tensor& labels) {
  c10::InferenceMode guard;
  namespace cpu = at::cpu;
  const Views& v = views(logits.size(0));
  // Forward: Head::loss, sigmoid heads as Keras scores them.
  at::Tensor sig = v.sig, clamped = v.clamped, scores = logits, log_probs = v.log_probs;
  if (sigmoid_) {
    scores = v.scores;
    cpu::sigmoid_out(sig, logits);
    cpu::clamp_out(clamped, sig, kKerasEpsilon, 1.0 - kKerasEpsilon);
    cpu::log_out(scores, clamped);
  }
  cpu::_log_softmax_out(log_probs, scores, 1, false);
  cpu::nll_loss_forward_out(loss_, total_weight_, log_probs, labels, {}, at::Reduction::Mean, -100);

  // Backward, in autograd's order and with its functions.
  at::Tensor g = v.grad, g_scores = v.grad_scores, outside = v.mask;
  cpu::nll_loss_backward_out(g, one_, log_probs, labels, {}, at::Reduction::Mean, -100,
                             total_weight_);
  cpu::_log_softmax_backward_data_out(g_scores, g, log_probs, 1, at::kFloat);
  if (sigmoid_) {
    cpu::div_out(g, g_scores, clamped);  // log
    // clamp passes the gradient where min <= x <= max, i.e. exactly where clamping changed nothing
    // (NaN included: clamp keeps it, and NaN != NaN).
    cpu::ne_out(outside, clamped, sig);
    cpu::masked_fill_(g, outside, 0.0);
    cpu::sigmoid_backward_out(g_scores, g, sig);
  }
  return {loss_, g_scores};
}

}  // namespace mnist
