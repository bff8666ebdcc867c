#include "mnist/serve/server.h"

#include <ifaddrs.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include <c10/util/Exception.h>

#include "mnist/core/error.h"
#include "mnist/serve/api.h"
#include "mnist/serve/assets.h"
#include "mnist/serve/feedback.h"
#include "mnist/serve/metrics.h"
#include "mnist/serve/runs_api.h"
#include "mnist/vision/attribution.h"

namespace mnist::serve {
namespace {

using Clock = std::chrono::steady_clock;

// The page's policy: its own files only, no inline code, never inside a frame.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The host of a Host header value ("Example.COM:8080" -> "example.com", "[::1]:80" -> "[::1]").
std::string host_of(const std::string& host_header) {
  std::string h = ascii_lower(host_header);
  if (!h.empty() && h.front() == '[') {
    const auto end = h.find(']');
    return end == std::string::npos ? h : h.substr(0, end + 1);
  }
  const auto colon = h.find(':');
  if (colon != std::string::npos) h = h.substr(0, colon);
  if (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

bool same_secret(const std::string& a, const std::string& b) {
  // Constant time in the content: a wrong token's answer does not tell how much of it was right.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

/// This machine's names and addresses: what a Host header carries when a client on the network
/// reaches a server bound to every interface.
std::vector<std::string> machine_names() {
  std::vector<std::string> names;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0]) {
    names.push_back(ascii_lower(host));
    names.push_back(ascii_lower(host) + ".local");
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr) continue;
      const int family = a->ifa_addr->sa_family;
      if (family != AF_INET && family != AF_INET6) continue;
      char text[NI_MAXHOST] = {};
      const socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      if (getnameinfo(a->ifa_addr, len, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0) {
        continue;
      }
      std::string t = text;
      const auto scope = t.find('%');
      if (scope != std::string::npos) t = t.substr(0, scope);
      names.push_back(family == AF_INET6 ? "[" + ascii_lower(t) + "]" : t);
    }
    freeifaddrs(list);
  }
  return names;
}

/// The image of an upload: the request's body, or its multipart field "image" (decoded where it
/// lies, without a copy of the body).
cv::Mat decode_upload(const HttpRequest& req, const vision::DecodeLimits& limits, int* reduction) {
  const std::string content_type = req.header("content-type");
  if (media_type(content_type) == "multipart/form-data") {
    const FormField f = multipart_field(content_type, req.body, "image");
    return decode_image_body(media_type(f.type), f.data, limits, reduction);
  }
  const std::string type = media_type(content_type);
  return decode_image_body(type.empty() ? "application/octet-stream" : type, req.body, limits,
                           reduction);
}

/// A handler whose LibTorch errors are logged without their backtrace (the transport logs and
/// answers 500 for anything it catches).
template <class F>
std::function<HttpResponse(const HttpRequest&)> torch_guarded(F f) {
  return [f](const HttpRequest& req) {
    try {
      return f(req);
    } catch (const c10::Error& e) {
      throw std::runtime_error(e.what_without_backtrace());
    }
  };
}

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

struct WebServer::Impl {
  Impl(const ModelRegistry& r, const ServerOptions& o) : registry(r), options(o) {}

  const ModelRegistry& registry;
  ServerOptions options;
  ServerMetrics metrics;  // before http: the transport reports into it until its end
  std::unique_ptr<FeedbackStore> feedback;
  std::unique_ptr<RunsApi> runs;
  std::vector<std::string> hosts;
  std::unique_ptr<HttpServer> http;
  int port = -1;

  std::vector<Route> routes();
  void decorate(const HttpRequest& req, HttpResponse& res) const;
  const ServedModel& model_for(const HttpRequest& req) const;
  vision::DecodeLimits decode_limits() const { return {options.max_pixels, options.reduce_to}; }
  void check_write(const HttpRequest& req) const;
  vision::Pipeline pipeline_of(const HttpRequest& req) const;
  HttpResponse predict(const HttpRequest& req);
  HttpResponse explain(const HttpRequest& req);
  HttpResponse save_feedback(const HttpRequest& req);
  nlohmann::json models_json() const;
};

const ServedModel& WebServer::Impl::model_for(const HttpRequest& req) const {
  const std::string name = req.param("model");
  const ServedModel* m = registry.find(name);
  if (!m) throw ApiError(404, "no model named \"" + name.substr(0, 200) + "\" (see /api/models)");
  return *m;
}

void WebServer::Impl::check_write(const HttpRequest& req) const {
  if (!feedback) throw ApiError(404, "feedback is off: start mnist-serve with --feedback-dir DIR");
  const std::string host = host_of(req.header("host"));
  if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) {
    throw ApiError(421, "Host \"" + req.header("host").substr(0, 100) +
                            "\" is not a name of this server: writes refused (if it is one, start "
                            "mnist-serve with --allowed-host NAME)");
  }
  const std::string site = ascii_lower(req.header("sec-fetch-site"));
  if (!site.empty() && site != "same-origin" && site != "none") {
    throw ApiError(403, "write refused: the request comes from another site (Sec-Fetch-Site: " +
                            site.substr(0, 40) + ")");
  }
  if (req.has_header("origin")) {
    const std::string origin = ascii_lower(req.header("origin"));
    const std::string own = ascii_lower(req.header("host"));
    const bool same = origin == "http://" + own || origin == "https://" + own;
    const bool allowed = !options.cors_origin.empty() && origin == ascii_lower(options.cors_origin);
    if (!same && !allowed) {
      throw ApiError(403, "write refused: the request comes from another site (Origin " +
                              req.header("origin").substr(0, 100) + ")");
    }
  }
  if (!options.token.empty()) {
    const std::string auth = req.header("authorization");
    const std::string prefix = "Bearer ";
    const bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                    same_secret(auth.substr(prefix.size()), options.token);
    if (!ok) {
      throw ApiError(401, "this server needs its token to save corrections (Authorization: Bearer)",
                     {{"WWW-Authenticate", "Bearer realm=\"mnist-serve\""}});
    }
  }
}

vision::Pipeline WebServer::Impl::pipeline_of(const HttpRequest& req) const {
  if (!req.has_param("preprocess")) return vision::Pipeline::kMnist;
  try {
    return vision::parse_pipeline(req.param("preprocess"), "preprocess");
  } catch (const UsageError& e) {
    throw ApiError(400, e.what());
  }
}

HttpResponse WebServer::Impl::predict(const HttpRequest& req) {
  const auto start = Clock::now();
  const ServedModel& model = model_for(req);
  const vision::Pipeline pipeline = pipeline_of(req);
  int reduction = 1;
  const auto result = classify(model, decode_upload(req, decode_limits(), &reduction), pipeline);
  auto answer = answer_json(model, result, reduction);
  answer["server_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  metrics.count_prediction(model.name, answer["label"].get<std::string>());
  return json_response(200, answer);
}

HttpResponse WebServer::Impl::explain(const HttpRequest& req) {
  const auto start = Clock::now();
  const ServedModel& model = model_for(req);
  const vision::Pipeline pipeline = pipeline_of(req);
  AttributionMethod method = AttributionMethod::kIntegratedGradients;
  if (req.has_param("method")) {
    try {
      method = parse_attribution_method(req.param("method"), "method");
    } catch (const UsageError& e) {
      throw ApiError(400, e.what());
    }
  }
  // The class to explain: the answer unless `class` names another (checked before any work).
  const auto& classes = model.predictor->info().class_names;
  int64_t target = -1;
  if (req.has_param("class")) {
    const std::string text = req.param("class");
    for (const char c : text) {
      if (c < '0' || c > '9' || target > 1'000'000) {
        target = -2;
        break;
      }
      target = std::max<int64_t>(target, 0) * 10 + (c - '0');
    }
    if (text.empty() || target < 0 || target >= static_cast<int64_t>(classes.size())) {
      throw ApiError(400, "class must be a class index from 0 to " +
                              std::to_string(classes.size() - 1) + " (query parameter class)");
    }
  }
  int reduction = 1;
  const auto result = classify(model, decode_upload(req, decode_limits(), &reduction), pipeline);
  if (target < 0) target = result.predicted;
  const Attribution a = vision::explain_input(*model.predictor, result.input, target, method);
  auto answer = answer_json(model, result, reduction);
  const auto map = a.map.contiguous();
  const float* v = map.data_ptr<float>();
  auto values = nlohmann::json::array();
  float peak = 0;
  for (int64_t i = 0; i < map.numel(); ++i) {
    peak = std::max(peak, std::abs(v[i]));
    values.push_back(std::round(static_cast<double>(v[i]) * 1e5) / 1e5);
  }
  nlohmann::json e{{"class", target},
                   {"class_name", classes[static_cast<size_t>(target)]},
                   {"method", name_of(method)},
                   {"score", a.score},
                   {"baseline_score", a.baseline_score},
                   {"sum", map.sum().item<double>()},
                   {"width", map.size(1)},
                   {"height", map.size(0)},
                   {"max_abs", peak},
                   {"values", values}};
  answer["explanation"] = e;
  answer["server_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return json_response(200, answer);
}

HttpResponse WebServer::Impl::save_feedback(const HttpRequest& req) {
  const ServedModel& model = model_for(req);
  const std::string label_text = req.param("label");
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
  const cv::Mat image = decode_upload(req, decode_limits(), nullptr);
  const auto result = classify(model, image);
  std::string saved;
  try {
    saved = feedback->save(image, result.input, model, label, result.predicted);
  } catch (const RunError& e) {
    std::fprintf(stderr, "warning: feedback not saved: %s\n", log_text(e.what()).c_str());
    throw ApiError(500, "the correction could not be saved on the server");
  }
  const auto& classes = model.predictor->info().class_names;
  return json_response(201, {{"saved", saved},
                             {"model", model.name},
                             {"label", label},
                             {"class", classes[static_cast<size_t>(label)]},
                             {"predicted", result.predicted}});
}

nlohmann::json WebServer::Impl::models_json() const {
  auto list = nlohmann::json::array();
  for (const auto& m : registry.models()) list.push_back(m.to_json());
  return {{"models", list},
          {"default", registry.models().front().name},
          {"feedback", feedback != nullptr},
          {"feedback_token", feedback != nullptr && !options.token.empty()}};
}

void WebServer::Impl::decorate(const HttpRequest& req, HttpResponse& res) const {
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  const bool api = req.path.rfind("/api/", 0) == 0 || req.path == "/metrics";
  res.headers.emplace_back("Cache-Control", api ? "no-store" : "no-cache");
  if (api && !options.cors_origin.empty()) {
    res.headers.emplace_back("Access-Control-Allow-Origin", options.cors_origin);
    res.headers.emplace_back("Vary", "Origin");
  }
}

std::vector<Route> WebServer::Impl::routes() {
  std::vector<Route> out;
  // The page: a fixed list of files compiled into the binary; "/" is index.html.
  for (const auto& asset : web_assets()) {
    auto serve_asset = [&asset](const HttpRequest&) {
      HttpResponse r;
      r.content_type = std::string(asset.content_type);
      r.body = std::string(asset.body);
      return r;
    };
    out.push_back({std::string(asset.path), "GET", "page", false, false, nullptr, serve_asset});
    if (asset.path == "/index.html") {
      out.push_back({"/", "GET", "page", false, false, nullptr, serve_asset});
    }
    if (asset.path == "/runs.html") {
      out.push_back({"/runs", "GET", "page", false, false, nullptr, serve_asset});
    }
  }
  for (auto& r : runs->routes()) out.push_back(std::move(r));
  out.push_back({"/api/models", "GET", "/api/models", false, false, nullptr,
                 [this](const HttpRequest&) { return json_response(200, models_json()); }});
  out.push_back(
      {"/api/health", "GET", "/api/health", false, false, nullptr, [this](const HttpRequest&) {
         return json_response(200, {{"status", "ok"}, {"models", registry.models().size()}});
       }});
  out.push_back({"/metrics", "GET", "/metrics", false, false, nullptr, [this](const HttpRequest&) {
                   HttpResponse r;
                   r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                   r.body = metrics.render();
                   return r;
                 }});
  out.push_back({"/api/predict", "POST", "/api/predict", true, true, nullptr,
                 torch_guarded([this](const HttpRequest& req) { return predict(req); })});
  out.push_back({"/api/explain", "POST", "/api/explain", true, true, nullptr,
                 torch_guarded([this](const HttpRequest& req) { return explain(req); })});
  out.push_back({"/api/feedback", "POST", "/api/feedback", true, true,
                 [this](const HttpRequest& req) { check_write(req); },
                 torch_guarded([this](const HttpRequest& req) { return save_feedback(req); })});
  if (!options.cors_origin.empty()) {
    // Preflight requests of the allowed origin's pages, for every API path.
    for (const auto& [path, methods] :
         std::vector<std::pair<std::string, std::string>>{{"/api/predict", "POST, OPTIONS"},
                                                          {"/api/feedback", "POST, OPTIONS"},
                                                          {"/api/explain", "POST, OPTIONS"},
                                                          {"/api/models", "GET, HEAD, OPTIONS"},
                                                          {"/api/runs", "GET, HEAD, OPTIONS"},
                                                          {"/api/health", "GET, HEAD, OPTIONS"}}) {
      out.push_back(
          {path, "OPTIONS", path, false, false, nullptr, [methods = methods](const HttpRequest&) {
             HttpResponse r;
             r.status = 204;
             r.headers = {{"Access-Control-Allow-Methods", methods},
                          {"Access-Control-Allow-Headers", "Content-Type, Authorization"},
                          {"Access-Control-Max-Age", "600"}};
             return r;
           }});
    }
  }
  return out;
}

WebServer::WebServer(const ModelRegistry& registry, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(registry, options)) {
  auto& s = *impl_;
  if (options.max_pixels < 64) throw UsageError("--max-megapixels: must be positive");
  if (!options.feedback_dir.empty()) {
    if (!is_loopback(options.host) && options.token.empty()) {
      throw UsageError("--token: a server on " + options.host +
                       " (not loopback) that saves corrections (--feedback-dir) needs a token "
                       "(--token TOKEN or MNIST_SERVE_TOKEN), or anyone on the network can write "
                       "into the training data");
    }
    s.feedback =
        std::make_unique<FeedbackStore>(options.feedback_dir, options.feedback_limit_bytes);
    for (const auto& m : registry.models()) s.feedback->check_model(m);
  }
  s.runs = std::make_unique<RunsApi>(options.run_roots);
  s.hosts = {"localhost", "127.0.0.1", "[::1]"};
  if (!is_loopback(options.host)) {
    const bool any = options.host == "0.0.0.0" || options.host == "::";
    if (!any)
      s.hosts.push_back(options.host.find(':') != std::string::npos
                            ? "[" + ascii_lower(options.host) + "]"
                            : ascii_lower(options.host));
    for (const auto& n : machine_names()) s.hosts.push_back(n);
  }
  for (const auto& n : options.allowed_hosts) s.hosts.push_back(host_of(n));
  std::sort(s.hosts.begin(), s.hosts.end());
  s.hosts.erase(std::unique(s.hosts.begin(), s.hosts.end()), s.hosts.end());
  s.http = std::make_unique<HttpServer>(
      s.routes(), options.limits, s.metrics,
      [&s](const HttpRequest& req, HttpResponse& res) { s.decorate(req, res); });
}

WebServer::~WebServer() = default;

int WebServer::bind() {
  impl_->port = impl_->http->bind(impl_->options.host, impl_->options.port);
  return impl_->port;
}

void WebServer::run() {
  impl_->http->run();
}

void WebServer::stop() {
  impl_->http->stop();
}

int WebServer::port() const {
  return impl_->port;
}

const std::vector<std::string>& WebServer::host_names() const {
  return impl_->hosts;
}

}  // namespace mnist::serve
