// The WKD kind of upstream ([[upstream]] kind = "wkd"): an address's key from the address's own
// domain (Web Key Directory, hkp/wkd.hpp), the one source that speaks for the domain. It answers
// address lookups only (keys, and listings made from the keys: the fetch parses them on the
// pool); every other question is none of its business (Upstream::answers), submissions
// included.
//
//  - Where: the advanced place (openpgpkey.<domain>) first, the direct one (<domain>) only when
//    the advanced host cannot be reached at all (no such name, connection refused), as the
//    draft and GnuPG do. HTTPS only, certificate and host name verified like every upstream;
//    upstreams.resolve pins test or split-horizon hosts to addresses.
//  - A domain whose WKD cannot be used (unreachable, TLS failure, timeout, an unexpected status)
//    is remembered for absent_for and not asked again meanwhile. None of this is the
//    upstream's failure: the answer is "not found" (the keyservers are asked next), so one
//    broken domain never marks the kind unhealthy for every other one.
//  - Bounded: one HTTPS client per host for at most kMaxHosts hosts (an idle one is dropped to
//    make room), kMaxConnectionsPerHost connections each, kMaxAbsent remembered domains; new
//    hosts at kNewHostsPerSecond (burst kNewHostsBurst), past which a lookup is answered "busy"
//    and asked again next time. All clients share one TLS context (the system CA store loaded
//    once, not ~50 ms of CPU per new domain).
//  - Not a way into the gateway's own network: a name whose addresses are all loopback,
//    private, link-local or reserved (config::is_public_address) is not connected to, unless
//    allow_networks holds them or upstreams.resolve pins the host; names a resolver would read
//    as numbers ("127.0.0.0x5") are not domain names (config::valid_domain_name).
//  - Its own I/O thread ("hkpgw-wkd"): the names it resolves come from input, and Asio resolves
//    with one blocking getaddrinfo thread per I/O context. A domain whose DNS answers slowly
//    must only ever delay other WKD lookups, never a keyserver's connection or a cached answer.
//  - domains = [...] restricts it to those domains (asking a domain tells its owner who looks up
//    its addresses, and an address's domain is input: see docs/contract.md).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "gateway/upstream/upstream.hpp"

namespace hkpgw::gateway {

class WkdUpstream final : public Upstream {
 public:
  static constexpr std::size_t kMaxHosts = 256;
  static constexpr unsigned kMaxConnectionsPerHost = 2;
  static constexpr std::size_t kMaxAbsent = 10000;
  static constexpr double kNewHostsPerSecond = 20;
  static constexpr double kNewHostsBurst = 50;

  // `executor` is not used: the kind runs its own I/O context (see above).
  WkdUpstream(boost::asio::any_io_executor executor, config::UpstreamConfig upstream,
              const config::UpstreamsConfig& all);
  ~WkdUpstream() override;

  const config::UpstreamConfig& config() const override { return upstream_; }
  bool keyserver() const override { return false; }
  bool answers(const UpstreamQuery& query) const override;
  bool asked_first(const UpstreamQuery& query) const override {
    return upstream_.ask_first && answers(query);
  }
  boost::asio::awaitable<UpstreamAnswer> keys(const hkp::Search& search, UpstreamLimits limits,
                                              std::shared_ptr<CancelToken> cancel) override;
  // Refused without a request (HTTP 405 in the answer): a domain's directory takes no uploads.
  boost::asio::awaitable<UpstreamAnswer> submit(std::string_view packets,
                                                UpstreamLimits limits) override;
  // Local: there is no one server to probe; always alive.
  boost::asio::awaitable<UpstreamAnswer> probe(UpstreamLimits limits) override;
  bool same_settings(const config::UpstreamConfig& u,
                     const config::UpstreamsConfig& all) const override;
  std::size_t open_connections() const override;
  std::uint64_t resumed_handshakes() const override;

 private:
  // The client for `host`; null when new hosts come faster than kNewHostsPerSecond.
  std::shared_ptr<HttpsClient> client_for(const std::string& host);
  bool remembered_absent(const std::string& domain);
  void remember_absent(const std::string& domain, const UpstreamAnswer& why);

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  config::UpstreamConfig upstream_;
  std::string shared_ca_file_;
  std::vector<config::ResolveEntry> resolve_;
  mutable std::mutex mutex_;  // guards clients_ and absent_
  std::unordered_map<std::string, std::shared_ptr<HttpsClient>> clients_;  // by host
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> absent_;  // until
  std::uint64_t retired_resumed_ = 0;  // resumed handshakes of dropped clients
  std::shared_ptr<boost::asio::ssl::context> tls_;  // shared by every client
  double new_host_tokens_ = kNewHostsBurst;
  std::chrono::steady_clock::time_point new_host_refill_ = std::chrono::steady_clock::now();
};

}  // namespace hkpgw::gateway
