// A run's checkpoint and model files on arbitrary bytes, loaded into the model and optimiser the
// run's config builds (a small MLP on FusedAdam, as the tutorial recipe trains): a bad file must
// give a DataError naming it, nothing else.

#include <torch/torch.h>

#include "fuzz_util.h"
#include "mnist/core/error.h"
#include "mnist/models/factory.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/optim.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnist;
  static const DatasetInfo& info = dataset_info(DatasetName::kMnist);
  static ModelConfig model_config = [] {
    ModelConfig m;
    m.hidden_sizes = {8};
    return m;
  }();
  static Classifier model = build_model(model_config, info);
  static auto optimizer = make_optimizer(OptimConfig(), model->parameters());
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    load_checkpoint_bytes(bytes, "input", *model, *optimizer);
  } catch (const DataError&) {
  }
  const std::string path = fuzz::write_scratch("model.pt", data, size);
  try {
    load_model(model_config, info, path);
  } catch (const DataError&) {
  }
  return 0;
}
