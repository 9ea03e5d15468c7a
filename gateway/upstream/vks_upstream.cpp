#include "gateway/upstream/vks_upstream.hpp"

#include "hkp/armor.hpp"
#include "hkp/json.hpp"
#include "hkp/text.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
using hkp::SearchKind;

namespace {

constexpr std::string_view kJson = "application/json";

}  // namespace

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
  UpstreamAnswer a = co_await get(std::move(target), limits, std::move(cancel));
  co_return a;
}

asio::awaitable<UpstreamAnswer> VksUpstream::submit(std::string_view packets,
                                                    UpstreamLimits limits) {
  std::string body = hkp::json_body({{"keytext", hkp::armor_public_keys(packets)}});
  std::string path = "/vks/v1/upload";
  UpstreamAnswer a = co_await post(std::move(path), std::move(body), kJson, limits);
  co_return a;
}

asio::awaitable<UpstreamAnswer> VksUpstream::request_verify(std::string json,
                                                            UpstreamLimits limits) {
  std::string path = "/vks/v1/request-verify";
  UpstreamAnswer a = co_await post(std::move(path), std::move(json), kJson, limits);
  co_return a;
}

}  // namespace hkpgw::gateway
