#include "gateway/http/cluster_spends.hpp"

#include <charconv>
#include <cstdio>
#include <random>

#include "gateway/observe/log.hpp"
#include "gateway/service/peer_push.hpp"
#include "gateway/service/periodic.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kHead = "hkpgw-spends 1 ";
constexpr auto kEvery = std::chrono::seconds(1);
constexpr std::uint32_t kMaxCount = 1'000'000;  // per client, budget and second: more is a lie

// A client key as RateLimiter keeps it: an IPv4 address or an IPv6 /64 ("2001:db8:1:2::/64").
bool client_key_shaped(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == ':' || c == '.' || c == '/';
    if (!ok) return false;
  }
  return true;
}

bool parse_count(std::string_view s, std::uint32_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out <= kMaxCount;
}

// Splits "a b c d" on single spaces into exactly `n` fields.
bool fields(std::string_view line, std::string_view* out, int n) {
  for (int i = 0; i < n; ++i) {
    const auto sp = line.find(' ');
    if ((sp == std::string_view::npos) != (i == n - 1)) return false;
    out[i] = line.substr(0, sp);
    if (out[i].empty()) return false;
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  }
  return true;
}

}  // namespace

ClusterSpends::ClusterSpends(RateLimiter& limiter, Metrics& metrics)
    : limiter_(limiter), metrics_(metrics) {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  instance_ = buf;
}

std::string ClusterSpends::report() {
  const std::vector<RateLimiter::Spent> spent = limiter_.take_spent(kMaxClients);
  if (spent.empty()) return {};
  std::string out = std::string(kHead) + instance_ + "\n";
  for (const auto& s : spent) {
    out += s.client + ' ' + std::to_string(s.n[0]) + ' ' + std::to_string(s.n[1]) + ' ' +
           std::to_string(s.n[2]) + '\n';
  }
  metrics_.cluster_spends("sent", spent.size());
  return out;
}

HttpResponse ClusterSpends::receive(const HttpRequest& req) {
  std::string_view body = req.body;
  const auto bad = [](std::size_t line, const std::string& what) {
    return text_response(400, "Bad spend report: line " + std::to_string(line) + ": " + what);
  };
  const auto first_end = body.find('\n');
  const std::string_view head = body.substr(0, first_end);
  if (!head.starts_with(kHead) || head.size() != kHead.size() + 16) {
    return bad(1, "expected \"hkpgw-spends 1 <instance>\"");
  }
  if (head.substr(kHead.size()) == instance_) return text_response(200, "my own report: ignored");
  body = first_end == std::string_view::npos ? std::string_view() : body.substr(first_end + 1);
  std::vector<RateLimiter::Spent> spent;
  std::size_t line_no = 1;
  while (!body.empty()) {
    ++line_no;
    const auto end = body.find('\n');
    const std::string_view line = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
    if (spent.size() >= kMaxClients) return bad(line_no, "more than 20000 clients");
    std::string_view f[4];
    RateLimiter::Spent s;
    if (!fields(line, f, 4) || !client_key_shaped(f[0]) || !parse_count(f[1], s.n[0]) ||
        !parse_count(f[2], s.n[1]) || !parse_count(f[3], s.n[2])) {
      return bad(line_no, "expected \"<client> <lookups> <searches> <submissions>\"");
    }
    s.client = std::string(f[0]);
    spent.push_back(std::move(s));
  }
  for (const auto& s : spent) limiter_.charge(s.client, s.n);
  metrics_.cluster_spends("received", spent.size());
  return text_response(200, "charged " + std::to_string(spent.size()) + " clients");
}

asio::awaitable<void> ClusterSpends::send_report(const std::vector<config::ListenAddress>& peers,
                                                 std::chrono::steady_clock::time_point& logged) {
  if (peers.empty()) co_return;
  const std::string body = report();
  if (body.empty()) co_return;
  // Short waits: a peer that is down must not hold up the next second's report.
  const UpstreamLimits limits{std::chrono::milliseconds(500), std::chrono::seconds(2), 4 << 10};
  for (const auto& peer : peers) {
    const PeerPost post{"/cluster/spends", "text/plain", body};
    const PeerPush sent = co_await post_to_peer(peer, post, limits);
    const auto now = std::chrono::steady_clock::now();
    if (!sent.delivered() && now - logged >= std::chrono::minutes(1)) {
      logged = now;
      log::warn("cluster_spends_not_delivered",
                {{"replica", peer.text()},
                 {"status", std::to_string(sent.status)},
                 {"detail", sent.detail},
                 {"effect", "that second's spends are not charged there (this line at most "
                            "every minute)"}});
    }
  }
}

void ClusterSpends::start(asio::any_io_executor executor, SnapshotSource snapshots) {
  running_ = true;
  run_periodically(executor, kEvery, running_, "cluster_spends_failed",
                   [this, snapshots = std::move(snapshots)]() -> asio::awaitable<void> {
                     const auto snap = snapshots();
                     co_await send_report(snap->config->cluster.peers, logged_);
                   });
}

}  // namespace hkpgw::gateway
