// The transport of http.h on Boost.Beast: an acceptor, one asynchronous session per connection,
// a pool of workers for job routes. Why Beast and not cpp-httplib: docs/serving.md.

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "mnist/core/error.h"
#include "mnist/serve/http.h"
#include "mnist/serve/metrics.h"

namespace mnist::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

// A request refused with its body unread is closed "lingering": the answer is sent, the sending
// side shut, and what the client still sends is read and dropped (into a small buffer: no memory)
// for a bounded time, so that a client that sends its whole body before reading reads the answer
// instead of a reset (as nginx's lingering_close).
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr size_t kLingerBytes = 64u << 20;

/// The workers of job routes, with admission: a request reserves a place (running or waiting)
/// before its body is read, so a full pool is answered 503 without reading anything more.
class JobPool {
 public:
  JobPool(int workers, int queue) : capacity_(static_cast<size_t>(workers + queue)) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~JobPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_) t.join();
  }
  /// A place for one more job, or false when every place is taken.
  bool reserve() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (places_ >= capacity_) return false;
    ++places_;
    return true;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    --places_;
  }
  /// Runs `job` on a worker; the caller holds a reserved place (released by the job's owner).
  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  void work() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      try {
        job();  // the job answers its own errors; this is for the rest (posting its answer)
      } catch (...) {
        std::fprintf(stderr, "warning: a server job failed\n");
      }
    }
  }
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  size_t places_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// Memory for bodies being received or waiting, counted as their bytes arrive (a body is read into
/// a buffer that grows with it, not one sized by its declared length: a client that declares 8 MiB
/// and sends a byte a second holds a byte, not 8 MiB of everyone's budget). Given back when the
/// request is answered.
class BodyBudget {
 public:
  explicit BodyBudget(size_t bytes) : free_(bytes) {}
  bool take(size_t n) {
    size_t f = free_.load();
    do {
      if (f < n) return false;
    } while (!free_.compare_exchange_weak(f, f - n));
    return true;
  }
  void give(size_t n) { free_ += n; }
  size_t available() const { return free_.load(); }

 private:
  std::atomic<size_t> free_;
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string str(beast::string_view v) {
  return std::string(v.data(), v.size());
}

/// Raises the soft limit on open files so that `connections` fit (with room for the process' own
/// files); returns the number of connections that fit.
int fit_open_files(int connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return connections;
  const rlim_t want = static_cast<rlim_t>(connections) + 128;
  if (lim.rlim_cur < want) {
    lim.rlim_cur = std::min(want, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur >= want) return connections;
  return std::max(1, static_cast<int>(lim.rlim_cur) - 128);
}

}  // namespace

struct HttpServer::Impl {
  Impl(std::vector<Route> r, const HttpLimits& l, ServerMetrics& m,
       std::function<void(const HttpRequest&, HttpResponse&)> d)
      : routes(std::move(r)),
        limits(l),
        metrics(m),
        decorate(std::move(d)),
        budget(l.body_budget_bytes),
        acceptor(ioc),
        retry(ioc),
        drain(ioc),
        pool(l.workers, l.queue) {}

  ~Impl() { destroying = true; }

  class Session;

  const std::vector<Route> routes;
  HttpLimits limits;
  ServerMetrics& metrics;
  std::function<void(const HttpRequest&, HttpResponse&)> decorate;
  BodyBudget budget;
  std::atomic<bool> stopping{false};
  std::atomic<bool> destroying{false};
  std::atomic<int> open{0};
  std::mutex sessions_mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  // Destroyed in reverse order: the workers first (their jobs hold sessions), then the I/O.
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // accept() failed (out of files): try again shortly
  asio::steady_timer drain;  // stop(): the deadline for the requests in flight
  JobPool pool;

  void accept();
  void refuse(tcp::socket socket);
  void session_ended();
  void begin_stop();
  /// The route for `path` and `method` (HEAD finds GET); `path_known` says whether any has the
  /// path.
  const Route* find(const std::string& path, const std::string& method, bool* path_known,
                    std::string* allow) const;
  /// `route`'s handler inside the catch-all.
  HttpResponse call(const Route& route, const HttpRequest& req);
};

HttpResponse HttpServer::Impl::call(const Route& route, const HttpRequest& req) {
  try {
    return route.handle(req);
  } catch (const ApiError& e) {
    return error_response(e);
  } catch (const std::bad_alloc&) {
    metrics.count_internal_error();
    return error_response(503, "out of memory; try a smaller image");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: request %s failed: %s\n", log_text(req.target).c_str(),
                 log_text(e.what()).c_str());
  } catch (...) {
    std::fprintf(stderr, "warning: request %s failed\n", log_text(req.target).c_str());
  }
  metrics.count_internal_error();
  return error_response(500, "internal error");
}

const Route* HttpServer::Impl::find(const std::string& path, const std::string& method,
                                    bool* path_known, std::string* allow) const {
  const Route* hit = nullptr;
  *path_known = false;
  allow->clear();
  for (const auto& r : routes) {
    const bool match =
        r.prefix ? path.size() > r.path.size() && path.compare(0, r.path.size(), r.path) == 0
                 : r.path == path;
    if (!match) continue;
    *path_known = true;
    if (!allow->empty()) *allow += ", ";
    *allow += r.method == "GET" ? "GET, HEAD" : r.method;
    if (r.method == method || (method == "HEAD" && r.method == "GET")) hit = &r;
  }
  return hit;
}

/// One connection: read a header, check it, read the body (or refuse it), answer, repeat.
class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Impl& server) : stream_(std::move(socket)), server_(server) {}
  ~Session() {
    release();
    {
      std::lock_guard<std::mutex> lock(server_.sessions_mutex);
      server_.sessions.erase(this);
    }
    server_.session_ended();
  }

  void start() {
    error_code ignored;  // answers go out at once, not after the peer's delayed ACK
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    {
      std::lock_guard<std::mutex> lock(server_.sessions_mutex);
      server_.sessions[this] = weak_from_this();
    }
    read_header();
  }

  /// From stop(): an idle connection is closed now; one with a request in progress is closed
  /// after its answer.
  void request_stop() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->on_stop(); });
  }

 private:
  void on_stop() {
    if (awaiting_header_) {
      error_code ec;
      stream_.socket().cancel(ec);
    }
  }

  void read_header() {
    awaiting_header_ = true;
    if (server_.stopping) return close();
    req_ = HttpRequest();
    route_ = nullptr;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits.max_header_bytes));
    parser_->body_limit(server_.limits.max_body_bytes);
    arm(server_.limits.header_timeout_ms);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    awaiting_header_ = false;
    start_ = Clock::now();
    const bool timed_out = disarm();
    if (ec) {
      const bool started = parser_->got_some() || buffer_.size() > 0;
      if (timed_out) {
        if (!started || server_.stopping) return close();  // idle keep-alive connection
        return refuse(408, "the request's header did not arrive in time");
      }
      if (ec == http::error::body_limit) {  // a declared length over the limit
        return refuse(413, "request body larger than the limit of " +
                               std::to_string(server_.limits.max_body_bytes) + " bytes");
      }
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        return refuse(431, "request header larger than " +
                               std::to_string(server_.limits.max_header_bytes) + " bytes");
      }
      if (!started || ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset || ec == asio::error::eof) {
        return close();
      }
      return refuse(400, "malformed request: " + ec.message());
    }
    const auto& head = parser_->get();
    req_.method = str(head.method_string());
    req_.target = str(head.target());
    size_t count = 0;
    for (const auto& field : head) {
      if (++count > server_.limits.max_header_count) {
        return refuse(
            431, "more than " + std::to_string(server_.limits.max_header_count) + " header fields");
      }
      req_.headers.emplace_back(ascii_lower(str(field.name_string())), str(field.value()));
    }
    if (req_.target.size() > server_.limits.max_target_bytes) {
      return refuse(414, "request target longer than " +
                             std::to_string(server_.limits.max_target_bytes) + " bytes");
    }
    const auto q = req_.target.find('?');
    req_.path = percent_decode(std::string_view(req_.target).substr(0, q), false);
    if (q != std::string::npos) {
      std::string_view rest = std::string_view(req_.target).substr(q + 1);
      while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto item = rest.substr(0, amp);
        const auto eq = item.find('=');
        if (!item.empty()) {
          req_.query.emplace_back(
              percent_decode(item.substr(0, eq), true),
              eq == std::string_view::npos ? "" : percent_decode(item.substr(eq + 1), true));
        }
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      }
    }
    const bool has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
    bool known = false;
    std::string allow;
    route_ = server_.find(req_.path, req_.method, &known, &allow);
    if (!route_) {
      if (!known) return refuse(404, "no such route: " + req_.path.substr(0, 200), has_body);
      HttpResponse r = error_response(405, "method " + req_.method.substr(0, 20) +
                                               " is not allowed here (allowed: " + allow + ")");
      r.headers.emplace_back("Allow", allow);
      return answer(std::move(r), has_body);
    }
    if (!route_->takes_body) {
      if (has_body) return refuse(413, "this route takes no request body");
      if (!route_->job) return respond(server_.call(*route_, req_));
      if (!server_.pool.reserve()) return shed();
      has_place_ = true;
      return run_job();
    }
    admit();
  }

  /// An upload's checks, all before its body is read.
  void admit() {
    const HttpLimits& lim = server_.limits;
    const std::string encoding = req_.header("content-encoding");
    if (!encoding.empty() && !iequals(encoding, "identity")) {
      return refuse(415, "Content-Encoding \"" + encoding.substr(0, 40) +
                             "\" is not accepted: send the body uncompressed");
    }
    const auto length = parser_->content_length();
    if (!parser_->chunked() && !length) return refuse(411, "Content-Length required");
    if (length && *length > lim.max_body_bytes) {
      return refuse(413, "request body larger than the limit of " +
                             std::to_string(lim.max_body_bytes) + " bytes");
    }
    if (route_->admit) {
      std::optional<HttpResponse> refused;
      try {
        route_->admit(req_);
      } catch (const ApiError& e) {
        refused = error_response(e);
      } catch (...) {
        server_.metrics.count_internal_error();
        std::fprintf(stderr, "warning: request %s failed in its checks\n",
                     log_text(req_.target).c_str());
        refused = error_response(500, "internal error");
      }
      if (refused) return answer(std::move(*refused), true);
    }
    if (route_->job) {
      if (!server_.pool.reserve()) return shed();
      has_place_ = true;
    }
    // A declared length that does not fit now is refused before it is read; the memory itself is
    // taken as the bytes arrive (account()).
    if (length && *length > server_.budget.available()) return shed();
    if (iequals(req_.header("expect"), "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream_.expires_after(std::chrono::milliseconds(lim.write_timeout_ms));
      asio::async_write(stream_, asio::buffer(kContinue),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void shed() {
    server_.metrics.count_shed();
    HttpResponse r =
        error_response(503, "server busy: too many requests waiting; try again shortly");
    r.headers.emplace_back("Retry-After", "1");
    answer(std::move(r), true);
  }

  void read_body() {
    if (parser_->is_done()) return on_body({});  // an empty body (Content-Length: 0)
    arm(server_.limits.body_timeout_ms);         // one deadline for all of the reads below
    read_some();
  }

  void read_some() {
    http::async_read_some(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->on_some(ec); });
  }

  /// Takes the budget for the body bytes received so far; false when it is spent.
  bool account() {
    const size_t have = parser_->get().body().size();
    if (have > budget_) {
      if (!server_.budget.take(have - budget_)) return false;
      budget_ = have;
    }
    return true;
  }

  void on_some(error_code ec) {
    if (timed_out_) {
      disarm();
      return refuse(408, "the request's body did not arrive in time");
    }
    if (!ec && !parser_->is_done()) {
      if (!account()) {
        disarm();
        return shed();
      }
      return read_some();
    }
    disarm();
    on_body(ec);
  }

  void on_body(error_code ec) {
    if (ec == http::error::body_limit) {
      return refuse(413, "request body larger than the limit of " +
                             std::to_string(server_.limits.max_body_bytes) + " bytes");
    }
    if (ec == http::error::buffer_overflow) return refuse(400, "malformed chunked body");
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return close();
    }
    if (ec) return refuse(400, "malformed request body: " + ec.message());
    if (!account()) return shed();
    auto& received = parser_->get().body();
    req_.body = beast::buffers_to_string(received.data());
    received.consume(received.size());
    if (!route_->job) return respond(server_.call(*route_, req_));
    run_job();
  }

  /// The route's handler on a worker (the place in the pool is reserved), answered from the
  /// session's own thread.
  void run_job() {
    server_.pool.submit([self = shared_from_this()] {
      HttpResponse r = self->server_.call(*self->route_, self->req_);
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(r)]() mutable { self->respond(std::move(r)); });
    });
  }

  /// An answer after which the connection is closed, the body (if any) not read.
  void refuse(int status, const std::string& message, bool unread_body = true) {
    answer(error_response(status, message), unread_body);
  }

  void respond(HttpResponse r) { answer(std::move(r), false); }

  void answer(HttpResponse r, bool unread_body) {
    release();
    if (unread_body) r.close = true;
    server_.decorate(req_, r);
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    server_.metrics.observe_request(route_ ? route_->name : "other", r.status, seconds);

    const bool keep = !r.close && !server_.stopping && parser_ && parser_->is_header_done() &&
                      parser_->keep_alive() && ++served_ < server_.limits.keep_alive_requests;
    lingering_ = unread_body;
    res_ = {};
    res_.result(static_cast<unsigned>(r.status));
    res_.version(11);
    if (!r.content_type.empty()) res_.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res_.set(name, value);
    res_.body() = std::move(r.body);
    res_.prepare_payload();
    if (req_.method == "HEAD") res_.body().clear();  // Content-Length stays
    res_.keep_alive(keep);
    stream_.expires_after(std::chrono::milliseconds(server_.limits.write_timeout_ms));
    http::async_write(stream_, res_, [self = shared_from_this(), keep](error_code ec, size_t) {
      if (ec) return self->close();
      if (!keep) return self->linger();
      self->read_header();
    });
  }

  /// A deadline for the whole of the next read (a header, a body), however many reads it takes.
  /// (tcp_stream's own time-out would close the socket, leaving no way to answer 408.)
  void arm(int ms) {
    stream_.expires_never();
    const uint64_t generation = ++deadline_generation_;
    timed_out_ = false;
    deadline_.expires_after(std::chrono::milliseconds(ms));
    deadline_.async_wait([self = shared_from_this(), generation](error_code ec) {
      if (ec || generation != self->deadline_generation_) return;  // disarmed meanwhile
      self->timed_out_ = true;
      error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }
  /// Ends the deadline of the read that just completed; true when it had passed.
  bool disarm() {
    ++deadline_generation_;
    deadline_.cancel();
    return timed_out_;
  }

  /// Shuts the sending side, then drops what the client still sends, for a bounded time.
  void linger() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!lingering_) return close();
    linger_deadline_ = Clock::now() + kLingerTime;
    drop();
  }

  void drop() {
    if (Clock::now() >= linger_deadline_ || dropped_ >= kLingerBytes) return close();
    stream_.expires_at(linger_deadline_);
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (ec) return self->close();
                              self->dropped_ += n;
                              self->drop();
                            });
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  /// Gives back the job place and the body memory this request held.
  void release() {
    if (has_place_) server_.pool.release();
    has_place_ = false;
    if (budget_ > 0) server_.budget.give(budget_);
    budget_ = 0;
  }

  beast::tcp_stream stream_;
  Impl& server_;
  asio::steady_timer deadline_{stream_.get_executor()};
  uint64_t deadline_generation_ = 0;
  bool timed_out_ = false;
  beast::flat_buffer buffer_{16 * 1024};
  std::optional<http::request_parser<http::dynamic_body>> parser_;
  http::response<http::string_body> res_;
  HttpRequest req_;
  const Route* route_ = nullptr;
  Clock::time_point start_ = Clock::now();
  bool awaiting_header_ = true;  // idle or reading a header: what stop() closes at once
  int served_ = 0;
  bool has_place_ = false;
  size_t budget_ = 0;
  bool lingering_ = false;
  Clock::time_point linger_deadline_;
  size_t dropped_ = 0;
  std::array<char, 4096> scratch_{};
};

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
    if (stopping || !acceptor.is_open()) return;
    if (ec) {
      // Out of file descriptors or memory: wait a little rather than spin.
      retry.expires_after(std::chrono::milliseconds(50));
      retry.async_wait([this](error_code) {
        if (!stopping) accept();
      });
      return;
    }
    if (open >= limits.max_connections) {
      refuse(std::move(socket));
    } else {
      ++open;
      metrics.connection_opened();
      std::make_shared<Session>(std::move(socket), *this)->start();
    }
    accept();
  });
}

void HttpServer::Impl::refuse(tcp::socket socket) {
  // Too many open connections: a canned 503, written without waiting, and closed.
  metrics.count_connection_refused();
  static const std::string kFull =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: 59\r\n\r\n"
      "{\"error\":\"server busy: too many open connections; retry\"}\n";
  error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(kFull), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void HttpServer::Impl::session_ended() {
  if (destroying) return;  // sessions held by handlers the io_context drops as it goes
  metrics.connection_closed();
  if (--open == 0 && stopping) {
    asio::post(ioc, [this] { drain.cancel(); });
  }
}

void HttpServer::Impl::begin_stop() {
  error_code ec;
  acceptor.close(ec);
  retry.cancel();
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    for (auto& [raw, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->request_stop();
  if (open == 0) return;
  drain.expires_after(std::chrono::milliseconds(limits.drain_timeout_ms));
  drain.async_wait([this](error_code e) {
    if (e) return;  // cancelled: every connection ended in time
    std::fprintf(stderr, "warning: %d connection(s) still open after the drain deadline; closed\n",
                 open.load());
    ioc.stop();
  });
}

HttpServer::HttpServer(std::vector<Route> routes, const HttpLimits& limits, ServerMetrics& metrics,
                       std::function<void(const HttpRequest&, HttpResponse&)> decorate)
    : impl_(std::make_shared<Impl>(std::move(routes), limits, metrics, std::move(decorate))) {
  if (limits.workers < 1 || limits.io_threads < 1 || limits.queue < 0 ||
      limits.max_connections < 1 || limits.max_body_bytes < 1) {
    throw UsageError(
        "server limits: workers, I/O threads, connections and body size must be "
        "positive, the queue 0 or more");
  }
  const int fit = fit_open_files(limits.max_connections);
  if (fit < limits.max_connections) {
    std::fprintf(stderr,
                 "warning: --max-connections %d is more than the open-file limit allows; using "
                 "%d (raise it with ulimit -n)\n",
                 limits.max_connections, fit);
    impl_->limits.max_connections = fit;
  }
}

HttpServer::~HttpServer() = default;

int HttpServer::bind(const std::string& host, int port) {
  auto& a = impl_->acceptor;
  const std::string where = host + ":" + std::to_string(port);
  error_code ec;
  const auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) throw UsageError("--host: \"" + host + "\" is not an IP address of this machine");
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw RunError(where + ": cannot listen there (" + ec.message() +
                   "; the port is in use, or the address is not one of this machine's)");
  }
  return a.local_endpoint().port();
}

void HttpServer::run() {
  auto& s = *impl_;
  if (s.stopping) return;
  s.accept();
  auto loop = [&s] {
    while (true) {
      try {
        s.ioc.run();
        return;
      } catch (const std::exception& e) {  // a bug in a completion handler: not the end
        s.metrics.count_internal_error();
        std::fprintf(stderr, "warning: server I/O failed: %s\n", log_text(e.what()).c_str());
      } catch (...) {
        s.metrics.count_internal_error();
        std::fprintf(stderr, "warning: server I/O failed\n");
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < s.limits.io_threads; ++i) threads.emplace_back(loop);
  loop();
  for (auto& t : threads) t.join();
}

void HttpServer::stop() {
  auto& s = *impl_;
  if (s.stopping.exchange(true)) return;
  asio::post(s.ioc, [&s] { s.begin_stop(); });
}

}  // namespace mnist::serve
