#include "mnist/tools/train_profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/data/dataset.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "mnist/train/augment.h"
#include "mnist/train/ema.h"
#include "mnist/train/optim.h"
#include "mnist/train/step_engine.h"

namespace mnist::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Variant {
  std::string name;
  Config config;
};

// What one variant trains with: built as the trainer builds it (train/trainer.cpp).
struct Rig {
  Classifier model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::optional<WeightAverage> average;
  Head head;
  Augmenter augment;
  bool channels_last;

  explicit Rig(const Config& c, const DatasetInfo& info)
      : head(Head::training(c)),
        augment(c.augment),
        channels_last(uses_channels_last(c, c10::Device(c10::kCPU))) {
    torch::manual_seed(static_cast<uint64_t>(c.seed));
    model = build_model(c.model, info);
    if (channels_last) model->set_channels_last(true);
    optimizer = make_optimizer(c.optim, model->parameters());
    if (c.train.ema_decay > 0) {
      auto copy = build_model(c.model, info);
      if (channels_last) copy->set_channels_last(true);
      average.emplace(copy, *model, c.train.ema_decay);
    }
    model->train();
  }
};

struct Times {
  std::vector<double> augment, forward, backward, optimizer, average, step;
};

void run_steps(Rig& rig, const at::Tensor& images, const at::Tensor& labels, int steps,
               Times* times) {
  for (int i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    at::Tensor x = rig.augment(images);
    const auto t1 = Clock::now();
    zero_gradients(*rig.optimizer);
    const auto loss = rig.head.loss(rig.model->forward(x), labels);
    const auto t2 = Clock::now();
    loss.backward();
    const auto t3 = Clock::now();
    rig.optimizer->step();
    const auto t4 = Clock::now();
    if (rig.average) rig.average->update(*rig.model);
    if (times == nullptr) continue;
    const auto ms = [](Clock::time_point a, Clock::time_point b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    times->augment.push_back(ms(t0, t1));
    times->forward.push_back(ms(t1, t2));
    times->backward.push_back(ms(t2, t3));
    times->optimizer.push_back(ms(t3, t4));
    times->average.push_back(ms_since(t4));
    times->step.push_back(ms_since(t0));
  }
}

}  // namespace

std::vector<TrainStageRow> profile_training(const Config& config, int steps, int rounds) {
  DatasetInfo info = config.data.dataset == DatasetName::kFolder
                         ? DatasetInfo{}
                         : dataset_info(config.data.dataset);
  if (config.data.dataset == DatasetName::kFolder) {
    info.channels = config.data.channels;
    const auto& size = config.data.image_size;  // [side] or [height, width]
    info.height = size.empty() ? 28 : size.front();
    info.width = size.empty() ? 28 : size.back();
    for (int k = 0; k < 10; ++k) info.class_names.push_back(std::to_string(k));
  }
  std::vector<Variant> variants;
  const bool cnn = config.model.type == ModelType::kCnn;
  const bool elastic = config.augment.elastic_alpha > 0;
  for (const bool cl : cnn ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
    for (const bool mm : elastic ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
      Config c = config;
      c.train.channels_last = cl;
      c.augment.blur_by_matmul = mm;
      std::string name = cnn ? (cl ? "channels-last" : "NCHW") : "MLP";
      if (elastic) name += mm ? ", blur by matmul" : ", blur by convolution";
      variants.push_back({name, c});
    }
  }
  const int64_t b = config.train.batch_size;
  torch::manual_seed(0);
  const auto images = torch::rand({b, info.channels, info.height, info.width});
  const auto labels = torch::randint(info.num_classes(), {b}, torch::kLong);

  std::vector<std::unique_ptr<Rig>> rigs;
  for (const auto& v : variants) {
    rigs.push_back(std::make_unique<Rig>(v.config, info));
    run_steps(*rigs.back(), images, labels, 5, nullptr);  // warm: oneDNN's kernels, the heap
  }
  std::vector<Times> times(variants.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < rigs.size(); ++i) run_steps(*rigs[i], images, labels, steps, &times[i]);
  }
  std::vector<TrainStageRow> rows;
  for (size_t i = 0; i < variants.size(); ++i) {
    const Times& t = times[i];
    TrainStageRow row;
    row.variant = variants[i].name;
    row.augment_ms = median(t.augment);
    row.forward_ms = median(t.forward);
    row.backward_ms = median(t.backward);
    row.optimizer_ms = median(t.optimizer);
    row.average_ms = median(t.average);
    row.step_ms = median(t.step);
    row.images_per_second = row.step_ms > 0 ? 1000.0 * static_cast<double>(b) / row.step_ms : 0;
    rows.push_back(row);
  }
  return rows;
}

std::string train_stage_table(const std::vector<TrainStageRow>& rows) {
  std::string out =
      "| variant | augment | forward + loss | backward | optimiser | weight average | step ms | "
      "images/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  char line[512];
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f |\n",
                  r.variant.c_str(), r.augment_ms, r.forward_ms, r.backward_ms, r.optimizer_ms,
                  r.average_ms, r.step_ms, r.images_per_second);
    out += line;
  }
  return out;
}

}  // namespace mnist::bench
