// The HKP kind of upstream: a keyserver speaking HKP over HTTPS (/pks/lookup, /pks/add). Turns
// each question into the request real keyservers answer best: machine-readable output, exact
// match for addresses, fingerprints in listings; parses listings (bounded, hkp/index.hpp).
#pragma once

#include "gateway/upstream/upstream.hpp"

namespace hkpgw::gateway {

class HkpUpstream final : public Upstream {
 public:
  HkpUpstream(boost::asio::any_io_executor executor, config::UpstreamConfig upstream,
              const config::UpstreamsConfig& all);

  const config::UpstreamConfig& config() const override { return upstream_; }
  boost::asio::awaitable<UpstreamAnswer> keys(const hkp::Search& search, UpstreamLimits limits,
                                              std::shared_ptr<CancelToken> cancel) override;
  boost::asio::awaitable<UpstreamAnswer> index(const hkp::Search& search, UpstreamLimits limits,
                                               std::shared_ptr<CancelToken> cancel) override;
  boost::asio::awaitable<UpstreamAnswer> submit(std::string_view packets,
                                                UpstreamLimits limits) override;
  boost::asio::awaitable<UpstreamAnswer> probe(UpstreamLimits limits) override;
  bool same_settings(const config::UpstreamConfig& u,
                     const config::UpstreamsConfig& all) const override;
  std::size_t open_connections() const override { return client_.open_connections(); }
  std::uint64_t resumed_handshakes() const override { return client_.resumed_handshakes(); }

  // The request targets, for tests and the fuzzers: what each question becomes on the wire.
  static std::string keys_target(const hkp::Search& search);
  static std::string index_target(const hkp::Search& search);

 private:
  boost::asio::awaitable<UpstreamAnswer> get(std::string target, UpstreamLimits limits,
                                             std::shared_ptr<CancelToken> cancel);

  config::UpstreamConfig upstream_;
  std::string shared_ca_file_;
  HttpsClient client_;
};

}  // namespace hkpgw::gateway
