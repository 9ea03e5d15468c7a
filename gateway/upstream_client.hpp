// HTTPS client for one upstream keyserver. Always TLS 1.2+, SNI set, peer certificate and host
// name verified (system store plus the configured CA files). Keeps a few idle keep-alive
// connections and retries once on a fresh connection when a reused one turns out dead.
//
// Never throws from get(): every failure is an Outcome, which the caller turns into failover and
// health bookkeeping.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace hkpgw::gateway {

enum class Outcome {
  ok,             // 200 with a body
  not_found,      // 404: the upstream does not have it
  timeout,        // connect, TLS or response deadline passed
  connect_error,  // DNS, refused, reset
  tls_error,      // handshake failed: certificate not trusted, wrong host name, protocol
  http_error,     // 5xx or another unexpected status
  bad_response,   // malformed HTTP, too large, or content that does not hold up
};

const char* outcome_name(Outcome o);
// True for outcomes that say something about the upstream's health (not 404, not bad content).
bool is_failure(Outcome o);

struct UpstreamResponse {
  Outcome outcome = Outcome::connect_error;
  unsigned status = 0;
  std::string body;
  std::string detail;  // one line for logs and the 503 message
  std::chrono::microseconds elapsed{0};
};

struct UpstreamLimits {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_response_bytes = 8 << 20;
};

class UpstreamClient {
 public:
  // Throws std::runtime_error when a CA file cannot be loaded.
  UpstreamClient(boost::asio::any_io_executor executor, config::UpstreamConfig upstream,
                 const std::string& shared_ca_file);
  ~UpstreamClient();

  const config::UpstreamConfig& config() const { return upstream_; }
  const std::string& name() const { return upstream_.name; }

  // GET base_path + path_and_query. Thread-safe; many requests may run at once.
  boost::asio::awaitable<UpstreamResponse> get(std::string path_and_query, UpstreamLimits limits);

 private:
  struct Connection;
  // Runs on `conn`'s own strand (see get()); `conn` null = open a new connection.
  boost::asio::awaitable<UpstreamResponse> attempt(std::string target, UpstreamLimits limits,
                                                   std::unique_ptr<Connection> conn,
                                                   boost::asio::any_io_executor strand);
  std::unique_ptr<Connection> take_idle();
  void give_back(std::unique_ptr<Connection> c);

  boost::asio::any_io_executor executor_;
  config::UpstreamConfig upstream_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::string host_header_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace hkpgw::gateway
