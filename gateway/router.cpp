#include "gateway/router.hpp"

#include "gateway/version.hpp"
#include "hkp/index.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

HttpResponse method_not_allowed(std::string_view allowed) {
  HttpResponse r = text_response(405, "Method not allowed: use " + std::string(allowed));
  r.set("Allow", std::string(allowed));
  return r;
}

HttpResponse from_problem(const Problem& p) { return text_response(p.status, p.message()); }

}  // namespace

asio::awaitable<HttpResponse> Router::handle(HttpRequest req) {
  const std::shared_ptr<const Snapshot> snap = snapshot_();  // pinned for the whole request
  const std::string_view path = req.path();

  if (req.method == "OPTIONS") {  // CORS preflight and feature detection
    HttpResponse r;
    r.status = 200;
    r.set("Allow", "GET, POST, OPTIONS");
    r.set("Access-Control-Allow-Origin", "*");
    r.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    r.set("Access-Control-Allow-Headers", "Content-Type");
    co_return r;
  }
  if (path == "/" || path == "/index.html") {
    if (req.method != "GET") co_return method_not_allowed("GET");
    co_return home(*snap);
  }
  if (path == "/pks/lookup") {
    if (req.method != "GET") co_return method_not_allowed("GET");
    auto parsed = hkp::parse_lookup(req.query());
    if (!parsed) {
      HttpResponse r = from_problem(parsed.error());
      r.log_op = "lookup";
      co_return r;
    }
    if (parsed->op == hkp::Op::stats) co_return stats(*parsed, *snap);
    if (parsed->search.kind == hkp::SearchKind::short_keyid &&
        snap->config->keys.short_key_ids == config::ShortKeyIds::reject) {
      HttpResponse r = from_problem(Problem{
          400, GPG_ERR_FORBIDDEN,
          "32-bit key IDs are forgeable and not accepted; search by fingerprint or 16-digit key ID"});
      r.log_op = hkp::op_name(parsed->op);
      r.log_kind = hkp::kind_name(parsed->search.kind);
      co_return r;
    }
    const bool no_cache = req.client_no_cache && snap->config->server.honor_client_no_cache;
    co_return co_await lookups_.lookup(*parsed, no_cache, snap);
  }
  if (path == "/pks/add") {
    if (req.method != "POST") co_return method_not_allowed("POST");
    co_return co_await adds_.add(req, snap);
  }
  co_return text_response(404, "Not found: no such path " + std::string(path.substr(0, 200)));
}

HttpResponse Router::home(const Snapshot& snap) const {
  std::string body =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hkp-gateway</title></head>\n"
      "<body><h1>hkp-gateway</h1>\n"
      "<form action=\"/pks/lookup\" method=\"get\">\n"
      "<input type=\"hidden\" name=\"op\" value=\"index\">\n"
      "<input name=\"search\" size=\"50\" placeholder=\"email, key ID, fingerprint or name\">\n"
      "<input type=\"submit\" value=\"Search\"></form>\n<h2>Upstream keyservers</h2>\n<ol>\n";
  for (const auto& u : snap.upstreams) {
    body += "<li>" + hkp::html_escape(u->name()) + " &mdash; " + hkp::html_escape(u->config().url) +
            (u->name() == snap.config->upstreams.default_name ? " (default)" : "") + ": " +
            (u->health().healthy() ? "healthy" : "<strong>unhealthy</strong>") + "</li>\n";
  }
  body += "</ol>\n<p>" + std::string(kVersionString) + "</p></body></html>\n";
  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  return r;
}

HttpResponse Router::stats(const hkp::LookupRequest& req, const Snapshot& snap) const {
  const auto s = store_.stats();
  HttpResponse r;
  r.log_op = "stats";
  if (req.machine_readable) {
    r.content_type = "application/json";
    r.body = "{\"version\":\"" + std::string(kVersion) + "\",\"keys\":" + std::to_string(s.keys) +
             ",\"identifiers\":" + std::to_string(s.identifiers) +
             ",\"queries\":" + std::to_string(s.queries) +
             ",\"cache_bytes\":" + std::to_string(s.used_bytes) +
             ",\"cache_file_bytes\":" + std::to_string(s.file_bytes) +
             ",\"cache_max_bytes\":" + std::to_string(s.max_bytes) +
             ",\"evicted\":" + std::to_string(s.evicted) +
             ",\"forward_queue\":" + std::to_string(s.outbox) + ",\"keys_dropped\":{";
    bool first = true;
    for (const auto& [reason, n] : lookups_.dropped_totals()) {
      r.body += std::string(first ? "" : ",") + "\"" + reason + "\":" + std::to_string(n);
      first = false;
    }
    r.body += "},\"upstreams\":[";
    for (std::size_t i = 0; i < snap.upstreams.size(); ++i) {
      const auto& u = *snap.upstreams[i];
      r.body += std::string(i ? "," : "") + "{\"name\":\"" + u.name() + "\",\"healthy\":" +
                (u.health().healthy() ? "true" : "false") +
                ",\"connections\":" + std::to_string(u.open_connections()) +
                ",\"tls_resumptions\":" + std::to_string(u.resumed_handshakes()) + "}";
    }
    r.body += "]}\n";
    return r;
  }
  r.body = std::string(kVersionString) + "\nkeys: " + std::to_string(s.keys) +
           "\nidentifiers: " + std::to_string(s.identifiers) +
           "\nqueries: " + std::to_string(s.queries) + "\ncache_bytes: " +
           std::to_string(s.used_bytes) + " of " + std::to_string(s.max_bytes) +
           "\nevicted: " + std::to_string(s.evicted) +
           "\nforward_queue: " + std::to_string(s.outbox) + "\n";
  for (const auto& [reason, n] : lookups_.dropped_totals()) {
    r.body += "dropped " + reason + ": " + std::to_string(n) + "\n";
  }
  for (const auto& u : snap.upstreams) {
    r.body += "upstream: " + u->name() + " " + u->config().url + " " +
              (u->health().healthy() ? "healthy" : "unhealthy") + "\n";
  }
  return r;
}

}  // namespace hkpgw::gateway
