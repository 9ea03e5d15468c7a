#include "gateway/upstream/hkp_upstream.hpp"

#include "hkp/armor.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
constexpr std::string_view kForm = "application/x-www-form-urlencoded";

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

asio::awaitable<UpstreamAnswer> HkpUpstream::keys(const hkp::Search& search,
                                                  UpstreamLimits limits,
                                                  std::shared_ptr<CancelToken> cancel) {
  std::string target = keys_target(search);  // named: no temporary across co_await (GCC 12)
  UpstreamAnswer a = co_await get(std::move(target), limits, std::move(cancel));
  co_return a;
}

asio::awaitable<UpstreamAnswer> HkpUpstream::index(const hkp::Search& search,
                                                   UpstreamLimits limits,
                                                   std::shared_ptr<CancelToken> cancel) {
  std::string target = index_target(search);
  UpstreamAnswer a = co_await get(std::move(target), limits, std::move(cancel));
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
  UpstreamAnswer a = co_await post(std::move(path), std::move(body), kForm, limits);
  co_return a;
}

asio::awaitable<UpstreamAnswer> HkpUpstream::prefix_log(std::string date, UpstreamLimits limits) {
  std::string target = "/pks/v2/prefixlog/" + date;  // named: no temporary across co_await
  UpstreamAnswer a = co_await get(std::move(target), limits, nullptr);
  co_return a;
}

}  // namespace hkpgw::gateway
