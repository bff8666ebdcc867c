// mnist-serve at the HTTP level: the input is the raw bytes of what a client sends on one
// connection, through the real transport (Boost.Beast's parser, the limits, the deadlines) and the
// real routes (a served model, feedback on), in process on a loopback port. The property: the
// server answers with a well-formed status line or closes the connection, and stays up (a crash, a
// sanitizer report, a hang or a dead server is a finding).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fuzz_util.h"
#include "mnist/config/config.h"
#include "mnist/models/factory.h"
#include "mnist/serve/model_registry.h"
#include "mnist/serve/server.h"

namespace {

struct Served {
  std::unique_ptr<mnist::serve::ModelRegistry> registry;
  std::unique_ptr<mnist::serve::WebServer> server;
  std::thread thread;
  std::atomic<bool> running{false};
  int port = -1;
};

/// One served untrained MLP (its run folder made here) with feedback on and short deadlines.
Served& served() {
  static Served* s = [] {
    auto* out = new Served;
    const std::filesystem::path run = std::filesystem::path(mnist::fuzz::scratch_dir()) / "run";
    std::filesystem::create_directories(run);
    const auto config = mnist::config_from_json({{"model", {{"hidden_sizes", {8}}}}}, "fuzz");
    std::ofstream(run / "config.json") << mnist::config_to_json(config).dump(2);
    mnist::save_model(
        mnist::build_model(config.model, mnist::dataset_info(mnist::DatasetName::kMnist)),
        (run / "model.pt").string());
    std::vector<std::string> warnings;
    out->registry = std::make_unique<mnist::serve::ModelRegistry>(
        mnist::serve::ModelRegistry::load({run.string()}, &warnings));
    mnist::serve::ServerOptions options;
    options.port = 0;
    options.feedback_dir =
        (std::filesystem::path(mnist::fuzz::scratch_dir()) / "feedback").string();
    options.feedback_limit_bytes = 1 << 20;
    options.limits.header_timeout_ms = 2000;
    options.limits.body_timeout_ms = 2000;
    options.limits.max_body_bytes = 1 << 20;
    out->server = std::make_unique<mnist::serve::WebServer>(*out->registry, options);
    out->port = out->server->bind();
    out->running = true;
    out->thread = std::thread([out] {
      out->server->run();
      out->running = false;
    });
    return out;
  }();
  return *s;
}

/// Ends the run with why (libFuzzer then writes the input out as a finding).
[[noreturn]] void finding(const char* why, const std::string& answer = {}) {
  std::fprintf(stderr, "fuzz_http: %s; the answer began: %s\n", why, answer.substr(0, 200).c_str());
  std::abort();
}

bool well_formed_status_line(const std::string& a) {
  // "HTTP/1.1 NNN Reason\r\n"
  if (a.size() < 14 || a.compare(0, 9, "HTTP/1.1 ") != 0) return false;
  for (int i = 9; i < 12; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(a[static_cast<size_t>(i)]))) return false;
  }
  return a[12] == ' ' && a.find("\r\n") != std::string::npos;
}

/// A connection to the served port (aborts when there is none).
int connect_to(const Served& s) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) finding("no connection");
  return fd;
}

/// Sends `size` bytes, half-closes, and reads until the server closes; false when neither an
/// answer nor a close came within 10 s.
bool exchange(int fd, const uint8_t* data, size_t size, std::string* answer) {
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server answered and closed early
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return false;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
    answer->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Served& s = served();
  if (!s.running) finding("the server stopped serving");
  const int fd = connect_to(s);
  std::string answer;
  if (!exchange(fd, data, size, &answer)) {
    // Stalled. Seen (rarely, after thousands of inputs) with the server's threads all idle, this
    // connection absent from `ss` and some 14,000 of the server's closed connections in TIME-WAIT
    // on loopback: the client's new port meeting one of them. So the server must answer a fresh
    // connection now; if it does not, it is stuck, and that is the finding.
    tcp_info info{};
    socklen_t len = sizeof info;
    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
    static const uint8_t kHealth[] = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const int again = connect_to(s);
    std::string health;
    const bool answered = exchange(again, kHealth, sizeof kHealth - 1, &health) &&
                          health.rfind("HTTP/1.1 200", 0) == 0;
    close(again);
    std::fprintf(stderr, "fuzz_http: a connection stalled (client TCP state %d)%s\n",
                 static_cast<int>(info.tcpi_state),
                 answered ? "; the server answers a fresh one" : "");
    if (!answered) finding("neither an answer nor a close in 10 s, and the server is stuck");
  }
  close(fd);
  if (!answer.empty() && !well_formed_status_line(answer)) finding("a malformed answer", answer);
  return 0;
}
