#pragma once
// The ranks of a data-parallel run and the few collectives training needs, on LibTorch's c10d:
// rendezvous through a c10d::TCPStore at MASTER_ADDR:MASTER_PORT, collectives through
// c10d::ProcessGroupGloo on the CPU (c10d::ProcessGroupNCCL where the project is built against a
// CUDA LibTorch with NCCL and trains on a GPU). A run without WORLD_SIZE is a world of one: every
// collective is then a no-op that returns its input, so the trainer has one code path.
//
// Every failure of a peer (a rank that died, hung past the timeout, a port in use, a master that
// cannot be reached) becomes a RunError naming this rank and what it was doing, never a hang.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace mnist {

/// Where this process stands in a run, as torchrun describes it: WORLD_SIZE, RANK, LOCAL_RANK,
/// MASTER_ADDR, MASTER_PORT; plus the collectives' timeout.
struct WorldSpec {
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::chrono::seconds timeout{300};  // rendezvous and every collective (MNIST_DIST_TIMEOUT)
};

/// The spec from the environment (the variables above and MNIST_DIST_TIMEOUT, in seconds). A world
/// of one when WORLD_SIZE is unset. UsageError naming the variable when one is malformed or
/// inconsistent (RANK outside [0, WORLD_SIZE), a port outside 1..65535, ...).
WorldSpec world_from_environment();

/// UsageError naming the field when `spec` is inconsistent (what world_from_environment checks).
void check_world(const WorldSpec& spec);

/// True when this build has c10d's Gloo process group (the headers of Debian's libgloo-dev or of an
/// official LibTorch were found at configure time).
bool distributed_available();

class Communicator {
 public:
  /// A world of one: rank 0 of 1; every collective returns at once.
  Communicator();
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  /// Joins the run `spec` describes: rank 0 listens on MASTER_PORT, the others connect to it, all
  /// wait until every rank is there (at most spec.timeout). `device` chooses the backend: Gloo for
  /// the CPU, NCCL for CUDA (where built). A world of one when spec.world_size is 1.
  static std::unique_ptr<Communicator> connect(const WorldSpec& spec, c10::Device device);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  /// Sums `tensor` over the ranks, in place. `what` names the step in error messages.
  void all_reduce_sum(at::Tensor& tensor, const char* what) const;
  /// Sums a few numbers over the ranks (in float64).
  std::vector<double> all_reduce_sum(const std::vector<double>& values, const char* what) const;
  /// Overwrites `tensors` with rank 0's values.
  void broadcast(std::vector<at::Tensor>& tensors, const char* what) const;
  /// Rank 0's `bytes` on every rank (others pass anything; their value is replaced).
  std::string broadcast_bytes(const std::string& bytes, const char* what) const;
  /// Every rank's rows of `part` [n_r, ...] (n_r may differ between ranks), in rank order,
  /// concatenated on every rank. CPU tensors.
  at::Tensor all_gather_rows(const at::Tensor& part, const char* what) const;
  /// True on every rank when `ok` is true on every rank.
  bool all_agree(bool ok, const char* what) const;

 private:
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0;
  int size_ = 1;
};

/// The rows [begin, begin + count) of `n` that rank `rank` of `world` takes when `n` rows are
/// shared out in order: the first n % world ranks take one more row than the rest.
struct Shard {
  int64_t begin = 0;
  int64_t count = 0;
};
Shard shard_of(int64_t n, int rank, int world);

}  // namespace mnist
