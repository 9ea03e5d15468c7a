// The actors of integration tests: a test keyserver process (real HTTPS), the real hkp-gateway
// binary with a config written for the test, and gpg in a throwaway home.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace hkpgw::test {

class TestKeyserver {
 public:
  // cert: "server" (signed by the test CA for localhost), "rogue" (self-signed), "wrongname".
  // keys: files the keyserver serves (names in the test data directory, or absolute paths).
  explicit TestKeyserver(const TempDir& dir, const std::string& name,
                         const std::string& cert = "server", const std::string& mode = "normal",
                         const std::vector<std::string>& keys = {"upstream-keys.asc"});
  std::string url() const { return "https://localhost:" + port_; }
  // Kills the process: its port refuses connections from then on.
  void stop();
  void set_mode(const std::string& mode, int delay_ms = 0, bool close = false);
  int lookups();  // /pks/lookup requests seen so far
  // Serves `key` (armored or binary) byte for byte in place of its copy; false if refused.
  bool serve_raw(const std::string& key);
  // Serves the HKP v2 prefix log of the keys changed from now on (off: 404, as most servers).
  void serve_prefix_log(bool on);
  // Publishes a key straight to this keyserver (its /pks/add: merged into what it serves).
  bool publish(const std::string& armored);
  // "requests", "lookups", "gets", "indexes", "probes", "resumed", "max_concurrent"
  int count(const std::string& what);

 private:
  std::unique_ptr<Process> process_;
  std::string port_, control_;
};

struct UpstreamSpec {
  std::string name;
  std::string url;
};

// A test gateway's config, table by table: each call adds "key = value" lines to its table
// (several calls add up). What every test gateway has unless the test says otherwise: one
// listener and the admin listener on loopback port 0, the cache in the test's directory, the
// test CA trusted, short upstream timeouts, and no upstream at all.
//   GatewayConfig(dir).upstream("ks", ks.url()).server("max_body_bytes = \"2KiB\"")
class GatewayConfig {
 public:
  explicit GatewayConfig(const TempDir& dir) : dir_(dir.path()) {}

  GatewayConfig& upstream(const std::string& name, const std::string& url) {
    upstreams_.push_back({name, url});
    return *this;
  }
  GatewayConfig& upstreams(const std::vector<UpstreamSpec>& list) {
    upstreams_.insert(upstreams_.end(), list.begin(), list.end());
    return *this;
  }
  GatewayConfig& server(const std::string& lines) { return add(server_, lines); }
  GatewayConfig& admin(const std::string& lines) { return add(admin_, lines); }
  GatewayConfig& cache(const std::string& lines) { return add(cache_, lines); }
  // [upstreams]: its keys (timeouts, merge, resolve...).
  GatewayConfig& upstreams_table(const std::string& lines) { return add(upstreams_table_, lines); }
  GatewayConfig& keys(const std::string& lines) { return add(keys_, lines); }
  GatewayConfig& limits(const std::string& lines) { return add(limits_, lines); }
  GatewayConfig& cluster(const std::string& lines) { return add(cluster_, lines); }
  GatewayConfig& refresh(const std::string& lines) { return add(refresh_, lines); }
  // Whole tables written last ([[upstream]] tables of other kinds, with their own keys).
  GatewayConfig& tables(const std::string& toml) { return add(tables_, toml); }

  const std::string& dir() const { return dir_; }
  std::string toml() const;

 private:
  GatewayConfig& add(std::string& to, const std::string& lines) {
    to += lines;
    if (!lines.empty() && lines.back() != '\n')
      to += '\n';
    return *this;
  }
  std::string dir_;
  std::vector<UpstreamSpec> upstreams_;
  std::string server_, admin_, cache_, upstreams_table_, keys_, limits_, cluster_, refresh_,
      tables_;
};

class Gateway {
 public:
  // Writes the config, starts the binary and waits until it serves. Check started() when the
  // test expects a refusal.
  explicit Gateway(const GatewayConfig& config);
  ~Gateway();
  bool started() const { return !address_.empty(); }
  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  const std::string& admin() const { return admin_; }
  std::string hkp_url() const { return "hkp://" + address_; }
  HttpResult get(const std::string& target) const { return http_get(address_, target); }
  Process& process() { return *process_; }
  std::string log() const { return process_->err(); }
  const std::string& config_path() const { return config_path_; }

 private:
  std::unique_ptr<Process> process_;
  std::string address_, admin_, config_path_;
};

class Gpg {
 public:
  Gpg();
  ~Gpg();
  // gpg --batch ... with this home; keyserver given when not empty.
  RunResult operator()(std::vector<std::string> args, const std::string& keyserver = "");
  // Fingerprints of the public keys in the keyring.
  std::vector<std::string> fingerprints();
  const std::string& home() const { return home_.path(); }

 private:
  TempDir home_;
};

// What integration tests ask and read again and again.
std::string get_target(const std::string& fpr);    // op=get&options=mr&search=0x<fpr>
std::string index_target(const std::string& fpr);  // op=index&options=mr&search=0x<fpr>
// The primary key's line of an mr listing ("pub:FPR:algo:bits:created:expires:flags"), "" when
// the body has none: flags end in "r" for a revoked key.
std::string pub_line(const HttpResult& listing);
// POST /pks/add with this body and content type.
// Everything but [A-Za-z0-9] as %XX, as gpg escapes a keytext.
std::string percent_encode_all(const std::string& s);
HttpResult post_add(const Gateway& gw, const std::string& body,
                    const std::string& content_type = "application/x-www-form-urlencoded");
// Sets the [cluster] table of a running gateway's config (written last in the file, replacing an
// earlier one) and reloads it, waiting for this reload's success line. A table with peers and no
// secret_file gets the fixtures' shared one (cluster.secret).
void set_cluster(Gateway& gw, const std::string& table);
// The headers of a POST to `target` on a replica's admin listener, signed as a peer holding the
// secret in `secret_file` signs it (gateway/net/cluster_auth.hpp).
std::vector<std::string> peer_headers(const std::string& target, const std::string& body,
                                      const std::string& content_type,
                                      const std::string& secret_file = data_dir() +
                                                                       "/cluster.secret");
// "keys" of op=stats&options=mr; -1 when the answer has none.
int cached_keys(const Gateway& gw);
// [server] lines for an HKPS listener on a free loopback port with the test CA's certificate
// for gateway.test and 127.0.0.1.
std::string hkps_server_lines();
// The address ("127.0.0.1:PORT") a gateway's listener of `kind` ("hkp", "hkps", "admin") logged
// at start; "" when none.
std::string listening(const Gateway& gw, const std::string& kind);
// The names of a process's threads (/proc/PID/task/*/comm).
std::set<std::string> thread_names(pid_t pid);
// Each thread name of a process with the CPUs its threads of that name may run on, as
// /proc/PID/task/*/status lists them ("0-1", "1").
std::map<std::string, std::set<std::string>> thread_cpus(pid_t pid);
// What OpenPGP.js (tests/js/read_keys.mjs) reads of `armored`, written to `file` first: one JSON
// line per key on stdout.
RunResult openpgpjs_read(const std::string& file, const std::string& armored);
// Fresh keys OpenPGP.js makes (tests/js/make_keys.mjs): its default v4 key (Ed25519, X25519) and
// a v6 one, armored; both empty when node failed (`run` says why).
struct OpenPgpJsKeys {
  RunResult run;
  std::string v4, v6;
};
OpenPgpJsKeys openpgpjs_make_keys();
// Occurrences of `needle` in `haystack` (overlapping ones too).
std::size_t count_of(const std::string& haystack, const std::string& needle);

}  // namespace hkpgw::test
