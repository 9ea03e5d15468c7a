// The gateway's configuration: an immutable, validated value built from the TOML file described
// in docs/contract.md (or from the embedded defaults when there is no file). A reload builds a new
// Config and swaps it in; nothing ever mutates one after load.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/units.hpp"

namespace hkpgw::config {

enum class LogFormat { logfmt, json };
enum class LogLevel { info, warn, error };

struct ServerConfig {
  std::vector<ListenAddress> listen;       // plain HKP listeners
  std::vector<ListenAddress> hkps_listen;  // TLS listeners
  std::string tls_cert;
  std::string tls_key;
  unsigned threads = 0;  // 0 = one per core
  // Each network thread runs on one CPU of the process's set (thread i on the i-th, round robin);
  // every other thread keeps the whole set. Off: the kernel moves them as it likes.
  bool pin_threads = false;
  std::uint64_t max_header_bytes = 16 << 10;
  std::uint64_t max_body_bytes = 1 << 20;
  // Request bodies being received at once, in bytes (each counted at its Content-Length, or
  // max_body_bytes when chunked): past it an upload is answered 503 before its body is read.
  std::uint64_t max_body_memory = 256ULL << 20;
  // Bytes per second a body must arrive at, on average, after a 5 s grace: slower is 408.
  std::uint64_t min_body_rate = 1024;
  Duration client_timeout = std::chrono::seconds(15);
  std::uint64_t max_connections = 10000;
  // Connections one client address may hold (IPv6: one /64); 0 = no limit. Behind a load
  // balancer that does not pass the client's address, every client is the balancer: raise it.
  std::uint64_t max_connections_per_client = 512;
  bool honor_client_no_cache = false;
  // false: access log lines show search=<redacted> (who looks up which address is personal data).
  // Off by default: who looks up which address is personal data.
  bool log_searches = false;
  // The line format on stderr, and the least level written (access lines are info; an answer
  // with a 5xx status is logged at warn).
  LogFormat log_format = LogFormat::logfmt;
  LogLevel log_level = LogLevel::info;
  // One access line for every N requests (1: every request; 0: none); answers with a 5xx status
  // are always logged. For busy gateways whose access lines cost more than they tell.
  std::uint64_t access_log_sample = 1;
  // Whole answers each network thread keeps to send again (ReusedAnswers); 0 = none.
  std::uint64_t reused_answers = 4096;
  // Every HKP listener expects a PROXY protocol header (v1 or v2) first, from a sender in
  // proxy_trusted (the load balancers; default loopback); its client address is the one logs
  // and limits use. Others are closed. Restart-only.
  bool proxy_protocol = false;
  std::vector<Network> proxy_trusted;
};

struct AdminConfig {
  ListenAddress listen;
  std::string token_file;
  std::string token;  // the file's first line, trimmed, at least 16 characters; "" = admin API off
  std::uint64_t max_connections = 64;  // its own budget: HKP clients can never use it up
  std::uint64_t max_connections_per_client = 16;  // 0 = no limit
  // Host names the admin listener answers besides IP literals and "localhost" (a browser tricked
  // by DNS rebinding sends a name that is none of these).
  std::vector<std::string> allowed_hosts;
};

struct CacheConfig {
  std::string path = "var/cache";
  std::uint64_t max_size = 1ULL << 30;
  Duration fresh_for = std::chrono::hours(1);
  Duration stale_while_revalidate = std::chrono::hours(24);
  Duration stale_if_error = std::chrono::hours(24 * 30);
  Duration negative_ttl = std::chrono::minutes(5);
  std::string blocklist;  // a file of fingerprints never cached, served or forwarded ("" = none)
  // Armored answers of the keys asked for most, kept in memory (AnswerCache); 0 = none.
  std::uint64_t answer_memory = 16ULL << 20;
};

// What an upstream speaks: a keyserver over HKP or over Hagrid's VKS, or each address's own
// domain over WKD.
enum class UpstreamKind { hkp, vks, wkd };
const char* upstream_kind_name(UpstreamKind k);

struct UpstreamConfig {
  std::string name;
  std::string url;  // as written, for logs and the status page ("" for wkd)
  UpstreamUrl endpoint;
  std::string ca_file;
  std::string probe = "/";
  UpstreamKind kind = UpstreamKind::hkp;
  // wkd only: the domains asked (lower case; empty: every address's domain), whether it is
  // asked before the keyservers for addresses (else in list order), and how long a domain whose
  // WKD could not be reached is not asked again.
  std::vector<std::string> domains;
  bool ask_first = true;
  Duration absent_for = std::chrono::hours(1);
  // wkd only: networks besides the public internet it may connect to (an organisation's own WKD
  // server on a private address); by default a domain resolving only to loopback, private,
  // link-local or reserved addresses is refused. Addresses pinned in upstreams.resolve are the
  // operator's choice and always allowed.
  std::vector<Network> allow_networks;

  bool keyserver() const { return kind != UpstreamKind::wkd; }

  friend bool operator==(const UpstreamConfig&, const UpstreamConfig&) = default;
};

enum class MergePolicy { first, all };
enum class ForwardAdds { default_upstream, all, none };

// One `upstreams.resolve` entry, "HOST:PORT:ADDRESS" as curl's --resolve takes it, or
// "HOST:PORT:ADDRESS:PORT2" as its --connect-to does: connections to HOST:PORT go to ADDRESS (an
// IP literal; IPv6 in brackets when PORT2 follows), on PORT2 if given; TLS still sends and
// verifies HOST.
struct ResolveEntry {
  std::string host;  // lower case
  std::uint16_t port = 443;
  std::string address;  // without brackets
  std::uint16_t connect_port = 0;  // 0: `port`

  friend bool operator==(const ResolveEntry&, const ResolveEntry&) = default;
};

struct UpstreamsConfig {
  std::string default_name;  // resolved: never empty when the list holds a keyserver (hkp, vks)
  std::string ca_file;
  Duration connect_timeout = std::chrono::seconds(3);
  Duration request_timeout = std::chrono::seconds(10);
  Duration hedge_after = Duration(0);
  // With every upstream unhealthy, each is asked at once for at most this long.
  Duration panic_timeout = std::chrono::seconds(1);
  MergePolicy merge = MergePolicy::first;
  ForwardAdds forward_adds = ForwardAdds::default_upstream;
  Duration probe_interval = std::chrono::seconds(30);
  Duration probe_timeout = std::chrono::seconds(5);
  unsigned unhealthy_threshold = 3;
  unsigned healthy_threshold = 2;
  unsigned max_connections = 16;  // per upstream, idle ones included; more requests wait their turn
  std::vector<UpstreamConfig> list;  // in file order
  bool embedded_list = true;  // no [[upstream]] in the file: the embedded public keyservers

  std::vector<ResolveEntry> resolve;  // pinned addresses for host names (split DNS, tests)

  // The order misses are tried in: the default first, then the others in list order.
  std::vector<std::size_t> try_order() const;
  // The `resolve` entry for host:port, or null (resolve the name as usual).
  const ResolveEntry* pinned(std::string_view host, std::uint16_t port) const;
};

enum class ThirdPartySigs { keep, strip, strip_if_oversize };
enum class ShortKeyIds { reject, cache_only };

struct KeysConfig {
  std::uint64_t max_key_bytes = 1 << 20;
  std::uint64_t max_packet_bytes = 8 << 10;
  std::uint64_t max_sig_packet_bytes = 64 << 10;
  // What becomes of signatures the key's owner did not make. strip (as keys.openpgp.org): none
  // is kept but a key revocation by a revoker the owner designated and certifications by the
  // `certifiers` below, verified; keep: all, up to max_key_bytes; strip_if_oversize: all, or none
  // when there are more than max_third_party_sigs (the default before 0.3).
  ThirdPartySigs third_party_sigs = ThirdPartySigs::strip;
  std::uint64_t max_third_party_sigs = 1000;
  // Issuers whose certifications (and certification revocations) `strip` keeps, verified with
  // their public keys from `certifier_keys` (a file read at load): an organisation's CA key.
  std::vector<std::string> certifiers;  // 40 hex digits, upper case
  std::string certifier_keys;           // the file, as configured
  std::string certifier_key_data;       // its contents
  // A key with more user IDs (and attributes) or subkeys is refused whole: real keys have a
  // handful, and each one costs a signature verification.
  std::uint64_t max_user_ids = 100;
  std::uint64_t max_subkeys = 100;
  ShortKeyIds short_key_ids = ShortKeyIds::reject;
  // The OpenPGP work pool (parse, clean, merge): its threads (0 = one per core) and how many
  // jobs may wait for it; past that /pks/add answers 503 with Retry-After.
  std::uint64_t workers = 0;
  std::uint64_t work_queue = 64;
  // Estimated CPU of verifying the new self-signatures of one key, and of one submission (or one
  // upstream answer): past the first, signatures are dropped at random (revocations last); past
  // the second, a submission is refused with 413 and an answer's further keys are not verified.
  Duration verify_budget_per_key = std::chrono::milliseconds(250);
  Duration verify_budget_per_submission = std::chrono::seconds(1);
};

// Per-client rate limits (token buckets per client address, IPv6 per /64): a rate in events per
// second (0: no limit) and the burst a client may spend at once, for each budget.
struct Budget {
  double rate = 0;
  std::uint64_t burst = 1;
  bool limited() const { return rate > 0; }

  friend bool operator==(const Budget&, const Budget&) = default;
};
struct LimitsConfig {
  Budget key_lookups{5.0, 1000};       // by fingerprint or key ID (keys.openpgp.org: ~5/s, 1000)
  Budget searches{1.0 / 60, 50};       // by address or text (keys.openpgp.org: ~1/min, 50)
  Budget submissions{10.0 / 60, 20};   // uploads and request-verify
  std::vector<Network> exempt;         // never limited (defaults: loopback)
  std::vector<Network> deny;           // refused outright with 403, exempt or not (default none)
  std::uint64_t max_clients = 100000;  // clients tracked at once; memory is bounded by it
};

// Replicas of one cluster (behind one balancer) keep each other's caches in step: every key a
// client submits to one replica is pushed to each peer's admin listener (POST /cluster/keys),
// where it is merged like a submission and never forwarded again. A peer is "host:port"; pushes
// are accepted only from `trusted` networks (default: loopback).
struct ClusterConfig {
  std::vector<ListenAddress> peers;
  std::vector<Network> trusted;
  // The secret the replicas share: every /cluster/* request carries an HMAC keyed with it
  // (gateway/net/cluster_auth.hpp). Required with peers; read from the file at each load.
  std::string secret_file;
  std::string secret;  // the file's contents, surrounding whitespace trimmed
};

// The refresher: every cached key is asked of the upstreams again at least once per `every`,
// on the gateway's own schedule (never a client's), at most `max_rate` keys a second, so a
// revocation published upstream is served within about `every` even if nobody asks for the key.
struct RefreshConfig {
  Duration every = std::chrono::hours(1);
  double max_rate = 4;  // keys a second, all upstreams together; 0 turns the refresher off
  bool enabled() const { return max_rate > 0; }
};

// The web pages (gateway/http/web.cpp).
struct WebConfig {
  // true: the status section of /help names the upstream keyservers and their URLs (internal
  // addresses, say); false: it says only how many answer.
  bool show_upstreams = false;
};

struct Config {
  ServerConfig server;
  AdminConfig admin;
  CacheConfig cache;
  UpstreamsConfig upstreams;
  KeysConfig keys;
  LimitsConfig limits;
  ClusterConfig cluster;
  RefreshConfig refresh;
  WebConfig web;
  std::string source = "<defaults>";  // file the config came from
};

// Every problem found in a config file, each "FILE:LINE: key.path: what is wrong".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// The embedded defaults (deploy/gateway.example.toml lists them), two public upstreams included.
Config defaults();

// Parses and validates; throws ConfigError listing every problem (not just the first).
Config load_file(const std::string& path);
Config load_string(std::string_view toml_text, const std::string& source_name);

// What a valid config does that its author may not expect, one line each ("FILE: ..."): a file
// without [[upstream]] asks the embedded public keyservers. Printed by --check-config, logged at
// start (event=config_notice).
std::vector<std::string> notices(const Config& c);

// Keys that only take effect on restart, named by path, that differ between a and b.
std::vector<std::string> restart_only_changes(const Config& a, const Config& b);

}  // namespace hkpgw::config
