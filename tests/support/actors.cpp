#include "support/actors.hpp"

#include <cctype>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "gateway/net/cluster_auth.hpp"

namespace hkpgw::test {

TestKeyserver::TestKeyserver(const TempDir& dir, const std::string& name, const std::string& cert,
                             const std::string& mode, const std::vector<std::string>& keys) {
  const std::string d = data_dir();
  std::vector<std::string> argv{HKPGW_TEST_KEYSERVER, "--cert", d + "/" + cert + ".pem",
                                "--key", d + "/" + cert + ".key", "--mode", mode};
  for (const auto& k : keys) argv.insert(argv.end(), {"--keys", k.starts_with('/') ? k : d + "/" + k});
  process_ = std::make_unique<Process>(argv, dir / ("keyserver-" + name));
  const auto line = process_->wait_for("control=");
  if (!line) throw std::runtime_error("test keyserver did not start: " + process_->err());
  std::istringstream in(*line);
  for (std::string word; in >> word;) {
    if (word.starts_with("tls=")) port_ = word.substr(word.rfind(':') + 1);
    if (word.starts_with("control=")) control_ = word.substr(8);
  }
}

void TestKeyserver::stop() {
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(5));
}

bool TestKeyserver::serve_raw(const std::string& key) {
  return http_request(control_, "POST", "/raw", key).status == 200;
}

void TestKeyserver::serve_prefix_log(bool on) {
  http_get(control_, std::string("/prefixlog?on=") + (on ? "1" : "0"));
}

bool TestKeyserver::publish(const std::string& armored) {
  // The TLS port is the keyserver's; the control port takes the same submission in plain HTTP.
  return http_request(control_, "POST", "/add", "keytext=" + percent_encode_all(armored),
                      {"Content-Type: application/x-www-form-urlencoded"})
             .status == 200;
}

void TestKeyserver::set_mode(const std::string& mode, int delay_ms, bool close) {
  http_get(control_, "/mode?set=" + mode + "&delay_ms=" + std::to_string(delay_ms) +
                         (close ? "&close=1" : ""));
}

int TestKeyserver::count(const std::string& what) {
  const std::string body = http_get(control_, "/stats").body;
  const auto at = body.find(what + "=");
  return at == std::string::npos ? -1 : std::stoi(body.substr(at + what.size() + 1));
}

int TestKeyserver::lookups() { return count("lookups"); }

std::string GatewayConfig::toml() const {
  // Top-level keys must precede the first table header.
  const bool own_tables = tables_.find("[[upstream]]") != std::string::npos ||
                          upstreams_table_.find("[[upstream]]") != std::string::npos;
  std::string toml = upstreams_.empty() && !own_tables ? "upstream = []\n\n" : "";
  // A test that names its own listeners replaces the default one.
  const bool own_listen =
      server_.starts_with("listen =") || server_.find("\nlisten =") != std::string::npos;
  toml += "[server]\n" + std::string(own_listen ? "" : "listen = [\"127.0.0.1:0\"]\n") + server_ +
          "\n[admin]\nlisten = \"127.0.0.1:0\"\n" + admin_ + "\n[cache]\npath = \"" + dir_ +
          "/cache\"\n" + cache_ + "\n[upstreams]\nca_file = \"" + data_dir() + "/ca.pem\"\n";
  // Short test defaults unless the test sets its own.
  if (upstreams_table_.find("connect_timeout") == std::string::npos) {
    toml += "connect_timeout = \"2s\"\n";
  }
  if (upstreams_table_.find("request_timeout") == std::string::npos) {
    toml += "request_timeout = \"3s\"\n";
  }
  toml += upstreams_table_;
  auto table = [&toml](const char* name, const std::string& lines) {
    if (!lines.empty())
      toml += "\n[" + std::string(name) + "]\n" + lines;
  };
  table("keys", keys_);
  table("limits", limits_);
  table("cluster", cluster_);
  table("refresh", refresh_);
  for (const auto& u : upstreams_) {
    toml += "\n[[upstream]]\nname = \"" + u.name + "\"\nurl = \"" + u.url + "\"\n";
  }
  if (!tables_.empty())
    toml += "\n" + tables_;
  return toml;
}

Gateway::Gateway(const GatewayConfig& config) {
  const std::string toml = config.toml();
  const std::string dir = config.dir();
  config_path_ = dir + "/gateway.toml";
  write_file(config_path_, toml);
  process_ = std::make_unique<Process>(
      std::vector<std::string>{HKPGW_BINARY, "--config", config_path_}, dir + "/gateway");
  if (!process_->wait_for("event=started")) return;
  const std::string log = process_->err();
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("event=listening") == std::string::npos) continue;
    if (field(line, "listener") == "hkp") address_ = field(line, "addr");
    if (field(line, "listener") == "admin") admin_ = field(line, "addr");
  }
}

Gateway::~Gateway() {
  process_->signal(SIGTERM);
  process_->wait(std::chrono::seconds(15));
}

Gpg::Gpg() = default;

Gpg::~Gpg() { run({"gpgconf", "--kill", "all"}, {{"GNUPGHOME", home_.path()}}); }

RunResult Gpg::operator()(std::vector<std::string> args, const std::string& keyserver) {
  std::vector<std::string> argv = {"gpg", "--batch", "--no-tty", "--no-auto-check-trustdb"};
  if (!keyserver.empty()) {
    argv.insert(argv.end(), {"--keyserver", keyserver});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"GNUPGHOME", home_.path()}});
}

std::vector<std::string> Gpg::fingerprints() {
  const auto r = (*this)({"--with-colons", "--list-keys"});
  std::vector<std::string> out;
  std::istringstream in(r.out);
  bool after_pub = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("pub:")) after_pub = true;
    if (line.starts_with("fpr:") && after_pub) {
      std::vector<std::string> f;
      std::istringstream fs(line);
      for (std::string x; std::getline(fs, x, ':');) f.push_back(x);
      if (f.size() > 9) out.push_back(f[9]);
      after_pub = false;
    }
  }
  return out;
}

std::string get_target(const std::string& fpr) { return "/pks/lookup?op=get&options=mr&search=0x" + fpr; }
std::string index_target(const std::string& fpr) {
  return "/pks/lookup?op=index&options=mr&search=0x" + fpr;
}

std::string pub_line(const HttpResult& listing) {
  const auto at = listing.body.find("pub:");
  return at == std::string::npos ? ""
                                 : listing.body.substr(at, listing.body.find('\n', at) - at);
}

std::string percent_encode_all(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c)) out.push_back(static_cast<char>(c));
    else out += {'%', hex[c >> 4], hex[c & 15]};
  }
  return out;
}

HttpResult post_add(const Gateway& gw, const std::string& body, const std::string& content_type) {
  return http_request(gw.address(), "POST", "/pks/add", body, {"Content-Type: " + content_type});
}

int cached_keys(const Gateway& gw) {
  const std::string body = gw.get("/pks/lookup?op=stats&options=mr").body;
  const auto at = body.find("\"keys\":");
  return at == std::string::npos ? -1 : std::stoi(body.substr(at + 7));
}

RunResult openpgpjs_read(const std::string& file, const std::string& armored) {
  write_file(file, armored);
  return run({"node", std::string(HKPGW_SOURCE_DIR) + "/tests/js/read_keys.mjs", file});
}

OpenPgpJsKeys openpgpjs_make_keys() {
  OpenPgpJsKeys keys;
  keys.run = run({"node", std::string(HKPGW_SOURCE_DIR) + "/tests/js/make_keys.mjs"});
  const std::string end = "-----END PGP PUBLIC KEY BLOCK-----";
  const auto split = keys.run.out.find(end);
  if (keys.run.exit_code != 0 || split == std::string::npos) return keys;
  keys.v4 = keys.run.out.substr(0, split + end.size()) + "\n";
  keys.v6 = keys.run.out.substr(split + end.size());
  return keys;
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

std::set<std::string> thread_names(pid_t pid) {
  std::set<std::string> names;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(tasks)) {
    std::string comm = read_file((t.path() / "comm").string());
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    names.insert(comm);
  }
  return names;
}

std::string hkps_server_lines() {
  const std::string d = data_dir();
  return "hkps_listen = [\"127.0.0.1:0\"]\ntls_cert = \"" + d + "/gateway.pem\"\ntls_key = \"" + d +
         "/gateway.key\"\n";
}

std::string listening(const Gateway& gw, const std::string& kind) {
  std::istringstream in(gw.log());
  for (std::string line; std::getline(in, line);) {
    if (line.find("event=listening") != std::string::npos && field(line, "listener") == kind) {
      return field(line, "addr");
    }
  }
  return {};
}

std::map<std::string, std::set<std::string>> thread_cpus(pid_t pid) {
  std::map<std::string, std::set<std::string>> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(tasks)) {
    std::string comm = read_file((t.path() / "comm").string());
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    const std::string status = read_file((t.path() / "status").string());
    const std::string field = "Cpus_allowed_list:";
    const auto at = status.find(field);
    if (at == std::string::npos) continue;
    const auto begin = status.find_first_not_of(" \t", at + field.size());
    out[comm].insert(status.substr(begin, status.find('\n', begin) - begin));
  }
  return out;
}

std::vector<std::string> peer_headers(const std::string& target, const std::string& body,
                                      const std::string& content_type,
                                      const std::string& secret_file) {
  std::string secret = read_file(secret_file);
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  return {"Content-Type: " + content_type,
          "Authorization: " +
              gateway::cluster_authorization(secret, "POST", target, body,
                                             static_cast<std::uint64_t>(std::time(nullptr)),
                                             gateway::random_nonce())};
}

void set_cluster(Gateway& gw, const std::string& table) {
  std::string toml = read_file(gw.config_path());
  toml = toml.substr(0, toml.find("\n[cluster]\n"));
  // Replicas with peers share a secret: the fixtures' one, unless the table names another.
  const bool needs_secret = table.find("peers") != std::string::npos &&
                            table.find("secret_file") == std::string::npos;
  const std::string secret =
      needs_secret ? "secret_file = \"" + data_dir() + "/cluster.secret\"\n" : "";
  write_file(gw.config_path(), toml + "\n[cluster]\n" + table + secret);
  const auto reloads = [&] { return occurrences(gw.log(), "event=config_reload result=success"); };
  const std::size_t before = reloads();
  gw.process().signal(SIGHUP);
  if (!eventually([&] { return reloads() > before; })) {
    throw std::runtime_error("set_cluster: no successful reload of " + gw.config_path());
  }
}

}  // namespace hkpgw::test
