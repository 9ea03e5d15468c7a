#include "gateway/http/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace hkpgw::gateway {

namespace {

const config::Budget& budget(const config::LimitsConfig& l, int i) {
  return i == 0 ? l.key_lookups : i == 1 ? l.searches : l.submissions;
}

const char* kWhat[3] = {"key lookups", "searches by address or text", "submissions"};

// "5 per second", "1 per minute", "0.5 per hour": the budget as people say it.
std::string rate_text(double per_second) {
  const auto shown = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (per_second >= 1) return shown(per_second) + " per second";
  if (per_second * 60 >= 1) return shown(per_second * 60) + " per minute";
  return shown(per_second * 3600) + " per hour";
}

}  // namespace

RateLimiter::RateLimiter(Metrics& metrics, Clock now)
    : limited_(metrics.counter("rate_limited_total",
                               "Requests answered 429 because their client was over a budget, "
                               "by budget",
                               {"budget"})),
      clients_(metrics.gauge("rate_limit_clients",
                             "Client addresses (IPv6: /64 networks) the rate limiter tracks")),
      denied_(metrics.counter("denied_total",
                              "Requests answered 403 because their client is in a limits.deny "
                              "network")),
      now_(std::move(now)) {
  configure(config::LimitsConfig{});
}

void RateLimiter::configure(const config::LimitsConfig& limits, bool shared) {
  settings_.store(std::make_shared<const Settings>(Settings{
      limits, config::NetworkSet(limits.exempt), config::NetworkSet(limits.deny), shared}));
}

RateLimiter::Client& RateLimiter::touch(Shard& shard, const std::string& client,
                                        const config::LimitsConfig& limits,
                                        std::chrono::steady_clock::time_point now) {
  const std::size_t capacity = std::max<std::size_t>(1, limits.max_clients / kShards);
  auto it = shard.clients.find(client);
  if (it == shard.clients.end()) {
    if (shard.clients.size() >= capacity) {
      // Forget a client whose buckets are full again (nothing is lost), looking at a few; else
      // the first one (an arbitrary one: its budget starts over).
      auto victim = shard.clients.begin();
      int looked = 0;
      for (auto c = shard.clients.begin(); c != shard.clients.end() && looked < 8; ++c, ++looked) {
        const double idle = std::chrono::duration<double>(now - c->second.last).count();
        bool refilled = true;
        for (int i = 0; i < 3 && refilled; ++i) {
          const auto& bud = budget(limits, i);
          refilled = !bud.limited() || c->second.tokens[i] + idle * bud.rate >= bud.burst;
        }
        if (refilled) {
          victim = c;
          break;
        }
      }
      shard.clients.erase(victim);
      --tracked_;
    }
    Client fresh{};
    for (int i = 0; i < 3; ++i) fresh.tokens[i] = static_cast<float>(budget(limits, i).burst);
    fresh.last = now;
    it = shard.clients.emplace(client, fresh).first;
    clients_.set(static_cast<double>(++tracked_));
  }
  Client& c = it->second;
  const double idle = std::chrono::duration<double>(now - c.last).count();
  c.last = now;
  for (int i = 0; i < 3; ++i) {  // every bucket refills with time, whichever is spent
    const auto& bud = budget(limits, i);
    c.tokens[i] = static_cast<float>(
        std::min<double>(bud.burst, c.tokens[i] + std::max(0.0, idle) * bud.rate));
  }
  return c;
}

double RateLimiter::spend(const std::string& client, int b, const config::LimitsConfig& limits,
                          bool shared) {
  const auto now = now_();
  Shard& shard = shards_[std::hash<std::string>{}(client) % kShards];
  std::lock_guard lock(shard.mutex);
  Client& c = touch(shard, client, limits, now);
  if (c.tokens[b] >= 1) {
    c.tokens[b] -= 1;
    if (shared && c.unreported[b] < UINT16_MAX) ++c.unreported[b];  // for the other replicas
    return 0;
  }
  return (1 - c.tokens[b]) / budget(limits, b).rate;
}

std::vector<ClientSpend> RateLimiter::take_spent(std::size_t max_clients) {
  std::vector<ClientSpend> out;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (auto& [client, c] : shard.clients) {
      if ((c.unreported[0] | c.unreported[1] | c.unreported[2]) == 0) continue;
      if (out.size() >= max_clients) return out;  // the rest wait for the next report
      out.push_back({client, {c.unreported[0], c.unreported[1], c.unreported[2]}});
      c.unreported[0] = c.unreported[1] = c.unreported[2] = 0;
    }
  }
  return out;
}

void RateLimiter::charge(const std::string& client, const std::array<std::uint32_t, 3>& n) {
  const std::shared_ptr<const Settings> settings = settings_.load();
  const config::LimitsConfig& limits = settings->limits;
  bool any = false;  // a client that spent only what is not limited here costs no entry
  for (int i = 0; i < 3; ++i) any = any || (budget(limits, i).limited() && n[i] != 0);
  if (!any) return;
  const auto now = now_();
  Shard& shard = shards_[std::hash<std::string>{}(client) % kShards];
  std::lock_guard lock(shard.mutex);
  Client& c = touch(shard, client, limits, now);
  for (int i = 0; i < 3; ++i) {
    if (!budget(limits, i).limited() || n[i] == 0) continue;
    // Below zero if need be (a debt repaid at the rate), but never more than one burst deep:
    // a replica's report cannot lock a client out for longer than a burst takes to refill.
    const double floor = -static_cast<double>(budget(limits, i).burst);
    c.tokens[i] = static_cast<float>(std::max(floor, c.tokens[i] - static_cast<double>(n[i])));
  }
}

std::optional<HttpResponse> RateLimiter::admit(const HttpRequest& req, BudgetOf budget_of) {
  if (req.peer.client.empty()) return std::nullopt;
  const std::shared_ptr<const Settings> settings = settings_.load();
  const config::LimitsConfig& limits = settings->limits;
  if (settings->deny.contains(req.peer.family, req.peer.ip)) {
    denied_.add();
    HttpResponse r = text_response(
        403, "Forbidden: this gateway's operator refuses requests from this address");
    req.access.op = "denied";
    return r;
  }
  // Exempt clients next: the organisation's own ranges pay a few compares, not a target scan.
  if (settings->exempt.contains(req.peer.family, req.peer.ip)) return std::nullopt;
  const hkp::Budget kind = budget_of(req);
  if (kind == hkp::Budget::none) return std::nullopt;
  const int b = static_cast<int>(kind) - 1;  // key_lookup = 0, search = 1, submission = 2
  const config::Budget& bud = budget(limits, b);
  if (!bud.limited()) return std::nullopt;
  const double wait = spend(req.peer.client, b, limits, settings->shared);
  if (wait <= 0) return std::nullopt;
  limited_.add({hkp::budget_name(kind)});
  const long long after = std::max(1LL, static_cast<long long>(std::ceil(wait)));
  HttpResponse r = text_response(
      429, "Too many requests: this address is over its budget of " + std::string(kWhat[b]) +
               " (" + rate_text(bud.rate) + ", bursts of " + std::to_string(bud.burst) +
               "); retry after " + std::to_string(after) + " s");
  r.set("Retry-After", std::to_string(after));
  req.access.op = "limited";
  return r;
}

}  // namespace hkpgw::gateway
