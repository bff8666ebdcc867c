// mnist-launch: starts the local ranks of a data-parallel run, the way torchrun does, so that
// cluster scripts carry over:
//   mnist-launch --nproc-per-node 2 -- mnist-train --config configs/mnist_cnn.json --set threads=1
// Each rank gets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Ctrl-C and SIGTERM
// are forwarded to the ranks; when one rank fails, the others are stopped. (No LibTorch in this
// program: signals are handled by blocking them, which needs a process without other threads.)

#include <cstdio>

#include <CLI/CLI.hpp>

#include "mnist/core/error.h"
#include "mnist/dist/launcher.h"

int main(int argc, char** argv) {
  CLI::App cli{"Start the local ranks of a data-parallel run (as torchrun does).", "mnist-launch"};
  mnist::LaunchOptions o;
  double grace_seconds = 10.0;
  cli.add_option("--nproc-per-node", o.nproc_per_node, "ranks on this machine (default 1)");
  cli.add_option("--nnodes", o.nnodes, "machines in the run (default 1)");
  cli.add_option("--node-rank", o.node_rank, "this machine's index, 0 on the master (default 0)");
  cli.add_option("--master-addr", o.master_addr,
                 "address of the machine running rank 0 (default 127.0.0.1)");
  cli.add_option("--master-port", o.master_port, "its free TCP port (default 29500)");
  cli.add_option(
      "--grace", grace_seconds,
      "seconds the other ranks get to stop after one fails, before SIGKILL (default 10)");
  cli.add_option("command", o.command, "the rank's command, after --")->required();
  try {
    cli.parse(argc, argv);
    o.grace = std::chrono::milliseconds(static_cast<long long>(grace_seconds * 1000));
    mnist::check_launch(o);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", cli.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see --help)\n", e.what());
    return 2;
  } catch (const mnist::UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  std::fflush(stdout);
  return mnist::launch(o);
}
