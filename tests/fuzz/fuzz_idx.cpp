// The IDX reader on arbitrary bytes, as a raw file and as a file named .gz (gzip decoded to its
// end): images of 28x28 and labels of 10 classes. Bad bytes must give a DataError, nothing else.

#include "fuzz_util.h"
#include "mnist/core/error.h"
#include "mnist/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnist;
  for (const char* name : {"input-idx", "input-idx.gz"}) {
    const std::string path = fuzz::write_scratch(name, data, size);
    try {
      const auto images = read_idx_images(path, 28, 28);
      if (images.dim() != 3 || images.size(1) != 28 || images.size(2) != 28) std::abort();
    } catch (const DataError&) {
    }
    try {
      const auto labels = read_idx_labels(path, 10);
      if (labels.dim() != 1 || (labels.numel() > 0 && labels.max().item<int64_t>() >= 10)) {
        std::abort();
      }
    } catch (const DataError&) {
    }
  }
  return 0;
}
