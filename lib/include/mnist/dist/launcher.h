#pragma once
// Starting the local ranks of a data-parallel run, as torchrun does: one child process per rank
// with WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set. The
// launcher forwards Ctrl-C and SIGTERM to its ranks, and when one rank fails it stops the others
// (SIGTERM, then SIGKILL after a grace period), so a run never hangs on a dead peer. No LibTorch
// here: this is process management only.

#include <chrono>
#include <string>
#include <vector>

namespace mnist {

struct LaunchOptions {
  int nproc_per_node = 1;  // ranks on this machine
  int nnodes = 1;          // machines
  int node_rank = 0;       // this machine's index in [0, nnodes)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::vector<std::string> command;        // the program (looked up in PATH) and its arguments
  std::chrono::milliseconds grace{10000};  // after the first failure, before SIGKILL
};

/// UsageError naming the option when `options` are inconsistent.
void check_launch(const LaunchOptions& options);

/// Runs the local ranks to the end. Returns 0 when every rank succeeded; otherwise the status of
/// the first rank that failed (128 + signal when it was killed by one), or 128 + the signal that
/// stopped the launcher (130 for Ctrl-C, 143 for SIGTERM). Reports a failure on stderr as one
/// `error:` line naming the rank.
int launch(const LaunchOptions& options);

}  // namespace mnist
