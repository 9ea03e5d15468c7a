// Plain request/response values passed between the Beast session code and the handlers, so
// that routing and policy code never includes Beast (compile time, docs/build.md) and can be
// tested without sockets.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hkp/text.hpp"

namespace hkpgw::gateway {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form "/pks/lookup?..." (absolute-form is reduced to this)
  unsigned version = 11;  // 10 or 11
  std::string content_type;
  std::string body;
  bool client_no_cache = false;  // Pragma: no-cache or Cache-Control: no-cache
  std::string authorization;     // the Authorization header (admin API)
  std::string host;              // the Host header ("" when absent: HTTP/1.0)
  std::string peer;              // "ip:port" of the client
  bool tls_resumed = false;      // the connection's TLS handshake resumed an earlier session

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
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
  bool reset = false;  // send nothing, drop the connection with a TCP reset (test keyservers)

  // Fields the access log line carries.
  std::string log_op = "-";
  std::string log_kind = "-";
  std::string log_cache = "-";
  std::string log_upstream = "-";

  void set(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
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
