// The smallest cpp-httplib server set up as mnist-serve was before Boost.Beast (64 threads, an 8
// MiB body limit, 10 s read time-out, a pre-routing check of the header count): the peer that
// scripts/serve_probe.py attacks beside mnist-serve, to show what cpp-httplib 0.11.4 can and cannot
// bound (docs/serving.md). Built by that script: g++ -O2 -std=c++17 $(pkg-config --cflags --libs
// cpp-httplib).
#include <httplib.h>
#include <cstdio>
int main(int argc, char** argv) {
  httplib::Server s;
  s.new_task_queue = [] { return new httplib::ThreadPool(64); };
  s.set_payload_max_length(8u << 20);
  s.set_read_timeout(10, 0);
  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.headers.size() > 100) {
      res.status = 431;
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.Get("/api/health", [](const httplib::Request&, httplib::Response& r) {
    r.set_content("{\"status\":\"ok\"}", "application/json");
  });
  s.Post("/api/predict",
         [](const httplib::Request&, httplib::Response& r, const httplib::ContentReader& reader) {
           std::string body;
           size_t total = 0;
           bool big = false;
           reader([&](const char* d, size_t n) {
             total += n;
             if (total > (8u << 20)) {
               big = true;
               return false;
             }
             body.append(d, n);
             return true;
           });
           r.status = big ? 413 : 200;
           r.set_content("{}", "application/json");
         });
  int port = s.bind_to_any_port("127.0.0.1");
  std::printf("serving on http://127.0.0.1:%d/\n", port);
  std::fflush(stdout);
  s.listen_after_bind();
}
