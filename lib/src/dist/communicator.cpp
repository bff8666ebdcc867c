#include "mnist/dist/communicator.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <c10/util/Logging.h>
#include <torch/torch.h>

#include "mnist/core/error.h"

// Debian's libtorch and official LibTorch builds are compiled with Gloo; their headers show the
// Gloo process group only when USE_C10D_GLOO is defined (CMake defines MNIST_WITH_C10D, and the
// matching USE_C10D_* macros, when the headers are there).
#ifdef MNIST_WITH_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef MNIST_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace mnist {
namespace {

// The value of environment variable `name` as an integer in [lo, hi]; `fallback` when unset.
int env_int(const char* name, int fallback, long lo, long hi) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi) {
    std::ostringstream msg;
    msg << name << "=" << text << ": expected an integer in [" << lo << ", " << hi << "]";
    throw UsageError(msg.str());
  }
  return static_cast<int>(value);
}

// c10d reports its failures by exception and also logs them (through glog in Debian's LibTorch, its
// own logger in official builds): those lines would come before the one error line the apps print.
// Only fatal messages are kept, unless the user asked for more with GLOG_minloglevel.
void quiet_c10d_logging() {
  if (std::getenv("GLOG_minloglevel") != nullptr) return;
#ifdef C10_USE_GLOG
  FLAGS_minloglevel = google::GLOG_FATAL;
#endif
  FLAGS_caffe2_log_level = 3;  // c10's FATAL
}

}  // namespace

void check_world(const WorldSpec& s) {
  const auto fail = [](const std::string& msg) { throw UsageError(msg); };
  if (s.world_size < 1) fail("WORLD_SIZE: must be at least 1");
  if (s.rank < 0 || s.rank >= s.world_size)
    fail("RANK=" + std::to_string(s.rank) +
         ": must be in [0, WORLD_SIZE=" + std::to_string(s.world_size) + ")");
  if (s.local_rank < 0 || s.local_rank > s.rank)
    fail("LOCAL_RANK=" + std::to_string(s.local_rank) + ": must be in [0, RANK]");
  if (s.master_port < 1 || s.master_port > 65535)
    fail("MASTER_PORT=" + std::to_string(s.master_port) + ": must be in [1, 65535]");
  if (s.master_addr.empty()) fail("MASTER_ADDR: must not be empty");
  if (s.timeout.count() < 1) fail("MNIST_DIST_TIMEOUT: must be at least 1 second");
}

WorldSpec world_from_environment() {
  WorldSpec s;
  s.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  s.rank = env_int("RANK", 0, 0, 1 << 20);
  s.local_rank = env_int("LOCAL_RANK", s.rank, 0, 1 << 20);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0')
    s.master_addr = addr;
  s.master_port = env_int("MASTER_PORT", s.master_port, 1, 65535);
  s.timeout = std::chrono::seconds(env_int("MNIST_DIST_TIMEOUT", 300, 1, 7 * 24 * 3600));
  check_world(s);
  return s;
}

Shard shard_of(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  Shard s;
  s.count = base + (rank < extra ? 1 : 0);
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  return s;
}

bool distributed_available() {
#ifdef MNIST_WITH_C10D
  return true;
#else
  return false;
#endif
}

struct Communicator::Group {
#ifdef MNIST_WITH_C10D
  c10::intrusive_ptr<c10d::Store> store;
  // Held as their own types: they derive from c10d::ProcessGroup in LibTorch 1.x and from
  // c10d::Backend in 2.x, with the same collectives.
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef MNIST_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  // Calls `f` with the process group in use.
  template <class F>
  void with_group(F&& f) {
#ifdef MNIST_WITH_NCCL
    if (nccl) return f(*nccl);
#endif
    f(*gloo);
  }
#endif
  c10::Device device{c10::kCPU};  // where the collectives' tensors live
  std::string who;                // "rank 1 of 2"
};

Communicator::Communicator() = default;
Communicator::~Communicator() = default;

std::unique_ptr<Communicator> Communicator::connect(const WorldSpec& spec, c10::Device device) {
  check_world(spec);
  auto comm = std::unique_ptr<Communicator>(new Communicator());
  if (spec.world_size == 1) return comm;
#ifndef MNIST_WITH_C10D
  (void)device;
  throw UsageError("WORLD_SIZE=" + std::to_string(spec.world_size) +
                   ": this build has no c10d (the Gloo headers were not found when it was "
                   "configured; install libgloo-dev and rebuild)");
#else
  comm->rank_ = spec.rank;
  comm->size_ = spec.world_size;
  comm->group_ = std::make_unique<Group>();
  Group& g = *comm->group_;
  g.who = "rank " + std::to_string(spec.rank) + " of " + std::to_string(spec.world_size);
  quiet_c10d_logging();
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout);
  const std::string master =
      spec.master_addr + ":" + std::to_string(spec.master_port) + " (MASTER_ADDR:MASTER_PORT)";
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(spec.master_port);
    opts.isServer = spec.rank == 0;
    opts.numWorkers = static_cast<std::size_t>(spec.world_size);
    opts.waitWorkers = true;
    opts.timeout = timeout;
    g.store = c10::make_intrusive<c10d::TCPStore>(spec.master_addr, opts);
  } catch (const std::exception& e) {
    const std::string why = e.what();
    if (spec.rank == 0) {
      throw RunError(g.who + ": cannot start the rendezvous on " + master + ": " +
                     why.substr(0, why.find('\n')) +
                     (why.find("ddress already in use") != std::string::npos
                          ? " (the port is in use: choose another MASTER_PORT)"
                          : " (did every rank start within MNIST_DIST_TIMEOUT=" +
                                std::to_string(spec.timeout.count()) + " s?)"));
    }
    throw RunError(g.who + ": cannot reach the master at " + master + " within " +
                   std::to_string(spec.timeout.count()) + " s: " + why.substr(0, why.find('\n')));
  }
  try {
#ifdef MNIST_WITH_NCCL
    if (device.is_cuda()) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      g.nccl =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(g.store, spec.rank, spec.world_size, options);
      g.device = device;
      return comm;
    }
#endif
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // The address peers reach this process at: GLOO_SOCKET_IFNAME's interface when set (as
    // PyTorch does), loopback for a local run, else the address this host's name resolves to.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const bool local = spec.master_addr == "localhost" || spec.master_addr.rfind("127.", 0) == 0;
    if (ifname != nullptr && *ifname != '\0') {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (local) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 2;
    g.gloo =
        c10::make_intrusive<c10d::ProcessGroupGloo>(g.store, spec.rank, spec.world_size, options);
  } catch (const std::exception& e) {
    const std::string why = e.what();
    throw RunError(g.who + ": cannot connect to the other ranks: " + why.substr(0, why.find('\n')));
  }
  (void)device;
  return comm;
#endif
}

namespace {

[[noreturn]] void lost(const std::string& who, const char* what, const std::exception& e) {
  std::string why = e.what();
  why = why.substr(0, why.find('\n'));
  throw RunError(who + ": " + what + " failed: " + why +
                 " (another rank stopped or hung; its own error says why)");
}

}  // namespace

void Communicator::all_reduce_sum(at::Tensor& tensor, const char* what) const {
  if (!group_) return;
#ifdef MNIST_WITH_C10D
  try {
    std::vector<at::Tensor> tensors{tensor};
    group_->with_group([&](auto& pg) { pg.allreduce(tensors)->wait(); });
  } catch (const std::exception& e) {
    lost(group_->who, what, e);
  }
#else
  (void)tensor;
  (void)what;
#endif
}

std::vector<double> Communicator::all_reduce_sum(const std::vector<double>& values,
                                                 const char* what) const {
  if (!group_) return values;
  auto t = torch::tensor(values, torch::kFloat64).to(group_->device);
  all_reduce_sum(t, what);
  t = t.to(torch::kCPU).contiguous();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors, const char* what) const {
  if (!group_ || tensors.empty()) return;
#ifdef MNIST_WITH_C10D
  try {
    // One call per tensor: c10d's broadcast takes one tensor per device.
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      group_->with_group([&](auto& pg) { pg.broadcast(one)->wait(); });
    }
  } catch (const std::exception& e) {
    lost(group_->who, what, e);
  }
#else
  (void)what;
#endif
}

std::string Communicator::broadcast_bytes(const std::string& bytes, const char* what) const {
  if (!group_) return bytes;
  std::vector<at::Tensor> size{
      torch::full({1}, static_cast<int64_t>(bytes.size()), torch::kInt64).to(group_->device)};
  broadcast(size, what);
  const int64_t n = size[0].to(torch::kCPU).item<int64_t>();
  auto data = torch::zeros({std::max<int64_t>(n, 1)}, torch::kUInt8);
  if (rank_ == 0 && n > 0) std::memcpy(data.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  std::vector<at::Tensor> payload{data.to(group_->device)};
  broadcast(payload, what);
  const auto out = payload[0].to(torch::kCPU);
  return std::string(reinterpret_cast<const char*>(out.data_ptr<uint8_t>()),
                     static_cast<size_t>(n));
}

at::Tensor Communicator::all_gather_rows(const at::Tensor& part, const char* what) const {
  if (!group_) return part;
#ifdef MNIST_WITH_C10D
  // Every rank's row count, then the parts padded to the largest count, then trimmed.
  std::vector<double> counts(static_cast<size_t>(size_), 0.0);
  counts[static_cast<size_t>(rank_)] = static_cast<double>(part.size(0));
  counts = all_reduce_sum(counts, what);
  int64_t most = 0;
  for (double c : counts) most = std::max(most, static_cast<int64_t>(c));
  std::vector<int64_t> shape{std::max<int64_t>(most, 1)};
  for (int64_t d = 1; d < part.dim(); ++d) shape.push_back(part.size(d));
  auto padded = torch::zeros(shape, part.options().device(group_->device));
  if (part.size(0) > 0) padded.narrow(0, 0, part.size(0)).copy_(part);
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < size_; ++r) outputs[0].push_back(torch::empty_like(padded));
  std::vector<at::Tensor> inputs{padded};
  try {
    group_->with_group([&](auto& pg) { pg.allgather(outputs, inputs)->wait(); });
  } catch (const std::exception& e) {
    lost(group_->who, what, e);
  }
  std::vector<at::Tensor> rows;
  for (int r = 0; r < size_; ++r) {
    rows.push_back(outputs[0][static_cast<size_t>(r)]
                       .narrow(0, 0, static_cast<int64_t>(counts[static_cast<size_t>(r)]))
                       .to(torch::kCPU));
  }
  return torch::cat(rows);
#else
  (void)what;
  return part;
#endif
}

bool Communicator::all_agree(bool ok, const char* what) const {
  if (!group_) return ok;
  return all_reduce_sum({ok ? 0.0 : 1.0}, what)[0] == 0.0;
}

}  // namespace mnist
