#include "gateway/http/stats.hpp"

#include <cstdio>

#include "gateway/net/https_client.hpp"
#include "gateway/observe/version.hpp"
#include "gateway/upstream/fleet.hpp"
#include "hkp/json.hpp"

namespace hkpgw::gateway {

namespace json = hkp::json;

StatsReport gather_stats(const cache::Store& store, const Snapshot& snap,
                         std::map<std::string, std::uint64_t> dropped) {
  StatsReport r;
  r.cache = store.stats();
  r.dropped = std::move(dropped);
  for (const auto& u : snap.upstreams) {
    r.upstreams.push_back({u->name(), u->config().url, u->name() == snap.config->upstreams.default_name,
                           u->health().healthy(), u->open_connections(), u->resumed_handshakes()});
  }
  return r;
}

std::vector<std::pair<std::string_view, std::uint64_t>> cache_figures(const cache::StoreStats& s) {
  return {{"keys", s.keys},
          {"identifiers", s.identifiers},
          {"queries", s.queries},
          {"cache_bytes", s.used_bytes},
          {"cache_file_bytes", s.file_bytes},
          {"cache_max_bytes", s.max_bytes},
          {"evicted", s.evicted},
          {"second_chances", s.second_chances},
          {"forward_queue", s.outbox}};
}

std::string stats_text(const StatsReport& r) {
  std::string out = std::string(kVersionString) + "\n";
  for (const auto& [name, value] : cache_figures(r.cache)) {
    out += std::string(name) + ": " + std::to_string(value) + "\n";
  }
  for (const auto& [reason, n] : r.dropped) out += "dropped " + reason + ": " + std::to_string(n) + "\n";
  for (const auto& u : r.upstreams) {
    out += "upstream: " + u.name + " " + u.url + " " + (u.healthy ? "healthy" : "unhealthy") + "\n";
  }
  return out;
}

std::string stats_json(const StatsReport& r) {
  json::object out{{"version", kVersion}};
  for (const auto& [name, value] : cache_figures(r.cache)) out[name] = value;
  json::object dropped;
  for (const auto& [reason, n] : r.dropped) dropped[reason] = n;
  out["keys_dropped"] = std::move(dropped);
  json::array upstreams;
  for (const auto& u : r.upstreams) {
    upstreams.push_back({{"name", hkp::json_text(u.name)},
                         {"healthy", u.healthy},
                         {"connections", u.connections},
                         {"tls_resumptions", u.tls_resumptions}});
  }
  out["upstreams"] = std::move(upstreams);
  return hkp::json_body(out, true);
}

std::string cache_json(const cache::StoreStats& s) {
  json::object out;
  for (const auto& [name, value] : cache_figures(s)) out[name] = value;
  // Until 0.1 this endpoint named three of them differently; the old names stay as aliases.
  out["used_bytes"] = s.used_bytes;
  out["file_bytes"] = s.file_bytes;
  out["max_bytes"] = s.max_bytes;
  out["schema"] = s.schema;
  return hkp::json_body(out, true);
}

Readiness readiness(const cache::Store& store, const Snapshot& snap) {
  if (!store.readable()) return {false, "not ready: the cache cannot be read"};
  const bool upstream_ok = !Fleet::none_healthy(snap);  // true for a cache-only gateway
  if (!upstream_ok && store.stats().keys == 0) {
    return {false, "not ready: no upstream is healthy and the cache is empty"};
  }
  return {true, upstream_ok ? "ready" : "ready (cache only: no upstream is healthy)"};
}

MetricsSample metrics_sample(const StatsReport& r) {
  MetricsSample m;
  m.cache_keys = r.cache.keys;
  m.cache_bytes = r.cache.used_bytes;
  m.cache_evicted = r.cache.evicted;
  m.forward_queue = r.cache.outbox;
  m.cache_max_bytes = r.cache.max_bytes;
  m.cache_write_failures = r.cache.write_failures;
  for (const auto& u : r.upstreams) m.upstream_healthy.emplace_back(u.name, u.healthy);
  for (int o = 0; o <= static_cast<int>(Outcome::cancelled); ++o) {
    m.upstream_outcomes.push_back(outcome_name(static_cast<Outcome>(o)));
  }
  return m;
}

}  // namespace hkpgw::gateway
