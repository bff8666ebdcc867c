#include "mnist/train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/eval/metrics.h"
#include "mnist/io/archive.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"
#include "mnist/train/augment.h"
#include "mnist/train/checkpoint.h"
#include "mnist/train/data_parallel.h"
#include "mnist/train/ema.h"
#include "mnist/train/mlp_step.h"
#include "mnist/train/optim.h"
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
  return rule.monitor == "val_loss" ? s.val_loss : s.val_accuracy;
}

// The epoch's running loss sum and count of right answers. On the CPU they are host numbers: a
// CPU tensor's value costs nothing to read, and a few loops replace the four tensor operations per
// step that the sums would take. On a GPU they stay device tensors, read (a synchronisation) only
// when logging. Both give the same figures: the loss is summed in float as the tensors did.
class EpochMeter {
 public:
  explicit EpochMeter(c10::Device device) : on_host_(device.is_cpu()) {
    if (!on_host_) {
      loss_sum_t_ = torch::zeros({}, torch::TensorOptions(torch::kFloat32).device(device));
      correct_t_ = torch::zeros({}, torch::TensorOptions(torch::kInt64).device(device));
    }
  }

  void add(const at::Tensor& loss, const at::Tensor& logits, const at::Tensor& labels,
           int64_t len) {
    torch::NoGradGuard no_grad;
    if (!on_host_ || logits.scalar_type() != at::kFloat || !logits.is_contiguous() ||
        labels.scalar_type() != at::kLong || !labels.is_contiguous()) {
      if (on_host_) {
        add_host(loss, argmax_eq(logits, labels), len);
        return;
      }
      loss_sum_t_ += loss.detach() * static_cast<float>(len);
      correct_t_ += logits.argmax(1).eq(labels).sum();
      return;
    }
    const int64_t k = logits.size(1);
    const float* z = logits.data_ptr<float>();
    const int64_t* y = labels.data_ptr<int64_t>();
    int64_t right = 0;
    for (int64_t i = 0; i < len; ++i) {
      const float* row = z + i * k;
      int64_t best = 0;  // argmax: the first largest, NaN counting as largest
      for (int64_t j = 1; j < k; ++j) {
        if (std::isnan(row[best])) break;
        if (row[j] > row[best] || std::isnan(row[j])) best = j;
      }
      right += best == y[i];
    }
    add_host(loss, right, len);
  }

  // Continues from a stopped run's figures (loss_sum as loss_sum() returned it: a float's value).
  void restore(double loss_sum, int64_t correct) {
    if (on_host_) {
      loss_sum_ = static_cast<float>(loss_sum);
      correct_ = correct;
    } else {
      loss_sum_t_.fill_(loss_sum);
      correct_t_.fill_(correct);
    }
  }

  double loss_sum() const {
    return on_host_ ? static_cast<double>(loss_sum_) : loss_sum_t_.item<double>();
  }
  int64_t correct() const { return on_host_ ? correct_ : correct_t_.item<int64_t>(); }

 private:
  static int64_t argmax_eq(const at::Tensor& logits, const at::Tensor& labels) {
    return logits.argmax(1).eq(labels).sum().item<int64_t>();
  }
  void add_host(const at::Tensor& loss, int64_t right, int64_t len) {
    const float weighted = loss.item<float>() * static_cast<float>(len);
    loss_sum_ = loss_sum_ + weighted;
    correct_ += right;
  }

  bool on_host_;
  float loss_sum_ = 0.0f;
  int64_t correct_ = 0;
  at::Tensor loss_sum_t_, correct_t_;
};

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
  const bool lower_is_better = rule.monitor == "val_loss";
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

TrainResult train_model(const Config& config, const Splits& data, const RunFolder& run,
                        c10::Device device, TrainObserver& observer) {
  const Communicator alone;
  return train_model(config, data, &run, device, observer, alone);
}

TrainResult train_model(const Config& config, const Splits& data, const RunFolder* run,
                        c10::Device device, TrainObserver& observer, const Communicator& comm) {
  torch::manual_seed(static_cast<uint64_t>(config.seed));  // initial weights
  Classifier model = build_model(config.model, data.info);
  model->to(device);
  broadcast_model(comm, *model);  // every rank starts from rank 0's weights
  auto optimizer = make_optimizer(config.optim, model->parameters());
  std::optional<WeightAverage> average;
  if (config.train.ema_decay > 0) {
    auto copy = build_model(config.model, data.info);
    copy->to(device);
    average.emplace(copy, *model, config.train.ema_decay);
  }
  // The model validation, best_model.pt and the result use.
  const auto evaluated = [&]() -> Classifier { return average ? average->model() : model; };

  // Resuming: rank 0 reads the checkpoint and every rank loads the same bytes.
  TrainingState state;
  const std::string checkpoint_path =
      run != nullptr ? run->file(run_files::kCheckpoint) : run_files::kCheckpoint;
  std::string checkpoint;
  if (run != nullptr && run->has(run_files::kCheckpoint)) {
    checkpoint = read_archive_file(checkpoint_path);
  }
  checkpoint = comm.broadcast_bytes(checkpoint, "sharing the checkpoint");
  if (!checkpoint.empty()) {
    state = load_checkpoint_bytes(checkpoint, checkpoint_path, *model, *optimizer,
                                  average ? average->model().get() : nullptr);
    if (state.world_size != comm.size()) {
      throw UsageError(checkpoint_path + ": the run was trained by " +
                       std::to_string(state.world_size) + " rank(s); resume it with as many " +
                       "(WORLD_SIZE=" + std::to_string(state.world_size) + "), not " +
                       std::to_string(comm.size()));
    }
    if (average) average->set_updates(state.average_updates);
  }
  state.world_size = comm.size();
  checkpoint.clear();
  // A run a signal stopped in the middle of an epoch goes on at its next step.
  const int64_t resume_epoch = state.epoch + 1;
  const int64_t resume_step = state.step;
  const at::Tensor resume_rows = state.partial;
  state.step = 0;
  state.partial = at::Tensor();

  // Data parallelism: every rank walks the same shuffled order; each global batch of
  // world * batch_size images is shared out in order, batch_size per rank (the last, partial one
  // as evenly as possible), and the gradients are averaged weighted by each rank's share.
  const int64_t n = data.train.size();
  const int64_t batch = config.train.batch_size;  // per rank
  const int64_t global_batch = batch * comm.size();
  const int64_t steps =
      (n + global_batch - 1) / global_batch;  // the last, partial batch is used too (as Keras)
  const LrSchedule schedule(config.optim, config.schedule, steps, config.train.epochs);
  const std::string& output = config.model.output;
  const Augmenter augment(config.augment);
  const auto& rule = config.early_stopping;
  const bool track_best = data.val.size() > 0;
  GradientAverager average_gradients(comm, *optimizer);

  // Plain MLPs skip autograd (same arithmetic, none of its per-step overhead).
  const auto fast = MLPStep::create(config, model, batch);
  // Its split products are bit-exact: the threads may follow the machine's load (CNN kernels'
  // results depend on the thread count, so theirs stay as configured).
  ThreadGovernor threads(at::get_num_threads(), config.train.adaptive_threads && fast != nullptr);

  // The training split lives on the device once; batches are gathered there by index.
  BatchGatherer gather(data.train.images.to(device), data.train.labels.to(device), batch);

  if (resume_step >= steps) {
    throw DataError(checkpoint_path + ": inconsistent checkpoint (step " +
                    std::to_string(resume_step) + " of an epoch of " + std::to_string(steps) + ")");
  }
  if (const int signal = agreed_stop(comm)) stopped(signal, state.epoch, 0, steps);
  observer.on_start(state.epoch + 1, config.train.epochs, steps);
  for (int64_t epoch = state.epoch + 1;
       epoch <= config.train.epochs && !patience_ran_out(state.history, rule); ++epoch) {
    const auto epoch_start = Clock::now();
    torch::manual_seed(rank_seed(epoch_seed(config.seed, epoch), comm.rank()));
    const auto order =
        seeded_permutation(n, static_cast<uint64_t>(config.seed), static_cast<uint64_t>(epoch))
            .to(device);
    model->train();
    EpochMeter meter(device);
    int64_t seen_here = 0;  // this rank's images so far this epoch
    int64_t first_step = 0;
    if (epoch == resume_epoch && resume_step > 0) {
      const auto [loss_sum, correct, seen] = restore_progress(
          resume_rows[comm.rank()], device, checkpoint_path);  // generators as they were
      meter.restore(loss_sum, correct);
      seen_here = seen;
      first_step = resume_step;
    }
    // Images of this epoch trained before this process started it (a resumed, stopped epoch).
    const double earlier = static_cast<double>(std::min(n, first_step * global_batch));
    // The whole run's loss sum, right answers and images so far (and whether a rank was asked to
    // stop): summed over the ranks at every log step, and at the last step of the epoch, which
    // always logs.
    std::vector<double> sums;
    double lr = config.optim.lr;
    for (int64_t step = first_step; step < steps; ++step) {
      const int64_t global_start = step * global_batch;
      const int64_t global_len = std::min(global_batch, n - global_start);
      const Shard mine = shard_of(global_len, comm.rank(), comm.size());
      const int64_t len = mine.count;
      lr = schedule.lr_at((epoch - 1) * steps + step);
      set_learning_rate(*optimizer, lr);

      at::Tensor logits, loss;  // [B, K], []
      if (len == 0) {
        zero_gradients(*optimizer);  // fewer images than ranks were left: this rank adds nothing
      } else {
        const auto idx = order.narrow(0, global_start + mine.begin, len);
        const auto [inputs, y] = gather(idx);  // [B, C, H, W], [B]
        const auto x = augment(inputs);
        if (fast) {
          std::tie(logits, loss) = fast->forward_backward(x, y);
        } else {
          zero_gradients(*optimizer);
          logits = model->forward(x);
          loss = classification_loss(logits, y, output, config.train.label_smoothing);
          loss.backward();
        }
        meter.add(loss, logits, y, len);
        seen_here += len;
      }
      average_gradients(static_cast<double>(len) / static_cast<double>(global_len));
      optimizer->step();
      if (average) average->update(*model);
      threads.step_done();

      const bool last = step + 1 == steps;
      const bool logs = last || (step + 1) % config.train.log_every == 0;
      if (logs) {
        // The whole run's running figures (one small all-reduce every log_every steps), so that
        // every rank sees the same NaN, and the same request to stop, at the same step.
        sums =
            comm.all_reduce_sum({meter.loss_sum(), static_cast<double>(meter.correct()),
                                 static_cast<double>(seen_here), stop_requested() != 0 ? 1.0 : 0.0},
                                "summing training figures");
        const double seen = sums[2];
        const double mean_loss = sums[0] / seen;
        if (!std::isfinite(mean_loss)) diverged(epoch, step + 1, mean_loss, lr);
        observer.on_progress(epoch, step + 1, steps, mean_loss, sums[1] / seen,
                             (seen - earlier) / seconds_since(epoch_start));
      }
      // A signal: a world of one stops after this step; ranks stop at a log step, all together.
      // The last step of an epoch ends it first (its checkpoint is the one kept).
      int signal = 0;
      if (!comm.distributed()) {
        signal = stop_requested();
      } else if (logs && sums[3] > 0) {
        signal = stop_requested() != 0 ? stop_requested() : SIGTERM;
      }
      if (signal != 0 && !last) {
        state.step = step + 1;
        state.partial =
            comm.all_gather_rows(progress_row(meter.loss_sum(), meter.correct(), seen_here, device),
                                 "keeping the stopped epoch");
        state.average_updates = average ? average->updates() : 0;
        if (run != nullptr) {
          save_checkpoint(run->file(run_files::kCheckpoint), *model, *optimizer, state,
                          average ? average->model().get() : nullptr);
        }
        stopped(signal, epoch, step + 1, steps);
      }
    }
    const double train_seconds = seconds_since(epoch_start);
    // Batch-norm statistics were gathered per rank: made equal before evaluating and saving.
    average_buffers(comm, *model);
    if (average) average_buffers(comm, *average->model());

    EpochStats stats;
    stats.epoch = epoch;
    stats.train_loss = sums[0] / static_cast<double>(n);
    stats.train_accuracy = sums[1] / static_cast<double>(n);
    stats.val_loss = stats.val_accuracy = std::nan("");
    if (track_best) {
      const auto val = evaluate(*evaluated(), data.val, output, data.info.num_classes(), device,
                                config.train.eval_batch_size, comm);
      stats.val_loss = val.loss;
      stats.val_accuracy = val.accuracy;
    }
    stats.lr = lr;
    stats.seconds = seconds_since(epoch_start);
    stats.images_per_second = (static_cast<double>(n) - earlier) / train_seconds;

    state.epoch = epoch;
    state.history.push_back(stats);
    state.average_updates = average ? average->updates() : 0;
    // Only rank 0 writes (run is null on the others). best_model.pt before the checkpoint: a
    // checkpoint that names epoch e as the best always has e's weights next to it (a crash in
    // between only repeats epoch e on resume).
    if (run != nullptr) {
      if (track_best && best_epoch(state.history, rule) == epoch) {
        save_model(evaluated(), run->file(run_files::kBestModel));
      }
      save_checkpoint(run->file(run_files::kCheckpoint), *model, *optimizer, state,
                      average ? average->model().get() : nullptr);
      run->write_text(run_files::kHistory, history_csv(state.history));
    }
    observer.on_epoch_end(stats);
    if (const int signal = agreed_stop(comm)) stopped(signal, epoch, 0, steps);
  }
  // A resumed run whose checkpoint was its last epoch rewrites history.csv from the checkpoint too,
  // in case the process died between the two writes.
  if (run != nullptr) run->write_text(run_files::kHistory, history_csv(state.history));

  TrainResult result;
  result.history = state.history;
  result.best_epoch = track_best ? best_epoch(state.history, rule) : 0;
  result.stopped_early = state.epoch < config.train.epochs;
  result.model = evaluated();
  result.model_epoch = state.epoch;
  if (rule.restore_best && result.best_epoch > 0 && result.best_epoch != state.epoch) {
    // Rank 0 reads the best weights and shares them.
    if (run != nullptr) {
      result.model = load_model(config.model, data.info, run->file(run_files::kBestModel));
      result.model->to(device);
    }
    broadcast_model(comm, *result.model);
    result.model_epoch = result.best_epoch;
  }
  result.model->eval();
  model->eval();
  return result;
}

}  // namespace mnist
