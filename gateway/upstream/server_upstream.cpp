#include "gateway/upstream/server_upstream.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

HttpsClientOptions client_options(const config::UpstreamConfig& u,
                                  const config::UpstreamsConfig& all) {
  HttpsClientOptions o;
  o.name = u.name;
  o.endpoint = u.endpoint;
  o.ca_files = {all.ca_file, u.ca_file};
  o.max_connections = all.max_connections;
  if (const auto* pin = all.pinned(u.endpoint.host, u.endpoint.port)) {
    o.connect_address = pin->address;
    o.connect_port = pin->connect_port;
  }
  return o;
}

}  // namespace

ServerUpstream::ServerUpstream(asio::any_io_executor executor, config::UpstreamConfig upstream,
                               const config::UpstreamsConfig& all)
    : upstream_(std::move(upstream)),
      shared_ca_file_(all.ca_file),
      client_(std::move(executor), client_options(upstream_, all)) {}

bool ServerUpstream::same_settings(const config::UpstreamConfig& u,
                                   const config::UpstreamsConfig& all) const {
  const auto& o = upstream_;
  const HttpsClientOptions& have = client_.options();
  const HttpsClientOptions want = client_options(u, all);
  return o.name == u.name && o.kind == u.kind && o.url == u.url && o.ca_file == u.ca_file &&
         o.probe == u.probe && shared_ca_file_ == all.ca_file &&
         have.max_connections == want.max_connections &&
         have.connect_address == want.connect_address && have.connect_port == want.connect_port;
}

asio::awaitable<UpstreamAnswer> ServerUpstream::get(std::string target, UpstreamLimits limits,
                                                    std::shared_ptr<CancelToken> cancel) {
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) =
      co_await client_.get(std::move(target), limits, std::move(cancel));
  co_return a;
}

asio::awaitable<UpstreamAnswer> ServerUpstream::post(std::string path, std::string body,
                                                     std::string_view content_type,
                                                     UpstreamLimits limits) {
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) =
      co_await client_.post(std::move(path), std::move(body), content_type, limits);
  co_return a;
}

asio::awaitable<UpstreamAnswer> ServerUpstream::probe(UpstreamLimits limits) {
  std::string target = upstream_.probe;
  UpstreamAnswer a = co_await get(std::move(target), limits, nullptr);
  co_return a;
}

}  // namespace hkpgw::gateway
