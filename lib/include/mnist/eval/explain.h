#pragma once
// Why the model answered what it did: per-pixel attributions of one class's score (its logit) for
// one image, for every model of the project (MLPs and CNNs, gray and colour). mnist-predict
// --explain, the window and mnist-serve's POST /api/explain all call explain().
//
// Every method measures against the same baseline, a black image (no ink: what MNIST's background
// is), and gives a map where a positive pixel pushed the score up and a negative one pushed it
// down:
//   integrated gradients  (x - x0) times the gradient averaged along the straight path from x0 to x
//                         (midpoint rule, `steps` points, one batch); complete: the map sums to
//                         score(x) - score(x0), up to the rule's error (gap() says how much);
//   gradient x input      (x - x0) times the gradient at x: one backward pass, not complete;
//   occlusion             how much the score drops when a square patch (1/7 of the side, moved by
//                         half of it) is set to the baseline, averaged over the patches covering
//                         each pixel: no gradients, one batch of forward passes.

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "mnist/eval/predictor.h"

namespace mnist {

enum class AttributionMethod { kIntegratedGradients, kGradientTimesInput, kOcclusion };

/// "integrated-gradients" | "gradient" | "occlusion" -> the method; UsageError naming `key`.
AttributionMethod parse_attribution_method(const std::string& name, const std::string& key);
const char* name_of(AttributionMethod method);

struct Attribution {
  AttributionMethod method = AttributionMethod::kIntegratedGradients;
  int64_t target = 0;         // the class explained
  at::Tensor map;             // float [H, W] (CPU), summed over the colour channels
  double score = 0;           // the class's logit for the image
  double baseline_score = 0;  // ... for the baseline (a black image)
  /// For integrated gradients: how far the map's sum is from score - baseline_score.
  double gap() const;
};

/// Attributions of class `target`'s logit for one uint8 image [H, W] or [H, W, 3] (RGB) of the
/// model's size, as Predictor::probabilities takes it. UsageError when `target` is not a class or
/// `steps` is not 1..1024. Safe to call from several threads on one Predictor.
Attribution explain(const Predictor& predictor, const at::Tensor& image, int64_t target,
                    AttributionMethod method, int steps = 64);

}  // namespace mnist
