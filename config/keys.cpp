#include "config/keys.hpp"

#include <algorithm>
#include <array>

namespace hkpgw::config {

namespace {

// Whether one [[upstream]] member differs anywhere in the list (a list of another length does).
template <class T>
bool upstream_differs(const Config& a, const Config& b, T UpstreamConfig::*member) {
  const auto& x = a.upstreams.list;
  const auto& y = b.upstreams.list;
  if (x.size() != y.size()) return true;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i].*member == y[i].*member)) return true;
  }
  return false;
}

#define HKPGW_KEY(table, member, keys, reload)                                     \
  KeyDecl {                                                                          \
    #table, #member, keys, Reload::reload, [](const Config& a, const Config& b) {    \
      return !(a.table.member == b.table.member);                                    \
    }                                                                                \
  }
#define HKPGW_UPSTREAM_KEY(member, keys)                                             \
  KeyDecl {                                                                          \
    "upstream", #member, keys, Reload::snapshot, [](const Config& a, const Config& b) { \
      return upstream_differs(a, b, &UpstreamConfig::member);                        \
    }                                                                                \
  }

// The one declaration of every Config member. A new key is a line here (with its reader in
// config.cpp); tests/unit/test_config_keys.cpp fails while a member is missing, and while
// docs/contract.md disagrees with the restart class.
constexpr std::array kKeys = {
    HKPGW_KEY(server, listen, "listen", restart),
    HKPGW_KEY(server, hkps_listen, "hkps_listen", restart),
    HKPGW_KEY(server, tls_cert, "tls_cert", restart),
    HKPGW_KEY(server, tls_key, "tls_key", restart),
    HKPGW_KEY(server, threads, "threads", restart),
    HKPGW_KEY(server, pin_threads, "pin_threads", restart),
    HKPGW_KEY(server, max_header_bytes, "max_header_bytes", pushed),
    HKPGW_KEY(server, max_body_bytes, "max_body_bytes", pushed),
    HKPGW_KEY(server, max_body_memory, "max_body_memory", pushed),
    HKPGW_KEY(server, min_body_rate, "min_body_rate", pushed),
    HKPGW_KEY(server, client_timeout, "client_timeout", pushed),
    HKPGW_KEY(server, max_connections, "max_connections", pushed),
    HKPGW_KEY(server, max_connections_per_client, "max_connections_per_client", pushed),
    HKPGW_KEY(server, honor_client_no_cache, "honor_client_no_cache", snapshot),
    HKPGW_KEY(server, log_searches, "log_searches", snapshot),
    HKPGW_KEY(server, log_format, "log_format", pushed),
    HKPGW_KEY(server, log_level, "log_level", pushed),
    HKPGW_KEY(server, access_log_sample, "access_log_sample", snapshot),
    HKPGW_KEY(server, reused_answers, "reused_answers", pushed),
    HKPGW_KEY(server, proxy_protocol, "proxy_protocol", restart),
    HKPGW_KEY(server, proxy_trusted, "proxy_trusted", restart),

    HKPGW_KEY(admin, listen, "listen", restart),
    HKPGW_KEY(admin, token_file, "token_file", snapshot),
    HKPGW_KEY(admin, token, "", snapshot),
    HKPGW_KEY(admin, max_connections, "max_connections", pushed),
    HKPGW_KEY(admin, max_connections_per_client, "max_connections_per_client", pushed),
    HKPGW_KEY(admin, allowed_hosts, "allowed_hosts", snapshot),

    HKPGW_KEY(cache, path, "path", restart),
    HKPGW_KEY(cache, max_size, "max_size", restart),
    HKPGW_KEY(cache, fresh_for, "fresh_for", snapshot),
    HKPGW_KEY(cache, stale_while_revalidate, "stale_while_revalidate", snapshot),
    HKPGW_KEY(cache, stale_if_error, "stale_if_error", snapshot),
    HKPGW_KEY(cache, negative_ttl, "negative_ttl", snapshot),
    HKPGW_KEY(cache, blocklist, "blocklist", snapshot),
    HKPGW_KEY(cache, answer_memory, "answer_memory", pushed),

    HKPGW_KEY(upstreams, default_name, "default", snapshot),
    HKPGW_KEY(upstreams, ca_file, "ca_file", snapshot),
    HKPGW_KEY(upstreams, connect_timeout, "connect_timeout", snapshot),
    HKPGW_KEY(upstreams, request_timeout, "request_timeout", snapshot),
    HKPGW_KEY(upstreams, hedge_after, "hedge_after", snapshot),
    HKPGW_KEY(upstreams, panic_timeout, "panic_timeout", snapshot),
    HKPGW_KEY(upstreams, merge, "merge", snapshot),
    HKPGW_KEY(upstreams, forward_adds, "forward_adds", snapshot),
    HKPGW_KEY(upstreams, probe_interval, "probe_interval", snapshot),
    HKPGW_KEY(upstreams, probe_timeout, "probe_timeout", snapshot),
    HKPGW_KEY(upstreams, unhealthy_threshold, "unhealthy_threshold", snapshot),
    HKPGW_KEY(upstreams, healthy_threshold, "healthy_threshold", snapshot),
    HKPGW_KEY(upstreams, max_connections, "max_connections", snapshot),
    HKPGW_KEY(upstreams, list, "", snapshot),  // the [[upstream]] tables, declared below
    HKPGW_KEY(upstreams, embedded_list, "", snapshot),
    HKPGW_KEY(upstreams, resolve, "resolve", snapshot),

    HKPGW_UPSTREAM_KEY(name, "name"),
    HKPGW_UPSTREAM_KEY(url, "url"),
    HKPGW_UPSTREAM_KEY(endpoint, ""),
    HKPGW_UPSTREAM_KEY(ca_file, "ca_file"),
    HKPGW_UPSTREAM_KEY(probe, "probe"),
    HKPGW_UPSTREAM_KEY(kind, "kind"),
    HKPGW_UPSTREAM_KEY(domains, "domains"),
    HKPGW_UPSTREAM_KEY(ask_first, "ask_first"),
    HKPGW_UPSTREAM_KEY(absent_for, "absent_for"),
    HKPGW_UPSTREAM_KEY(allow_networks, "allow_networks"),

    HKPGW_KEY(keys, max_key_bytes, "max_key_bytes", snapshot),
    HKPGW_KEY(keys, max_packet_bytes, "max_packet_bytes", snapshot),
    HKPGW_KEY(keys, max_sig_packet_bytes, "max_sig_packet_bytes", snapshot),
    HKPGW_KEY(keys, third_party_sigs, "third_party_sigs", snapshot),
    HKPGW_KEY(keys, max_third_party_sigs, "max_third_party_sigs", snapshot),
    HKPGW_KEY(keys, certifiers, "certifiers", snapshot),
    HKPGW_KEY(keys, certifier_keys, "certifier_keys", snapshot),
    HKPGW_KEY(keys, certifier_key_data, "", snapshot),
    HKPGW_KEY(keys, max_user_ids, "max_user_ids", snapshot),
    HKPGW_KEY(keys, max_subkeys, "max_subkeys", snapshot),
    HKPGW_KEY(keys, short_key_ids, "short_key_ids", snapshot),
    HKPGW_KEY(keys, workers, "workers", restart),
    HKPGW_KEY(keys, work_queue, "work_queue", pushed),
    HKPGW_KEY(keys, verify_budget_per_key, "verify_budget_per_key", snapshot),
    HKPGW_KEY(keys, verify_budget_per_submission, "verify_budget_per_submission", snapshot),

    HKPGW_KEY(limits, key_lookups, "key_lookups key_lookups_burst", pushed),
    HKPGW_KEY(limits, searches, "searches searches_burst", pushed),
    HKPGW_KEY(limits, submissions, "submissions submissions_burst", pushed),
    HKPGW_KEY(limits, exempt, "exempt", pushed),
    HKPGW_KEY(limits, deny, "deny", pushed),
    HKPGW_KEY(limits, max_clients, "max_clients", pushed),

    HKPGW_KEY(cluster, peers, "peers", snapshot),
    HKPGW_KEY(cluster, trusted, "trusted", snapshot),
    HKPGW_KEY(cluster, secret_file, "secret_file", snapshot),
    HKPGW_KEY(cluster, secret, "", snapshot),

    HKPGW_KEY(refresh, every, "every", snapshot),
    HKPGW_KEY(refresh, max_rate, "max_rate", snapshot),

    HKPGW_KEY(web, show_upstreams, "show_upstreams", snapshot),

    KeyDecl{"", "source", "", Reload::snapshot,
            [](const Config& a, const Config& b) { return a.source != b.source; }},
};

#undef HKPGW_KEY
#undef HKPGW_UPSTREAM_KEY

}  // namespace

std::string KeyDecl::name() const {
  return table.empty() ? std::string(field) : std::string(table) + "." + std::string(field);
}

std::span<const KeyDecl> declared_keys() { return kKeys; }

std::vector<std::string_view> file_keys_of(std::string_view table) {
  std::vector<std::string_view> out;
  auto add = [&](std::string_view k) {
    if (!k.empty() && std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  };
  for (const KeyDecl& d : kKeys) {
    if (table.empty()) {
      add(d.table);
      continue;
    }
    if (d.table != table) continue;
    std::string_view keys = d.file_keys;
    while (!keys.empty()) {
      const auto space = keys.find(' ');
      add(keys.substr(0, space));
      keys = space == std::string_view::npos ? std::string_view() : keys.substr(space + 1);
    }
  }
  return out;
}

std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const KeyDecl& d : kKeys) {
    if (d.differs(a, b)) out.push_back(d.name());
  }
  return out;
}

}  // namespace hkpgw::config
