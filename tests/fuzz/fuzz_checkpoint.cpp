// A run's checkpoint and model files on arbitrary bytes, loaded into the model and optimiser the
// run's config builds (a small MLP on FusedAdam, as the tutorial recipe trains): a bad file must
// give a DataError naming it, nothing else. Each input gets a model and an optimiser of its own, so
// that a finding reproduces from its input alone. A file that loads must hold what it says: saved
// again and loaded into fresh ones, it gives the same weights and the same training state.

#include <torch/torch.h>

#include <cstdlib>

#include "fuzz_util.h"
#include "mnist/core/error.h"
#include "mnist/models/factory.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/optim.h"

namespace {

using namespace mnist;

const DatasetInfo& info() {
  return dataset_info(DatasetName::kMnist);
}

ModelConfig model_config() {
  ModelConfig m;
  m.hidden_sizes = {8};
  return m;
}

bool same_weights(const Classifier& a, const Classifier& b) {
  const auto pa = a->named_parameters();
  const auto pb = b->named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa) {
    const auto* q = pb.find(p.key());
    // equal() is false for NaN; the file may hold NaN weights: compare the bits.
    if (!q || !torch::equal(p.value().view(torch::kInt32), q->view(torch::kInt32))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  {
    Classifier model = build_model(model_config(), info());
    auto optimizer = make_optimizer(OptimConfig(), model->parameters());
    try {
      const TrainingState state = load_checkpoint_bytes(bytes, "input", *model, *optimizer);
      const std::string again = fuzz::scratch_dir() + "/again.pt";
      save_checkpoint(again, *model, *optimizer, state);
      Classifier fresh = build_model(model_config(), info());
      auto fresh_optimizer = make_optimizer(OptimConfig(), fresh->parameters());
      const TrainingState reread = load_checkpoint(again, *fresh, *fresh_optimizer);
      if (!same_weights(model, fresh) || reread.epoch != state.epoch ||
          reread.history.size() != state.history.size()) {
        std::abort();  // a checkpoint that loads but does not round-trip
      }
    } catch (const DataError&) {
    }
  }
  const std::string path = fuzz::write_scratch("model.pt", data, size);
  try {
    const Classifier loaded = load_model(model_config(), info(), path);
    const std::string again = fuzz::scratch_dir() + "/again-model.pt";
    save_model(loaded, again);
    if (!same_weights(loaded, load_model(model_config(), info(), again))) std::abort();
  } catch (const DataError&) {
  }
  return 0;
}
