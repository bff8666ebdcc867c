// mnist-mnistm: builds MNIST-M (mnist/tools/mnistm.h) from the MNIST IDX files and colour
// photographs, as an image folder that mnist-train reads with data.dataset "folder". Without
// --photos it takes the photographs of Debian's plasma-workspace-wallpapers (listed in
// docs/data.md); the same photographs and seed give the same files on every machine.

#include <cstdio>
#include <filesystem>

#include "app.h"
#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/tools/mnistm.h"

namespace {

// The photographs among plasma-workspace-wallpapers 5.27 (the others are drawings), each at the
// largest size the package ships.
const char* const kWallpaperPhotos[] = {
    "Autumn/contents/images/2560x1600.jpg",       "BytheWater/contents/images/2560x1600.jpg",
    "ColdRipple/contents/images/2560x1600.jpg",   "ColorfulCups/contents/images/2560x1600.jpg",
    "DarkestHour/contents/images/2560x1600.jpg",  "EveningGlow/contents/images/2560x1600.jpg",
    "FallenLeaf/contents/images/2560x1600.jpg",   "Kite/contents/images/2560x1600.jpg",
    "OneStandsOut/contents/images/2560x1600.jpg", "Path/contents/images/2560x1600.jpg",
    "summer_1am/contents/images/2560x1600.jpg",
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Build MNIST-M (MNIST digits blended with colour photographs) as an image folder."};
  mnist::tools::MnistmOptions o;
  o.mnist_dir = "data/mnist";
  std::string wallpapers = "/usr/share/wallpapers";
  cli.add_option("--mnist", o.mnist_dir, "folder with the MNIST IDX files")->capture_default_str();
  cli.add_option("--out", o.out, "new folder to write (refused when it exists and is not empty)")
      ->required();
  cli.add_option("--photos", o.photos,
                 "colour photographs to cut patches from (default: the photographs of Debian's "
                 "plasma-workspace-wallpapers under --wallpapers)");
  cli.add_option("--wallpapers", wallpapers, "where plasma-workspace-wallpapers is installed")
      ->capture_default_str();
  cli.add_option("--seed", o.seed, "patch choice and position")->capture_default_str();
  cli.add_option("--limit", o.limit, "digits per split, from the start of each file (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  return mnist::app::run(cli, argc, argv, [&] {
    mnist::install_stop_handlers(mnist::StopMode::kImmediate);
    if (o.photos.empty()) {
      for (const char* photo : kWallpaperPhotos) {
        const auto path = std::filesystem::path(wallpapers) / photo;
        if (!std::filesystem::is_regular_file(path)) {
          throw mnist::UsageError(path.string() +
                                  ": not found (apt-get install plasma-workspace-wallpapers, or "
                                  "give --photos)");
        }
        o.photos.push_back(path.string());
      }
    }
    const auto s = mnist::tools::build_mnistm(o);
    std::printf("MNIST-M: %lld training and %lld test images from %zu photographs in %s\n",
                static_cast<long long>(s.train), static_cast<long long>(s.test), o.photos.size(),
                o.out.c_str());
    return 0;
  });
}
