// Plain request/response values passed between the Beast session code and the handlers, so
// that routing and policy code never includes Beast (compile time, BUILD-NOTES.md) and can be
// tested without sockets.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hkpgw::gateway {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form "/pks/lookup?..." (absolute-form is reduced to this)
  unsigned version = 11;  // 10 or 11
  std::string content_type;
  std::string body;
  bool client_no_cache = false;  // Pragma: no-cache or Cache-Control: no-cache
  std::string authorization;     // the Authorization header (admin API)
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

// One line of plain text (what gpg shows the user), newline-terminated.
inline HttpResponse text_response(unsigned status, std::string line) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(line);
  r.body.push_back('\n');
  return r;
}

}  // namespace hkpgw::gateway
