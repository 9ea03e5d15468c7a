// TOML -> Config. toml11 is expensive to compile (docs/build.md): it is included here only.
#include "config/config.hpp"

#include <arpa/inet.h>

#include <cstdio>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "config/keys.hpp"
#include "config/toml_reader.hpp"

namespace hkpgw::config {
namespace {

using detail::Reader;
using detail::Value;

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  if (!out.empty()) {
    out.pop_back();
  }
  return out;
}


bool valid_upstream_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_' || c == '.';
         });
}

constexpr std::uint64_t kTiB = 1ULL << 40;

// A list of networks ("10.0.0.0/8", "::1"), replacing `out` when the key is present.
void read_networks(Reader& r, const Value& t, const std::string& p, const char* key,
                   std::vector<Network>& out) {
  const Value* v = r.child(t, key);
  if (!v) return;
  if (!v->is_array()) {
    r.problem(*v, p + key, "expected a list of networks such as \"10.0.0.0/8\"");
    return;
  }
  out.clear();
  const auto& arr = v->as_array();
  constexpr std::size_t kMaxNetworks = 1'000'000;
  if (arr.size() > kMaxNetworks) {
    r.problem(*v, p + key, "at most " + std::to_string(kMaxNetworks) + " networks");
    return;
  }
  for (std::size_t i = 0; i < arr.size(); ++i) {
    auto n = arr[i].is_string() ? parse_network(arr[i].as_string().str)
                                : Parsed<Network>{std::string("expected a string")};
    if (!n.ok()) {
      r.problem(arr[i], p + key + "[" + std::to_string(i) + "]", n.error());
      continue;
    }
    out.push_back(n.value());
  }
}

void read_server(Reader& r, const Value& t, ServerConfig& s) {
  const std::string p = "server.";
  r.check_keys(t, p, file_keys_of("server"));
  r.listen_list(t, p, "listen", s.listen);
  r.listen_list(t, p, "hkps_listen", s.hkps_listen);
  r.path(t, p, "tls_cert", s.tls_cert);
  r.path(t, p, "tls_key", s.tls_key);
  r.integer(t, p, "threads", s.threads, 0, 256);
  r.boolean(t, p, "pin_threads", s.pin_threads);
  r.size(t, p, "max_header_bytes", s.max_header_bytes, 1024, 1 << 20);
  r.size(t, p, "max_body_bytes", s.max_body_bytes, 1024, 1ULL << 30);
  r.size(t, p, "max_body_memory", s.max_body_memory, 1024, 1ULL << 40);
  r.size(t, p, "min_body_rate", s.min_body_rate, 0, 1ULL << 30);
  r.duration(t, p, "client_timeout", s.client_timeout, std::chrono::milliseconds(100));
  r.integer(t, p, "max_connections", s.max_connections, 1, 1'000'000);
  r.integer(t, p, "max_connections_per_client", s.max_connections_per_client, 0, 1'000'000);
  r.boolean(t, p, "honor_client_no_cache", s.honor_client_no_cache);
  r.boolean(t, p, "log_searches", s.log_searches);
  r.choice(t, p, "log_format", s.log_format,
           {{"logfmt", LogFormat::logfmt}, {"json", LogFormat::json}});
  r.choice(t, p, "log_level", s.log_level,
           {{"info", LogLevel::info}, {"warn", LogLevel::warn}, {"error", LogLevel::error}});
  r.integer(t, p, "access_log_sample", s.access_log_sample, 0, 1'000'000);
  r.integer(t, p, "reused_answers", s.reused_answers, 0, 1'000'000);
  r.boolean(t, p, "proxy_protocol", s.proxy_protocol);
  read_networks(r, t, p, "proxy_trusted", s.proxy_trusted);
  if (!s.hkps_listen.empty() && (s.tls_cert.empty() || s.tls_key.empty())) {
    r.problem(*r.child(t, "hkps_listen"), p + "hkps_listen",
              "TLS listeners need server.tls_cert and server.tls_key");
  }
}

void read_admin(Reader& r, const Value& t, AdminConfig& a) {
  const std::string p = "admin.";
  r.check_keys(t, p, file_keys_of("admin"));
  r.integer(t, p, "max_connections", a.max_connections, 1, 100'000);
  r.integer(t, p, "max_connections_per_client", a.max_connections_per_client, 0, 100'000);
  if (const Value* v = r.child(t, "allowed_hosts")) {
    if (!v->is_array()) {
      r.problem(*v, p + "allowed_hosts", "expected a list of host names");
    } else {
      for (std::size_t i = 0; i < v->as_array().size(); ++i) {
        const Value& h = v->as_array()[i];
        if (!h.is_string() || h.as_string().str.empty()) {
          r.problem(h, p + "allowed_hosts[" + std::to_string(i) + "]", "expected a host name");
        } else {
          a.allowed_hosts.push_back(h.as_string().str);
        }
      }
    }
  }
  if (const Value* v = r.child(t, "listen")) {
    auto parsed = v->is_string() ? parse_listen(v->as_string().str)
                                 : Parsed<ListenAddress>{std::string("expected \"host:port\"")};
    if (parsed.ok()) {
      a.listen = parsed.value();
    } else {
      r.problem(*v, p + "listen", parsed.error());
    }
  }
  r.path(t, p, "token_file", a.token_file);
}

void read_cache(Reader& r, const Value& t, CacheConfig& c) {
  const std::string p = "cache.";
  r.check_keys(t, p, file_keys_of("cache"));
  r.string(t, p, "path", c.path);
  if (c.path.empty()) {
    r.problem(*r.child(t, "path"), p + "path", "must not be empty");
  }
  r.size(t, p, "max_size", c.max_size, 1 << 20, 16 * kTiB);
  r.size(t, p, "answer_memory", c.answer_memory, 0, 1 * kTiB);
  r.duration(t, p, "fresh_for", c.fresh_for, Duration(0));
  r.duration(t, p, "stale_while_revalidate", c.stale_while_revalidate, Duration(0));
  r.duration(t, p, "stale_if_error", c.stale_if_error, Duration(0));
  r.duration(t, p, "negative_ttl", c.negative_ttl, Duration(0));
  r.string(t, p, "blocklist", c.blocklist);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

bool ip_literal(const std::string& address) {
  unsigned char buf[16];
  return inet_pton(AF_INET, address.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

// "HOST:PORT:ADDRESS[:PORT2]": ADDRESS an IPv4 or IPv6 literal; an IPv6 one followed by PORT2 is
// bracketed ([::1]:8443), a lone one may be bare (::1).
std::optional<ResolveEntry> parse_resolve(std::string_view text) {
  const auto first = text.find(':');
  if (first == std::string_view::npos || first == 0) return std::nullopt;
  const auto second = text.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  ResolveEntry e;
  e.host = std::string(text.substr(0, first));
  for (char& c : e.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto port = parse_port(text.substr(first + 1, second - first - 1));
  if (!port) return std::nullopt;
  e.port = *port;
  std::string_view rest = text.substr(second + 1);
  std::string_view port2;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return std::nullopt;
      port2 = rest.substr(close + 2);
      if (port2.empty()) return std::nullopt;
    }
    rest = rest.substr(1, close - 1);
  } else if (!ip_literal(std::string(rest))) {  // IPv4:PORT2
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    port2 = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  e.address = std::string(rest);
  if (!ip_literal(e.address)) return std::nullopt;
  if (!port2.empty()) {
    const auto p2 = parse_port(port2);
    if (!p2) return std::nullopt;
    e.connect_port = *p2;
  }
  return e;
}

void read_resolve(Reader& r, const Value& t, const std::string& p, std::vector<ResolveEntry>& out) {
  const Value* v = r.child(t, "resolve");
  if (!v) return;
  if (!v->is_array()) {
    r.problem(*v, p + "resolve", "expected a list of \"HOST:PORT:ADDRESS\" strings");
    return;
  }
  out.clear();
  const auto& arr = v->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string where = p + "resolve[" + std::to_string(i) + "]";
    std::optional<ResolveEntry> e;
    if (arr[i].is_string()) e = parse_resolve(arr[i].as_string().str);
    if (!e) {
      r.problem(arr[i], where,
                "expected \"HOST:PORT:ADDRESS\" or \"HOST:PORT:ADDRESS:PORT2\" with an IP "
                "address, e.g. \"keys.example.org:443:192.0.2.7\"");
      continue;
    }
    out.push_back(std::move(*e));
  }
}

void read_upstreams(Reader& r, const Value& t, UpstreamsConfig& u) {
  const std::string p = "upstreams.";
  r.check_keys(t, p, file_keys_of("upstreams"));
  r.string(t, p, "default", u.default_name);
  read_resolve(r, t, p, u.resolve);
  r.path(t, p, "ca_file", u.ca_file);
  const Duration ms100 = std::chrono::milliseconds(100);
  r.duration(t, p, "connect_timeout", u.connect_timeout, ms100);
  r.duration(t, p, "request_timeout", u.request_timeout, ms100);
  r.duration(t, p, "hedge_after", u.hedge_after, Duration(0));
  r.duration(t, p, "panic_timeout", u.panic_timeout, ms100);
  r.choice(t, p, "merge", u.merge, {{"first", MergePolicy::first}, {"all", MergePolicy::all}});
  r.choice(t, p, "forward_adds", u.forward_adds,
           {{"default", ForwardAdds::default_upstream},
            {"all", ForwardAdds::all},
            {"none", ForwardAdds::none}});
  r.duration(t, p, "probe_interval", u.probe_interval, ms100);
  r.duration(t, p, "probe_timeout", u.probe_timeout, ms100);
  r.integer(t, p, "unhealthy_threshold", u.unhealthy_threshold, 1, 1000);
  r.integer(t, p, "healthy_threshold", u.healthy_threshold, 1, 1000);
  r.integer(t, p, "max_connections", u.max_connections, 1, 10000);
}

void read_wkd_upstream(Reader& r, const Value& t, const std::string& p, UpstreamConfig& up) {
  for (const char* key : {"url", "probe"}) {
    if (const Value* v = r.child(t, key)) {
      r.problem(*v, p + key,
                "a kind = \"wkd\" upstream asks each address's own domain: it has no " +
                    std::string(key));
    }
  }
  up.url.clear();
  r.boolean(t, p, "ask_first", up.ask_first);
  r.duration(t, p, "absent_for", up.absent_for, Duration(0));
  read_networks(r, t, p, "allow_networks", up.allow_networks);
  if (const Value* v = r.child(t, "domains")) {
    if (!v->is_array()) {
      r.problem(*v, p + "domains", "expected a list of domain names");
      return;
    }
    const auto& arr = v->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string d = arr[i].is_string() ? arr[i].as_string().str : std::string();
      for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!valid_domain_name(d)) {
        r.problem(arr[i], p + "domains[" + std::to_string(i) + "]",
                  "expected a domain name such as \"example.org\"");
        continue;
      }
      up.domains.push_back(std::move(d));
    }
  }
}

void read_upstream_list(Reader& r, const Value& v, std::vector<UpstreamConfig>& out) {
  if (!v.is_array()) {
    r.problem(v, "upstream", "expected [[upstream]] tables");
    return;
  }
  out.clear();
  std::set<std::string> names;
  const auto& arr = v.as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string p = "upstream[" + std::to_string(i) + "].";
    if (!arr[i].is_table()) {
      r.problem(arr[i], "upstream[" + std::to_string(i) + "]", "expected a table");
      continue;
    }
    const Value& t = arr[i];
    r.check_keys(t, p, file_keys_of("upstream"));
    UpstreamConfig up;
    r.string(t, p, "name", up.name);
    r.choice(t, p, "kind", up.kind,
             {{"hkp", UpstreamKind::hkp}, {"vks", UpstreamKind::vks}, {"wkd", UpstreamKind::wkd}});
    r.string(t, p, "url", up.url);
    r.path(t, p, "ca_file", up.ca_file);
    r.string(t, p, "probe", up.probe);
    if (!valid_upstream_name(up.name)) {
      r.problem(r.child(t, "name") ? *r.child(t, "name") : t, p + "name",
                up.name.empty() ? "every upstream needs a name"
                                : "\"" + up.name + "\" is not a valid name (letters, digits, . _ -)");
    } else if (!names.insert(up.name).second) {
      r.problem(*r.child(t, "name"), p + "name", "duplicate upstream name \"" + up.name + "\"");
    }
    if (up.kind == UpstreamKind::wkd) {
      read_wkd_upstream(r, t, p, up);
      out.push_back(std::move(up));
      continue;
    }
    for (const char* key : {"domains", "ask_first", "absent_for", "allow_networks"}) {
      if (const Value* v = r.child(t, key)) {
        r.problem(*v, p + key, "only a kind = \"wkd\" upstream takes this key");
      }
    }
    auto url = parse_upstream_url(up.url);
    if (!url.ok()) {
      r.problem(r.child(t, "url") ? *r.child(t, "url") : t, p + "url",
                up.url.empty() ? "every upstream needs a url (https://...)"
                               : "upstream \"" + up.name + "\": " + url.error());
    } else {
      up.endpoint = url.value();
    }
    if (up.probe.empty() || up.probe.front() != '/') {
      r.problem(r.child(t, "probe") ? *r.child(t, "probe") : t, p + "probe",
                "must be a path starting with /");
    }
    out.push_back(std::move(up));
  }
}

void read_budget(Reader& r, const Value& t, const std::string& p, const char* key, Budget& b) {
  if (const Value* v = r.child(t, key)) {
    if (!v->is_string()) {
      r.problem(*v, p + key, "expected a rate such as \"5/s\" or \"1/min\", or \"0\"");
    } else if (auto rate = parse_rate(v->as_string().str); !rate.ok()) {
      r.problem(*v, p + key, rate.error());
    } else {
      b.rate = rate.value();
    }
  }
  // Token counts are floats (12 bytes per client): exact up to 2^24, so bursts stop at 10^7.
  r.integer(t, p, std::string(key) + "_burst", b.burst, 1, 10'000'000);
}

void read_limits(Reader& r, const Value& t, LimitsConfig& l) {
  const std::string p = "limits.";
  r.check_keys(t, p, file_keys_of("limits"));
  read_budget(r, t, p, "key_lookups", l.key_lookups);
  read_budget(r, t, p, "searches", l.searches);
  read_budget(r, t, p, "submissions", l.submissions);
  r.integer(t, p, "max_clients", l.max_clients, 16, 100'000'000);
  read_networks(r, t, p, "exempt", l.exempt);
  read_networks(r, t, p, "deny", l.deny);
}

void read_cluster(Reader& r, const Value& t, ClusterConfig& c) {
  const std::string p = "cluster.";
  r.check_keys(t, p, file_keys_of("cluster"));
  read_networks(r, t, p, "trusted", c.trusted);
  r.path(t, p, "secret_file", c.secret_file);
  const Value* v = r.child(t, "peers");
  if (!v) return;
  constexpr std::size_t kMaxPeers = 64;
  if (!v->is_array() || v->as_array().size() > kMaxPeers) {
    r.problem(*v, p + "peers",
              "expected a list of at most " + std::to_string(kMaxPeers) +
                  " admin listeners such as \"10.0.0.12:11380\"");
    return;
  }
  const auto& arr = v->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    auto a = arr[i].is_string() ? parse_listen(arr[i].as_string().str)
                                : Parsed<ListenAddress>{std::string("expected a string")};
    if (a.ok() && a.value().port == 0) a = {std::string("a peer needs its admin port, not 0")};
    if (!a.ok()) {
      r.problem(arr[i], p + "peers[" + std::to_string(i) + "]", a.error());
      continue;
    }
    c.peers.push_back(a.value());
  }
}

// `s` without the surrounding characters of `spaces`.
std::string trimmed(std::string_view s, const char* spaces) {
  const auto first = s.find_first_not_of(spaces);
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(spaces) - first + 1));
}

// At most `max` + 1 bytes of `file` (one more says it is over), or nullopt when it cannot be read.
std::optional<std::string> read_capped(const std::string& file, std::size_t max) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data(max + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) return std::nullopt;
  data.resize(static_cast<std::size_t>(in.gcount()));
  return data;
}

// keys.certifiers (fingerprints) and keys.certifier_keys (the file with their public keys): one
// without the other is a mistake, and so is a file that cannot be read or is absurdly large.
void read_certifiers(Reader& r, const Value& t, const std::string& p, KeysConfig& k) {
  r.string(t, p, "certifier_keys", k.certifier_keys);
  constexpr std::size_t kMaxCertifiers = 32;
  if (const Value* v = r.child(t, "certifiers")) {
    if (!v->is_array() || v->as_array().size() > kMaxCertifiers) {
      r.problem(*v, p + "certifiers",
                "expected a list of at most " + std::to_string(kMaxCertifiers) +
                    " fingerprints (40 hex digits)");
      return;
    }
    const auto& arr = v->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string fpr = arr[i].is_string() ? arr[i].as_string().str : std::string();
      std::erase(fpr, ' ');
      const bool hex = fpr.size() == 40 && std::all_of(fpr.begin(), fpr.end(), [](char ch) {
                         return std::isxdigit(static_cast<unsigned char>(ch));
                       });
      if (!hex) {
        r.problem(arr[i], p + "certifiers[" + std::to_string(i) + "]",
                  "expected a v4 fingerprint: 40 hex digits");
        continue;
      }
      std::transform(fpr.begin(), fpr.end(), fpr.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
      k.certifiers.push_back(std::move(fpr));
    }
  }
  if (k.certifiers.empty() != k.certifier_keys.empty()) {
    r.problem_at_top(p + (k.certifiers.empty() ? "certifiers" : "certifier_keys"),
                     "keys.certifiers and keys.certifier_keys go together: the fingerprints to "
                     "trust and the file with their public keys");
    return;
  }
  if (k.certifier_keys.empty()) return;
  constexpr std::size_t kMaxFile = 1 << 20;
  auto data = read_capped(k.certifier_keys, kMaxFile);
  if (!data) {
    r.problem_at_top(p + "certifier_keys", "cannot read \"" + k.certifier_keys + "\"");
  } else if (data->empty() || data->size() > kMaxFile) {
    r.problem_at_top(p + "certifier_keys", "\"" + k.certifier_keys + "\" is " +
                                               (data->empty() ? "empty" : "over 1 MiB") +
                                               ": expected the certifiers' public keys");
  } else {
    k.certifier_key_data = std::move(*data);
  }
}

void read_refresh(Reader& r, const Value& t, RefreshConfig& c) {
  const std::string p = "refresh.";
  r.check_keys(t, p, file_keys_of("refresh"));
  r.duration(t, p, "every", c.every, std::chrono::seconds(10));
  if (const Value* v = r.child(t, "max_rate")) {
    if (!v->is_string()) {
      r.problem(*v, p + "max_rate", "expected a rate such as \"4/s\", or \"0\" (off)");
    } else if (auto rate = parse_rate(v->as_string().str); !rate.ok()) {
      r.problem(*v, p + "max_rate", rate.error());
    } else {
      c.max_rate = rate.value();
    }
  }
}

// cluster.secret_file: required once there are peers (an address alone let anything in
// cluster.trusted lock clients out or push keys), at least 32 bytes, at most 4 KiB.
void read_cluster_secret(Reader& r, ClusterConfig& c) {
  const std::string p = "cluster.secret_file";
  if (c.secret_file.empty()) {
    if (!c.peers.empty()) {
      r.problem_at_top(p, "replicas with [cluster] peers must share a secret: a file of at least "
                          "32 bytes (openssl rand -hex 32), the same on every replica");
    }
    return;
  }
  const auto read = read_capped(c.secret_file, 4096);
  if (!read) {
    r.problem_at_top(p, "cannot read \"" + c.secret_file + "\"");
    return;
  }
  std::string secret = trimmed(*read, " \t\r\n");
  if (secret.size() < 32 || secret.size() > 4096) {
    r.problem_at_top(p, "\"" + c.secret_file + "\" holds " +
                            (secret.size() > 4096 ? "over 4 KiB" : std::to_string(secret.size()) +
                                                                       " bytes") +
                            ": a cluster secret is 32 bytes to 4 KiB (openssl rand -hex 32)");
    return;
  }
  c.secret = std::move(secret);
}

// admin.token_file: its first line, without surrounding whitespace, is the admin API's bearer
// token; it must be at least 16 characters.
void read_admin_token(Reader& r, AdminConfig& a) {
  if (a.token_file.empty()) return;
  const auto read = read_capped(a.token_file, 4096);
  if (!read) {
    r.problem_at_top("admin.token_file", "cannot read \"" + a.token_file + "\"");
    return;
  }
  const std::string_view first_line = std::string_view(*read).substr(0, read->find('\n'));
  const std::string token = trimmed(first_line, " \t\r");
  if (token.size() < 16) {
    r.problem_at_top("admin.token_file",
                     "\"" + a.token_file + "\" holds no token of at least 16 characters");
    return;
  }
  a.token = token;
}

void check_readable(Reader& r, const std::string& path, const std::string& file) {
  if (!file.empty() && !std::ifstream(file).good()) {
    r.problem_at_top(path, "cannot read \"" + file + "\"");
  }
}

Config build(const Value& root, const std::string& source) {
  Reader r(source);
  Config c = defaults();
  c.source = source;
  // "default" is resolved against the list the file ends up with (the embedded list or its own).
  c.upstreams.default_name.clear();
  r.check_keys(root, "", file_keys_of(""));
  auto section = [&](const char* name, auto&& fn) {
    if (const Value* v = r.child(root, name)) {
      if (v->is_table()) {
        fn(*v);
      } else {
        r.problem(*v, name, "expected a table [" + std::string(name) + "]");
      }
    }
  };
  section("server", [&](const Value& t) { read_server(r, t, c.server); });
  section("admin", [&](const Value& t) { read_admin(r, t, c.admin); });
  section("cache", [&](const Value& t) { read_cache(r, t, c.cache); });
  section("upstreams", [&](const Value& t) { read_upstreams(r, t, c.upstreams); });
  section("limits", [&](const Value& t) { read_limits(r, t, c.limits); });
  section("cluster", [&](const Value& t) { read_cluster(r, t, c.cluster); });
  section("refresh", [&](const Value& t) { read_refresh(r, t, c.refresh); });
  section("web", [&](const Value& t) {
    r.check_keys(t, "web.", file_keys_of("web"));
    r.boolean(t, "web.", "show_upstreams", c.web.show_upstreams);
  });
  section("keys", [&](const Value& t) {
    const std::string p = "keys.";
    r.check_keys(t, p, file_keys_of("keys"));
    r.size(t, p, "max_key_bytes", c.keys.max_key_bytes, 4096, 1ULL << 30);
    r.size(t, p, "max_packet_bytes", c.keys.max_packet_bytes, 512, 1ULL << 30);
    r.size(t, p, "max_sig_packet_bytes", c.keys.max_sig_packet_bytes, 512, 1ULL << 30);
    r.choice(t, p, "third_party_sigs", c.keys.third_party_sigs,
             {{"keep", ThirdPartySigs::keep},
              {"strip", ThirdPartySigs::strip},
              {"strip_if_oversize", ThirdPartySigs::strip_if_oversize}});
    r.integer(t, p, "max_third_party_sigs", c.keys.max_third_party_sigs, 0, 100'000'000);
    r.integer(t, p, "max_user_ids", c.keys.max_user_ids, 1, 100'000);
    r.integer(t, p, "max_subkeys", c.keys.max_subkeys, 0, 100'000);
    r.integer(t, p, "workers", c.keys.workers, 0, 256);
    r.integer(t, p, "work_queue", c.keys.work_queue, 1, 1'000'000);
    r.duration(t, p, "verify_budget_per_key", c.keys.verify_budget_per_key,
               std::chrono::milliseconds(10));
    r.duration(t, p, "verify_budget_per_submission", c.keys.verify_budget_per_submission,
               std::chrono::milliseconds(10));
    r.choice(t, p, "short_key_ids", c.keys.short_key_ids,
             {{"reject", ShortKeyIds::reject}, {"cache_only", ShortKeyIds::cache_only}});
    read_certifiers(r, t, p, c.keys);
  });
  if (const Value* v = r.child(root, "upstream")) {
    read_upstream_list(r, *v, c.upstreams.list);
    c.upstreams.embedded_list = false;
  }

  // Cross-field rules.
  auto& u = c.upstreams;
  if (!u.default_name.empty()) {
    const bool known = std::any_of(u.list.begin(), u.list.end(),
                                   [&](const auto& up) { return up.name == u.default_name; });
    const auto named = std::find_if(u.list.begin(), u.list.end(),
                                    [&](const auto& up) { return up.name == u.default_name; });
    if (!known) {
      r.problem(*r.child(*r.child(root, "upstreams"), "default"), "upstreams.default",
                "no [[upstream]] is named \"" + u.default_name + "\"");
    } else if (!named->keyserver()) {
      r.problem(*r.child(*r.child(root, "upstreams"), "default"), "upstreams.default",
                "\"" + u.default_name + "\" is a wkd upstream; the default must be a keyserver "
                "(kind = \"hkp\" or \"vks\"): it takes the submissions");
    }
  } else {
    const auto first = std::find_if(u.list.begin(), u.list.end(),
                                    [](const auto& up) { return up.keyserver(); });
    if (first != u.list.end()) u.default_name = first->name;
  }
  if (c.server.listen.empty() && c.server.hkps_listen.empty()) {
    r.problem_at_top("server.listen", "at least one listener (listen or hkps_listen) is needed");
  }
  check_readable(r, "upstreams.ca_file", u.ca_file);
  check_readable(r, "cache.blocklist", c.cache.blocklist);
  for (std::size_t i = 0; i < u.list.size(); ++i) {
    check_readable(r, "upstream[" + std::to_string(i) + "].ca_file", u.list[i].ca_file);
  }
  if (!c.server.hkps_listen.empty()) {
    check_readable(r, "server.tls_cert", c.server.tls_cert);
    check_readable(r, "server.tls_key", c.server.tls_key);
  }
  read_admin_token(r, c.admin);
  read_cluster_secret(r, c.cluster);
  if (!r.problems().empty()) {
    throw ConfigError(std::move(r.problems()));
  }
  return c;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

const char* upstream_kind_name(UpstreamKind k) {
  switch (k) {
    case UpstreamKind::vks: return "vks";
    case UpstreamKind::wkd: return "wkd";
    case UpstreamKind::hkp: break;
  }
  return "hkp";
}

const ResolveEntry* UpstreamsConfig::pinned(std::string_view host, std::uint16_t port) const {
  std::string lower(host);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& e : resolve) {
    if (e.host == lower && e.port == port) return &e;
  }
  return nullptr;
}

std::vector<std::size_t> UpstreamsConfig::try_order() const {
  std::vector<std::size_t> order;
  order.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].name == default_name) {
      order.push_back(i);
    }
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].name != default_name) {
      order.push_back(i);
    }
  }
  return order;
}

Config defaults() {
  Config c;
  c.server.listen = {ListenAddress{"127.0.0.1", 11371}};
  c.admin.listen = ListenAddress{"127.0.0.1", 11380};
  const auto keyserver = [](std::string name, std::string host) {
    UpstreamConfig u;  // kind hkp, probe "/", the defaults of the struct
    u.name = std::move(name);
    u.url = "https://" + host;
    u.endpoint = UpstreamUrl{std::move(host), 443, ""};
    return u;
  };
  c.upstreams.list = {keyserver("ubuntu", "keyserver.ubuntu.com"),
                      keyserver("openpgp", "keys.openpgp.org")};
  c.upstreams.default_name = "ubuntu";
  c.limits.exempt = {parse_network("127.0.0.0/8").value(), parse_network("::1").value()};
  c.server.proxy_trusted = c.limits.exempt;
  c.cluster.trusted = c.limits.exempt;
  return c;
}

namespace {

// Offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing past U+10FFFF), or npos. TOML files must be UTF-8, and toml11 3.7 reads
// past its buffer on some invalid sequences (found by tests/fuzz): nothing else reaches it.
std::size_t invalid_utf8_at(std::string_view s) {
  std::size_t i = 0;
  auto cont = [&](std::size_t at) {
    return at < s.size() && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80;
  };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return i;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (!cont(i + k)) return i;
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += n + 1;
  }
  return std::string_view::npos;
}

// The TOML parser's cost grows with the square of a line's length: a one-line array of 60,000
// networks took it 224 s (one per line: 0.07 s). Lines over kLongLine bytes have a line break
// put after each comma of an array (not inside strings, comments or inline tables, where TOML
// allows none), which changes no value; one linear pass over the text. Line numbers in problems
// found after such a line are off by the breaks added; shorter lines are left alone.
constexpr std::size_t kLongLine = 64 << 10;

// toml11's message, many lines with the source quoted and carets under it, as the one line
// every other problem has: "FILE:LINE: TOML syntax error: WHAT (line N: HINT; ...)". LINE is
// where the last caret points (the place the parser gave up), else the error's own location.
std::string syntax_error_line(std::string_view what, const std::string& file, std::size_t line) {
  const auto trim = [](std::string_view v) {
    const auto b = v.find_first_not_of(" \t\r");
    return b == std::string_view::npos ? std::string_view()
                                       : v.substr(b, v.find_last_not_of(" \t\r") - b + 1);
  };
  std::istringstream in{std::string(what)};
  std::string headline;
  std::getline(in, headline);
  for (const std::string_view prefix : {"[error] "}) {
    if (headline.starts_with(prefix)) headline.erase(0, prefix.size());
  }
  if (headline.starts_with("toml::")) {  // "toml::parse_array: ..."
    if (const auto colon = headline.find(": "); colon != std::string::npos)
      headline.erase(0, colon + 2);
  }
  std::string hints;
  std::size_t quoted = 0;  // the source line the last " N | ..." quoted
  for (std::string l; std::getline(in, l);) {
    const auto bar = l.find(" | ");
    const auto caret = l.find("^");
    if (bar != std::string::npos && caret == std::string::npos) {
      const std::string number = std::string(trim(std::string_view(l).substr(0, bar)));
      if (!number.empty() && number.find_first_not_of("0123456789") == std::string::npos) {
        quoted = std::stoul(number);
      }
    } else if (caret != std::string::npos && quoted != 0) {
      std::string hint(trim(std::string_view(l).substr(caret)));
      hint.erase(0, hint.find_first_not_of("^-"));
      hint = std::string(trim(hint));
      if (!hint.empty()) {
        hints += (hints.empty() ? "" : "; ") + ("line " + std::to_string(quoted) + ": " + hint);
      }
      line = quoted;
    }
  }
  return file + ":" + std::to_string(line) + ": TOML syntax error: " + headline +
         (hints.empty() ? "" : " (" + hints + ")");
}

std::string break_long_arrays(std::string_view text) {
  bool any_long = false;
  for (std::size_t at = 0; at < text.size();) {
    const auto nl = text.find('\n', at);
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    if (end - at > kLongLine) any_long = true;
    at = end + 1;
  }
  if (!any_long) return std::string(text);
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::vector<char> open;  // '[' or '{', innermost last
  enum class In { code, basic, literal, ml_basic, ml_literal, comment } in = In::code;
  std::size_t line_start = 0;
  bool long_line = false;
  auto starts = [&](std::size_t i, std::string_view what) { return text.substr(i, what.size()) == what; };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == line_start) {
      const auto nl = text.find('\n', i);
      long_line = (nl == std::string_view::npos ? text.size() : nl) - i > kLongLine;
    }
    out += c;
    if (c == '\n') {
      line_start = i + 1;
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;
      continue;
    }
    switch (in) {
      case In::comment: break;
      case In::basic:
        if (c == '\\' && i + 1 < text.size()) out += text[++i];
        else if (c == '"') in = In::code;
        break;
      case In::literal:
        if (c == '\'') in = In::code;
        break;
      case In::ml_basic:
        if (c == '\\' && i + 1 < text.size()) out += text[++i];
        else if (starts(i, "\"\"\"")) { out += "\"\""; i += 2; in = In::code; }
        break;
      case In::ml_literal:
        if (starts(i, "'''")) { out += "''"; i += 2; in = In::code; }
        break;
      case In::code:
        if (c == '#') in = In::comment;
        else if (starts(i, "\"\"\"")) { out += "\"\""; i += 2; in = In::ml_basic; }
        else if (starts(i, "'''")) { out += "''"; i += 2; in = In::ml_literal; }
        else if (c == '"') in = In::basic;
        else if (c == '\'') in = In::literal;
        else if (c == '[' || c == '{') open.push_back(c);
        else if ((c == ']' || c == '}') && !open.empty()) open.pop_back();
        else if (c == ',' && long_line && !open.empty() && open.back() == '[' &&
                 std::find(open.begin(), open.end(), '{') == open.end()) {
          out += '\n';
        }
        break;
    }
  }
  return out;
}

}  // namespace

Config load_string(std::string_view toml_text, const std::string& source_name) {
  if (const auto bad = invalid_utf8_at(toml_text); bad != std::string_view::npos) {
    const auto line = 1 + std::count(toml_text.begin(), toml_text.begin() + static_cast<long>(bad), '\n');
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(toml_text[bad]));
    throw ConfigError({source_name + ":" + std::to_string(line) + ": not valid UTF-8 (byte " +
                       byte + "); a TOML file must be UTF-8"});
  }
  Value root;
  try {
    std::istringstream in{break_long_arrays(toml_text)};
    root = toml::parse(in, source_name);
  } catch (const toml::syntax_error& e) {
    throw ConfigError({syntax_error_line(e.what(), source_name, e.location().line())});
  }
  return build(root, source_name);
}

Config load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError({path + ": cannot open the config file"});
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return load_string(buf.str(), path);
}

std::vector<std::string> notices(const Config& c) {
  std::vector<std::string> out;
  if (c.upstreams.embedded_list && c.source != "<defaults>") {
    std::string names;
    for (const auto& u : c.upstreams.list) names += (names.empty() ? "" : ", ") + u.url;
    out.push_back(c.source + ": no [[upstream]] table, so misses go to the embedded public " +
                  "keyservers (" + names + "); write `upstream = []` for a gateway that asks " +
                  "nobody");
  }
  return out;
}

std::vector<std::string> restart_only_changes(const Config& a, const Config& b) {
  std::vector<std::string> changed;
  for (const KeyDecl& d : declared_keys()) {
    if (d.reload == Reload::restart && d.differs(a, b)) changed.push_back(d.name());
  }
  return changed;
}

}  // namespace hkpgw::config
