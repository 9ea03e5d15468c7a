// A keyserver for tests: speaks real HTTPS (certificate from the test CA) with keys from .asc
// files, and can be told to misbehave. A plain-HTTP control port on loopback changes the mode and
// reports how many requests it saw:
//   GET /mode?set=normal|fail|reset|notfound|hang|slow|wrongkey|nouids[&delay_ms=N][&close=1]
//     fail (HTTP 500), reset (TCP reset, no answer) and hang apply to every path (the health
//     probe's too); delay_ms delays lookups only;
//     close=1 closes the connection after every answer (each request a new TLS handshake).
//   GET /stats -> "requests=N lookups=N gets=N indexes=N probes=N resumed=N max_concurrent=N adds=N"
//   POST /pks/add (keytext=) merges the submitted keys into what it serves; adds counts them.
//     resumed: requests that arrived on a TLS connection resumed from an earlier session;
//     max_concurrent: the most lookups in flight at once.
// Prints "tls=ADDR control=ADDR" on stdout once listening.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "config/config.hpp"
#include "gateway/http_server.hpp"
#include "gateway/tls.hpp"
#include "hkp/index.hpp"
#include "hkp/keyring.hpp"

namespace asio = boost::asio;
using namespace hkpgw;
using gateway::HttpRequest;
using gateway::HttpResponse;
using gateway::text_response;

namespace {

struct State {
  std::shared_ptr<const std::vector<hkp::ParsedKey>> keys;  // replaced whole on /pks/add
  std::mutex mutex;
  std::string mode = "normal";
  int delay_ms = 0;
  bool close = false;
  std::atomic<int> requests{0}, lookups{0}, gets{0}, indexes{0}, probes{0}, resumed{0}, adds{0};
  std::atomic<int> concurrent{0}, max_concurrent{0};

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

asio::awaitable<HttpResponse> serve(State& st, HttpRequest req) {
  ++st.requests;
  if (req.tls_resumed) ++st.resumed;
  const auto [mode, delay, close] = st.current();
  HttpResponse r = co_await answer(st, req, mode, delay);
  r.close = r.close || close;
  co_return r;
}

asio::awaitable<HttpResponse> answer(State& st, const HttpRequest& req, const std::string& mode,
                                     int delay) {
  const bool lookup = req.path() == "/pks/lookup";
  if (lookup) ++st.lookups;
  if (req.path() == "/") ++st.probes;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  if (mode == "hang") {
    timer.expires_after(std::chrono::seconds(30));  // longer than any test's request_timeout
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return text_response(500, "hung");
  }
  if (mode == "fail") co_return text_response(500, "test keyserver failing on purpose");
  if (mode == "reset") {
    HttpResponse r;
    r.reset = true;
    co_return r;
  }
  if (req.path() == "/pks/add" && req.method == "POST") {
    auto keytext = hkp::form_field(req.body, "keytext");
    if (!keytext) co_return text_response(400, "no keytext");
    auto parsed = hkp::parse_keys(*keytext, keep_everything());
    if (parsed.keys.empty() || parsed.secret_material) co_return text_response(400, "no usable key");
    std::lock_guard lock(st.mutex);
    auto next = std::make_shared<std::vector<hkp::ParsedKey>>(*st.keys);
    for (auto& k : parsed.keys) {
      ++st.adds;
      auto same = [&](const hkp::ParsedKey& x) { return x.info.fingerprint == k.info.fingerprint; };
      auto it = std::find_if(next->begin(), next->end(), same);
      if (it == next->end()) {
        next->push_back(std::move(k));
      } else {
        auto merged = hkp::parse_keys(it->packets + k.packets, keep_everything());
        if (!merged.keys.empty()) *it = std::move(merged.keys.front());
      }
    }
    st.keys = std::move(next);
    co_return text_response(200, "key(s) added");
  }
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
  std::shared_ptr<const std::vector<hkp::ParsedKey>> snapshot;
  {
    std::lock_guard lock(st.mutex);
    snapshot = st.keys;
  }
  std::vector<const hkp::ParsedKey*> hits;
  for (const auto& k : *snapshot) {
    if (k.info.matches(parsed->search)) hits.push_back(&k);
  }
  if (parsed->op == hkp::Op::get) {
    ++st.gets;
    if (mode == "wrongkey") {  // a real key, just not one that matches
      hits.clear();
      for (const auto& k : *snapshot) {
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

asio::awaitable<HttpResponse> control(State& st, HttpRequest req) {
  if (req.path() == "/stats") {
    co_return text_response(200, "requests=" + std::to_string(st.requests) +
                                     " lookups=" + std::to_string(st.lookups) +
                                     " gets=" + std::to_string(st.gets) +
                                     " indexes=" + std::to_string(st.indexes) +
                                     " probes=" + std::to_string(st.probes) +
                                     " resumed=" + std::to_string(st.resumed) +
                                     " max_concurrent=" + std::to_string(st.max_concurrent) +
                                     " adds=" + std::to_string(st.adds));
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
  auto initial = std::make_shared<std::vector<hkp::ParsedKey>>();
  for (const auto& f : key_files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    auto parsed = hkp::parse_keys(s.str(), keep_everything());
    for (auto& k : parsed.keys) initial->push_back(std::move(k));
  }
  st.keys = initial;
  asio::io_context io(1);
  gateway::HttpServer tls_server(io, {}, [&st](HttpRequest r) { return serve(st, std::move(r)); });
  gateway::HttpServer control_server(io, {},
                                     [&st](HttpRequest r) { return control(st, std::move(r)); });
  const auto tls_addr = tls_server.listen({"127.0.0.1", 0}, gateway::make_server_tls(cert, key));
  const auto control_addr = control_server.listen({"127.0.0.1", 0});
  std::cout << "tls=" << tls_addr << " control=" << control_addr << " keys=" << initial->size()
            << std::endl;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  return 0;
}
