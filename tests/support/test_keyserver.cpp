// A keyserver for tests: speaks real HTTPS (certificate from the test CA) with keys from .asc
// files, and can be told to misbehave. A plain-HTTP control port on loopback changes the mode and
// reports how many requests it saw:
//   GET /mode?set=normal|fail|busy|reset|notfound|hang|slow|wrongkey|nouids|slowverify
//       [&delay_ms=N][&close=1]  (slowverify: request-verify answered after delay_ms)
//     busy answers lookups 429 with Retry-After: 30 (counted in lookups);
//     fail (HTTP 500), reset (TCP reset, no answer) and hang apply to every path (the health
//     probe's too); delay_ms delays lookups only;
//     close=1 closes the connection after every answer (each request a new TLS handshake).
//   GET /stats -> "requests=N lookups=N gets=N indexes=N probes=N resumed=N max_concurrent=N adds=N
//     wkd=N verifies=N"
//   POST /pks/add (keytext=) merges the submitted keys into what it serves; adds counts them.
//   GET /prefixlog?on=1 (control port) serves GET /pks/v2/prefixlog/<YYYY-MM-DD> from then on
//     (8-hex-digit prefixes of the keys changed that day, CRLF after each; 404 while off).
//   POST /add (control port) does what /pks/add does, without counting as a request seen.
//   POST /raw (control port; one key, armored or binary) serves those bytes as they are in place
//     of that key's copy: padded or crowded copies as a hostile keyserver would serve them.
//   GET /.well-known/openpgpkey/<domain>/hu/<hash> (WKD's advanced place) and
//     /.well-known/openpgpkey/hu/<hash> (the direct one, the domain from the Host header): the
//     binary keys with a user ID of that domain whose hashed local part is <hash>; wkd counts
//     them. wrongkey serves a key of another address instead.
//   Hagrid's VKS: GET /vks/v1/by-fingerprint|by-keyid|by-email/... (gets counts them), POST
//     /vks/v1/upload (JSON keytext; addresses "unpublished", token "tok-<FPR>"; adds counts the
//     keys) and POST /vks/v1/request-verify (verifies counts them; addresses become "pending").
//     resumed: requests that arrived on a TLS connection resumed from an earlier session;
//     max_concurrent: the most lookups in flight at once.
// Prints "tls=ADDR control=ADDR" on stdout once listening.
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "config/config.hpp"
#include "gateway/net/http_server.hpp"
#include "gateway/net/tls.hpp"
#include "hkp/index.hpp"
#include "hkp/keyring.hpp"
#include "hkp/vks.hpp"
#include "hkp/wkd.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace hkpgw;
using gateway::HttpRequest;
using gateway::HttpResponse;
using gateway::text_response;

namespace {

// The keys served, indexed by fingerprint, key ID and address of the primary key, its subkeys
// and its user IDs: a lookup costs the fixture a hash probe, not a walk of the corpus, so a
// benchmark's upstream is bound by its artificial latency, not by the fixture's CPU.
struct Keyring {
  std::vector<hkp::ParsedKey> list;
  std::unordered_multimap<std::string, std::size_t> by_id;  // "f:FPR" "k:KEYID" "s:SHORT" "e:addr"

  explicit Keyring(std::vector<hkp::ParsedKey> keys) : list(std::move(keys)) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& info = list[i].info;
      auto ids = [&](const std::string& fpr) {
        const std::string keyid = hkp::keyid_of(fpr);
        by_id.emplace("f:" + fpr, i);
        by_id.emplace("k:" + keyid, i);
        if (keyid.size() >= 8) by_id.emplace("s:" + keyid.substr(keyid.size() - 8), i);
      };
      ids(info.fingerprint);
      for (const auto& sub : info.subkeys) ids(sub.fingerprint);
      for (const auto& uid : info.uids) {
        if (!uid.email.empty()) by_id.emplace("e:" + uid.email, i);
      }
    }
  }

  // The keys matching a search, in list order (text searches walk the list).
  std::vector<const hkp::ParsedKey*> find(const hkp::Search& search) const {
    std::vector<const hkp::ParsedKey*> hits;
    const char* prefix = search.kind == hkp::SearchKind::fingerprint   ? "f:"
                         : search.kind == hkp::SearchKind::long_keyid  ? "k:"
                         : search.kind == hkp::SearchKind::short_keyid ? "s:"
                         : search.kind == hkp::SearchKind::email       ? "e:"
                                                                        : nullptr;
    if (!prefix) {
      for (const auto& k : list) {
        if (k.info.matches(search)) hits.push_back(&k);
      }
      return hits;
    }
    std::vector<std::size_t> at;
    auto [from, to] = by_id.equal_range(prefix + search.value);
    for (auto it = from; it != to; ++it) at.push_back(it->second);
    std::sort(at.begin(), at.end());
    at.erase(std::unique(at.begin(), at.end()), at.end());
    for (std::size_t i : at) {
      if (list[i].info.matches(search)) hits.push_back(&list[i]);
    }
    return hits;
  }
};

struct State {
  std::shared_ptr<const Keyring> keys;  // replaced whole on /pks/add
  std::mutex mutex;
  std::string mode = "normal";
  int delay_ms = 0;
  bool close = false;
  std::atomic<int> requests{0}, lookups{0}, gets{0}, indexes{0}, probes{0}, resumed{0}, adds{0},
      wkd{0}, verifies{0};
  std::atomic<int> concurrent{0}, max_concurrent{0};
  // The prefix log (HKP v2 draft, as Hockeypuck serves it): keys changed by /add, /pks/add or
  // /raw, with when; served at /pks/v2/prefixlog/<YYYY-MM-DD> once /prefixlog?on=1 said so.
  std::vector<std::pair<std::string, std::time_t>> modified;  // under mutex
  bool prefix_log = false;                                     // under mutex

  std::tuple<std::string, int, bool> current() {
    std::lock_guard lock(mutex);
    return {mode, delay_ms, close};
  }
};

// Keys are served as given, floods included: cleaning is the gateway's job, not the fixture's.
config::KeysConfig keep_everything() {
  config::KeysConfig keep;
  keep.third_party_sigs = config::ThirdPartySigs::keep;
  keep.max_key_bytes = keep.max_packet_bytes = keep.max_sig_packet_bytes = 1ULL << 30;
  keep.max_third_party_sigs = 1ULL << 40;
  return keep;
}

std::string query_value(std::string_view query, std::string_view key) {
  for (const auto& [k, v] : hkp::split_query(query)) {
    if (k == key) return hkp::percent_decode(v, false);
  }
  return "";
}

asio::awaitable<HttpResponse> answer(State& st, const HttpRequest& req, const std::string& mode,
                                     int delay);

// The keyserver port: a small HTTPS server of its own (not the gateway's HttpServer), because
// misbehaving is its job: in "reset" mode it answers nothing and drops the connection with a
// TCP reset, and it counts resumed TLS handshakes, which no production server needs to expose.
asio::awaitable<void> keyserver_session(State& st, beast::ssl_stream<beast::tcp_stream> stream) {
  constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_after(std::chrono::seconds(30));
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, tuple);
  if (hec) co_return;
  const bool resumed = SSL_session_reused(stream.native_handle()) == 1;
  beast::flat_buffer buffer;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    tcp_layer.expires_after(std::chrono::seconds(60));
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, tuple);
    if (rec) co_return;
    auto msg = parser.release();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.host = std::string(msg[http::field::host]);
    req.body = std::move(msg.body());
    ++st.requests;
    if (resumed) ++st.resumed;
    if (req.path() == "/pks/lookup") ++st.lookups;
    if (req.path() == "/") ++st.probes;
    const auto [mode, delay, close] = st.current();
    if (mode == "reset") {  // no answer at all: RST, as a crashing or hostile server would
      beast::error_code ignored;
      tcp_layer.socket().set_option(tcp::socket::linger(true, 0), ignored);
      tcp_layer.socket().close(ignored);
      co_return;
    }
    HttpResponse r = co_await answer(st, req, mode, delay);
    const bool keep_alive = msg.keep_alive() && !close && !r.close;
    http::response<http::string_body> res{static_cast<http::status>(r.status), msg.version()};
    res.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    tcp_layer.expires_after(std::chrono::seconds(30));
    auto [wec, wn] = co_await http::async_write(stream, res, tuple);
    if (wec || !keep_alive) break;
  }
  tcp_layer.expires_after(std::chrono::seconds(2));
  co_await stream.async_shutdown(tuple);
}

asio::awaitable<void> keyserver_accept(State& st, tcp::acceptor& acceptor, asio::ssl::context& tls) {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), tls);
    asio::co_spawn(acceptor.get_executor(), keyserver_session(st, std::move(stream)),
                   asio::detached);
  }
}

// Merges submitted keys into what is served; the keys taken (none: not a usable submission).
std::vector<hkp::KeyInfo> add_keys(State& st, const std::string& keytext) {
  auto parsed = hkp::parse_keys(keytext, keep_everything());
  if (parsed.keys.empty() || parsed.secret_material) return {};
  std::vector<hkp::KeyInfo> taken;
  std::lock_guard lock(st.mutex);
  auto next = std::make_shared<std::vector<hkp::ParsedKey>>(st.keys->list);
  for (auto& k : parsed.keys) {
    ++st.adds;
    taken.push_back(k.info);
    st.modified.emplace_back(k.info.fingerprint, std::time(nullptr));
    auto same = [&](const hkp::ParsedKey& x) { return x.info.fingerprint == k.info.fingerprint; };
    auto it = std::find_if(next->begin(), next->end(), same);
    if (it == next->end()) {
      next->push_back(std::move(k));
    } else {
      auto merged = hkp::parse_keys(it->packets + k.packets, keep_everything());
      if (!merged.keys.empty()) *it = std::move(merged.keys.front());
    }
  }
  st.keys = std::make_shared<const Keyring>(std::move(*next));
  return taken;
}

// Serves `body` (one key, armored or binary) byte for byte in place of the key with its
// fingerprint: a keyserver whose copy was padded or crowded by someone else. The facts the index
// needs come from a parse with every limit lifted; the packets served are the raw ones.
bool replace_raw(State& st, const std::string& body) {
  auto limits = keep_everything();
  limits.max_user_ids = limits.max_subkeys = 1ULL << 20;
  auto parsed = hkp::parse_keys(body, limits);
  auto decoded = hkp::dearmor(body);
  if (parsed.keys.size() != 1 || !decoded) return false;
  hkp::ParsedKey k = std::move(parsed.keys.front());
  k.packets = decoded->binary;
  std::lock_guard lock(st.mutex);
  auto next = std::make_shared<std::vector<hkp::ParsedKey>>(st.keys->list);
  auto same = [&](const hkp::ParsedKey& x) { return x.info.fingerprint == k.info.fingerprint; };
  std::erase_if(*next, same);
  st.modified.emplace_back(k.info.fingerprint, std::time(nullptr));
  next->push_back(std::move(k));
  st.keys = std::make_shared<const Keyring>(std::move(*next));
  return true;
}

// The first 8 hex digits (lower case) of each key changed on the day the path names, CRLF after
// each; 404 while the log is off (a keyserver that has none).
HttpResponse prefix_log_answer(State& st, const HttpRequest& req) {
  const std::string day(req.path().substr(std::string_view("/pks/v2/prefixlog/").size()));
  std::lock_guard lock(st.mutex);
  if (!st.prefix_log) return text_response(404, "no prefix log here");
  HttpResponse r;
  for (const auto& [fpr, when] : st.modified) {
    std::tm tm{};
    gmtime_r(&when, &tm);
    char date[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
    if (day != date) continue;
    for (std::size_t i = 0; i < 8 && i < fpr.size(); ++i) {
      r.body.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(fpr[i]))));
    }
    r.body += "\r\n";
  }
  return r;
}

HttpResponse json(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

// Hagrid's VKS, as keys.openpgp.org answers it: addresses unpublished until verified, tokens
// "tok-<FPR>", request-verify making the asked addresses pending.
HttpResponse vks_answer(State& st, const HttpRequest& req) {
  const auto states = [](const hkp::KeyInfo& info, const std::vector<std::string>& only,
                         const char* state) {
    std::string out = "{";
    for (const auto& [address, revoked] : hkp::addresses_of(info)) {
      if (!only.empty() && std::find(only.begin(), only.end(), address) == only.end()) continue;
      out += (out.size() > 1 ? ",\"" : "\"") + address + "\":\"" + state + "\"";
    }
    return out + "}";
  };
  if (req.method == "POST" && req.path() == "/vks/v1/upload") {
    auto sub = hkp::parse_vks_upload(req.body);
    if (!sub) return json(400, "{\"error\":\"" + sub.error().detail + "\"}");
    const auto taken = add_keys(st, sub->keytext);
    if (taken.empty()) return json(400, "{\"error\":\"no usable key\"}");
    return json(200, "{\"key_fpr\":\"" + taken[0].fingerprint + "\",\"status\":" +
                         states(taken[0], {}, "unpublished") + ",\"token\":\"tok-" +
                         taken[0].fingerprint + "\"}");
  }
  if (req.method == "POST" && req.path() == "/vks/v1/request-verify") {
    ++st.verifies;
    auto v = hkp::parse_vks_verify(req.body);
    if (!v || !v->token.starts_with("tok-")) return json(400, "{\"error\":\"invalid token\"}");
    std::shared_ptr<const Keyring> keys;
    {
      std::lock_guard lock(st.mutex);
      keys = st.keys;
    }
    const auto hits = keys->find({hkp::SearchKind::fingerprint, v->token.substr(4)});
    if (hits.empty()) return json(400, "{\"error\":\"invalid token\"}");
    return json(200, "{\"key_fpr\":\"" + hits[0]->info.fingerprint + "\",\"status\":" +
                         states(hits[0]->info, v->addresses, "pending") + ",\"token\":\"" +
                         v->token + "\"}");
  }
  auto parsed = hkp::parse_vks_lookup(req.path());
  if (!parsed) return text_response(parsed.error().status, parsed.error().message());
  ++st.gets;
  std::shared_ptr<const Keyring> keys;
  {
    std::lock_guard lock(st.mutex);
    keys = st.keys;
  }
  const auto hits = keys->find(parsed->search);
  if (hits.empty()) return text_response(404, "No key found");
  HttpResponse r;
  r.content_type = "application/pgp-keys";
  r.body = hkp::armor_public_keys(hits[0]->packets);
  return r;
}

constexpr std::string_view kWkdPrefix = "/.well-known/openpgpkey/";

HttpResponse wkd_answer(State& st, const HttpRequest& req, const std::string& mode) {
  ++st.wkd;
  std::string_view rest = req.path().substr(kWkdPrefix.size());
  std::string domain;
  if (rest.starts_with("hu/")) {  // direct: the domain is the host asked
    domain = req.host.substr(0, req.host.find(':'));
  } else {
    domain = std::string(rest.substr(0, rest.find('/')));
    rest.remove_prefix(std::min(rest.size(), domain.size() + 1));
  }
  if (!rest.starts_with("hu/")) return text_response(404, "not a WKD key path");
  const std::string hash(rest.substr(std::min<std::size_t>(3, rest.size())));
  std::shared_ptr<const Keyring> keys;
  {
    std::lock_guard lock(st.mutex);
    keys = st.keys;
  }
  std::string packets;
  for (const auto& k : keys->list) {
    bool carries = false;
    for (const auto& uid : k.info.uids) {
      const auto at = uid.email.rfind('@');
      if (at == std::string::npos || uid.email.substr(at + 1) != domain) continue;
      carries = carries || hkp::wkd_hash(uid.email.substr(0, at)) == hash;
    }
    if (carries != (mode == "wrongkey")) packets += k.packets;
    if (mode == "wrongkey" && !packets.empty()) break;
  }
  if (packets.empty()) return text_response(404, "no key for this address");
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.body = std::move(packets);
  return r;
}

asio::awaitable<HttpResponse> answer(State& st, const HttpRequest& req, const std::string& mode,
                                     int delay) {
  const bool lookup = req.path() == "/pks/lookup";
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  if (mode == "hang") {
    timer.expires_after(std::chrono::seconds(30));  // longer than any test's request_timeout
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return text_response(500, "hung");
  }
  if (mode == "fail") co_return text_response(500, "test keyserver failing on purpose");
  if (mode == "busy" && lookup) {  // a keyserver's rate limit: come back in 30 s
    ++st.lookups;
    HttpResponse busy = text_response(429, "Too many requests");
    busy.set("Retry-After", "30");
    co_return busy;
  }
  if (req.path() == "/pks/add" && req.method == "POST") {
    auto keytext = hkp::form_field(req.body, "keytext");
    if (!keytext) co_return text_response(400, "no keytext");
    if (add_keys(st, *keytext).empty()) co_return text_response(400, "no usable key");
    co_return text_response(200, "key(s) added");
  }
  if (req.path().starts_with("/pks/v2/prefixlog/")) co_return prefix_log_answer(st, req);
  if (mode == "slowverify" && req.path() == "/vks/v1/request-verify" && delay > 0) {
    timer.expires_after(std::chrono::milliseconds(delay));  // Hagrid sending its mail slowly
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (req.path().starts_with(hkp::kVksPrefix)) co_return vks_answer(st, req);
  if (req.path().starts_with(kWkdPrefix)) co_return wkd_answer(st, req, mode);
  if (!lookup) co_return text_response(req.path() == "/" ? 200 : 404, "test keyserver");
  struct InFlight {
    State& st;
    explicit InFlight(State& s) : st(s) {
      const int now = ++st.concurrent;
      for (int seen = st.max_concurrent; now > seen && !st.max_concurrent.compare_exchange_weak(seen, now);) {
      }
    }
    ~InFlight() { --st.concurrent; }
  } in_flight(st);
  if (delay > 0) {
    timer.expires_after(std::chrono::milliseconds(delay));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (mode == "notfound") co_return text_response(404, "No results found");

  auto parsed = hkp::parse_lookup(req.query());
  if (!parsed) co_return text_response(parsed.error().status, parsed.error().message());
  std::shared_ptr<const Keyring> snapshot;
  {
    std::lock_guard lock(st.mutex);
    snapshot = st.keys;
  }
  std::vector<const hkp::ParsedKey*> hits = snapshot->find(parsed->search);
  if (parsed->op == hkp::Op::get) {
    ++st.gets;
    if (mode == "wrongkey") {  // a real key, just not one that matches
      hits.clear();
      for (const auto& k : snapshot->list) {
        if (!k.info.matches(parsed->search)) {
          hits.push_back(&k);
          break;
        }
      }
    }
    if (hits.empty()) co_return text_response(404, "No results found");
    std::string packets;
    for (const auto* k : hits) packets += k->packets;
    HttpResponse r;
    r.content_type = "application/pgp-keys";
    r.body = hkp::armor_public_keys(packets);
    co_return r;
  }
  ++st.indexes;
  if (hits.empty()) co_return text_response(404, "No results found");
  std::vector<hkp::IndexEntry> entries;
  for (const auto* k : hits) entries.push_back(hkp::to_index_entry(k->info));
  if (mode == "nouids") {
    for (auto& e : entries) e.uids.clear();
  }
  HttpResponse listing;  // several lines: not a text_response
  listing.body = hkp::format_mr_index(entries, std::time(nullptr));
  co_return listing;
}

asio::awaitable<HttpResponse> control(State& st, const HttpRequest& req) {
  if (req.path() == "/stats") {
    co_return text_response(200, "requests=" + std::to_string(st.requests) +
                                     " lookups=" + std::to_string(st.lookups) +
                                     " gets=" + std::to_string(st.gets) +
                                     " indexes=" + std::to_string(st.indexes) +
                                     " probes=" + std::to_string(st.probes) +
                                     " resumed=" + std::to_string(st.resumed) +
                                     " max_concurrent=" + std::to_string(st.max_concurrent) +
                                     " adds=" + std::to_string(st.adds) +
                                     " wkd=" + std::to_string(st.wkd) +
                                     " verifies=" + std::to_string(st.verifies));
  }
  if (req.path() == "/add" && req.method == "POST") {  // /pks/add, from the test's side
    auto keytext = hkp::form_field(req.body, "keytext");
    if (!keytext) co_return text_response(400, "no keytext");
    const bool added = !add_keys(st, *keytext).empty();
    co_return text_response(added ? 200 : 400, added ? "key(s) added" : "no usable key");
  }
  if (req.path() == "/prefixlog") {
    std::lock_guard lock(st.mutex);
    st.prefix_log = query_value(req.query(), "on") == "1";
    co_return text_response(200, st.prefix_log ? "prefix log on" : "prefix log off");
  }
  if (req.path() == "/raw" && req.method == "POST") {
    co_return replace_raw(st, req.body) ? text_response(200, "replaced")
                                        : text_response(400, "not one key");
  }
  if (req.path() == "/mode") {
    std::lock_guard lock(st.mutex);
    st.mode = query_value(req.query(), "set");
    const std::string d = query_value(req.query(), "delay_ms");
    st.delay_ms = d.empty() ? 0 : std::stoi(d);
    st.close = query_value(req.query(), "close") == "1";
    co_return text_response(200, "mode=" + st.mode);
  }
  co_return text_response(404, "unknown control path");
}

}  // namespace

int main(int argc, char** argv) {
  std::string cert, key, mode = "normal";
  std::vector<std::string> key_files;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cert") cert = argv[i + 1];
    else if (a == "--key") key = argv[i + 1];
    else if (a == "--keys") key_files.push_back(argv[i + 1]);
    else if (a == "--mode") mode = argv[i + 1];
  }
  State st;
  st.mode = mode;
  std::vector<hkp::ParsedKey> initial;
  for (const auto& f : key_files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    auto parsed = hkp::parse_keys(s.str(), keep_everything());
    for (auto& k : parsed.keys) initial.push_back(std::move(k));
  }
  st.keys = std::make_shared<const Keyring>(std::move(initial));
  asio::io_context io(1);
  auto tls = gateway::make_server_tls(cert, key);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(io, keyserver_accept(st, acceptor, *tls), asio::detached);
  gateway::HttpServer control_server(io, {},
                                     [&st](const HttpRequest& r) { return control(st, r); });
  const auto control_addr = control_server.listen({"127.0.0.1", 0});
  std::cout << "tls=127.0.0.1:" << acceptor.local_endpoint().port() << " control=" << control_addr << " keys=" << st.keys->list.size()
            << std::endl;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  return 0;
}
