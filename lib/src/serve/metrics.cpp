#include "mnist/serve/metrics.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "mnist/serve/http.h"

namespace mnist::serve {

ServerMetrics::ServerMetrics() : start_(std::chrono::steady_clock::now()) {}

const std::vector<double>& ServerMetrics::buckets() {
  // From a tenth of a millisecond (a cached page) to seconds (a large photo on a busy machine).
  static const std::vector<double> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,  0.01,    0.025,  0.05,  0.1,
                                               0.25,   0.5,     1.0,    2.5,   5.0};
  return kBuckets;
}

void ServerMetrics::observe_request(const std::string& route, int status, double seconds) {
  const auto& b = buckets();
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(b.begin(), b.end(), seconds) - b.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  if (h.counts.empty()) h.counts.assign(b.size() + 1, 0);
  ++h.counts[bucket];
  h.sum += seconds;
  ++h.count;
}

void ServerMetrics::count_prediction(const std::string& model, const std::string& label) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++predictions_[{model, label}];
}

void ServerMetrics::count_shed() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++shed_;
}

void ServerMetrics::count_internal_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++internal_errors_;
}

void ServerMetrics::count_connection_refused() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++connections_refused_;
}

void ServerMetrics::connection_opened() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++open_connections_;
}

void ServerMetrics::connection_closed() {
  std::lock_guard<std::mutex> lock(mutex_);
  --open_connections_;
}

std::string prometheus_label(const std::string& value) {
  // The exposition format is UTF-8: invalid bytes become U+FFFD first.
  const std::string text = nlohmann::json::parse(json_text(value)).get<std::string>();
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::string ServerMetrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP mnist_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE mnist_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "mnist_http_requests_total{route=\"" + prometheus_label(std::get<0>(key)) +
           "\",status=\"" + std::to_string(std::get<1>(key)) + "\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP mnist_http_request_duration_seconds Time from the request's headers to its answer.\n";
  out += "# TYPE mnist_http_request_duration_seconds histogram\n";
  const auto& b = buckets();
  for (const auto& [route, h] : latency_) {
    const std::string r = prometheus_label(route);
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= b.size(); ++i) {
      cumulative += h.counts[i];
      const std::string le = i < b.size() ? number(b[i]) : "+Inf";
      out += "mnist_http_request_duration_seconds_bucket{route=\"" + r + "\",le=\"" + le + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "mnist_http_request_duration_seconds_sum{route=\"" + r + "\"} " + number(h.sum) + "\n";
    out += "mnist_http_request_duration_seconds_count{route=\"" + r + "\"} " +
           std::to_string(h.count) + "\n";
  }
  out += "# HELP mnist_predictions_total Predictions answered, by model and predicted class.\n";
  out += "# TYPE mnist_predictions_total counter\n";
  for (const auto& [key, n] : predictions_) {
    out += "mnist_predictions_total{model=\"" + prometheus_label(std::get<0>(key)) + "\",class=\"" +
           prometheus_label(std::get<1>(key)) + "\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP mnist_http_requests_shed_total Requests answered 503 before their body was read: the "
      "work queue or the memory for bodies was full.\n";
  out += "# TYPE mnist_http_requests_shed_total counter\n";
  out += "mnist_http_requests_shed_total " + std::to_string(shed_) + "\n";
  out +=
      "# HELP mnist_http_internal_errors_total Requests answered 500 because a handler failed.\n";
  out += "# TYPE mnist_http_internal_errors_total counter\n";
  out += "mnist_http_internal_errors_total " + std::to_string(internal_errors_) + "\n";
  out +=
      "# HELP mnist_http_connections_refused_total Connections closed at once with 503: "
      "--max-connections were open.\n";
  out += "# TYPE mnist_http_connections_refused_total counter\n";
  out += "mnist_http_connections_refused_total " + std::to_string(connections_refused_) + "\n";
  out += "# HELP mnist_http_open_connections Connections open now.\n";
  out += "# TYPE mnist_http_open_connections gauge\n";
  out += "mnist_http_open_connections " + std::to_string(open_connections_) + "\n";
  out += "# HELP mnist_uptime_seconds Seconds since the server started.\n";
  out += "# TYPE mnist_uptime_seconds gauge\n";
  const double up =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  out += "mnist_uptime_seconds " + number(up) + "\n";
  return out;
}

}  // namespace mnist::serve
