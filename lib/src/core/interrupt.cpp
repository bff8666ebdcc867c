#include "mnist/core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace mnist {
namespace {

// What the handler may touch: lock-free atomics and fixed buffers.
std::atomic<int> g_requested{0};
std::atomic<int> g_mode{static_cast<int>(StopMode::kGraceful)};

constexpr int kSlots = 8;
constexpr size_t kPathMax = 4096;
std::atomic<bool> g_slot_used[kSlots];
std::atomic<const char*> g_slot_path[kSlots];

void remove_temporaries() {
  for (int i = 0; i < kSlots; ++i) {
    const char* path = g_slot_path[i].load();
    if (g_slot_used[i].load() && path != nullptr) ::unlink(path);
  }
}

void on_stop_signal(int sig) {
  const bool immediate = g_mode.load() == static_cast<int>(StopMode::kImmediate);
  int expected = 0;
  if (!immediate && g_requested.compare_exchange_strong(expected, sig)) {
    static const char kNote[] =
        "\nstopping after the current step (press Ctrl-C again to stop at once)\n";
    const ssize_t ignored = ::write(STDERR_FILENO, kNote, sizeof kNote - 1);
    (void)ignored;
    return;
  }
  remove_temporaries();
  ::_exit(128 + sig);
}

}  // namespace

void install_stop_handlers(StopMode mode) {
  g_mode.store(static_cast<int>(mode));
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int stop_requested() {
  return g_requested.load(std::memory_order_relaxed);
}

void request_stop(int signal) {
  g_requested.store(signal);
}

void clear_stop_request() {
  g_requested.store(0);
}

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

TempFileGuard::TempFileGuard(const char* path) : slot_(-1) {
  if (path == nullptr || std::strlen(path) >= kPathMax) return;
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    if (g_slot_used[i].compare_exchange_strong(expected, true)) {
      g_slot_path[i].store(path);
      slot_ = i;
      return;
    }
  }
}

TempFileGuard::~TempFileGuard() {
  if (slot_ < 0) return;
  g_slot_path[slot_].store(nullptr);
  g_slot_used[slot_].store(false);
}

}  // namespace mnist
