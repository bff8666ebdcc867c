// mnist-userset: writes a test set of realistic user images made from MNIST test digits (see
// mnist/tools/userset.h): COUNT digits in every style, files <style>-<NNNN>.png|.jpg, and
// labels.csv (file,style,label,test_index). scripts/robustness.sh measures predictions on it.
// With --class-folders it writes an image-folder data set instead (<out>/<label>/<style>-NNNN.ext,
// a different test digit in every file): users' own digit photos to fine-tune on
// (data.preprocess: digit).

#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include <torch/torch.h>

#include "app.h"
#include "mnist/core/error.h"
#include "mnist/data/dataset.h"
#include "mnist/io/files.h"
#include "mnist/io/run_folder.h"
#include "mnist/tools/userset.h"

int main(int argc, char** argv) {
  CLI::App cli{"Write realistic user images made from MNIST test digits, with their labels."};
  std::string data_dir = "data/mnist";
  std::string out_dir;
  int count = 300;
  uint64_t seed = 1;
  bool bad = false;
  bool class_folders = false;
  std::vector<std::string> styles = mnist::vision::user_styles();
  cli.add_option("--data", data_dir, "folder with the MNIST IDX files")->capture_default_str();
  cli.add_option("--out", out_dir, "new folder to write (refused when it exists and is not empty)")
      ->required();
  cli.add_option("--count", count, "test digits per style")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cli.add_option("--seed", seed, "which digits and which random renderings")->capture_default_str();
  cli.add_flag("--with-bad-files", bad,
               "also write one file of every bad kind (empty, text, truncated, bomb, 1x1, folder)");
  cli.add_flag("--class-folders", class_folders,
               "write an image-folder data set: <out>/<label>/<style>-NNNN.ext, a different test "
               "digit in every file (no labels.csv)")
      ->excludes("--with-bad-files");
  cli.add_option("--styles", styles, "the styles to write (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember(mnist::vision::user_styles()));

  return mnist::app::run(cli, argc, argv, [&] {
    using namespace mnist;
    RunFolder::check_new(out_dir);
    DataConfig data;
    data.dir = data_dir;
    const Dataset test = load_test_split(data);
    std::filesystem::create_directories(out_dir);
    // The same digits in every style, so the styles' accuracies compare like with like; for a
    // data set, different digits in every file (no digit in two splits).
    const auto order = seeded_permutation(test.size(), seed, /*stream=*/7);
    const int n = static_cast<int>(std::min<int64_t>(count, test.size()));
    if (class_folders &&
        static_cast<int64_t>(n) * static_cast<int64_t>(styles.size()) > test.size()) {
      throw UsageError("--count: " + std::to_string(n) + " x " + std::to_string(styles.size()) +
                       " styles is more than the " + std::to_string(test.size()) + " test digits");
    }
    std::ostringstream csv;
    csv << "file,style,label,test_index\n";
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (size_t s = 0; s < styles.size(); ++s) {
      const auto& style = styles[s];
      for (int i = 0; i < n; ++i) {
        const int64_t pick = class_folders ? static_cast<int64_t>(s) * n + i : i;
        const int64_t idx = order[pick].item<int64_t>();
        const int64_t label = test.labels[idx].item<int64_t>();
        const auto img = test.images[idx].contiguous();
        const cv::Mat digit(28, 28, CV_8UC1, img.data_ptr<uint8_t>());
        const auto user = vision::render_user_image(digit, style, rng);
        char name[96];
        std::snprintf(name, sizeof name, "%s-%04d%s", style.c_str(), i, user.ext.c_str());
        std::filesystem::path where(out_dir);
        if (class_folders) {
          where /= std::to_string(label);
          std::filesystem::create_directories(where);
        }
        vision::write_user_image(user, (where / name).string());
        csv << name << ',' << style << ',' << label << ',' << idx << '\n';
      }
    }
    if (bad) {
      for (const auto& p : vision::write_bad_images(out_dir)) {
        csv << std::filesystem::path(p).filename().string() << ",bad,-1,-1\n";
      }
    }
    if (!class_folders) {
      write_file_atomic((std::filesystem::path(out_dir) / "labels.csv").string(), csv.str());
    }
    std::printf("wrote %d digits x %zu styles%s to %s\n", n, styles.size(),
                bad ? " and the bad files" : "", out_dir.c_str());
    return 0;
  });
}
