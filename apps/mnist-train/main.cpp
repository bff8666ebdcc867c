// mnist-train: trains the model a JSON config describes and writes a run folder; --resume continues
// an interrupted run from its last complete checkpoint. All the work is in the library; this file
// parses the command line, calls it in order, and reports.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include <torch/cuda.h>

#include "app.h"
#include "mnist/config/config.h"
#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/core/runtime.h"
#include "mnist/dist/communicator.h"
#include "mnist/run/catalog.h"
#include "mnist/run/run.h"
#include "mnist/train/progress.h"
#ifdef MNIST_WITH_VISION
#include "mnist/vision/figures.h"
#include "mnist/vision/image_folder.h"
#endif

int main(int argc, char** argv) {
  CLI::App cli{"Train a digit classifier as a JSON config says, writing a run folder."};
  std::string config_path, run_dir, resume_dir;
  std::vector<std::string> overrides;
  auto* config_opt = cli.add_option("--config", config_path,
                                    "experiment config (JSON); keys not given take defaults");
  cli.add_option("--set", overrides,
                 "override a config key, e.g. --set train.epochs=3 (repeatable)")
      ->allow_extra_args(false);
  bool print_config = false, config_reference = false;
  cli.add_flag("--print-config", print_config,
               "print the resolved config (defaults, --config, --set) as JSON and exit");
  cli.add_flag("--config-reference", config_reference,
               "print the reference of every config key (docs/config.md) and exit");
  cli.add_option("--run-dir", run_dir,
                 "run folder to create (default: runs/<config name>-<UTC time>)");
  auto* resume_opt =
      cli.add_option("--resume", resume_dir, "continue the interrupted run in this folder");
  resume_opt->excludes(config_opt)
      ->excludes("--set")
      ->excludes("--run-dir")
      ->excludes("--print-config");
  // Data-parallel runs: torchrun's variables (WORLD_SIZE, RANK, ...) or these flags.
  int world_size = 0, rank = -1, local_rank = -1, master_port = 0, dist_timeout = 0;
  std::string master_addr;
  cli.add_option("--world-size", world_size, "ranks in a data-parallel run (env WORLD_SIZE)");
  cli.add_option("--rank", rank, "this process's rank (env RANK)");
  cli.add_option("--local-rank", local_rank, "its rank on this machine (env LOCAL_RANK)");
  cli.add_option("--master-addr", master_addr, "rank 0's address (env MASTER_ADDR)");
  cli.add_option("--master-port", master_port, "rank 0's port (env MASTER_PORT)");
  cli.add_option("--dist-timeout", dist_timeout,
                 "seconds to wait for the other ranks (env MNIST_DIST_TIMEOUT, default 300)");
  cli.callback([&] {
    if (config_path.empty() && resume_dir.empty() && !print_config && !config_reference)
      throw CLI::RequiredError("--config or --resume");
  });

  return mnist::app::run(cli, argc, argv, [&] {
    using namespace mnist;
    if (config_reference) {
      std::printf("%s", config_reference_markdown().c_str());
      return 0;
    }
    if (print_config) {
      std::printf("%s\n", config_to_json(load_config(config_path, overrides)).dump(2).c_str());
      return 0;
    }
    // Ctrl-C / SIGTERM: finish the step, keep it in the checkpoint, exit 130 / 143.
    install_stop_handlers(StopMode::kGraceful);
    WorldSpec world = world_from_environment();
    if (world_size > 0) world.world_size = world_size;
    if (rank >= 0) world.rank = rank;
    world.local_rank = local_rank >= 0 ? local_rank : (rank >= 0 ? rank : world.local_rank);
    if (!master_addr.empty()) world.master_addr = master_addr;
    if (master_port > 0) world.master_port = master_port;
    if (dist_timeout > 0) world.timeout = std::chrono::seconds(dist_timeout);
    check_world(world);
    const bool root = world.rank == 0;

    const bool resuming = !resume_dir.empty();
    const std::string command = app::command_line(argc, argv);
    // Only rank 0 reads and writes the run folder; the checks come before the ranks meet.
    std::optional<Config> mine;
    if (resuming) {
      if (root) {
        if (!std::filesystem::is_directory(resume_dir))
          throw UsageError(resume_dir + ": no such run folder");
        if (RunFolder::open(resume_dir).finished()) {
          std::printf("%s: the run has finished already; nothing to do\n", resume_dir.c_str());
        } else {
          mine = load_run_config(resume_dir, {});
        }
      }
      run_dir = resume_dir;
    } else {
      mine = load_config(config_path, overrides);
      if (root) {
        if (run_dir.empty()) run_dir = RunFolder::default_dir(config_path);
        RunFolder::check_new(run_dir);
      }
    }
    const auto comm = Communicator::connect(world, torch::cuda::is_available()
                                                       ? c10::Device(c10::kCUDA, world.local_rank)
                                                       : c10::Device(c10::kCPU));
    const auto agreed = agree_on_config(*comm, mine, resuming);
    if (!agreed) return 0;  // a finished run
    const Config& config = *agreed;
    configure_runtime(static_cast<int>(config.threads), static_cast<int>(config.blas_threads));
    auto device = resolve_device(name_of(config.device));
    const char* local_ranks = std::getenv("LOCAL_WORLD_SIZE");  // set by mnist-launch, torchrun
    const long busy = (local_ranks ? std::atol(local_ranks) : 1) * config.threads;
    if (root && comm->distributed() && device.is_cpu() &&
        busy > static_cast<long>(std::thread::hardware_concurrency())) {
      std::fprintf(stderr,
                   "warning: %ld threads (ranks x threads) on %u cores: the ranks will wait "
                   "for each other; try --set threads=1\n",
                   busy, std::thread::hardware_concurrency());
    }
    if (device.is_cuda() && comm->distributed()) device = c10::Device(c10::kCUDA, world.local_rank);
#ifdef MNIST_WITH_VISION
    Splits data = vision::load_dataset(config.data, config.seed);  // IDX files or an image folder
#else
    Splits data = load_splits(config.data, config.seed);
#endif
    adopt_initial_run(config, data);  // fine-tuning: the source run's classes and input
    if (root) {
      for (const auto& note : data.notes) std::fprintf(stderr, "warning: %s\n", note.c_str());
    }
    if (const int signal = stop_requested(); signal != 0 && !resuming) {
      throw Interrupted(signal, "stopped before training; nothing was written");
    }
    if (root) {  // the other ranks print only errors
      std::printf("config: %s\n", config_to_json(config).dump().c_str());
      std::printf("device: %s, threads: %lld\n", device.str().c_str(),
                  static_cast<long long>(config.threads));
      if (comm->distributed()) {
        std::printf(
            "data-parallel: %d ranks x %lld images per step (train.batch_size is per rank)\n",
            comm->size(), static_cast<long long>(config.train.batch_size));
      }
      std::printf("data: %s, %lld train / %lld validation / %lld test images\n",
                  data.info.name.c_str(), static_cast<long long>(data.train.size()),
                  static_cast<long long>(data.val.size()),
                  static_cast<long long>(data.test.size()));
    }
    std::optional<RunFolder> run;
    if (root) {
      run = resuming ? RunFolder::open(run_dir)
                     : start_run(config, data.info, run_dir, command, device, comm->size());
      if (resuming) note_resume(*run, command);
      std::printf("run folder: %s\n", run->dir().c_str());
    }

    ConsoleProgress progress;
    TrainObserver silent;
    std::optional<ProgressFile> live;  // progress.json for mnist-serve's /runs (rank 0)
    if (run) live.emplace(*run, progress);
    const RunFolder* folder = run ? &*run : nullptr;
    std::optional<RunFolderSink> sink;  // rank 0 writes; the others pass nullptr
    if (run) sink.emplace(*run);
    const auto resume_hint = [&](const Interrupted& e) {
      return Interrupted(
          e.signal(), std::string(e.what()) + "; resume with: " + argv[0] + " --resume " + run_dir);
    };
    std::optional<TrainResult> trained_or;
    try {
      trained_or.emplace(train_model(config, data, sink ? &*sink : nullptr, device,
                                     live ? static_cast<TrainObserver&>(*live) : silent, *comm));
    } catch (const Interrupted& e) {
      throw resume_hint(e);
    }
    const TrainResult& trained = *trained_or;
    if (live) live->set_state("evaluating");
    const EvalResult result = evaluate_run(config, data, folder, trained, device, *comm);
    if (const int signal = stop_requested()) {  // training is complete: only evaluation is redone
      throw resume_hint(Interrupted(signal, "stopped by " + signal_name(signal) +
                                                " after training, before the run was complete"));
    }
    if (!root) return 0;
#ifdef MNIST_WITH_VISION
    vision::write_run_figures(*run, data, trained.history, result);
#else
    std::fprintf(stderr, "warning: built without OpenCV: no figures in %s/plots\n", run->dir().c_str());
#endif
    complete_run(*run, result, data.info, trained);
    live->set_state("complete");

    if (trained.stopped_early) {
      std::printf("early stopping: no improvement of %s for %lld epochs after epoch %lld\n",
                  name_of(config.early_stopping.monitor),
                  static_cast<long long>(config.early_stopping.patience),
                  static_cast<long long>(trained.best_epoch));
    }
    const auto last_epoch = trained.history.empty() ? 0 : trained.history.back().epoch;
    if (trained.model_epoch != last_epoch || config.train.ema_decay > 0) {
      std::printf("evaluated: %s weights of epoch %lld\n",
                  config.train.ema_decay > 0 ? "averaged (EMA)" : "the",
                  static_cast<long long>(trained.model_epoch));
    }

    std::printf("test accuracy %.2f%%  test loss %.4f  (%lld images)\n", 100.0 * result.accuracy,
                result.loss, static_cast<long long>(result.count));
    std::printf("run folder: %s\n", run->dir().c_str());
    std::printf("figures:    %s/plots/{samples,curves,confusion,misclassified}.png\n",
                run->dir().c_str());
    return 0;
  });
}
