// The one declaration of every config key (config/keys.hpp) against what it describes: every
// member of every Config struct is declared (a new member without a reload class fails here),
// the docs' restart-only list and key tables agree with it, and Subscriptions calls exactly the
// subscribers whose keys changed.
#include <boost/pfr/core.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "config/keys.hpp"
#include "config/subscriptions.hpp"

using namespace hkpgw::config;

namespace {

std::size_t declared_in(std::string_view table) {
  std::size_t n = 0;
  for (const auto& d : declared_keys()) n += d.table == table ? 1 : 0;
  return n;
}

std::string contract() {
  std::ifstream in(std::string(HKPGW_SOURCE_DIR) + "/docs/contract.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("every member of every config struct is declared once with its reload class",
          "[config-keys]") {
  CHECK(declared_in("server") == boost::pfr::tuple_size_v<ServerConfig>);
  CHECK(declared_in("admin") == boost::pfr::tuple_size_v<AdminConfig>);
  CHECK(declared_in("cache") == boost::pfr::tuple_size_v<CacheConfig>);
  CHECK(declared_in("upstreams") == boost::pfr::tuple_size_v<UpstreamsConfig>);
  CHECK(declared_in("upstream") == boost::pfr::tuple_size_v<UpstreamConfig>);
  CHECK(declared_in("keys") == boost::pfr::tuple_size_v<KeysConfig>);
  CHECK(declared_in("limits") == boost::pfr::tuple_size_v<LimitsConfig>);
  CHECK(declared_in("cluster") == boost::pfr::tuple_size_v<ClusterConfig>);
  CHECK(declared_in("refresh") == boost::pfr::tuple_size_v<RefreshConfig>);
  // Config itself: one member per table ([[upstream]] lives in upstreams.list) and its own.
  const std::size_t tables = file_keys_of("").size() - 1;
  CHECK(tables + declared_in("") == boost::pfr::tuple_size_v<Config>);

  std::set<std::string> names;
  for (const auto& d : declared_keys()) CHECK(names.insert(d.name()).second);
}

TEST_CASE("each declaration compares its own member", "[config-keys]") {
  // Changing one member makes exactly that declaration differ: a copy-pasted comparator (the
  // wrong member) fails here.
  const Config base = defaults();
  auto changed_by = [&](auto&& change) {
    Config c = base;
    change(c);
    return changed_keys(base, c);
  };
  using V = std::vector<std::string>;
  CHECK(changed_by([](Config& c) { c.server.max_body_bytes = 2048; }) == V{"server.max_body_bytes"});
  CHECK(changed_by([](Config& c) { c.admin.max_connections = 3; }) == V{"admin.max_connections"});
  CHECK(changed_by([](Config& c) { c.keys.work_queue = 7; }) == V{"keys.work_queue"});
  CHECK(changed_by([](Config& c) { c.limits.searches.burst = 9; }) == V{"limits.searches"});
  CHECK(changed_by([](Config& c) { c.upstreams.list[1].probe = "/x"; }) ==
        V{"upstreams.list", "upstream.probe"});
  CHECK(changed_by([](Config& c) { c.upstreams.list.pop_back(); }).size() ==
        1 + declared_in("upstream"));
  // Every declaration, one at a time: differs(a, a) is false for all.
  for (const auto& d : declared_keys()) CHECK_FALSE(d.differs(base, base));
}

TEST_CASE("restart_only_changes names the restart keys that differ, from the table",
          "[config-keys]") {
  Config a = defaults();
  Config b = a;
  b.server.threads = 3;
  b.server.max_body_bytes = 2048;  // pushed: applied live, not named
  b.keys.workers = 5;
  CHECK(restart_only_changes(a, b) == std::vector<std::string>{"server.threads", "keys.workers"});
}

TEST_CASE("docs/contract.md lists the restart-only keys and every file key of the table",
          "[config-keys]") {
  const std::string doc = contract();
  const auto at = doc.find("Restart-only keys");
  REQUIRE(at != std::string::npos);
  // The list ends with the first sentence ("…`server.proxy_trusted`. Every other key…").
  const std::string paragraph = doc.substr(at, doc.find("`. ", at) + 1 - at);
  std::set<std::string> documented;
  for (auto i = paragraph.find('`'); i != std::string::npos; i = paragraph.find('`', i + 1)) {
    const auto end = paragraph.find('`', i + 1);
    if (end == std::string::npos) break;
    documented.insert(paragraph.substr(i + 1, end - i - 1));
    i = end;
  }
  documented.erase("restart_required_for");
  std::set<std::string> restart;
  for (const auto& d : declared_keys()) {
    if (d.reload == Reload::restart) restart.insert(d.name());
  }
  CHECK(documented == restart);

  for (const auto& d : declared_keys()) {
    if (d.table.empty()) continue;
    const std::string header = d.table == "upstream" ? "| `[[upstream]]`"
                                                     : "| `[" + std::string(d.table) + "]`";
    const auto row = doc.find(header);
    REQUIRE(row != std::string::npos);
    const std::string line = doc.substr(row, doc.find('\n', row) - row);
    for (const auto k : file_keys_of(d.table)) {
      INFO(d.table << "." << k);
      CHECK(line.find("`" + std::string(k) + "`") != std::string::npos);
    }
  }
}

TEST_CASE("subscribers are called with both configs when one of their keys changed",
          "[config-keys]") {
  Subscriptions subs;
  std::vector<std::string> calls;
  std::uint64_t seen_before = 0, seen_after = 0;
  subs.subscribe("listener", {"server.max_body_bytes", "server.client_timeout"},
                 [&](const Config& prev, const Config& next) {
                   calls.push_back("listener");
                   seen_before = prev.server.max_body_bytes;
                   seen_after = next.server.max_body_bytes;
                 });
  subs.subscribe("limiter", {"limits"}, [&](const Config&, const Config&) {
    calls.push_back("limiter");
  });
  subs.subscribe("every", {}, [&](const Config&, const Config&) { calls.push_back("every"); });
  subs.subscribe("broken", {"keys.work_queue"}, [](const Config&, const Config&) {
    throw std::runtime_error("cannot apply");
  });

  const Config a = defaults();
  Config b = a;
  b.server.max_body_bytes = 2048;
  CHECK(subs.publish(a, b).empty());
  CHECK(calls == std::vector<std::string>{"listener", "every"});
  CHECK(seen_before == a.server.max_body_bytes);
  CHECK(seen_after == 2048);

  calls.clear();
  b = a;
  b.limits.deny.push_back(Network{});
  b.keys.work_queue = 3;
  const auto failed = subs.publish(a, b);
  CHECK(calls == std::vector<std::string>{"limiter", "every"});
  REQUIRE(failed.size() == 1);
  CHECK(failed[0] == "broken: cannot apply");

  CHECK_THROWS_WITH(subs.subscribe("typo", {"server.max_body_byte"}, {}),
                    Catch::Matchers::Contains("server.max_body_byte"));
  // What nobody took: every pushed key but the ones subscribed above.
  const auto missing = subs.unsubscribed();
  CHECK(std::find(missing.begin(), missing.end(), "server.max_body_bytes") == missing.end());
  CHECK(std::find(missing.begin(), missing.end(), "limits.deny") == missing.end());
  CHECK(std::find(missing.begin(), missing.end(), "server.max_connections") != missing.end());
  CHECK(std::find(missing.begin(), missing.end(), "admin.max_connections") != missing.end());
}
