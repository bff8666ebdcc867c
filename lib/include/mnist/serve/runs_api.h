#pragma once
// The research cockpit's API: the run folders under mnist-serve's --run roots, read-only, rescanned
// on every request (a new run appears without a restart). All GET, JSON unless said:
//   /api/runs?offset=&limit=                    the runs table (limit <= 200)
//   /api/runs/NAME                              summary, config, metrics, history, files
//   /api/runs/NAME/events?after=EPOCH           live: status, progress, history rows after EPOCH
//   /api/runs/NAME/confusion/TRUE/PRED?page=N   the test images of one confusion cell, most
//                                               confident first (per_page <= 100)
//   /api/runs/NAME/misclassified?page=N         every wrong answer, most confident first
//   /api/runs/NAME/images/I.png                 test image I of the run's data set (PNG)
//   /api/runs/NAME/files/FILE                   one of the run's own files (config.json, ...,
//                                               plots/NAME.png), nothing else
// Safety: NAME is one of the scan's names, never a path; a file is served only when it is one of
// the run folder's known files (plots: by the folder's own listing), and images come from the
// run's test set, by index. A run being written or damaged answers its status (409 with "status"
// where a finished run's file is needed), never a 500.

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mnist/serve/http.h"
#include "mnist/vision/image_folder.h"

namespace mnist::serve {

/// The name a run folder is shown under: its folder's name ("." and "" become the absolute path's
/// last part, "model" when there is none), made unique against `taken` with "-2", "-3", ...
std::string run_display_name(const std::string& run_dir, const std::vector<std::string>& taken);

class RunsApi {
 public:
  /// `roots`: mnist-serve's --run paths (run folders, folders of run folders).
  explicit RunsApi(std::vector<std::string> roots, size_t max_runs = 2000);
  /// The API's routes (job routes: they read files) and the /runs page.
  std::vector<Route> routes();

 private:
  struct Entry {
    std::string name, dir;
  };
  std::vector<Entry> scan() const;
  Entry find(const std::string& name) const;  // ApiError 404 naming it
  HttpResponse list(const HttpRequest& req) const;
  HttpResponse dispatch(const HttpRequest& req);
  HttpResponse run(const Entry& e) const;
  HttpResponse events(const Entry& e, const HttpRequest& req) const;
  HttpResponse cell(const Entry& e, const std::string& truth, const std::string& pred,
                    const HttpRequest& req) const;
  HttpResponse image(const Entry& e, const std::string& file);
  HttpResponse file(const Entry& e, const std::string& name) const;
  std::shared_ptr<const vision::TestSet> test_set(const std::string& dir);

  std::vector<std::string> roots_;
  size_t max_runs_;
  std::mutex cache_mutex_;
  // The test sets of the runs whose images were asked for last (a few: MNIST's is 7.8 MB).
  std::list<std::pair<std::string, std::shared_ptr<const vision::TestSet>>> cache_;
};

}  // namespace mnist::serve
