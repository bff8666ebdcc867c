#include "mnist/train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/eval/metrics.h"
#include "mnist/io/run_folder.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "mnist/train/augment.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/data_parallel.h"
#include "mnist/train/ema.h"
#include "mnist/train/epoch_meter.h"
#include "mnist/train/optim.h"
#include "mnist/train/step_engine.h"
#include "mnist/train/thread_governor.h"

namespace mnist {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Dropout's and augmentation's randomness for an epoch is seeded from (seed, epoch): a resumed
// epoch draws the same masks and transforms.
uint64_t epoch_seed(int64_t seed, int64_t epoch) {
  return static_cast<uint64_t>(seed) * 1000003ull + static_cast<uint64_t>(epoch);
}

// The seed of rank `rank` for an epoch: rank 0 keeps the single-process seed, the others draw
// different dropout masks and augmentations, reproducibly.
uint64_t rank_seed(uint64_t seed, int rank) {
  return seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(rank));
}

[[noreturn]] void diverged(int64_t epoch, int64_t step, double loss, double lr) {
  std::ostringstream msg;
  msg << "training diverged: the loss became " << loss << " at epoch " << epoch << ", step " << step
      << " (lr " << lr << "); try a smaller optim.lr";
  throw RunError(msg.str());
}

double monitored(const EpochStats& s, const EarlyStoppingConfig& rule) {
  return rule.monitor == Monitor::kValLoss ? s.val_loss : s.val_accuracy;
}

// The random generators a rank draws dropout and augmentation from: the CPU's, and the device's.
std::vector<at::Generator> generators(c10::Device device) {
  std::vector<at::Generator> gens{at::globalContext().defaultGenerator(c10::Device(c10::kCPU))};
  if (!device.is_cpu()) gens.push_back(at::globalContext().defaultGenerator(device));
  return gens;
}

// A rank's place in an epoch that a signal stopped: its share of the running figures and its
// generators' states, as one float64 row (state bytes as values 0..255), so that every rank's row
// can be gathered and kept in the checkpoint.
at::Tensor progress_row(double loss_sum, int64_t correct, int64_t seen, c10::Device device) {
  std::vector<double> row{loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
  for (auto& gen : generators(device)) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    const auto state = gen.get_state().contiguous();
    const uint8_t* bytes = state.data_ptr<uint8_t>();
    row.push_back(static_cast<double>(state.numel()));
    row.insert(row.end(), bytes, bytes + state.numel());
  }
  return torch::tensor(row, torch::kFloat64).unsqueeze(0);
}

// Puts a row of progress_row back: the generators' states, and returns {loss_sum, correct, seen}.
std::tuple<double, int64_t, int64_t> restore_progress(const at::Tensor& row, c10::Device device,
                                                      const std::string& path) {
  const auto values = row.contiguous();
  const double* v = values.data_ptr<double>();
  const int64_t n = values.numel();
  int64_t at = 3;
  for (auto& gen : generators(device)) {
    const int64_t size = at < n ? static_cast<int64_t>(v[at]) : -1;
    if (size < 0 || at + 1 + size > n) {
      throw DataError(path + ": inconsistent checkpoint (the stopped epoch's generator state)");
    }
    auto state = torch::empty({size}, torch::kUInt8);
    for (int64_t i = 0; i < size; ++i) state[i] = static_cast<uint8_t>(v[at + 1 + i]);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    at += 1 + size;
  }
  return {v[0], static_cast<int64_t>(v[1]), static_cast<int64_t>(v[2])};
}

// The signal that stops every rank, or 0: any rank's request counts (a world of one asks nobody).
int agreed_stop(const Communicator& comm) {
  const int mine = stop_requested();
  if (!comm.distributed()) return mine;
  const double any = comm.all_reduce_sum({mine != 0 ? 1.0 : 0.0}, "agreeing to stop")[0];
  return any > 0 ? (mine != 0 ? mine : SIGTERM) : 0;
}

[[noreturn]] void stopped(int signal, int64_t epoch, int64_t step, int64_t steps) {
  const std::string where = step == 0 ? "after epoch " + std::to_string(epoch)
                                      : "in epoch " + std::to_string(epoch) + " after step " +
                                            std::to_string(step) + " of " + std::to_string(steps);
  throw Interrupted(
      signal, "stopped by " + signal_name(signal) + " " + where + "; the checkpoint keeps it");
}

}  // namespace

int64_t best_epoch(const std::vector<EpochStats>& history, const EarlyStoppingConfig& rule) {
  const bool lower_is_better = rule.monitor == Monitor::kValLoss;
  int64_t best = 0;
  double best_value = 0.0;
  for (const auto& s : history) {
    const double v = monitored(s, rule);
    if (!std::isfinite(v)) continue;
    const bool better =
        lower_is_better ? v < best_value - rule.min_delta : v > best_value + rule.min_delta;
    if (best == 0 || better) {
      best = s.epoch;
      best_value = v;
    }
  }
  return best;
}

bool patience_ran_out(const std::vector<EpochStats>& history, const EarlyStoppingConfig& rule) {
  if (rule.patience <= 0 || history.empty()) return false;
  const int64_t best = best_epoch(history, rule);
  return best > 0 && history.back().epoch - best >= rule.patience;
}

namespace {

// What a rank trains: the model, its optimiser and the weight average, all built from the config,
// with rank 0's initial weights.
struct Learner {
  Classifier model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::optional<WeightAverage> average;

  // The weights validation, best_model.pt and the result use.
  Classifier evaluated() const { return average ? average->model() : model; }
  ClassifierImpl* average_model() const { return average ? average->model().get() : nullptr; }
  int64_t average_updates() const { return average ? average->updates() : 0; }
};

Learner build_learner(const Config& config, const DatasetInfo& info, c10::Device device,
                      const Communicator& comm) {
  torch::manual_seed(static_cast<uint64_t>(config.seed));  // initial weights
  Learner l;
  l.model = build_model(config.model, info);
  if (!config.init.from.empty()) {  // fine-tuning: the checks of classes and input are run.h's
    const std::string path = (std::filesystem::path(config.init.from) / run_files::kModel).string();
    try {
      l.model = load_model(config.model, info, path);
    } catch (const DataError& e) {
      throw UsageError(std::string("init.from: ") + e.what());
    }
  }
  l.model->to(device);
  if (uses_channels_last(config, device)) l.model->set_channels_last(true);
  broadcast_model(comm, *l.model);  // every rank starts from rank 0's weights
  l.optimizer = make_optimizer(config.optim, l.model->parameters());
  if (config.train.ema_decay > 0) {
    auto copy = build_model(config.model, info);
    copy->to(device);
    if (uses_channels_last(config, device)) copy->set_channels_last(true);
    l.average.emplace(copy, *l.model, config.train.ema_decay);
  }
  return l;
}

// Where a run that a signal stopped in the middle of an epoch goes on: that epoch's next step,
// with every rank's running figures and generators (progress_row).
struct StoppedEpoch {
  int64_t epoch = 0;  // 0: none
  int64_t step = 0;
  at::Tensor rows;
};

// Resuming: rank 0's sink reads the checkpoint and every rank loads the same bytes.
TrainingState resume(Learner& l, const TrainSink* sink, const std::string& checkpoint_name,
                     const Communicator& comm, StoppedEpoch& stopped_epoch) {
  TrainingState state;
  std::string checkpoint = sink != nullptr ? sink->read_checkpoint() : "";
  checkpoint = comm.broadcast_bytes(checkpoint, "sharing the checkpoint");
  if (!checkpoint.empty()) {
    state = load_checkpoint_bytes(checkpoint, checkpoint_name, *l.model, *l.optimizer,
                                  l.average_model());
    if (state.world_size != comm.size()) {
      throw UsageError(checkpoint_name + ": the run was trained by " +
                       std::to_string(state.world_size) + " rank(s); resume it with as many " +
                       "(WORLD_SIZE=" + std::to_string(state.world_size) + "), not " +
                       std::to_string(comm.size()));
    }
    if (l.average) l.average->set_updates(state.average_updates);
  }
  state.world_size = comm.size();
  if (state.step > 0) stopped_epoch = {state.epoch + 1, state.step, state.partial};
  state.step = 0;
  state.partial = at::Tensor();
  return state;
}

// What one epoch of training measured, before validation.
struct EpochRun {
  EpochStats stats;  // epoch, train_loss, train_accuracy, lr, images_per_second
  Clock::time_point start;
};

// Runs the steps of an epoch. Data parallelism: every rank walks the same shuffled order; each
// global batch of world * batch_size images is shared out in order, batch_size per rank (the last,
// partial one as evenly as possible), and the gradients are averaged weighted by each rank's share.
class EpochRunner {
 public:
  EpochRunner(const Config& config, const Splits& data, Learner& learner, c10::Device device,
              const Communicator& comm)
      : config_(config),
        learner_(learner),
        device_(device),
        comm_(comm),
        n_(data.train.size()),
        batch_(config.train.batch_size),
        global_batch_(batch_ * comm.size()),
        steps_((n_ + global_batch_ - 1) / global_batch_),  // the last, partial batch too (Keras)
        schedule_(config.optim, config.schedule, steps_, config.train.epochs),
        augment_(config.augment),
        average_gradients_(comm, *learner.optimizer),
        engine_(make_step_engine(config, learner.model, *learner.optimizer, batch_)),
        threads_(at::get_num_threads(),
                 config.train.adaptive_threads && engine_->thread_count_free()),
        // The training split lives on the device once; batches are gathered there by index.
        gather_(data.train.images.to(device), data.train.labels.to(device), batch_,
                data.train.normalization) {}

  int64_t steps() const { return steps_; }

  // Trains epoch `epoch` (from the stopped step when `resume_at` is that epoch). A signal stops it
  // after a step: the checkpoint (to `sink`) keeps the place, and Interrupted is thrown.
  EpochRun run(int64_t epoch, const StoppedEpoch& resume_at, TrainingState& state, TrainSink* sink,
               const std::string& checkpoint_name, TrainObserver& observer) {
    EpochRun out;
    out.start = Clock::now();
    torch::manual_seed(rank_seed(epoch_seed(config_.seed, epoch), comm_.rank()));
    const auto order =
        seeded_permutation(n_, static_cast<uint64_t>(config_.seed), static_cast<uint64_t>(epoch))
            .to(device_);
    learner_.model->train();
    EpochMeter meter(device_);
    int64_t seen_here = 0;  // this rank's images so far this epoch
    int64_t first_step = 0;
    if (epoch == resume_at.epoch) {
      const auto [loss_sum, correct, seen] = restore_progress(
          resume_at.rows[comm_.rank()], device_, checkpoint_name);  // generators as they were
      meter.restore(loss_sum, correct);
      seen_here = seen;
      first_step = resume_at.step;
    }
    // Images of this epoch trained before this process started it (a resumed, stopped epoch).
    const double earlier = static_cast<double>(std::min(n_, first_step * global_batch_));
    // The whole run's loss sum, right answers and images so far (and whether a rank was asked to
    // stop): summed over the ranks at every log step, and at the last step of the epoch, which
    // always logs.
    std::vector<double> sums;
    double lr = config_.optim.lr;
    for (int64_t step = first_step; step < steps_; ++step) {
      const int64_t global_start = step * global_batch_;
      const int64_t global_len = std::min(global_batch_, n_ - global_start);
      const Shard mine = shard_of(global_len, comm_.rank(), comm_.size());
      const int64_t len = mine.count;
      lr = schedule_.lr_at((epoch - 1) * steps_ + step);
      set_learning_rate(*learner_.optimizer, lr);

      if (len == 0) {
        zero_gradients(*learner_.optimizer);  // fewer images than ranks were left: adds nothing
      } else {
        const auto idx = order.narrow(0, global_start + mine.begin, len);
        const auto [inputs, y] = gather_(idx);  // [B, C, H, W], [B]
        const auto [logits, loss] = engine_->forward_backward(augment_(inputs), y);
        meter.add(loss, logits, y, len);
        seen_here += len;
      }
      average_gradients_(static_cast<double>(len) / static_cast<double>(global_len));
      learner_.optimizer->step();
      if (learner_.average) learner_.average->update(*learner_.model);
      threads_.step_done();

      const bool last = step + 1 == steps_;
      const bool logs = last || (step + 1) % config_.train.log_every == 0;
      if (logs) {
        // The whole run's running figures (one small all-reduce every log_every steps), so that
        // every rank sees the same NaN, and the same request to stop, at the same step.
        sums = comm_.all_reduce_sum(
            {meter.loss_sum(), static_cast<double>(meter.correct()), static_cast<double>(seen_here),
             stop_requested() != 0 ? 1.0 : 0.0},
            "summing training figures");
        const double seen = sums[2];
        const double mean_loss = sums[0] / seen;
        if (!std::isfinite(mean_loss)) diverged(epoch, step + 1, mean_loss, lr);
        observer.on_progress(epoch, step + 1, steps_, mean_loss, sums[1] / seen,
                             (seen - earlier) / seconds_since(out.start));
      }
      // A signal: a world of one stops after this step; ranks stop at a log step, all together.
      // The last step of an epoch ends it first (its checkpoint is the one kept).
      int signal = 0;
      if (!comm_.distributed()) {
        signal = stop_requested();
      } else if (logs && sums[3] > 0) {
        signal = stop_requested() != 0 ? stop_requested() : SIGTERM;
      }
      if (signal != 0 && !last) {
        state.step = step + 1;
        state.partial = comm_.all_gather_rows(
            progress_row(meter.loss_sum(), meter.correct(), seen_here, device_),
            "keeping the stopped epoch");
        state.average_updates = learner_.average_updates();
        if (sink != nullptr) {
          sink->write_checkpoint(*learner_.model, *learner_.optimizer, state,
                                 learner_.average_model());
        }
        stopped(signal, epoch, step + 1, steps_);
      }
    }
    const double train_seconds = seconds_since(out.start);
    // Batch-norm statistics were gathered per rank: made equal before evaluating and saving.
    average_buffers(comm_, *learner_.model);
    if (learner_.average) average_buffers(comm_, *learner_.average->model());

    out.stats.epoch = epoch;
    out.stats.train_loss = sums[0] / static_cast<double>(n_);
    out.stats.train_accuracy = sums[1] / static_cast<double>(n_);
    out.stats.lr = lr;
    out.stats.images_per_second = (static_cast<double>(n_) - earlier) / train_seconds;
    return out;
  }

 private:
  const Config& config_;
  Learner& learner_;
  c10::Device device_;
  const Communicator& comm_;
  const int64_t n_, batch_, global_batch_, steps_;
  const LrSchedule schedule_;
  const Augmenter augment_;
  GradientAverager average_gradients_;
  std::unique_ptr<StepEngine> engine_;
  ThreadGovernor threads_;
  BatchGatherer gather_;
};

// The result: the weights to evaluate (the best epoch's when early_stopping.restore_best, which
// rank 0's sink reads and shares), in eval mode.
TrainResult result_of(const Config& config, const Splits& data, const TrainingState& state,
                      const Learner& learner, const TrainSink* sink, c10::Device device,
                      const Communicator& comm) {
  const auto& rule = config.early_stopping;
  TrainResult result;
  result.history = state.history;
  result.best_epoch = data.val.size() > 0 ? best_epoch(state.history, rule) : 0;
  result.stopped_early = state.epoch < config.train.epochs;
  result.model = learner.evaluated();
  result.model_epoch = state.epoch;
  if (rule.restore_best && result.best_epoch > 0 && result.best_epoch != state.epoch) {
    if (sink != nullptr) {
      result.model = sink->read_best(config.model, data.info);
      result.model->to(device);
    }
    broadcast_model(comm, *result.model);
    result.model_epoch = result.best_epoch;
  }
  result.model->eval();
  learner.model->eval();
  return result;
}

}  // namespace

TrainResult train_model(const Config& config, const Splits& data, TrainSink* sink,
                        c10::Device device, TrainObserver& observer, const Communicator& comm) {
  const std::string checkpoint_name =
      sink != nullptr ? sink->checkpoint_name() : std::string(run_files::kCheckpoint);
  Learner learner = build_learner(config, data.info, device, comm);
  StoppedEpoch stopped_epoch;
  TrainingState state = resume(learner, sink, checkpoint_name, comm, stopped_epoch);
  EpochRunner runner(config, data, learner, device, comm);
  if (stopped_epoch.step >= runner.steps()) {
    throw DataError(checkpoint_name + ": inconsistent checkpoint (step " +
                    std::to_string(stopped_epoch.step) + " of an epoch of " +
                    std::to_string(runner.steps()) + ")");
  }
  const auto& rule = config.early_stopping;
  const bool track_best = data.val.size() > 0;

  if (const int signal = agreed_stop(comm)) stopped(signal, state.epoch, 0, runner.steps());
  observer.on_start(state.epoch + 1, config.train.epochs, runner.steps());
  for (int64_t epoch = state.epoch + 1;
       epoch <= config.train.epochs && !patience_ran_out(state.history, rule); ++epoch) {
    EpochRun run = runner.run(epoch, stopped_epoch, state, sink, checkpoint_name, observer);
    EpochStats& stats = run.stats;
    stats.val_loss = stats.val_accuracy = std::nan("");
    if (track_best) {
      const auto val =
          evaluate(*learner.evaluated(), data.val, Head(config.model.output),
                   data.info.num_classes(), device, config.train.eval_batch_size, comm);
      stats.val_loss = val.loss;
      stats.val_accuracy = val.accuracy;
    }
    stats.seconds = seconds_since(run.start);

    state.epoch = epoch;
    state.history.push_back(stats);
    state.average_updates = learner.average_updates();
    // best_model.pt before the checkpoint: a checkpoint that names epoch e as the best always has
    // e's weights next to it (a crash in between only repeats epoch e on resume).
    if (sink != nullptr) {
      if (track_best && best_epoch(state.history, rule) == epoch) {
        sink->write_best(learner.evaluated());
      }
      sink->write_checkpoint(*learner.model, *learner.optimizer, state, learner.average_model());
      sink->write_history(state.history);
    }
    observer.on_epoch_end(stats);
    if (const int signal = agreed_stop(comm)) stopped(signal, epoch, 0, runner.steps());
  }
  // A resumed run whose checkpoint was its last epoch rewrites the history from the checkpoint
  // too, in case the process died between the two writes.
  if (sink != nullptr) sink->write_history(state.history);
  return result_of(config, data, state, learner, sink, device, comm);
}

}  // namespace mnist
