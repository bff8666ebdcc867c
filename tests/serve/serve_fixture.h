#pragma once
// What the serve suites share: mnist-serve as a child process, raw sockets on loopback, images.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace mnist::testing {

inline const std::string kServe = MNIST_SERVE_BIN;

/// mnist-serve as a child process on a free port; SIGTERM and reaped on destruction.
class ServerProcess {
 public:
  /// `env`: NAME=value pairs set in the child; `wait_for_url` false: return at once (the port is
  /// then unknown).
  explicit ServerProcess(const std::vector<std::string>& args,
                         const std::vector<std::string>& env = {}, bool wait_for_url = true) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      std::vector<std::string> all = {kServe, "--port", "0"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kServe.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
    if (!wait_for_url) return;
    // The first line with the URL says it is listening (models are loaded before it).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (port_ < 0 && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, static_cast<size_t>(n));
      const auto at = output_.find("http://127.0.0.1:");
      if (at != std::string::npos && output_.find('/', at + 17) != std::string::npos) {
        port_ = std::stoi(output_.substr(at + 17));
      }
    }
    if (port_ < 0) throw std::runtime_error("mnist-serve did not start: " + output_);
  }
  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  /// Waits up to `seconds` for the process to exit; its status (128 + signal), or -1 on time-out.
  int wait_exit(int seconds) {
    for (int i = 0; i < seconds * 20; ++i) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  /// Everything it printed so far.
  std::string output() {
    char buf[4096];
    fcntl(out_, F_SETFL, O_NONBLOCK);
    for (ssize_t n; (n = read(out_, buf, sizeof buf)) > 0;)
      output_.append(buf, static_cast<size_t>(n));
    return output_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = -1;
  bool reaped_ = false;
  std::string output_;
};

/// A TCP connection to `port` on loopback; -1 when it cannot be made.
inline int connect_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/// Sends `request` as raw bytes and returns what the server answers until it closes or goes
/// quiet for `quiet_ms`.
inline std::string raw_http(int port, const std::string& request, int quiet_ms = 1500) {
  const int fd = connect_loopback(port);
  if (fd < 0) return "";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, quiet_ms) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

inline std::string png_bytes(const cv::Mat& img) {
  std::vector<uint8_t> buf;
  cv::imencode(".png", img, buf);
  return std::string(buf.begin(), buf.end());
}

/// A digit-like drawing: dark strokes on white, different for each `k`.
inline cv::Mat drawing(int k) {
  cv::Mat img(140 + 10 * (k % 4), 120, CV_8UC1, cv::Scalar(255));
  switch (k % 5) {
    case 0:
      cv::circle(img, {60, 70}, 35, cv::Scalar(0), 12);
      break;
    case 1:
      cv::line(img, {60, 20}, {60, 120}, cv::Scalar(0), 12);
      break;
    case 2:
      cv::line(img, {25, 30}, {95, 30}, cv::Scalar(0), 12);
      cv::line(img, {95, 30}, {45, 125}, cv::Scalar(0), 12);
      break;
    case 3:
      cv::rectangle(img, {30, 30}, {90, 110}, cv::Scalar(0), 10);
      break;
    default:
      cv::line(img, {20, 20}, {100, 120}, cv::Scalar(0), 12);
      cv::line(img, {100, 20}, {20, 120}, cv::Scalar(0), 12);
  }
  return img;
}

}  // namespace mnist::testing
