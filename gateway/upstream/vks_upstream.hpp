// The VKS kind of upstream ([[upstream]] kind = "vks"): a keyserver speaking Hagrid's VKS API
// (keys.openpgp.org) over HTTPS. Lookups by fingerprint, 64-bit key ID and exact address
// (/vks/v1/by-*); listings are made from the keys (VKS has no index: the fetch lists them on the
// work pool); submissions are JSON uploads whose answer (Hagrid's key_fpr, status, token) goes
// back to the client that uploaded; request-verify is relayed for the tokens it issued. Short
// key IDs and free text are not asked (VKS answers neither).
#pragma once

#include "gateway/upstream/server_upstream.hpp"

namespace hkpgw::gateway {

class VksUpstream final : public ServerUpstream {
 public:
  VksUpstream(boost::asio::any_io_executor executor, config::UpstreamConfig upstream,
              const config::UpstreamsConfig& all)
      : ServerUpstream(std::move(executor), std::move(upstream), all) {}

  bool answers(const UpstreamQuery& query) const override;
  boost::asio::awaitable<UpstreamAnswer> keys(const hkp::Search& search, UpstreamLimits limits,
                                              std::shared_ptr<CancelToken> cancel) override;
  boost::asio::awaitable<UpstreamAnswer> submit(std::string_view packets,
                                                UpstreamLimits limits) override;
  boost::asio::awaitable<UpstreamAnswer> request_verify(std::string json,
                                                        UpstreamLimits limits) override;

  // The request target of a key lookup, for tests: /vks/v1/by-fingerprint/<FPR> and so on.
  static std::string keys_target(const hkp::Search& search);
};

}  // namespace hkpgw::gateway
