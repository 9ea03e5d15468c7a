#include "gateway/upstream/wkd_upstream.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include <algorithm>
#include <atomic>

#include "config/named_thread.hpp"
#include "gateway/net/tls.hpp"
#include "gateway/observe/log.hpp"
#include "hkp/wkd.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

UpstreamAnswer answer(Outcome outcome, unsigned status, std::string detail) {
  UpstreamAnswer a;
  a.outcome = outcome;
  a.status = status;
  a.detail = std::move(detail);
  return a;
}

// New domains faster than kNewHostsPerSecond: this one is not asked now (nor remembered as
// absent: it is asked again next time), and the keyservers answer.
UpstreamAnswer new_hosts_limited(const std::string& domain) {
  static std::atomic<std::int64_t> last_logged{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = last_logged.load();
  if (now - last >= 10 && last_logged.compare_exchange_strong(last, now)) {
    log::warn("wkd_new_domains_limited",
              {{"domain", domain},
               {"limit", std::to_string(static_cast<int>(WkdUpstream::kNewHostsPerSecond)) + "/s"},
               {"effect", "not asked now; the keyservers answer (this line at most every 10 s)"}});
  }
  return answer(Outcome::not_found, 404,
                "too many new WKD domains at once; " + domain + " not asked");
}

bool is_address_lookup(const UpstreamQuery& q) {
  return q.what != UpstreamQuery::What::submit && q.search.kind == hkp::SearchKind::email;
}

}  // namespace

WkdUpstream::WkdUpstream(asio::any_io_executor, config::UpstreamConfig upstream,
                         const config::UpstreamsConfig& all)
    : work_(asio::make_work_guard(io_)),
      upstream_(std::move(upstream)),
      shared_ca_file_(all.ca_file),
      resolve_(all.resolve) {
  // The CA files are loaded now: one that cannot be read fails the config load, not a lookup.
  tls_ = make_client_tls({shared_ca_file_, upstream_.ca_file});
  thread_ = named_thread("hkpgw-wkd", [this] { io_.run(); });
}

WkdUpstream::~WkdUpstream() {
  // The last reference goes with the last request or snapshot that held it, on a network thread
  // (a fetch holds its candidates until it ends; its coroutines resume on their own executor),
  // never on this kind's thread, whose handlers hold no reference to it.
  {
    std::lock_guard lock(mutex_);
    clients_.clear();  // their connections close on the thread below
  }
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

bool WkdUpstream::answers(const UpstreamQuery& query) const {
  if (!is_address_lookup(query)) return false;
  if (upstream_.domains.empty()) return true;
  const std::string& address = query.search.value;  // lower case
  const std::string domain = address.substr(address.rfind('@') + 1);
  return std::find(upstream_.domains.begin(), upstream_.domains.end(), domain) !=
         upstream_.domains.end();
}

bool WkdUpstream::same_settings(const config::UpstreamConfig& u,
                                const config::UpstreamsConfig& all) const {
  const auto& o = upstream_;
  return o.name == u.name && o.kind == u.kind && o.ca_file == u.ca_file &&
         o.domains == u.domains && o.ask_first == u.ask_first && o.absent_for == u.absent_for &&
         shared_ca_file_ == all.ca_file && resolve_ == all.resolve;
}

std::shared_ptr<HttpsClient> WkdUpstream::client_for(const std::string& host) {
  std::lock_guard lock(mutex_);
  if (auto it = clients_.find(host); it != clients_.end()) return it->second;
  const auto now = std::chrono::steady_clock::now();
  new_host_tokens_ = std::min(
      kNewHostsBurst,
      new_host_tokens_ + std::chrono::duration<double>(now - new_host_refill_).count() *
                             kNewHostsPerSecond);
  new_host_refill_ = now;
  if (new_host_tokens_ < 1) return nullptr;
  new_host_tokens_ -= 1;
  if (clients_.size() >= kMaxHosts) {
    // Room for the new host: drop one nobody is using (requests in flight hold their own
    // reference, so even a busy one could go; an idle one loses nothing but its connections).
    auto idle = std::find_if(clients_.begin(), clients_.end(),
                             [](const auto& c) { return c.second.use_count() == 1; });
    const auto gone = idle != clients_.end() ? idle : clients_.begin();
    retired_resumed_ += gone->second->resumed_handshakes();  // the count never goes back
    clients_.erase(gone);
  }
  HttpsClientOptions o;
  o.name = host;
  o.endpoint = config::UpstreamUrl{host, 443, ""};
  o.ca_files = {shared_ca_file_, upstream_.ca_file};
  o.max_connections = kMaxConnectionsPerHost;
  o.tls = tls_;
  o.allow_address = [allowed = upstream_.allow_networks](const asio::ip::address& a) {
    if (a.is_v4()) {
      const auto b = a.to_v4().to_bytes();
      return config::is_public_address(4, b.data()) || config::any_contains(allowed, 4, b.data());
    }
    const auto b = a.to_v6().to_bytes();
    return config::is_public_address(6, b.data()) || config::any_contains(allowed, 6, b.data());
  };
  for (const auto& e : resolve_) {
    if (e.host == host && e.port == 443) {
      o.connect_address = e.address;
      o.connect_port = e.connect_port;
    }
  }
  auto client = std::make_shared<HttpsClient>(io_.get_executor(), std::move(o));
  clients_.emplace(host, client);
  return client;
}

bool WkdUpstream::remembered_absent(const std::string& domain) {
  std::lock_guard lock(mutex_);
  const auto it = absent_.find(domain);
  if (it == absent_.end()) return false;
  if (it->second > std::chrono::steady_clock::now()) return true;
  absent_.erase(it);
  return false;
}

void WkdUpstream::remember_absent(const std::string& domain, const UpstreamAnswer& why) {
  if (upstream_.absent_for.count() <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (absent_.size() >= kMaxAbsent) {
      std::erase_if(absent_, [now](const auto& e) { return e.second <= now; });
      if (absent_.size() >= kMaxAbsent) absent_.erase(absent_.begin());
    }
    absent_[domain] = now + upstream_.absent_for;
  }
  // Once per domain per absent_for: bounded by the domains asked, not by the lookups.
  log::info("wkd_domain_absent",
            {{"upstream", name()},
             {"domain", domain},
             {"outcome", outcome_name(why.outcome)},
             {"detail", why.detail},
             {"effect", "not asked again for " +
                            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                               upstream_.absent_for)
                                               .count()) +
                            " s"}});
}

asio::awaitable<UpstreamAnswer> WkdUpstream::keys(const hkp::Search& search, UpstreamLimits limits,
                                                  std::shared_ptr<CancelToken> cancel) {
  const UpstreamQuery query{UpstreamQuery::What::keys, search, {}};
  const auto where = answers(query) ? hkp::wkd_urls(search.value) : std::nullopt;
  if (!where) co_return answer(Outcome::not_found, 404, "not an address this WKD upstream asks");
  if (remembered_absent(where->domain)) {
    co_return answer(Outcome::not_found, 404, where->domain + " has no usable WKD (remembered)");
  }
  std::shared_ptr<HttpsClient> advanced = client_for(where->advanced.host);
  if (!advanced) co_return new_hosts_limited(where->domain);
  std::string target = where->advanced.target;
  UpstreamAnswer a;
  static_cast<UpstreamResponse&>(a) = co_await advanced->get(std::move(target), limits, cancel);
  if (a.outcome == Outcome::connect_error) {  // no openpgpkey. host: the direct place
    std::shared_ptr<HttpsClient> direct = client_for(where->direct.host);
    if (!direct) co_return new_hosts_limited(where->domain);
    std::string direct_target = where->direct.target;
    static_cast<UpstreamResponse&>(a) =
        co_await direct->get(std::move(direct_target), limits, std::move(cancel));
  }
  switch (a.outcome) {
    case Outcome::ok:
    case Outcome::not_found:
    case Outcome::cancelled: co_return a;
    case Outcome::busy: break;  // ours, not the domain's: asked again next time
    default: remember_absent(where->domain, a);
  }
  a.outcome = Outcome::not_found;  // the domain's trouble is not this upstream's health
  a.body.clear();
  co_return a;
}

asio::awaitable<UpstreamAnswer> WkdUpstream::submit(std::string_view, UpstreamLimits) {
  co_return answer(Outcome::http_error, 405, name() + " is a WKD upstream: it takes no uploads");
}

asio::awaitable<UpstreamAnswer> WkdUpstream::probe(UpstreamLimits) {
  co_return answer(Outcome::ok, 200, {});
}

std::size_t WkdUpstream::open_connections() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [host, c] : clients_) n += c->open_connections();
  return n;
}

std::uint64_t WkdUpstream::resumed_handshakes() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = retired_resumed_;
  for (const auto& [host, c] : clients_) n += c->resumed_handshakes();
  return n;
}

}  // namespace hkpgw::gateway
