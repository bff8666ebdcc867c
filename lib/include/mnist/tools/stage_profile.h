#pragma once
// Where the time of one prediction goes, stage by stage (mnist-bench --profile-preprocessing): a
// canvas drawing, a scan, a photo and a large phone photo, each encoded as a user would send it,
// then decoded (reduced where the format allows), preprocessed (each stage of preprocess_digit,
// see vision/preprocess.h) and classified; medians over many calls. Each image is also run with
// the robust route forced, side by side, so the clean route's gain is measured in the same run.

#include <string>
#include <vector>

#include "mnist/eval/predictor.h"
#include "mnist/vision/preprocess.h"

namespace mnist::bench {

struct StageRow {
  std::string image;  // "drawing 280x280 PNG", ...
  std::string route;  // "clean" or "robust": the route preprocess_digit took
  double decode_ms = 0;
  vision::PreprocessProfile stages;  // medians per stage
  double inference_ms = 0;
  double total_ms = 0;  // median of the whole (decode to probabilities), not the sum of medians
  int digit = -1;       // the answer (the same on both routes, or the table says otherwise)
};

/// Profiles each image `iterations` times (after a few untimed calls), on the route chosen per
/// image and with the robust route forced. One thread (the server's workers are one thread each).
std::vector<StageRow> profile_stages(const Predictor& predictor, int iterations);

/// The rows as a Markdown table.
std::string stage_table(const std::vector<StageRow>& rows);

}  // namespace mnist::bench
