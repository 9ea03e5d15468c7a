#include "gateway/app/app.hpp"

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "cache/store.hpp"
#include "config/keys.hpp"
#include "config/named_thread.hpp"
#include "config/subscriptions.hpp"
#include "gateway/cluster/cluster.hpp"
#include "gateway/http/admin.hpp"
#include "gateway/http/rate_limit.hpp"
#include "gateway/http/router.hpp"
#include "gateway/net/http_server.hpp"
#include "gateway/net/tls.hpp"
#include "gateway/observe/clock.hpp"
#include "gateway/observe/log.hpp"
#include "gateway/observe/version.hpp"
#include "gateway/service/cache_writer.hpp"
#include "gateway/service/cleaning_tally.hpp"
#include "gateway/service/lookup_service.hpp"
#include "gateway/service/refresher.hpp"
#include "gateway/service/work_pool.hpp"
#include "hkp/key_filter.hpp"
#include "hkp/text.hpp"

namespace hkpgw::gateway {

config::Config load_config(const std::string& path) {
  config::Config cfg = config::load_file(path);
  auto problems = hkp::certifier_problems(cfg.keys);
  if (!problems.empty()) {
    for (auto& p : problems) p = path + ": " + p;
    throw config::ConfigError(std::move(problems));
  }
  return cfg;
}

namespace asio = boost::asio;

namespace {

constexpr auto kGracePeriod = std::chrono::seconds(10);

// Descriptors beyond client connections: the upstreams' pools, LMDB, the log, each io_context's
// epoll and eventfd, the work pool, and a margin.
constexpr std::uint64_t kFdReserve = 128;

// The client connections the process's descriptors allow (RLIMIT_NOFILE, raised to its hard
// limit first). With fewer than max_connections + admin.max_connections + the upstreams' and
// kFdReserve, max_connections is lowered to fit and the log says so: accept failing with EMFILE
// at 20 a second while idle eviction never ran was the alternative.
std::uint64_t fd_bounded_connections(const config::Config& c) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return c.server.max_connections;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const std::uint64_t others = c.admin.max_connections +
                               c.upstreams.list.size() * c.upstreams.max_connections + kFdReserve;
  const std::uint64_t have = lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : lim.rlim_cur;
  const std::uint64_t fit = have > others ? have - others : 0;
  if (c.server.max_connections <= fit) return c.server.max_connections;
  const std::uint64_t lowered = std::max<std::uint64_t>(fit, 16);
  log::warn("fd_limit", {{"nofile", std::to_string(have)},
                         {"max_connections", std::to_string(c.server.max_connections)},
                         {"effective_max_connections", std::to_string(lowered)},
                         {"hint", "raise LimitNOFILE (systemd) or ulimit -n to allow more"}});
  return lowered;
}

ServerLimits server_limits(const config::Config& c) {
  const std::uint64_t allowed = fd_bounded_connections(c);
  ServerLimits l;
  l.max_header_bytes = static_cast<std::size_t>(c.server.max_header_bytes);
  l.max_body_bytes = static_cast<std::size_t>(c.server.max_body_bytes);
  l.client_timeout = c.server.client_timeout;
  l.max_connections = static_cast<std::size_t>(std::min(c.server.max_connections, allowed));
  l.max_per_client = static_cast<std::size_t>(c.server.max_connections_per_client);
  l.max_body_memory = c.server.max_body_memory;
  l.min_body_rate = c.server.min_body_rate;
  return l;
}

// The admin listener's: its own connection budget; bodies as large as /pks/add takes (other
// replicas push keys to it).
ServerLimits admin_limits(const config::Config& c) {
  ServerLimits l;
  l.max_header_bytes = 8 << 10;
  l.max_body_bytes = std::max<std::size_t>(64 << 10, c.server.max_body_bytes);
  l.client_timeout = std::chrono::seconds(10);
  l.max_connections = static_cast<std::size_t>(c.admin.max_connections);
  l.max_per_client = static_cast<std::size_t>(c.admin.max_connections_per_client);
  l.max_body_memory = c.server.max_body_memory;
  l.min_body_rate = c.server.min_body_rate;
  return l;
}

// The target as logged: with log_searches = false, the value of search= is replaced.
std::string logged_target(std::string_view target, bool log_searches) {
  target = target.substr(0, 300);
  if (log_searches) return std::string(target);
  std::string out(target);
  for (auto at = out.find("search="); at != std::string::npos; at = out.find("search=", at + 1)) {
    if (at != 0 && out[at - 1] != '?' && out[at - 1] != '&') continue;
    const auto end = out.find('&', at);
    out.replace(at + 7, (end == std::string::npos ? out.size() : end) - at - 7, "<redacted>");
  }
  return out;
}

// Whether this answer gets an access line under server.access_log_sample: every 5xx, and one
// request in `sample` (counted across threads; 0: none).
bool access_line_due(unsigned status, std::uint64_t sample) {
  static std::atomic<std::uint64_t> requests{0};
  if (status >= 500 || sample == 1) return true;
  if (sample == 0) return false;
  return requests.fetch_add(1, std::memory_order_relaxed) % sample == 0;
}

void apply_log_settings(const config::ServerConfig& s) {
  log::configure(s.log_format == config::LogFormat::json ? log::Format::json : log::Format::logfmt,
                 s.log_level == config::LogLevel::error  ? log::Level::error
                 : s.log_level == config::LogLevel::warn ? log::Level::warn
                                                         : log::Level::info);
}

// A request's ID for its access line: the one the client or a balancer sent (X-Request-ID, when
// well-formed), or one made here: this thread's random prefix and its count of requests, in hex.
std::string_view request_id(const HttpRequest& req, std::array<char, 32>& made) {
  if (!req.request_id.empty()) return req.request_id;
  thread_local const std::uint64_t prefix = std::random_device{}();
  thread_local std::uint64_t count = 0;
  const std::uint64_t parts[2] = {prefix & 0xffffffff, ++count};
  std::size_t n = 0;
  for (int part = 0; part < 2; ++part) {
    for (int shift = part == 0 ? 28 : 44; shift >= 0; shift -= 4) {
      made[n++] = hkp::kHexLower[(parts[part] >> shift) & 15];
    }
  }
  return std::string_view(made.data(), n);
}

void access_log(const HttpRequest& req, const HttpResponse& res, const AccessRecord& a,
                std::string_view front, std::chrono::microseconds d, bool log_searches) {
  const std::string status = std::to_string(res.status);
  char ms[32];  // "12.345": milliseconds to the microsecond, without printf's cost
  const long long us = std::max<long long>(d.count(), 0);
  char* end = std::to_chars(ms, ms + 24, us / 1000).ptr;
  *end++ = '.';
  for (long long div = 100; div > 0; div /= 10) *end++ = static_cast<char>('0' + us / div % 10);
  const std::string peer = req.peer.text();
  char bytes[24];
  const auto bytes_end =
      std::to_chars(bytes, bytes + sizeof bytes, req.method == "HEAD" ? 0 : res.payload().size())
          .ptr;
  std::array<char, 32> made_id;
  log::write_batched(
      res.status >= 500 ? log::Level::warn : log::Level::info, "request",
      {{"peer", peer},
       {"listener", req.tls ? "hkps" : "hkp"},
       {"method", req.method},
       {"target", logged_target(req.target, log_searches)},
       {"status", status},
       {"bytes", std::string_view(bytes, static_cast<std::size_t>(bytes_end - bytes))},
       {"front", front},
       {"op", a.op},
       {"kind", a.kind},
       {"cache", cache_result_name(a.cache)},
       {"upstream", a.upstream.empty() ? std::string_view("-") : a.upstream},
       {"duration_ms", std::string_view(ms, static_cast<std::size_t>(end - ms))},
       {"request_id", request_id(req, made_id)},
       {"agent", req.user_agent.empty() ? std::string_view("-") : req.user_agent}});
}

cache::StoreOptions store_options(const config::Config& cfg) {
  cache::StoreOptions o(cfg.cache.path, cfg.cache.max_size);
  o.warm_up = true;
  o.on_evict = [max = cfg.cache.max_size](const cache::StoreOptions::Evicted& e) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", e.seconds);
    log::info("cache_evicted", {{"keys", std::to_string(e.keys)},
                                {"second_chances", std::to_string(e.second_chances)},
                                {"used_bytes", std::to_string(e.used_before)},
                                {"used_bytes_after", std::to_string(e.used_after)},
                                {"max_size", std::to_string(max)},
                                {"seconds", secs}});
  };
  return o;
}

// The config file read again (SIGHUP, POST /admin/reload): a new snapshot swapped in and
// published to the subscribers of the keys that changed, or the running one kept with the
// problems named.
class Reloader {
 public:
  Reloader(asio::io_context& io, std::string path, std::shared_ptr<const config::Config> started,
           std::atomic<std::shared_ptr<const Snapshot>>& current, WorkPool& pool,
           const config::Subscriptions& subscribers, Metrics& metrics)
      : io_(io), path_(std::move(path)), started_(std::move(started)), current_(current),
        pool_(pool), subscribers_(subscribers), metrics_(metrics) {}

  // The file is read and parsed on the work pool (a config of a million networks takes a while):
  // the calling thread goes on handling signals and accepting meanwhile. The rest runs here.
  asio::awaitable<ReloadResult> operator()() {
    ReloadResult result;
    if (path_.empty()) {
      log::warn("config_reload", {{"result", "skipped"}, {"reason", "running on the embedded defaults"}});
      result.problems.push_back("running on the embedded defaults: there is no file to reload");
      metrics_.config_reload(false, unix_now());
      co_return result;
    }
    // The blocklist too: it may wait for a writer to finish (cache::Blocklist::load). The job
    // owns what it reads: a SIGTERM mid-parse ends the app, and this Reloader with it, while
    // the pool still parses (ASan: a heap-use-after-free of path_).
    auto load = [path = path_] {
      auto cfg = std::make_shared<const config::Config>(load_config(path));
      auto blocked = cache::Blocklist::load(cfg->cache.blocklist);
      return std::make_pair(std::move(cfg), std::move(blocked));
    };
    try {
      // WorkPool::run rethrows what `load` throws (a ConfigError naming the problems) here.
      auto [next, blocked] = co_await pool_.run(load);
      const auto old = current_.load();
      // Against what is in effect, i.e. what the process started with: a change reverted by a
      // later reload needs no restart any more, one still pending is named every time.
      result.restart_required = config::restart_only_changes(*started_, *next);
      current_.store(build_snapshot(io_.get_executor(), next, old.get(), std::move(blocked)));
      const auto failed = subscribers_.publish(*old->config, *next);
      for (const auto& f : failed) log::error("config_apply_failed", {{"problem", f}});
      result.ok = true;
      log::info("config_reload",
                {{"result", "success"},
                 {"file", path_},
                 {"changed", names(config::changed_keys(*old->config, *next))},
                 {"restart_required_for", names(result.restart_required)}});
    } catch (const config::ConfigError& e) {
      for (const auto& p : e.problems()) log::error("config_problem", {{"problem", p}});
      log::error("config_reload", {{"result", "failure"}, {"effect", "kept the running config"}});
      result.problems = e.problems();
    } catch (const std::exception& e) {
      log::error("config_reload", {{"result", "failure"}, {"error", e.what()}});
      result.problems.push_back(e.what());
    }
    metrics_.config_reload(result.ok, unix_now());
    co_return result;
  }

 private:
  // "a,b,c", or "-" for none; "source" (the file's name) is left out.
  static std::string names(const std::vector<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) {
      if (k != "source") out += (out.empty() ? "" : ",") + k;
    }
    return out.empty() ? "-" : out;
  }

  asio::io_context& io_;
  std::string path_;
  std::shared_ptr<const config::Config> started_;
  std::atomic<std::shared_ptr<const Snapshot>>& current_;
  WorkPool& pool_;
  const config::Subscriptions& subscribers_;
  Metrics& metrics_;
};

// Writes this thread's batched access lines every 100 ms (log::write_batched).
asio::awaitable<void> flush_logs(asio::io_context& io) {
  asio::steady_timer tick(io);
  while (true) {
    tick.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    log::flush_batched();
  }
}

// One io_context per network thread (server.threads), each run by its own thread, so that a
// connection and its requests stay on one thread: no strand, no hop, no cross-thread wake-up per
// request. The first also runs what is not a connection: upstream I/O, probes, signals, the
// retrier, the admin listener, the acceptors.
class Contexts {
 public:
  explicit Contexts(unsigned n) {
    for (unsigned i = 0; i < std::max(1u, n); ++i) {
      all_.push_back(std::make_unique<asio::io_context>(1));
      guards_.push_back(std::make_unique<Guard>(all_.back()->get_executor()));
    }
  }
  asio::io_context& main() { return *all_.front(); }
  std::vector<asio::io_context*> each() const {
    std::vector<asio::io_context*> out;
    for (const auto& c : all_) out.push_back(c.get());
    return out;
  }
  // Runs every context on its own thread (the caller runs the first) until stop(). Each thread
  // writes its batched access lines at least every 100 ms, and what is left when it stops.
  // `running` is called once every thread has started and has its name, before the first runs.
  // With `pin`, thread i runs on the i-th CPU of the process's set (round robin).
  template <class F>
  void run(bool pin, F&& running) {
    for (auto& c : all_) asio::co_spawn(*c, flush_logs(*c), asio::detached);
    const std::vector<int> cpus = pin ? allowed_cpus() : std::vector<int>{};
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < all_.size(); ++i) {
      // The main thread keeps the process's name.
      threads.push_back(named_thread("hkpgw-net-" + std::to_string(i), [c = all_[i].get()] {
        c->run();
        log::flush_batched();
      }));
      if (!cpus.empty()) pin_to(threads.back().native_handle(), cpus[i % cpus.size()]);
    }
    if (!cpus.empty()) pin_to(pthread_self(), cpus[0]);
    running();
    all_.front()->run();
    log::flush_batched();
    for (auto& t : threads) t.join();
  }
  void stop() {
    for (auto& g : guards_) g->reset();
    for (auto& c : all_) c->stop();
  }

 private:
  // The CPUs this process may run on, in order; remembered for threads started later.
  static std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
    unpinned_cpus() = set;
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
    return cpus;
  }
  static void pin_to(pthread_t thread, int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (const int err = pthread_setaffinity_np(thread, sizeof one, &one); err != 0) {
      log::warn("pin_threads_failed", {{"cpu", std::to_string(cpu)},
                                       {"error", std::strerror(err)},
                                       {"effect", "this network thread runs on any CPU"}});
    }
  }
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> all_;
  std::vector<std::unique_ptr<Guard>> guards_;
};

// What a graceful stop has to reach.
struct Running {
  Contexts& contexts;
  HttpServer& hkp;
  HttpServer& admin;
  Fleet& fleet;
  AddService& adds;
  Cluster& cluster;
  Refresher& refresher;
  Reloader& reload;
};

asio::awaitable<void> run_reload(Reloader& reload) {
  co_await reload();  // it logs and counts its outcome
}

// SIGHUP reloads; SIGTERM/SIGINT stop accepting, let requests finish within the grace period,
// then stop the io_context.
asio::awaitable<void> handle_signals(asio::signal_set& signals, Running r) {
  constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
  while (true) {
    auto [ec, sig] = co_await signals.async_wait(tuple);
    if (ec) co_return;
    if (sig == SIGHUP) {
      // Named, not co_awaited in place (GCC 12, ARCHITECTURE.md); runs beside this loop, so a
      // SIGTERM during a long parse is handled at once.
      asio::co_spawn(signals.get_executor(), run_reload(r.reload), asio::detached);
      continue;
    }
    log::info("shutting_down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    r.hkp.stop();
    r.admin.stop();
    r.fleet.stop_probing();
    r.adds.stop();
    r.cluster.stop();
    r.refresher.stop();
    asio::steady_timer t(r.contexts.main());
    const auto deadline = std::chrono::steady_clock::now() + kGracePeriod;
    while (r.hkp.active_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(tuple);
    }
    if (r.hkp.active_connections() > 0) {
      log::warn("shutdown_grace_expired", {{"connections", std::to_string(r.hkp.active_connections())}});
    }
    r.contexts.stop();
    co_return;
  }
}

void listen_hkp(HttpServer& server, const config::Config& cfg) {
  for (const auto& l : cfg.server.listen) {
    log::info("listening", {{"listener", "hkp"}, {"addr", server.listen(l)}});
  }
  if (cfg.server.hkps_listen.empty()) return;
  auto tls = make_server_tls(cfg.server.tls_cert, cfg.server.tls_key);
  for (const auto& l : cfg.server.hkps_listen) {
    log::info("listening", {{"listener", "hkps"}, {"addr", server.listen(l, tls)}});
  }
}

void listen_admin(HttpServer& server, const config::Config& cfg) {
  log::info("listening", {{"listener", "admin"}, {"addr", server.listen(cfg.admin.listen)}});
  const std::string& host = cfg.admin.listen.host;
  if (!host.starts_with("127.") && host != "::1" && host != "localhost") {
    log::warn("admin_not_loopback",
              {{"addr", cfg.admin.listen.text()},
               {"effect", "metrics and probes are reachable from the network; /admin/* still needs the token"}});
  }
}

}  // namespace

App::App(config::Config config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)) {}

int App::run() {
  std::signal(SIGPIPE, SIG_IGN);
  auto cfg = std::make_shared<const config::Config>(config_);
  apply_log_settings(cfg->server);
  const unsigned threads =
      cfg->server.threads ? cfg->server.threads : std::max(1u, std::thread::hardware_concurrency());

  // Declared first, destroyed last: the cache writer posts completions to them until it stops.
  Contexts contexts(threads);
  asio::io_context& io = contexts.main();
  // Before the store: its writer thread tells it what changed until the store is closed.
  AnswerCache answers(static_cast<std::size_t>(cfg->cache.answer_memory),
                      static_cast<std::size_t>(cfg->server.reused_answers));
  cache::StoreOptions options = store_options(*cfg);
  options.on_commit = [&answers](const cache::Committed& changed) { answers.forget(changed); };
  cache::Store store(options);
  if (store.opened_schema() != cache::kSchemaVersion) {
    log::info("cache_migrated", {{"path", cfg->cache.path},
                                 {"from_schema", std::to_string(store.opened_schema())},
                                 {"to_schema", std::to_string(cache::kSchemaVersion)}});
  }
  {  // LMDB never shrinks data.mdb: say when `cache compact` would give back much of it.
    const auto s = store.stats();
    if (s.file_bytes > 64ULL << 20 && s.file_bytes > 2 * s.used_bytes) {
      log::info("cache_file_oversized", {{"path", cfg->cache.path},
                                         {"file_bytes", std::to_string(s.file_bytes)},
                                         {"used_bytes", std::to_string(s.used_bytes)},
                                         {"hint", "stop the gateway and run: hkp-gateway cache compact"}});
    }
  }
  std::atomic<std::shared_ptr<const Snapshot>> current(
      build_snapshot(io.get_executor(), cfg, nullptr, cache::Blocklist::load(cfg->cache.blocklist)));
  purge_blocked(store, current.load()->blocked);
  const SnapshotSource snapshots = [&current] { return current.load(); };
  Metrics metrics(kVersion);
  Fleet fleet(metrics, [&metrics](const HealthEvent& e) {
    log_health_event(e);
    metrics.health_change(e.upstream.name(), e.change == HealthState::Change::came_back);
  });
  // The OpenPGP work pool (never the network threads); destroyed before the io_context, after
  // the workers below have stopped running it.
  WorkPool pool(cfg->keys.workers, cfg->keys.work_queue);
  CleaningTally tally(metrics);
  const ServiceDeps deps{store, fleet, pool, unix_now, metrics, tally, answers};
  LookupService lookups(deps, io.get_executor());
  AddService adds(deps);
  Refresher refresher(deps);
  Router router(lookups, adds, store, tally, snapshots);

  // [limits]: asked before every answer, reused ones included; outlives the server.
  RateLimiter limiter(metrics);
  limiter.configure(*cfg);
  // The cluster ([cluster] peers): pushes of accepted keys, /cluster/* routes, shared budgets.
  Cluster cluster(adds, limiter, pool, metrics, snapshots);
  adds.publish_to(&cluster);
  HttpServer hkp_server(contexts.each(), server_limits(*cfg),
                        [&router](const HttpRequest& r) { return router.handle(r); },
                        [&metrics, &snapshots](const HttpRequest& req, const HttpResponse& res,
                                               const AccessRecord& a, std::chrono::microseconds d) {
                          const std::string_view front = front_of(req.path());
                          const auto& server = snapshots()->config->server;
                          if (access_line_due(res.status, server.access_log_sample)) {
                            access_log(req, res, a, front, d, server.log_searches);
                          }
                          metrics.request(front, a.op, res.status, cache_result_name(a.cache),
                                          static_cast<double>(d.count()) / 1e6, a.reused);
                        });
  // Connection filters: behind balancers, the PROXY header names the client (restart-only).
  if (cfg->server.proxy_protocol) {
    hkp_server.add_connection_filter(proxy_protocol_filter(cfg->server.proxy_trusted));
  }
  // Request filters, in order: the rate limits first (a reused answer counts too), then the
  // cached-key hits sent again without the handler.
  hkp_server.add_request_filter(request_filter([&limiter](const HttpRequest& r) {
    std::optional<HttpResponse> refused = limiter.admit(r);
    if (refused) html_error_for_browsers(r, *refused);  // a browser's 429 is a page too
    return refused;
  }));
  hkp_server.add_request_filter(answer_reuse_filter(answers.reused()));
  listen_hkp(hkp_server, *cfg);

  // What a reload changes besides the snapshot: each holder of a value subscribes to its keys.
  config::Subscriptions subscribers;
  subscribers.subscribe("hkp listener",
                        {"server.max_header_bytes", "server.max_body_bytes",
                         "server.max_body_memory", "server.min_body_rate", "server.client_timeout",
                         "server.max_connections", "server.max_connections_per_client"},
                        [&hkp_server](const config::Config&, const config::Config& next) {
                          hkp_server.update_limits(server_limits(next));
                        });
  subscribers.subscribe(
      "log", {"server.log_format", "server.log_level"},
      [](const config::Config&, const config::Config& next) { apply_log_settings(next.server); });
  subscribers.subscribe("work pool", {"keys.work_queue"},
                        [&pool](const config::Config&, const config::Config& next) {
                          pool.set_max_queued(static_cast<std::size_t>(next.keys.work_queue));
                        });
  subscribers.subscribe("rate limiter", {"limits", "cluster.peers"},
                        [&limiter](const config::Config&, const config::Config& next) {
                          limiter.configure(next);
                        });
  // On every reload: answers made under the old settings (fresh_for, short_key_ids) go, and a
  // key blocked now goes from the cache (the list's contents may change while its path does not).
  subscribers.subscribe(
      "reused answers bound", {"server.reused_answers"},
      [&answers](const config::Config&, const config::Config& next) {
        answers.reused().set_max_per_thread(static_cast<std::size_t>(next.server.reused_answers));
      });
  subscribers.subscribe("reused answers", {},
                        [&answers](const config::Config&, const config::Config&) {
                          answers.reused().clear();
                        });
  subscribers.subscribe("answer cache", {"cache.answer_memory"},
                        [&answers](const config::Config&, const config::Config& next) {
                          answers.set_max_bytes(static_cast<std::size_t>(next.cache.answer_memory));
                        });
  subscribers.subscribe("blocklist", {},
                        [&store, &current](const config::Config&, const config::Config&) {
                          purge_blocked(store, current.load()->blocked);
                        });
  Reloader reload(io, config_path_, cfg, current, pool, subscribers, metrics);
  // Admin listener: probes, metrics and the token-protected admin API (gateway/http/admin.hpp).
  AdminContext admin{store, fleet, metrics, snapshots, [&reload] { return reload(); }, &refresher};
  AdminRouter admin_routes(snapshots);
  add_admin_routes(admin_routes, admin);
  cluster.add_routes(admin_routes);
  HttpServer admin_server(io, admin_limits(*cfg), [&admin_routes](const HttpRequest& r) {
    return admin_routes.handle(r);
  });
  // Trust and token before a body: nobody may make it read a megabyte only to be refused.
  admin_server.gate_bodies_with([&admin_routes](const HttpRequest& r) {
    return admin_routes.gate(r);
  });
  listen_admin(admin_server, *cfg);
  subscribers.subscribe("admin listener",
                        {"admin.max_connections", "admin.max_connections_per_client",
                         "server.max_body_bytes", "server.max_body_memory", "server.min_body_rate"},
                        [&admin_server](const config::Config&, const config::Config& next) {
                          admin_server.update_limits(admin_limits(next));
                        });
  if (const auto missing = subscribers.unsubscribed(); !missing.empty()) {
    std::string list;
    for (const auto& k : missing) list += (list.empty() ? "" : ", ") + k;
    throw std::logic_error("config keys declared `pushed` that nothing applies on reload: " + list);
  }

  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  asio::co_spawn(io,
                 handle_signals(signals, Running{contexts, hkp_server, admin_server, fleet, adds,
                                                 cluster, refresher, reload}),
                 asio::detached);
  fleet.start_probing(io.get_executor(), snapshots);
  adds.start(io.get_executor(), snapshots);
  cluster.start(io.get_executor());
  refresher.start(io.get_executor(), snapshots);
  for (const auto& n : config::notices(*cfg)) log::warn("config_notice", {{"notice", n}});
  contexts.run(cfg->server.pin_threads, [&] {
    log::info("started", {{"version", kVersion},
                          {"threads", std::to_string(threads)},
                          {"pinned", cfg->server.pin_threads ? "true" : "false"},
                          {"config", cfg->source},
                          {"cache", cfg->cache.path},
                          {"upstreams", std::to_string(cfg->upstreams.list.size())}});
  });
  store.flush();
  log::info("stopped");
  return 0;
}

}  // namespace hkpgw::gateway
