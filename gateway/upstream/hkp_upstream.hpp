// The HKP kind of upstream: a keyserver speaking HKP over HTTPS (/pks/lookup, /pks/add). Turns
// each question into the request real keyservers answer best: machine-readable output, exact
// match for addresses, fingerprints in listings; parses listings (bounded, hkp/index.hpp).
#pragma once

#include "gateway/upstream/server_upstream.hpp"

namespace hkpgw::gateway {

class HkpUpstream final : public ServerUpstream {
 public:
  HkpUpstream(boost::asio::any_io_executor executor, config::UpstreamConfig upstream,
              const config::UpstreamsConfig& all)
      : ServerUpstream(std::move(executor), std::move(upstream), all) {}

  boost::asio::awaitable<UpstreamAnswer> keys(const hkp::Search& search, UpstreamLimits limits,
                                              std::shared_ptr<CancelToken> cancel) override;
  boost::asio::awaitable<UpstreamAnswer> index(const hkp::Search& search, UpstreamLimits limits,
                                               std::shared_ptr<CancelToken> cancel) override;
  boost::asio::awaitable<UpstreamAnswer> submit(std::string_view packets,
                                                UpstreamLimits limits) override;
  boost::asio::awaitable<UpstreamAnswer> prefix_log(std::string date,
                                                    UpstreamLimits limits) override;

  // The request targets, for tests and the fuzzers: what each question becomes on the wire.
  static std::string keys_target(const hkp::Search& search);
  static std::string index_target(const hkp::Search& search);
};

}  // namespace hkpgw::gateway
