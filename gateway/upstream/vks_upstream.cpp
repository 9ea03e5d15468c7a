#include "gateway/upstream/vks_upstream.hpp"

#include "hkp/armor.hpp"
#include "hkp/text.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using hkp::SearchKind;

namespace {

constexpr std::string_view kJson = "application/json";

HttpsClientOptions client_options(const config::UpstreamConfig& u,
                                  const config::UpstreamsConfig& all) {
  HttpsClientOptions o{u.name, u.endpoint, {all.ca_file, u.ca_file}, all.max_connections, {}, 0};
  if (const auto* pin = all.pinned(u.endpoint.host, u.endpoint.port)) {
    o.connect_address = pin->address;
    o.connect_port = pin->connect_port;
  }
  return o;
}

}  // namespace

VksUpstream::VksUpstream(asio::any_io_executor executor, config::UpstreamConfig upstream,
                         const config::UpstreamsConfig& all)
    : upstream_(std::move(upstream)),
      shared_ca_file_(all.ca_file),
      client_(std::move(executor), client_options(upstream_, all)) {}

bool VksUpstream::same_settings(const config::UpstreamConfig& u,
                                const config::UpstreamsConfig& all) const {
  const auto& o = upstream_;
  const HttpsClientOptions& have = client_.options();
  const HttpsClientOptions want = client_options(u, all);
  return o.name == u.name && o.kind == u.kind && o.url == u.url && o.ca_file == u.ca_file &&
         o.probe == u.probe && shared_ca_file_ == all.ca_file &&
         have.max_connections == want.max_connections &&
         have.connect_address == want.connect_address && have.connect_port == want.connect_port;
}

bool VksUpstream::answers(const UpstreamQuery& query) const {
  if (query.what == UpstreamQuery::What::submit) return true;
  const SearchKind k = query.search.kind;
  return k == SearchKind::fingerprint || k == SearchKind::long_keyid || k == SearchKind::email;
}

std::string VksUpstream::keys_target(const hkp::Search& search) {
  switch (search.kind) {
    case SearchKind::fingerprint: return "/vks/v1/by-fingerprint/" + search.value;
    case SearchKind::long_keyid: return "/vks/v1/by-keyid/" + search.value;
    default: return "/vks/v1/by-email/" + hkp::percent_encode(search.value);
  }
}

asio::awaitable<UpstreamAnswer> VksUpstream::keys(const hkp::Search& search, UpstreamLimits limits,
                                                  std::shared_ptr<CancelToken> cancel) {
  std::string target = keys_target(search);  // named: no temporary across co_await (GCC 12)
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) = co_await client_.get(std::move(target), limits, std::move(cancel));
  co_return a;
}

asio::awaitable<UpstreamAnswer> VksUpstream::index(const hkp::Search& search, UpstreamLimits limits,
                                                   std::shared_ptr<CancelToken> cancel) {
  UpstreamAnswer a = co_await keys(search, limits, std::move(cancel));
  a.keys_to_list = a.outcome == Outcome::ok;
  co_return a;
}

asio::awaitable<UpstreamAnswer> VksUpstream::submit(std::string_view packets,
                                                    UpstreamLimits limits) {
  std::string body = "{\"keytext\":" + hkp::json_string(hkp::armor_public_keys(packets)) + "}";
  std::string path = "/vks/v1/upload";
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) =
      co_await client_.post(std::move(path), std::move(body), kJson, limits);
  co_return a;
}

asio::awaitable<UpstreamAnswer> VksUpstream::request_verify(std::string json,
                                                            UpstreamLimits limits) {
  std::string path = "/vks/v1/request-verify";
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) =
      co_await client_.post(std::move(path), std::move(json), kJson, limits);
  co_return a;
}

asio::awaitable<UpstreamAnswer> VksUpstream::probe(UpstreamLimits limits) {
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) = co_await client_.get(upstream_.probe, limits, nullptr);
  co_return a;
}

}  // namespace hkpgw::gateway
