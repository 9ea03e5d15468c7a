#include "gateway/upstream/upstream.hpp"

#include "gateway/upstream/hkp_upstream.hpp"
#include "gateway/upstream/vks_upstream.hpp"
#include "gateway/upstream/wkd_upstream.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

asio::awaitable<UpstreamAnswer> Upstream::ask(const UpstreamQuery& query, UpstreamLimits limits,
                                              std::shared_ptr<CancelToken> cancel) {
  // Named results: one co_await per statement (GCC 12, ARCHITECTURE.md).
  UpstreamAnswer a;
  switch (query.what) {
    case UpstreamQuery::What::keys: a = co_await keys(query.search, limits, std::move(cancel)); break;
    case UpstreamQuery::What::index: a = co_await index(query.search, limits, std::move(cancel)); break;
    case UpstreamQuery::What::submit: a = co_await submit(query.packets, limits); break;
  }
  co_return a;
}

asio::awaitable<UpstreamAnswer> Upstream::index(const hkp::Search& search, UpstreamLimits limits,
                                                std::shared_ptr<CancelToken> cancel) {
  UpstreamAnswer a = co_await keys(search, limits, std::move(cancel));
  a.keys_to_list = a.outcome == Outcome::ok;
  co_return a;
}

namespace {

// What a kind answers, without a request, for a question it has no way to ask.
UpstreamAnswer not_served(std::string detail) {
  UpstreamAnswer a;
  a.outcome = Outcome::http_error;
  a.status = 501;
  a.detail = std::move(detail);
  return a;
}

}  // namespace

asio::awaitable<UpstreamAnswer> Upstream::request_verify(std::string, UpstreamLimits) {
  co_return not_served(name() + " speaks no VKS: it issues no tokens");
}

asio::awaitable<UpstreamAnswer> Upstream::prefix_log(std::string, UpstreamLimits) {
  co_return not_served(name() + " serves no prefix log");
}

// The one place that knows every kind: a new kind is a case here and a class of its own.
std::shared_ptr<Upstream> make_upstream(asio::any_io_executor executor,
                                        const config::UpstreamConfig& u,
                                        const config::UpstreamsConfig& all) {
  switch (u.kind) {
    case config::UpstreamKind::wkd:
      return std::make_shared<WkdUpstream>(std::move(executor), u, all);
    case config::UpstreamKind::vks:
      return std::make_shared<VksUpstream>(std::move(executor), u, all);
    case config::UpstreamKind::hkp: break;
  }
  return std::make_shared<HkpUpstream>(std::move(executor), u, all);
}

}  // namespace hkpgw::gateway
