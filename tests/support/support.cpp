#include "support.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mnist/data/idx.h"

namespace mnist::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "mnist-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

SharedDir::SharedDir(const std::string& name,
                     const std::function<void(const std::string& dir)>& make) {
  const char* root = std::getenv("MNIST_TEST_SHARED_DIR");
  if (root == nullptr || *root == '\0') {
    own_ = std::make_unique<TempDir>();
    path_ = own_->path();
    make(path_);
    return;
  }
  fs::create_directories(root);
  path_ = (fs::path(root) / name).string();
  const std::string lock_path = path_ + ".lock", done = path_ + "/.complete";
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
    throw std::runtime_error(lock_path + ": cannot lock: " + std::strerror(errno));
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the lock
  } unlock{lock};
  if (fs::exists(done)) return;
  fs::remove_all(path_);
  fs::create_directories(path_);
  make(path_);
  write_bytes(done, "");
}

Background::Background(const std::string& command, const std::string& out_prefix)
    : out_(out_prefix + ".out"), err_(out_prefix + ".err") {
  pid_ = ::fork();
  if (pid_ == 0) {
    const std::string full =
        "exec " + command + " >" + quote(out_) + " 2>" + quote(err_) + " </dev/null";
    ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
}

Background::~Background() {
  if (pid_ > 0 && status_ < 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

int Background::wait(std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (status_ < 0) {
    int raw = 0;
    if (::waitpid(pid_, &raw, WNOHANG) == pid_) {
      status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      break;
    }
    if (std::chrono::steady_clock::now() > until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

std::string Background::out() const {
  return read_bytes(out_);
}

std::string Background::err() const {
  return read_bytes(err_);
}

std::string temporary_files(const std::string& dir) {
  std::string found;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) found += e.path().string();
  }
  return found;
}

bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void write_synthetic_mnist(const std::string& dir, int64_t n_train, int64_t n_test, bool gzip,
                           uint64_t seed) {
  fs::create_directories(dir);
  std::mt19937_64 rng(seed);
  auto make = [&](int64_t n, const std::string& prefix) {
    auto images = torch::zeros({n, 28, 28}, torch::kUInt8);
    auto labels = torch::empty({n}, torch::kUInt8);
    auto img = images.accessor<uint8_t, 3>();
    for (int64_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % 10);
      labels[i] = c;
      const int r0 = 3 + (c / 5) * 12, c0 = 2 + (c % 5) * 5;
      for (int r = r0; r < r0 + 8; ++r) {
        for (int q = c0; q < c0 + 4; ++q) img[i][r][q] = static_cast<uint8_t>(180 + rng() % 76);
      }
      for (int k = 0; k < 30; ++k)
        img[i][rng() % 28][rng() % 28] = static_cast<uint8_t>(rng() % 120);
    }
    const std::string ext = gzip ? ".gz" : "";
    write_idx_images(dir + "/" + prefix + "-images-idx3-ubyte" + ext, images);
    write_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, labels);
  };
  make(n_train, "train");
  make(n_test, "t10k");
}

void write_bytes(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::string& command) {
  TempDir tmp;
  const std::string out = tmp / "out", err = tmp / "err";
  const std::string full = command + " >" + out + " 2>" + err + " </dev/null";
  const int raw = std::system(full.c_str());
  CommandResult r;
  if (raw != -1 && WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
  if (raw != -1 && WIFSIGNALED(raw)) r.status = 128 + WTERMSIG(raw);
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  return r;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

void expect_one_error_line(const CommandResult& r, int status, const std::string& fragment) {
  EXPECT_EQ(r.status, status) << r.err;
  const auto err = lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_EQ(err[0].rfind("error: ", 0), 0u) << err[0];
  EXPECT_NE(err[0].find(fragment), std::string::npos) << err[0];
}

std::string tiny_config(const std::string& data_dir, int epochs) {
  const nlohmann::json j = {{"seed", 3},
                            {"device", "cpu"},
                            {"data", {{"dir", data_dir}, {"val_size", 100}}},
                            {"model", {{"hidden_sizes", {32}}}},
                            {"train", {{"epochs", epochs}, {"batch_size", 16}, {"log_every", 5}}},
                            {"optim", {{"lr", 0.003}}}};
  return j.dump(2);
}

}  // namespace mnist::testing
