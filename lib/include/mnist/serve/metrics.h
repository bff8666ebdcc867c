#pragma once
// The server's counters, rendered in Prometheus' text exposition format for GET /metrics:
//   mnist_http_requests_total{route,status}            counter
//   mnist_http_request_duration_seconds{route}         histogram (_bucket{le}, _sum, _count)
//   mnist_predictions_total{model,class}               counter
//   mnist_http_requests_shed_total                     counter (503: work queue or body memory
//   full) mnist_http_internal_errors_total                   counter (500: a handler failed)
//   mnist_http_connections_refused_total               counter (503: too many open connections)
//   mnist_http_open_connections                        gauge
//   mnist_uptime_seconds                               gauge
// Routes are the server's fixed route names (unknown paths count as "other"), so the label set
// stays bounded whatever clients send. Thread-safe.

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace mnist::serve {

class ServerMetrics {
 public:
  ServerMetrics();

  /// One answered request: its route name, HTTP status and wall time in the handler.
  void observe_request(const std::string& route, int status, double seconds);
  /// One prediction answered by `model` with class name `label`.
  void count_prediction(const std::string& model, const std::string& label);
  void count_shed();
  void count_internal_error();
  void count_connection_refused();
  void connection_opened();
  void connection_closed();

  /// The exposition text (content type "text/plain; version=0.0.4").
  std::string render() const;

  /// The histogram's upper bounds in seconds (the +Inf bucket is implicit).
  static const std::vector<double>& buckets();

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; one more for +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::tuple<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::tuple<std::string, std::string>, uint64_t> predictions_;
  uint64_t shed_ = 0;
  uint64_t internal_errors_ = 0;
  uint64_t connections_refused_ = 0;
  int64_t open_connections_ = 0;
};

/// `value` escaped for a Prometheus label (backslash, double quote, newline).
std::string prometheus_label(const std::string& value);

}  // namespace mnist::serve
