#include "mnist/train/fused_adam.h"

#include <cmath>
#include <sstream>
#include <type_traits>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace mnist {
namespace {

// The key of a parameter in Optimizer::state(): a string of the TensorImpl's address in LibTorch
// 1.x, the address itself in 2.x.
template <class Map>
typename Map::key_type state_key(const Map& /*unused*/, const at::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

// Points `tensor` at `view`, copying its values in first unless it already is that view.
// Returns false when `tensor` was undefined.
bool point_at(at::Tensor& tensor, const at::Tensor& view) {
  if (!tensor.defined()) return false;
  if (tensor.data_ptr() != view.data_ptr() || tensor.strides() != view.strides()) {
    // A clone first: the old tensor may be the same memory in another order.
    view.copy_(tensor.detach().clone().view(view.sizes()));
    tensor = view;
  }
  return true;
}

// Adam's update for n elements in one pass, with the arithmetic of the seven tensor operations of
// torch::optim::Adam::step, rounded as ATen's vectorised CPU kernels round them (add_ with alpha
// and addcmul end in a fused multiply-add, addcdiv does not; scalars are rounded to float first).
// This file is compiled with -ffp-contract=off so that the compiler fuses nothing else (and with
// -O3 -fno-math-errno, so that the loop is vectorised: std::sqrt of a negative sets no errno). The
// body is compiled three times: for AVX-512, for AVX2 with FMA, and portable (std::fma in
// software).
struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size;
};

#define MNIST_ADAM_UPDATE_BODY                                                   \
  for (int64_t i = 0; i < n; ++i) {                                              \
    const float g = grad[i];                                                     \
    const float m = std::fma(g, k.one_minus_beta1, exp_avg[i] * k.beta1);        \
    const float v = std::fma(k.one_minus_beta2 * g, g, exp_avg_sq[i] * k.beta2); \
    const float denom = std::sqrt(v) / k.bias_correction2_sqrt + k.eps;          \
    param[i] = param[i] + k.neg_step_size * m / denom;                           \
    exp_avg[i] = m;                                                              \
    exp_avg_sq[i] = v;                                                           \
  }

#define MNIST_ADAM_UPDATE_SIGNATURE                                                  \
  (float* __restrict param, const float* __restrict grad, float* __restrict exp_avg, \
   float* __restrict exp_avg_sq, int64_t n, const AdamScalars& k)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((
    target("avx512f,avx512vl,avx2,fma"))) void adam_update_avx512 MNIST_ADAM_UPDATE_SIGNATURE {
  MNIST_ADAM_UPDATE_BODY
}
__attribute__((target("avx2,fma"))) void adam_update_avx2 MNIST_ADAM_UPDATE_SIGNATURE {
  MNIST_ADAM_UPDATE_BODY
}
#endif
void adam_update_portable MNIST_ADAM_UPDATE_SIGNATURE {
  MNIST_ADAM_UPDATE_BODY
}

using AdamUpdate = void(*) MNIST_ADAM_UPDATE_SIGNATURE;

AdamUpdate pick_adam_update() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return adam_update_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return adam_update_avx2;
#endif
  return adam_update_portable;
}

}  // namespace

bool FusedAdam::supports(const std::vector<at::Tensor>& parameters) {
  if (parameters.empty()) return false;
  for (const auto& p : parameters) {
    if (p.layout() != c10::kStrided || p.scalar_type() != at::kFloat ||
        p.device() != parameters.front().device() || !p.is_non_overlapping_and_dense())
      return false;
  }
  return true;
}

FusedAdam::FusedAdam(const std::vector<at::Tensor>& parameters,
                     const torch::optim::AdamOptions& options)
    : torch::optim::Adam(parameters, options), params_(parameters) {
  TORCH_CHECK(supports(parameters), "FusedAdam: parameters must be float32 on one device");
  TORCH_CHECK(!options.amsgrad(), "FusedAdam: amsgrad is not supported");
  int64_t total = 0;
  for (const auto& p : params_) {
    offsets_.push_back(total);
    total += p.numel();
  }
  const auto opts = params_.front().options().requires_grad(false);
  flat_param_ = at::empty({total}, opts);
  flat_grad_ = at::zeros({total}, opts);
  flat_exp_avg_ = at::zeros({total}, opts);
  flat_exp_avg_sq_ = at::zeros({total}, opts);
  denom_ = at::empty({total}, opts);
  adopt();
}

void FusedAdam::load(torch::serialize::InputArchive& archive) {
  torch::optim::Adam::load(archive);
  states_.clear();  // new state objects: the next step adopts them
}

bool FusedAdam::in_place() const {
  if (states_.size() != params_.size()) return false;
  const float* param_base = flat_param_.data_ptr<float>();
  const float* grad_base = flat_grad_.data_ptr<float>();
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const auto& g = p.grad();
    if (p.data_ptr() != param_base + offsets_[i] || !g.defined() ||
        g.data_ptr() != grad_base + offsets_[i] || g.strides() != p.strides())
      return false;
  }
  return true;
}

void FusedAdam::adopt() {
  // Pointer comparisons only, every step; the views are made only when something moved.
  if (in_place()) return;
  torch::NoGradGuard no_grad;
  auto& states = state();
  states_.clear();
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    // With the parameter's own strides (a channels-last weight stays channels-last): a dense
    // tensor's elements fill its numel() slots whatever their order.
    const auto view = [&](const at::Tensor& flat) {
      return flat.as_strided(p.sizes(), p.strides(), offsets_[i]);
    };
    const auto param_view = view(flat_param_);
    if (p.data_ptr() != param_view.data_ptr()) {
      param_view.copy_(p.detach());
      p.set_data(param_view);
    }
    // The gradient aliases the buffer without being a view in autograd's sense: LibTorch 1.x's
    // Optimizer::zero_grad() calls detach_() on gradients, which views refuse.
    at::Tensor grad_view = at::empty({0}, flat_grad_.options());
    grad_view.set_(flat_grad_.storage(), offsets_[i], p.sizes(), p.strides());
    if (!point_at(p.mutable_grad(), grad_view)) {
      grad_view.zero_();
      p.mutable_grad() = grad_view;
    }
    const auto key = state_key(states, p);
    auto found = states.find(key);
    if (found == states.end()) {
      auto s = std::make_unique<torch::optim::AdamParamState>();
      s->exp_avg(view(flat_exp_avg_).zero_());
      s->exp_avg_sq(view(flat_exp_avg_sq_).zero_());
      states_.push_back(s.get());
      states[key] = std::move(s);
    } else {
      auto& s = static_cast<torch::optim::AdamParamState&>(*found->second);
      at::Tensor avg = s.exp_avg(), avg_sq = s.exp_avg_sq();
      if (!point_at(avg, view(flat_exp_avg_))) avg = view(flat_exp_avg_).zero_();
      if (!point_at(avg_sq, view(flat_exp_avg_sq_))) avg_sq = view(flat_exp_avg_sq_).zero_();
      s.exp_avg(avg);
      s.exp_avg_sq(avg_sq);
      states_.push_back(&s);
    }
  }
}

void FusedAdam::zero_gradients() {
  adopt();
  flat_grad_.zero_();
}

at::Tensor FusedAdam::flat_gradients() {
  adopt();
  return flat_grad_;
}

at::Tensor FusedAdam::step(LossClosure closure) {
  at::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  TORCH_CHECK(param_groups().size() == 1, "FusedAdam: one parameter group only");
  adopt();
  const auto& o = static_cast<const torch::optim::AdamOptions&>(param_groups()[0].options());
  int64_t step = 0;
  for (auto* s : states_) {
    s->step(s->step() + 1);
    step = s->step();
  }
  // torch::optim::Adam's arithmetic, operation for operation, over the whole buffer at once.
  const double beta1 = std::get<0>(o.betas());
  const double beta2 = std::get<1>(o.betas());
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  at::Tensor grad = flat_grad_;
  if (o.weight_decay() != 0) grad = grad.add(flat_param_, o.weight_decay());
  if (flat_param_.is_cpu()) {
    // One pass over the buffers; the two threads (when configured) take halves.
    static const AdamUpdate update = pick_adam_update();
    const AdamScalars k{static_cast<float>(beta1),
                        static_cast<float>(1 - beta1),
                        static_cast<float>(beta2),
                        static_cast<float>(1 - beta2),
                        static_cast<float>(std::sqrt(bias_correction2)),
                        static_cast<float>(o.eps()),
                        static_cast<float>(-o.lr() / bias_correction1)};
    float* p = flat_param_.data_ptr<float>();
    const float* g = grad.data_ptr<float>();
    float* m = flat_exp_avg_.data_ptr<float>();
    float* v = flat_exp_avg_sq_.data_ptr<float>();
    at::parallel_for(0, flat_param_.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      update(p + begin, g + begin, m + begin, v + begin, end - begin, k);
    });
    return loss;
  }
  flat_exp_avg_.mul_(beta1).add_(grad, 1 - beta1);
  flat_exp_avg_sq_.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  at::sqrt_out(denom_, flat_exp_avg_sq_);
  denom_.div_(std::sqrt(bias_correction2)).add_(o.eps());
  flat_param_.addcdiv_(flat_exp_avg_, denom_, -o.lr() / bias_correction1);
  return loss;
}

}  // namespace mnist
