// What the kinds that talk to one configured server share (HKP and VKS; WKD asks many): the
// HttpsClient built from the [[upstream]] table and upstreams.resolve, the health probe, the
// transport figures, and reuse across reloads (same_settings: the kind included, so a table
// whose kind changed gets a new upstream of the new kind).
#pragma once

#include "gateway/upstream/upstream.hpp"

namespace hkpgw::gateway {

class ServerUpstream : public Upstream {
 public:
  const config::UpstreamConfig& config() const override { return upstream_; }
  boost::asio::awaitable<UpstreamAnswer> probe(UpstreamLimits limits) override;
  bool same_settings(const config::UpstreamConfig& u,
                     const config::UpstreamsConfig& all) const override;
  std::size_t open_connections() const override { return client_.open_connections(); }
  std::uint64_t resumed_handshakes() const override { return client_.resumed_handshakes(); }

 protected:
  // Throws std::runtime_error when a CA file cannot be loaded.
  ServerUpstream(boost::asio::any_io_executor executor, config::UpstreamConfig upstream,
                 const config::UpstreamsConfig& all);

  // GET and POST on the server, as answers (no entries).
  boost::asio::awaitable<UpstreamAnswer> get(std::string target, UpstreamLimits limits,
                                             std::shared_ptr<CancelToken> cancel);
  boost::asio::awaitable<UpstreamAnswer> post(std::string path, std::string body,
                                              std::string_view content_type, UpstreamLimits limits);

 private:
  config::UpstreamConfig upstream_;
  std::string shared_ca_file_;
  HttpsClient client_;
};

}  // namespace hkpgw::gateway
