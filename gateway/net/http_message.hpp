// Plain request/response values passed between the Beast session code and the handlers, so
// that routing and policy code never includes Beast (compile time, docs/build.md) and can be
// tested without sockets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/observe/cache_result.hpp"
#include "hkp/text.hpp"

namespace hkpgw::gateway {

// Who sent a request, as the server saw the TCP connection.
struct Peer {
  std::string address;     // "192.0.2.1", "2001:db8::1" (IPv4-mapped IPv6 is shown as IPv4)
  std::uint16_t port = 0;
  std::string client;      // what per-client limits count: the IPv4 address, or the IPv6 /64
  // The address as bytes (IPv4-mapped IPv6 as IPv4), for network matches without parsing:
  // family 4 (first 4 bytes) or 6, 0 when unknown.
  int family = 0;
  unsigned char ip[16] = {};
  // "192.0.2.1:5", "[2001:db8::1]:5": the port can never be read as part of the address.
  std::string text() const {
    if (address.empty()) return "?";
    const bool v6 = address.find(':') != std::string::npos;
    return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
  }
};

// What a request's access line says beyond its method, target and status, filled in by what
// handled it: the handler (the lookup's op, kind, cache result and upstream), a filter that
// refused it ("denied", "limited"), the reuse path ("reused").
struct AccessRecord {
  std::string_view op = "-";    // static text only ("get", "add", "denied")
  std::string_view kind = "-";  // static text only ("fingerprint")
  CacheResult cache = CacheResult::none;
  std::string upstream;         // who answered; "" = none ("-" in the line)
  bool reused = false;          // sent again as prepared (net/answer_reuse.hpp)
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form "/pks/lookup?..." (absolute-form is reduced to this)
  unsigned version = 11;  // 10 or 11
  std::string content_type;
  std::string body;
  bool client_no_cache = false;  // Pragma: no-cache or Cache-Control: no-cache
  std::string authorization;     // the Authorization header (admin API)
  std::string host;              // the Host header ("" when absent: HTTP/1.0)
  std::string user_agent;        // for the access line: at most kMaxUserAgent bytes of it
  std::string request_id;        // X-Request-ID when well-formed (wire::request_id_of), or ""
  bool tls = false;              // came in on an HKPS listener
  bool accepts_html = false;     // its Accept header names text/html (a browser): error pages
  Peer peer;
  bool keep_alive = false;  // the connection stays open after the answer (HTTP/1.1 default)
  // The request's own record for its access line: written by whoever handles it, which gets
  // the request as const (it is the request's, not the response's; so mutable).
  mutable AccessRecord access;

  std::string_view path() const {
    const auto q = target.find('?');
    return std::string_view(target).substr(0, q);
  }
  std::string_view query() const {
    const auto q = target.find('?');
    return q == std::string::npos ? std::string_view() : std::string_view(target).substr(q + 1);
  }
};

struct HttpResponse {
  unsigned status = 200;
  // Static text only (every content type is a literal): a view, so a response costs no copy.
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string body;
  // A body kept elsewhere (a cached key's armor), sent without a copy; when set, `body` is unused.
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string_view, std::string>> headers;  // names: static text only
  bool close = false;  // close the connection after this response

  // Set by a handler whose answer may be sent again as it is for the same target (see
  // net/answer_reuse.hpp); opaque here, read back by whoever set it.
  std::shared_ptr<const void> reuse;

  // What is sent: the shared body when there is one.
  std::string_view payload() const { return shared_body ? std::string_view(*shared_body) : body; }

  // `name` must be static text (a literal): it is kept as a view.
  void set(std::string_view name, std::string value) {
    if (headers.capacity() == 0) headers.reserve(4);  // one allocation for a hit's few headers
    headers.emplace_back(name, std::move(value));
  }
};

// One line of plain text (what gpg shows the user), newline-terminated. Control bytes and DEL
// (which may come from the client's own input, echoed in the message) are written as \xNN, so
// an answer is always exactly one line; every answer also carries X-Content-Type-Options:
// nosniff (HttpServer), so a browser never renders echoed markup.
inline HttpResponse text_response(unsigned status, std::string_view line) {
  HttpResponse r;
  r.status = status;
  r.body.reserve(line.size() + 1);
  for (const char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      r.body += "\\x";
      r.body.push_back(hkp::kHexLower[u >> 4]);
      r.body.push_back(hkp::kHexLower[u & 15]);
    } else {
      r.body.push_back(c);
    }
  }
  r.body.push_back('\n');
  return r;
}

}  // namespace hkpgw::gateway
