#include "mnist/tools/bench.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "mnist/config/config.h"
#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/data/dataset.h"
#include "mnist/eval/predictor.h"
#include "mnist/io/files.h"

namespace mnist::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The last non-empty line of a child's stderr, for error messages.
std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

ProcessResult checked(const std::vector<std::string>& argv, const std::string& what) {
  ProcessResult r = run_process(argv);
  if (r.status != 0) {
    throw RunError(what + " failed (exit " + std::to_string(r.status) + "): " + last_line(r.err));
  }
  return r;
}

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(last_line(text));
  } catch (const nlohmann::json::exception&) {
    throw RunError(what + " printed no JSON result");
  }
}

// The images_per_second column of a run's history.csv, one value per epoch.
std::vector<double> history_rates(const fs::path& run) {
  std::istringstream in(read_text_file((run / "history.csv").string()));
  std::string line;
  std::getline(in, line);  // header; images_per_second is the last column
  std::vector<double> rates;
  while (std::getline(in, line)) {
    const auto comma = line.rfind(',');
    if (comma != std::string::npos) rates.push_back(std::stod(line.substr(comma + 1)));
  }
  if (rates.empty()) throw RunError((run / "history.csv").string() + ": no epochs");
  return rates;
}

// The first test image, dark on white and eight times larger, as a user's drawing would be (PGM,
// which both OpenCV and PIL read). Written by hand rather than with tools/userset.h's
// write_user_image: the benchmark runner links only mnist_core, so it works in builds without
// OpenCV.
void write_drawing_pgm(const at::Tensor& image, const fs::path& path) {
  constexpr int kScale = 8;
  const auto img = image.contiguous();
  const int64_t h = img.size(0), w = img.size(1);
  std::string pgm =
      "P5\n" + std::to_string(w * kScale) + " " + std::to_string(h * kScale) + "\n255\n";
  const auto* px = img.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h * kScale; ++y)
    for (int64_t x = 0; x < w * kScale; ++x)
      pgm.push_back(static_cast<char>(255 - px[(y / kScale) * w + x / kScale]));
  write_file_atomic(path.string(), pgm);
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw RunError("cannot create a pipe");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw RunError("cannot start " + argv.front());
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s\n", args[0]);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  r.wall_seconds = seconds_between(start, Clock::now());
  r.max_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Latency measure_latency(const std::function<void()>& call, int warmup, int iterations) {
  for (int i = 0; i < warmup; ++i) call();
  std::vector<double> us(static_cast<size_t>(std::max(1, iterations)));
  for (auto& t : us) {
    const auto start = Clock::now();
    call();
    t = 1e6 * seconds_between(start, Clock::now());
  }
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * static_cast<double>(us.size())))];
  };
  return {at(0.50), at(0.99)};
}

double median(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double Figure::ratio() const {
  const double a = median(ours), b = median(python);
  return higher_is_better ? a / b : b / a;
}

namespace {

// The median images/s of the epochs of a peer's JSON answer.
double peer_rate(const nlohmann::json& answer) {
  std::vector<double> rates;
  for (const auto& e : answer.at("epochs"))
    rates.push_back(e.at("images_per_second").get<double>());
  return median(rates);
}

// The test accuracy a peer's JSON answer reports, in percent.
double peer_accuracy_percent(const ProcessResult& peer) {
  return 100.0 * parse_json(peer.out, "the Python peer").at("test_accuracy").get<double>();
}

// The test accuracy of one of our run folders, in percent.
double test_accuracy_percent(const fs::path& run) {
  return 100.0 * nlohmann::json::parse(read_text_file((run / "metrics.json").string()))
                     .at("test_accuracy")
                     .get<double>();
}

// Batches of 1000 of the test set to probabilities: one untimed pass, the median of five timed.
double batch_rate(const Predictor& predictor, const Dataset& test) {
  std::vector<double> rates;
  for (int pass = 0; pass <= 5; ++pass) {
    const auto start = Clock::now();
    for (int64_t i = 0; i < test.size(); i += 1000)
      predictor.probabilities(test.images.narrow(0, i, std::min<int64_t>(1000, test.size() - i)));
    if (pass > 0)
      rates.push_back(static_cast<double>(test.size()) / seconds_between(start, Clock::now()));
  }
  return median(rates);
}

// The tutorial's rows (defined below, after run()).
std::vector<Figure> run_mlp(const Options& o, const Dataset& test, const std::string& train_bin,
                            const std::string& predict_bin, bool have_predict,
                            const std::string& data_arg,
                            const std::function<void(const std::string&)>& log);

std::string stem(const std::string& path) {
  return fs::path(path).stem().string();
}

// The CNN rows: the same recipes on both sides, alternating, `o.repeats` times.
std::vector<Figure> run_cnn(const Options& o, const Dataset& test, const std::string& train_bin,
                            const std::string& data_arg,
                            const std::function<void(const std::string&)>& log) {
  const fs::path work(o.work_dir);
  const std::string epochs = std::to_string(o.cnn_epochs);
  Figure train{"CNN training images/s, " + stem(o.cnn_config) + " recipe", "images/s"};
  Figure memory{"peak memory of that CNN training process", "MB", false};
  Figure target{
      "time to 99% test accuracy: " + stem(o.cnn_fast_config) + ".json, process start to exit", "s",
      false};
  Figure accuracy{"test accuracy reached by that CNN run", "%"};
  Figure batch{"CNN batch inference (batches of 1000, test set)", "images/s"};
  const bool full = !o.cnn_recipe_config.empty();
  Figure recipe_time{"whole recipe: " + stem(o.cnn_recipe_config) + ".json, process start to exit",
                     "s", false};
  Figure recipe_accuracy{"test accuracy reached by that recipe", "%"};
  const Config fast = load_config(o.cnn_fast_config, {});  // its threads, for our inference

  for (int r = 1; r <= o.repeats; ++r) {
    const std::string tag = std::to_string(r);
    log("repeat " + tag + "/" + std::to_string(o.repeats) + ": CNN recipe, " + epochs +
        " epoch(s)");
    const fs::path run = work / ("cnn-" + tag);
    const auto ours = checked({train_bin, "--config", o.cnn_config, "--set", data_arg, "--set",
                               "train.epochs=" + epochs, "--run-dir", run.string()},
                              "mnist-train (CNN recipe)");
    train.ours.push_back(median(history_rates(run)));
    memory.ours.push_back(ours.max_rss_mb);
    const auto py = checked({o.python, o.peer, "train", "--config", o.cnn_config, "--data",
                             o.data_dir, "--epochs", epochs},
                            "the Python peer (CNN recipe)");
    train.python.push_back(peer_rate(parse_json(py.out, "the Python peer")));
    memory.python.push_back(py.max_rss_mb);

    log("repeat " + tag + ": CNN speed recipe");
    const fs::path fast_run = work / ("cnn-fast-" + tag);
    const auto ours_fast = checked({train_bin, "--config", o.cnn_fast_config, "--set", data_arg,
                                    "--run-dir", fast_run.string()},
                                   "mnist-train (CNN speed recipe)");
    target.ours.push_back(ours_fast.wall_seconds);
    accuracy.ours.push_back(test_accuracy_percent(fast_run));
    const auto py_fast =
        checked({o.python, o.peer, "train", "--config", o.cnn_fast_config, "--data", o.data_dir},
                "the Python peer (CNN speed recipe)");
    target.python.push_back(py_fast.wall_seconds);
    accuracy.python.push_back(peer_accuracy_percent(py_fast));

    log("repeat " + tag + ": CNN inference");
    {
      // With the speed recipe's threads, as the peer's inference.
      const int threads = at::get_num_threads();
      configure_runtime(static_cast<int>(fast.threads), static_cast<int>(fast.blas_threads));
      batch.ours.push_back(batch_rate(Predictor::open(fast_run.string()), test));
      configure_runtime(threads);
    }
    batch.python.push_back(parse_json(checked({o.python, o.peer, "infer", "--config",
                                               o.cnn_fast_config, "--data", o.data_dir, "--warmup",
                                               "5", "--iterations", "20", "--batch-repeats", "5"},
                                              "the Python peer (CNN inference)")
                                          .out,
                                      "the Python peer")
                               .at("batch_images_per_second")
                               .get<double>());

    if (full) {
      log("repeat " + tag + ": the whole CNN recipe (minutes)");
      const fs::path recipe_run = work / ("cnn-recipe-" + tag);
      recipe_time.ours.push_back(checked({train_bin, "--config", o.cnn_recipe_config, "--set",
                                          data_arg, "--run-dir", recipe_run.string()},
                                         "mnist-train (whole CNN recipe)")
                                     .wall_seconds);
      recipe_accuracy.ours.push_back(test_accuracy_percent(recipe_run));
      const auto py_recipe = checked(
          {o.python, o.peer, "train", "--config", o.cnn_recipe_config, "--data", o.data_dir},
          "the Python peer (whole CNN recipe)");
      recipe_time.python.push_back(py_recipe.wall_seconds);
      recipe_accuracy.python.push_back(peer_accuracy_percent(py_recipe));
    }
  }
  std::vector<Figure> figures = {train, memory, target, accuracy, batch};
  if (full) {
    figures.push_back(recipe_time);
    figures.push_back(recipe_accuracy);
  }
  return figures;
}

}  // namespace

std::vector<Figure> run(const Options& o) {
  const auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  // Everything is checked before the work folder is made.
  const fs::path work(o.work_dir);
  if (fs::exists(work)) throw UsageError(o.work_dir + ": exists already (give a new folder)");
  if (o.suite != "mlp" && o.suite != "cnn" && o.suite != "all") {
    throw UsageError("--suite: \"" + o.suite + "\" is not one of mlp, cnn, all");
  }
  const bool mlp = o.suite != "cnn", cnn = o.suite != "mlp";
  const std::string train_bin = (fs::path(o.bin_dir) / "mnist-train").string();
  const std::string predict_bin = (fs::path(o.bin_dir) / "mnist-predict").string();
  const bool have_predict = fs::exists(predict_bin);
  std::vector<std::string> needed = {o.peer, train_bin};
  if (mlp) needed.insert(needed.end(), {o.tutorial_config, o.fast_config});
  if (cnn) needed.insert(needed.end(), {o.cnn_config, o.cnn_fast_config});
  if (cnn && !o.cnn_recipe_config.empty()) needed.push_back(o.cnn_recipe_config);
  for (const auto& f : needed) {
    if (!fs::exists(f)) throw UsageError(f + ": no such file");
  }
  DataConfig data;
  data.dir = o.data_dir;
  const Dataset test = load_test_split(data);
  fs::create_directories(work);
  const std::string data_arg = "data.dir=" + fs::absolute(o.data_dir).string();
  std::vector<Figure> figures;
  if (mlp) figures = run_mlp(o, test, train_bin, predict_bin, have_predict, data_arg, log);
  if (cnn) {
    auto rows = run_cnn(o, test, train_bin, data_arg, log);
    figures.insert(figures.end(), rows.begin(), rows.end());
  }
  return figures;
}

namespace {

std::vector<Figure> run_mlp(const Options& o, const Dataset& test, const std::string& train_bin,
                            const std::string& predict_bin, bool have_predict,
                            const std::string& data_arg,
                            const std::function<void(const std::string&)>& log) {
  const fs::path work(o.work_dir);
  const fs::path image = work / "digit.pgm";
  write_drawing_pgm(test.images[0], image);
  const std::string epochs = std::to_string(o.tutorial_epochs);

  Figure train{"training images/s, tutorial recipe (784-150-50-10, Adam, batch 32)", "images/s"};
  Figure memory{"peak memory of that training process", "MB", false};
  Figure target{"time to 97.5% test accuracy: mnist_mlp_fast.json, process start to exit", "s",
                false};
  Figure accuracy{"test accuracy reached by that run", "%"};
  Figure p50{"one-image inference, p50 (warm)", "us", false};
  Figure p99{"one-image inference, p99 (warm)", "us", false};
  Figure batch{"batch inference (batches of 1000, test set)", "images/s"};
  Figure predict{"predict one image file, process start to printed answer", "s", false};

  for (int r = 1; r <= o.repeats; ++r) {
    const std::string tag = std::to_string(r);
    log("repeat " + tag + "/" + std::to_string(o.repeats) + ": tutorial recipe, " + epochs +
        " epochs");
    const auto ours_tut =
        checked({train_bin, "--config", o.tutorial_config, "--set", data_arg, "--set",
                 "train.epochs=" + epochs, "--run-dir", (work / ("tutorial-" + tag)).string()},
                "mnist-train (tutorial recipe)");
    train.ours.push_back(median(history_rates(work / ("tutorial-" + tag))));
    memory.ours.push_back(ours_tut.max_rss_mb);
    const auto py_tut = checked({o.python, o.peer, "train", "--config", o.tutorial_config, "--data",
                                 o.data_dir, "--epochs", epochs},
                                "the Python peer (tutorial recipe)");
    train.python.push_back(peer_rate(parse_json(py_tut.out, "the Python peer")));
    memory.python.push_back(py_tut.max_rss_mb);

    log("repeat " + tag + ": speed recipe");
    const fs::path fast_run = work / ("fast-" + tag);
    const auto ours_fast = checked(
        {train_bin, "--config", o.fast_config, "--set", data_arg, "--run-dir", fast_run.string()},
        "mnist-train (speed recipe)");
    target.ours.push_back(ours_fast.wall_seconds);
    accuracy.ours.push_back(test_accuracy_percent(fast_run));
    const std::string peer_weights = (work / ("peer-" + tag + ".pt")).string();
    const auto py_fast = checked({o.python, o.peer, "train", "--config", o.fast_config, "--data",
                                  o.data_dir, "--save", peer_weights},
                                 "the Python peer (speed recipe)");
    target.python.push_back(py_fast.wall_seconds);
    accuracy.python.push_back(peer_accuracy_percent(py_fast));

    log("repeat " + tag + ": inference");
    {
      const Predictor predictor = Predictor::open(fast_run.string());
      const auto one = test.images.narrow(0, 0, 1);
      const auto lat =
          measure_latency([&] { predictor.probabilities(one); }, 200, o.latency_iterations);
      p50.ours.push_back(lat.p50_us);
      p99.ours.push_back(lat.p99_us);
      batch.ours.push_back(batch_rate(predictor, test));
    }
    const auto py_inf = parse_json(
        checked({o.python, o.peer, "infer", "--config", o.fast_config, "--data", o.data_dir,
                 "--iterations", std::to_string(o.latency_iterations), "--batch-repeats", "5"},
                "the Python peer (inference)")
            .out,
        "the Python peer");
    p50.python.push_back(py_inf.at("latency_p50_us").get<double>());
    p99.python.push_back(py_inf.at("latency_p99_us").get<double>());
    batch.python.push_back(py_inf.at("batch_images_per_second").get<double>());

    if (have_predict) {
      log("repeat " + tag + ": predicting one file");
      predict.ours.push_back(checked({predict_bin, "--run", fast_run.string(), "--no-window",
                                      "--json", image.string()},
                                     "mnist-predict")
                                 .wall_seconds);
      predict.python.push_back(checked({o.python, o.peer, "predict", "--config", o.fast_config,
                                        "--weights", peer_weights, image.string()},
                                       "the Python peer (predict)")
                                   .wall_seconds);
    }
  }
  std::vector<Figure> figures = {train, memory, target, accuracy, p50, p99, batch};
  if (have_predict) figures.push_back(predict);
  return figures;
}

std::string format_value(double v, const std::string& unit) {
  char buf[64];
  if (unit == "images/s" || unit == "MB")
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (unit == "us" || unit == "%")
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else
    std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace

std::string markdown_table(const std::vector<Figure>& figures) {
  std::ostringstream out;
  out << "| figure (median) | unit | this project | Python peer | this project is |\n"
      << "|---|---|---|---|---|\n";
  for (const auto& f : figures) {
    char ratio[64];
    std::snprintf(ratio, sizeof ratio, "%.2fx %s", f.ratio(),
                  f.unit == "%"        ? "(accuracy)"
                  : f.higher_is_better ? "as fast"
                  : f.unit == "MB"     ? "as lean"
                                       : "as fast");
    out << "| " << f.name << " | " << f.unit << " | " << format_value(median(f.ours), f.unit)
        << " | " << format_value(median(f.python), f.unit) << " | " << ratio << " |\n";
  }
  return out.str();
}

nlohmann::json report_json(const std::vector<Figure>& figures, const Options& o) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& f : figures) {
    rows.push_back({{"name", f.name},
                    {"unit", f.unit},
                    {"higher_is_better", f.higher_is_better},
                    {"ours_median", median(f.ours)},
                    {"python_median", median(f.python)},
                    {"ratio", f.ratio()},
                    {"ours", f.ours},
                    {"python", f.python}});
  }
  return {{"machine", machine_description()},     {"repeats", o.repeats},
          {"tutorial_config", o.tutorial_config}, {"fast_config", o.fast_config},
          {"tutorial_epochs", o.tutorial_epochs}, {"figures", rows}};
}

std::string machine_description() {
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  const double gib = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) *
                     static_cast<double>(::sysconf(_SC_PAGE_SIZE)) / (1024.0 * 1024 * 1024);
  utsname u{};
  ::uname(&u);
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s, %ld cores, %.0f GiB, %s %s, LibTorch %s", cpu.c_str(), cores,
                gib, u.sysname, u.release, torch_version().c_str());
  return buf;
}

}  // namespace mnist::bench
