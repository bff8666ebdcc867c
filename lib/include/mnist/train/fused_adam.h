#pragma once
// Adam over flattened parameters: one step is a handful of tensor operations over one buffer
// instead of the same operations repeated for every parameter tensor.
//
// The parameters, their gradients and Adam's two moment estimates are views into four contiguous
// buffers. Everything else sees an ordinary torch::optim::Adam: the same options, the same
// per-parameter state (whose tensors are those views), the same checkpoint format. The arithmetic
// is Adam's own, element for element, so the weights after a step are bit-identical to
// torch::optim::Adam's (a unit test checks this).
//
// Anything that replaces a parameter's, gradient's or state's tensor (loading a checkpoint, a
// gradient set to none) is noticed at the next step: the values are copied into the buffers and
// the tensor becomes a view again.

#include <vector>

#include <torch/optim/adam.h>

namespace mnist {

class FusedAdam : public torch::optim::Adam {
 public:
  /// All `parameters` must be dense float32 tensors on one device; amsgrad is not supported.
  FusedAdam(const std::vector<at::Tensor>& parameters, const torch::optim::AdamOptions& options);

  at::Tensor step(LossClosure closure = nullptr) override;
  void load(torch::serialize::InputArchive& archive) override;

  /// Sets every gradient to zero in place (one operation), keeping them views of the buffer.
  void zero_gradients();

  /// The buffer every gradient is a view of (data-parallel training all-reduces it in one call).
  at::Tensor flat_gradients();

  /// True when `parameters` can be flattened: at least one, all dense float32 on one device.
  static bool supports(const std::vector<at::Tensor>& parameters);

 private:
  // Makes every parameter, gradient and moment a view of its buffer again, copying in the values of
  // any tensor that was replaced.
  void adopt();
  // True when every parameter and gradient is its view and the states are the adopted ones.
  bool in_place() const;

  std::vector<at::Tensor> params_;
  std::vector<int64_t> offsets_;
  std::vector<torch::optim::AdamParamState*> states_;  // per parameter, owned by state()
  at::Tensor flat_param_, flat_grad_, flat_exp_avg_, flat_exp_avg_sq_, denom_;
};

}  // namespace mnist
