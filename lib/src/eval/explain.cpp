#include "mnist/eval/explain.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "mnist/core/error.h"

namespace mnist {

AttributionMethod parse_attribution_method(const std::string& name, const std::string& key) {
  if (name == "integrated-gradients") return AttributionMethod::kIntegratedGradients;
  if (name == "gradient") return AttributionMethod::kGradientTimesInput;
  if (name == "occlusion") return AttributionMethod::kOcclusion;
  throw UsageError(key + ": \"" + name.substr(0, 60) +
                   "\" is not a method (integrated-gradients, gradient, occlusion)");
}

const char* name_of(AttributionMethod method) {
  switch (method) {
    case AttributionMethod::kIntegratedGradients:
      return "integrated-gradients";
    case AttributionMethod::kGradientTimesInput:
      return "gradient";
    case AttributionMethod::kOcclusion:
      return "occlusion";
  }
  return "integrated-gradients";
}

double Attribution::gap() const {
  return map.sum().item<double>() - (score - baseline_score);
}

namespace {

/// The gradient of class `target`'s logit at each of the inputs `x` [B, C, H, W] (summed over the
/// batch, each row's logit depends on its own input only).
at::Tensor class_gradient(const Predictor& predictor, const at::Tensor& x, int64_t target) {
  const auto input = x.detach().clone().requires_grad_(true);
  const auto logits = predictor.logits(input);
  const auto score = logits.select(1, target).sum();
  return torch::autograd::grad({score}, {input})[0];
}

/// Occlusion: patches of about 1/7 of each side, moved by half a patch, the last one flush with
/// the far edge so every pixel is covered.
at::Tensor occlusion_map(const Predictor& predictor, const at::Tensor& x, const at::Tensor& x0,
                         int64_t target, double score) {
  const int64_t h = x.size(2), w = x.size(3);
  const auto positions = [](int64_t side) {
    const int64_t patch = std::max<int64_t>(2, side / 7);
    const int64_t stride = std::max<int64_t>(1, patch / 2);
    std::vector<std::pair<int64_t, int64_t>> out;  // start, size
    for (int64_t s = 0;; s += stride) {
      if (s + patch >= side) {
        out.emplace_back(std::max<int64_t>(0, side - patch), std::min(patch, side));
        break;
      }
      out.emplace_back(s, patch);
    }
    return out;
  };
  const auto rows = positions(h), cols = positions(w);
  const auto n = static_cast<int64_t>(rows.size() * cols.size());
  auto batch = x.expand({n, x.size(1), h, w}).clone();
  int64_t k = 0;
  for (const auto& [y, ph] : rows) {
    for (const auto& [c, pw] : cols) {
      using torch::indexing::Slice;
      batch[k].index_put_({Slice(), Slice(y, y + ph), Slice(c, c + pw)},
                          x0[0].index({Slice(), Slice(y, y + ph), Slice(c, c + pw)}));
      ++k;
    }
  }
  at::Tensor scores;
  {
    torch::NoGradGuard no_grad;
    scores = predictor.logits(batch).select(1, target).to(torch::kDouble);
  }
  auto sum = torch::zeros({h, w}, torch::kDouble);
  auto count = torch::zeros({h, w}, torch::kDouble);
  k = 0;
  for (const auto& [y, ph] : rows) {
    for (const auto& [c, pw] : cols) {
      using torch::indexing::Slice;
      const double drop = score - scores[k++].item<double>();
      sum.index({Slice(y, y + ph), Slice(c, c + pw)}) += drop;
      count.index({Slice(y, y + ph), Slice(c, c + pw)}) += 1;
    }
  }
  return (sum / count.clamp_min(1)).to(torch::kFloat);
}

}  // namespace

Attribution explain(const Predictor& predictor, const at::Tensor& image, int64_t target,
                    AttributionMethod method, int steps) {
  const auto classes = static_cast<int64_t>(predictor.info().class_names.size());
  if (target < 0 || target >= classes) {
    throw UsageError("class " + std::to_string(target) +
                     " is not one of the model's classes (0 to " + std::to_string(classes - 1) +
                     ")");
  }
  if (steps < 1 || steps > 1024) throw UsageError("steps: must be 1 to 1024");
  const auto images = image.unsqueeze(0);
  const auto x = predictor.model_input(images);
  const auto x0 = predictor.model_input(torch::zeros_like(images));
  Attribution a;
  a.method = method;
  a.target = target;
  {
    torch::NoGradGuard no_grad;
    const auto both = predictor.logits(torch::cat({x, x0})).select(1, target);
    a.score = both[0].item<double>();
    a.baseline_score = both[1].item<double>();
  }
  at::Tensor per_channel;
  switch (method) {
    case AttributionMethod::kIntegratedGradients: {
      const auto alphas =
          (torch::arange(steps, torch::kFloat) + 0.5f).div_(static_cast<float>(steps));
      const auto path = x0 + alphas.view({-1, 1, 1, 1}) * (x - x0);
      // Mean gradient along the path, in chunks so a large colour image stays in bounded memory.
      auto total = torch::zeros_like(x);
      for (int64_t start = 0; start < steps; start += 64) {
        const int64_t len = std::min<int64_t>(64, steps - start);
        total += class_gradient(predictor, path.narrow(0, start, len), target).sum(0, true);
      }
      per_channel = (x - x0) * total / static_cast<float>(steps);
      break;
    }
    case AttributionMethod::kGradientTimesInput:
      per_channel = (x - x0) * class_gradient(predictor, x, target);
      break;
    case AttributionMethod::kOcclusion:
      a.map = occlusion_map(predictor, x, x0, target, a.score);
      return a;
  }
  a.map = per_channel[0].sum(0).detach().contiguous();
  return a;
}

}  // namespace mnist
