#include "mnist/serve/server.h"

#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <c10/util/Exception.h>
#include <httplib.h>

#include "mnist/core/error.h"
#include "mnist/serve/api.h"
#include "mnist/serve/assets.h"
#include "mnist/serve/feedback.h"
#include "mnist/serve/metrics.h"

namespace mnist::serve {
namespace {

using Clock = std::chrono::steady_clock;
using httplib::Request;
using httplib::Response;
using HandlerResponse = httplib::Server::HandlerResponse;

// The page's policy: its own files only, no inline code, never inside a frame.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// Each connection is served by one thread (cpp-httplib's model), so per-request state is per
// thread.
thread_local bool tl_shedding = false;  // this thread answers connections that found the queue full
thread_local Clock::time_point tl_start;
thread_local bool tl_started = false;

/// cpp-httplib's task queue, bounded: `threads` workers take accepted connections from a queue of
/// at most `capacity`; connections beyond it go to one more thread that answers their predictions
/// 503 at once (it still serves the page, health and metrics, which cost nothing).
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int capacity)
      : threads_(static_cast<size_t>(threads)), capacity_(static_cast<size_t>(capacity)) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(jobs_, false); });
    shedder_ = std::thread([this] { work(shed_jobs_, true); });
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Room: the workers not serving a connection (started or not yet) plus the queue's capacity.
      (jobs_.size() < threads_ - busy_ + capacity_ ? jobs_ : shed_jobs_).push_back(std::move(fn));
    }
    ready_.notify_all();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : workers_) t.join();
    shedder_.join();
  }

 private:
  void work(std::deque<std::function<void()>>& queue, bool shed) {
    tl_shedding = shed;
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || !queue.empty(); });
        if (queue.empty()) return;  // stopping, and every accepted connection served
        job = std::move(queue.front());
        queue.pop_front();
        if (!shed) ++busy_;
      }
      job();
      if (!shed) {
        std::lock_guard<std::mutex> lock(mutex_);
        --busy_;
      }
    }
  }

  const size_t threads_;
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::deque<std::function<void()>> shed_jobs_;
  bool stopping_ = false;
  size_t busy_ = 0;  // workers serving a connection
  std::vector<std::thread> workers_;
  std::thread shedder_;
};

void reply_error(Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
}

void reply_json(Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

/// The message of a status cpp-httplib sets by itself (the body is then still empty).
std::string status_message(int status, const Request& req, size_t max_body) {
  switch (status) {
    case 400:
      return "malformed request";
    case 404:
      return "no such route: " + req.path.substr(0, 200);
    case 413:
      return "request body larger than the limit of " + std::to_string(max_body) + " bytes";
    case 414:
      return "request URI too long";
    case 416:
      return "bad Range header";
    default:
      return "HTTP status " + std::to_string(status);
  }
}

/// `path` as a cpp-httplib route pattern (a regular expression) matching exactly itself.
std::string exact_pattern(const std::string& path) {
  std::string out;
  for (const char c : path) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

struct Upload {
  std::string type;  // media type of the body, or of the multipart field "image"
  std::string body;
};

/// The request's body, at most `limit` bytes (413 beyond, also for chunked bodies, whose size
/// cpp-httplib does not check); for a multipart form, its field "image".
Upload read_upload(const Request& req, Response& res, const httplib::ContentReader& reader,
                   size_t limit) {
  Upload up;
  size_t total = 0;
  bool too_big = false;
  auto take = [&](const char* data, size_t n, bool keep) {
    total += n;
    if (total > limit) {
      too_big = true;
      return false;
    }
    if (keep) up.body.append(data, n);
    return true;
  };
  bool ok = false;
  bool found = false;
  if (req.is_multipart_form_data()) {
    bool in_image = false;
    ok = reader(
        [&](const httplib::MultipartFormData& part) {
          in_image = part.name == "image" && !found;
          if (in_image) {
            found = true;
            up.type = media_type(part.content_type);
          }
          return true;
        },
        [&](const char* data, size_t n) { return take(data, n, in_image); });
  } else {
    up.type = media_type(req.get_header_value("Content-Type"));
    ok = reader([&](const char* data, size_t n) { return take(data, n, true); });
    found = true;
  }
  if (too_big || res.status == 413) {
    res.set_header("Connection", "close");
    throw ApiError(413,
                   "request body larger than the limit of " + std::to_string(limit) + " bytes");
  }
  if (!ok) throw ApiError(400, "the request body could not be read (malformed or cut short)");
  if (!found) throw ApiError(400, "the multipart form has no field named \"image\"");
  if (up.type.empty()) up.type = "application/octet-stream";
  return up;
}

/// Runs `f`; an ApiError becomes its JSON answer, anything else a 500 whose detail goes to the
/// server's log only (it may hold paths).
template <class F>
void guarded(Response& res, F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    reply_error(res, e.status(), e.what());
  } catch (const std::bad_alloc&) {
    reply_error(res, 503, "out of memory; try a smaller image");
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "warning: request failed: %s\n", e.what_without_backtrace());
    reply_error(res, 500, "internal error");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: request failed: %s\n", e.what());
    reply_error(res, 500, "internal error");
  }
}

}  // namespace

struct WebServer::Impl {
  Impl(const ModelRegistry& r, const ServerOptions& o) : registry(r), options(o) {}

  const ModelRegistry& registry;
  ServerOptions options;
  ServerMetrics metrics;
  std::unique_ptr<FeedbackStore> feedback;
  httplib::Server http;
  int port = -1;

  void setup();
  void add_route(const std::string& path, const std::string& method, httplib::Server::Handler h);
  std::string route_name(const std::string& path) const;
  const ServedModel& model_for(const Request& req) const;
  void predict(const Request& req, Response& res, const httplib::ContentReader& reader);
  void save_feedback(const Request& req, Response& res, const httplib::ContentReader& reader);
  nlohmann::json models_json() const;
};

std::string WebServer::Impl::route_name(const std::string& path) const {
  for (const char* api :
       {"/api/predict", "/api/feedback", "/api/models", "/api/health", "/metrics"}) {
    if (path == api) return path;
  }
  if (path == "/") return "page";
  for (const auto& a : web_assets()) {
    if (path == a.path) return "page";
  }
  return "other";
}

const ServedModel& WebServer::Impl::model_for(const Request& req) const {
  const std::string name = req.get_param_value("model");
  const ServedModel* m = registry.find(name);
  if (!m) throw ApiError(404, "no model named \"" + name.substr(0, 200) + "\" (see /api/models)");
  return *m;
}

void WebServer::Impl::predict(const Request& req, Response& res,
                              const httplib::ContentReader& reader) {
  const auto start = Clock::now();
  guarded(res, [&] {
    // The body is read first whatever the outcome, so the connection stays in step.
    const Upload up = read_upload(req, res, reader, options.max_body_bytes);
    if (tl_shedding) {
      metrics.count_shed();
      res.set_header("Retry-After", "1");
      res.set_header("Connection", "close");
      throw ApiError(503, "server busy: too many connections waiting; try again shortly");
    }
    const ServedModel& model = model_for(req);
    vision::Pipeline pipeline = vision::Pipeline::kMnist;
    if (req.has_param("preprocess")) {
      try {
        pipeline = vision::parse_pipeline(req.get_param_value("preprocess"), "preprocess");
      } catch (const UsageError& e) {
        throw ApiError(400, e.what());
      }
    }
    const auto result = classify(model, decode_image_body(up.type, up.body), pipeline);
    auto answer = answer_json(model, result);
    answer["server_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    metrics.count_prediction(model.name, answer["label"].get<std::string>());
    reply_json(res, answer);
  });
}

void WebServer::Impl::save_feedback(const Request& req, Response& res,
                                    const httplib::ContentReader& reader) {
  guarded(res, [&] {
    const Upload up = read_upload(req, res, reader, options.max_body_bytes);
    if (!feedback)
      throw ApiError(404, "feedback is off: start mnist-serve with --feedback-dir DIR");
    if (tl_shedding) {
      res.set_header("Retry-After", "1");
      throw ApiError(503, "server busy: too many connections waiting; try again shortly");
    }
    const ServedModel& model = model_for(req);
    const std::string label_text = req.get_param_value("label");
    int64_t label = -1;
    try {
      size_t used = 0;
      label = std::stoll(label_text, &used);
      if (used != label_text.size()) label = -1;
    } catch (const std::exception&) {
      label = -1;
    }
    const auto n = static_cast<int64_t>(model.predictor->info().class_names.size());
    if (label < 0 || label >= n) {
      throw ApiError(400, "label must be a class index from 0 to " + std::to_string(n - 1) +
                              " (query parameter label)");
    }
    const cv::Mat image = decode_image_body(up.type, up.body);
    const auto result = classify(model, image);
    std::string saved;
    try {
      saved = feedback->save(image, result.input, model, label, result.predicted);
    } catch (const RunError& e) {
      std::fprintf(stderr, "warning: feedback not saved: %s\n", e.what());
      throw ApiError(500, "the correction could not be saved on the server");
    }
    const auto& classes = model.predictor->info().class_names;
    reply_json(res,
               {{"saved", saved},
                {"model", model.name},
                {"label", label},
                {"class", classes[static_cast<size_t>(label)]},
                {"predicted", result.predicted}},
               201);
  });
}

nlohmann::json WebServer::Impl::models_json() const {
  auto list = nlohmann::json::array();
  for (const auto& m : registry.models()) list.push_back(m.to_json());
  return {{"models", list},
          {"default", registry.models().front().name},
          {"feedback", feedback != nullptr}};
}

void WebServer::Impl::add_route(const std::string& route, const std::string& method,
                                httplib::Server::Handler h) {
  const std::string path = exact_pattern(route);
  // Every other method on a known path is 405, with the methods that are allowed.
  const bool cors = !options.cors_origin.empty() && route.rfind("/api/", 0) == 0;
  const std::string allow = method + (method == "GET" ? ", HEAD" : "") + (cors ? ", OPTIONS" : "");
  auto not_allowed = [allow](const Request& req, Response& res) {
    res.set_header("Allow", allow);
    reply_error(res, 405, "method " + req.method + " is not allowed here (allowed: " + allow + ")");
  };
  if (method == "GET") {
    http.Get(path, h);
  } else {
    http.Get(path, not_allowed);
  }
  if (method != "POST") http.Post(path, not_allowed);
  http.Put(path, not_allowed);
  http.Patch(path, not_allowed);
  http.Delete(path, not_allowed);
  if (cors) {
    http.Options(path, [allow](const Request&, Response& res) {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", allow);
      res.set_header("Access-Control-Allow-Headers", "Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
    });
  } else {
    http.Options(path, not_allowed);
  }
}

void WebServer::Impl::setup() {
  http.new_task_queue = [this] { return new BoundedPool(options.threads, options.queue); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(options.read_timeout_seconds, 0);
  http.set_write_timeout(options.write_timeout_seconds, 0);
  http.set_keep_alive_timeout(options.keep_alive_seconds);
  http.set_keep_alive_max_count(static_cast<size_t>(options.keep_alive_requests));
  http.set_tcp_nodelay(true);
  // cpp-httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and take
  // half of the connections: a port in use must be an error instead.
  http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  httplib::Server::HandlerWithResponse pre = [](const Request& req, Response& res) {
    tl_start = Clock::now();
    tl_started = true;
    const bool has_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    if (has_body && !req.has_header("Content-Length") &&
        req.get_header_value("Transfer-Encoding").find("chunked") == std::string::npos) {
      // Without a length cpp-httplib would read until the client closes.
      reply_error(res, 411, "Content-Length required");
      res.set_header("Connection", "close");
      return HandlerResponse::Handled;
    }
    return HandlerResponse::Unhandled;
  };
  http.set_pre_routing_handler(pre);

  http.set_post_routing_handler([this](const Request& req, Response& res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("Referrer-Policy", "no-referrer");
    const bool api = req.path.rfind("/api/", 0) == 0 || req.path == "/metrics";
    res.set_header("Cache-Control", api ? "no-store" : "no-cache");
    if (api && !options.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", options.cors_origin);
      res.set_header("Vary", "Origin");
    }
    const double seconds =
        tl_started ? std::chrono::duration<double>(Clock::now() - tl_start).count() : 0.0;
    tl_started = false;
    metrics.observe_request(route_name(req.path), res.status, seconds);
  });

  httplib::Server::HandlerWithResponse on_error = [this](const Request& req, Response& res) {
    if (!res.body.empty()) return HandlerResponse::Unhandled;  // an answer of ours already
    reply_error(res, res.status, status_message(res.status, req, options.max_body_bytes));
    return HandlerResponse::Handled;
  };
  http.set_error_handler(on_error);
  http.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "warning: request failed: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "warning: request failed\n");
    }
    reply_error(res, 500, "internal error");
  });

  // The page: a fixed list of files compiled into the binary; "/" is index.html.
  for (const auto& asset : web_assets()) {
    httplib::Server::Handler serve_asset = [&asset](const Request&, Response& res) {
      res.set_content(std::string(asset.body), std::string(asset.content_type));
    };
    add_route(std::string(asset.path), "GET", serve_asset);
    if (asset.path == "/index.html") add_route("/", "GET", serve_asset);
  }

  add_route("/api/models", "GET",
            [this](const Request&, Response& res) { reply_json(res, models_json()); });
  add_route("/api/health", "GET", [this](const Request&, Response& res) {
    reply_json(res, {{"status", "ok"}, {"models", registry.models().size()}});
  });
  add_route("/metrics", "GET", [this](const Request&, Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  add_route("/api/predict", "POST", nullptr);
  add_route("/api/feedback", "POST", nullptr);
  http.Post("/api/predict",
            [this](const Request& req, Response& res, const httplib::ContentReader& reader) {
              predict(req, res, reader);
            });
  http.Post("/api/feedback",
            [this](const Request& req, Response& res, const httplib::ContentReader& reader) {
              save_feedback(req, res, reader);
            });
}

WebServer::WebServer(const ModelRegistry& registry, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(registry, options)) {
  if (options.threads < 1 || options.threads > 1024) {
    throw UsageError("--threads: must be from 1 to 1024, got " + std::to_string(options.threads));
  }
  if (options.queue < 0) throw UsageError("--queue: must be 0 or more");
  if (options.max_body_bytes < 1) throw UsageError("--max-body-mb: must be positive");
  if (!options.feedback_dir.empty()) {
    impl_->feedback = std::make_unique<FeedbackStore>(options.feedback_dir);
  }
  impl_->setup();
}

WebServer::~WebServer() = default;

int WebServer::bind() {
  const auto& o = impl_->options;
  const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host)
                               : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) {
    throw RunError(o.host + ":" + std::to_string(o.port) +
                   ": cannot listen there (the port is in use, or the address is not one of this "
                   "machine's)");
  }
  impl_->port = port;
  return port;
}

void WebServer::run() {
  impl_->http.listen_after_bind();
}

void WebServer::stop() {
  impl_->http.stop();
}

int WebServer::port() const {
  return impl_->port;
}

}  // namespace mnist::serve
