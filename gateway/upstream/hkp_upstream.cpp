#include "gateway/upstream/hkp_upstream.hpp"

#include "hkp/armor.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
constexpr std::string_view kForm = "application/x-www-form-urlencoded";

namespace {

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

HkpUpstream::HkpUpstream(asio::any_io_executor executor, config::UpstreamConfig upstream,
                         const config::UpstreamsConfig& all)
    : upstream_(std::move(upstream)),
      shared_ca_file_(all.ca_file),
      client_(std::move(executor), client_options(upstream_, all)) {}

bool HkpUpstream::same_settings(const config::UpstreamConfig& u,
                                const config::UpstreamsConfig& all) const {
  const auto& o = upstream_;
  const HttpsClientOptions& have = client_.options();
  const HttpsClientOptions want = client_options(u, all);
  return o.name == u.name && o.url == u.url && o.ca_file == u.ca_file && o.probe == u.probe &&
         shared_ca_file_ == all.ca_file && have.max_connections == want.max_connections &&
         have.connect_address == want.connect_address && have.connect_port == want.connect_port;
}

std::string HkpUpstream::keys_target(const hkp::Search& search) {
  std::string target =
      "/pks/lookup?op=get&options=mr&search=" + hkp::percent_encode(search.upstream_form());
  if (search.kind == hkp::SearchKind::email) target += "&exact=on";
  return target;
}

std::string HkpUpstream::index_target(const hkp::Search& search) {
  return "/pks/lookup?op=index&options=mr&fingerprint=on&search=" +
         hkp::percent_encode(search.value);
}

asio::awaitable<UpstreamAnswer> HkpUpstream::get(std::string target, UpstreamLimits limits,
                                                 std::shared_ptr<CancelToken> cancel) {
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) = co_await client_.get(std::move(target), limits, std::move(cancel));
  co_return a;
}

asio::awaitable<UpstreamAnswer> HkpUpstream::keys(const hkp::Search& search,
                                                  UpstreamLimits limits,
                                                  std::shared_ptr<CancelToken> cancel) {
  UpstreamAnswer a = co_await get(keys_target(search), limits, std::move(cancel));
  co_return a;
}

asio::awaitable<UpstreamAnswer> HkpUpstream::index(const hkp::Search& search,
                                                   UpstreamLimits limits,
                                                   std::shared_ptr<CancelToken> cancel) {
  UpstreamAnswer a = co_await get(index_target(search), limits, std::move(cancel));
  if (a.outcome != Outcome::ok) co_return a;
  auto entries = hkp::parse_mr_index(a.body);
  if (!entries) {
    a.outcome = Outcome::bad_response;
    a.detail = name() + ": " + entries.error().message();
  } else if (entries->empty()) {
    a.outcome = Outcome::not_found;  // an empty listing is "nothing found"
  } else {
    a.entries = std::move(*entries);
  }
  a.body.clear();
  co_return a;
}

asio::awaitable<UpstreamAnswer> HkpUpstream::submit(std::string_view packets,
                                                    UpstreamLimits limits) {
  std::string body = "keytext=" + hkp::percent_encode(hkp::armor_public_keys(packets));
  std::string path = "/pks/add";
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) = co_await client_.post(std::move(path), std::move(body), kForm, limits);
  co_return a;
}

asio::awaitable<UpstreamAnswer> HkpUpstream::probe(UpstreamLimits limits) {
  UpstreamAnswer a = co_await get(upstream_.probe, limits, nullptr);
  co_return a;
}

}  // namespace hkpgw::gateway
