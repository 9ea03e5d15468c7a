// Inside net/: the HTTP/1.x wire rules of the server, between Beast's messages and our plain
// HttpRequest/HttpResponse values: request framing (RFC 9112: smuggling-safe Transfer-Encoding and
// Content-Length), the early refusals, origin-form targets, who the peer is. Pure functions, no
// I/O, so the fuzzers and the session code share them. Not part of net/'s API.
#include "gateway/net/http_wire.hpp"
#include "gateway/net/answer_reuse.hpp"

#include <boost/asio/ssl/error.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>

namespace hkpgw::gateway::wire {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

void append_value(std::string& out, std::string_view v) {
  for (const char c : v) out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  append_value(out, name);
  out += ": ";
  append_value(out, value);
  out += "\r\n";
}

}  // namespace

void write_head(const HttpResponse& r, unsigned version, bool keep_alive, std::string& out) {
  out.clear();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char digits[8];
  const auto status = std::clamp(r.status, 100u, 999u);
  const auto end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  out.append(digits, end);
  out.push_back(' ');
  out += http::obsolete_reason(static_cast<http::status>(status));
  out += "\r\nServer: hkp-gateway\r\nX-Content-Type-Options: nosniff\r\n";
  append_field(out, "Content-Type", r.content_type);
  for (const auto& [name, value] : r.headers) append_field(out, name, value);
  if (version == 10 && keep_alive) out += "Connection: keep-alive\r\n";
  if (version != 10 && !keep_alive) out += "Connection: close\r\n";
  out += "Content-Length: ";
  char length[24];
  const auto lend = std::to_chars(length, length + sizeof length, r.payload().size()).ptr;
  out.append(length, lend);
  out += "\r\n\r\n";
}

}  // namespace hkpgw::gateway::wire

namespace hkpgw::gateway {

std::string reusable_head(const HttpResponse& r) {
  std::string head;
  wire::write_head(r, 11, true, head);
  head.resize(head.size() - 2);  // the blank line: Age is added per request before it
  return head;
}

}  // namespace hkpgw::gateway

namespace hkpgw::gateway::wire {

bool has_no_cache(const http::request<http::string_body>& req) {
  auto contains = [&](http::field f) {
    auto [first, last] = req.equal_range(f);
    for (auto it = first; it != last; ++it) {
      if (std::string_view(it->value()).find("no-cache") != std::string_view::npos) return true;
    }
    return false;
  };
  return contains(http::field::pragma) || contains(http::field::cache_control);
}

// "http://host:port/path?q" (absolute-form, as sent to a proxy) -> "/path?q".
std::string origin_form(std::string_view target) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    const auto slash = target.find('/', target.find("//") + 2);
    return slash == std::string_view::npos ? "/" : std::string(target.substr(slash));
  }
  return std::string(target);
}

// RFC 9112 section 6.1 and 6.3: a request body is framed by Content-Length or by a
// Transfer-Encoding whose last coding is chunked; we understand no other coding. Anything else
// could be read differently by a proxy in front of us (request smuggling): refused and closed.
std::optional<HttpResponse> check_framing(const http::request_parser<http::string_body>& parser) {
  const auto& h = parser.get();
  auto [first, last] = h.equal_range(http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  std::string codings;
  for (auto it = first; it != last; ++it) {
    codings += (codings.empty() ? "" : ", ") + std::string(it->value());
  }
  std::string shown;
  for (const char c : codings.substr(0, 80)) shown.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (!parser.chunked()) {
    return text_response(400, "Bad request: Transfer-Encoding \"" + shown +
                                  "\" does not end with chunked (RFC 9112 section 6.3)");
  }
  std::string lower;
  for (const char c : codings) {
    if (c != ' ' && c != '\t') lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (lower != "chunked") {
    return text_response(501, "Not implemented: Transfer-Encoding \"" + shown +
                                  "\": only chunked is supported");
  }
  if (h.count(http::field::content_length) > 0) {
    return text_response(400, "Bad request: both Content-Length and Transfer-Encoding "
                              "(RFC 9112 section 6.3)");
  }
  return std::nullopt;
}

std::string ipv4_text(const asio::ip::address_v4::bytes_type& b) {
  char out[16];
  char* o = out;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const unsigned v = b[i];
    if (v >= 100) *o++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *o++ = static_cast<char>('0' + v / 10 % 10);
    *o++ = static_cast<char>('0' + v % 10);
    if (i + 1 < b.size()) *o++ = '.';
  }
  return std::string(out, o);
}

// Whose connection this is, for the per-client limit: the IPv4 address, or the /64 of an IPv6
// one (a single host commonly holds a whole /64). IPv4-mapped IPv6 counts as IPv4.
std::string client_key(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ipv4_text(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes());
  }
  if (a.is_v4()) return ipv4_text(a.to_v4().to_bytes());
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

Peer peer_of(const tcp::endpoint& ep) {
  Peer p;
  // An IPv4 client of a dual-stack listener (IPv4-mapped IPv6) is IPv4 in text, key and bytes.
  const auto& raw = ep.address();
  const asio::ip::address a =
      raw.is_v6() && raw.to_v6().is_v4_mapped()
          ? asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, raw.to_v6()))
          : raw;
  p.port = ep.port();
  // Every accepted connection comes here: an IPv4 address is made text once, by hand, and is
  // its own client key (inet_ntop twice per connection cost ~3,700 instructions, an eighth of
  // a dirmngr request).
  p.client = client_key(a);
  p.address = a.is_v4() ? p.client : a.to_string();
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), p.ip);
    p.family = 4;
  } else {
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), p.ip);
    p.family = 6;
  }
  return p;
}

HttpResponse too_large(std::uint64_t max_body_bytes, std::optional<std::uint64_t> announced) {
  return text_response(413, "Request body too large: " +
                                (announced ? std::to_string(*announced) + " bytes, the limit is " +
                                                 std::to_string(max_body_bytes)
                                           : "the limit is " + std::to_string(max_body_bytes) +
                                                 " bytes"));
}

// The client went away, idled out, or we are stopping: nobody to answer.
bool client_gone(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == beast::error::timeout || ec == asio::error::connection_reset ||
         ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
         ec == asio::error::operation_aborted;
}

// What reading the header says about the request before its body is read: an answer to give
// at once (431, 413, 400, 501), or nothing (go on).
std::optional<HttpResponse> check_header(const http::request_parser<http::string_body>& parser,
                                         std::uint64_t max_body_bytes) {
  if (auto framing = check_framing(parser)) return framing;
  if (parser.get().count(http::field::host) > 1) {
    return text_response(400, "Bad request: more than one Host header (RFC 9112 section 3.2)");
  }
  if (parser.content_length() && *parser.content_length() > max_body_bytes) {
    return too_large(max_body_bytes, *parser.content_length());
  }
  return std::nullopt;
}

std::string request_id_of(std::string_view header) {
  if (header.empty() || header.size() > 128) return {};
  for (const char c : header) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-_.:/+=").find(c) != std::string_view::npos;
    if (!ok) return {};
  }
  return std::string(header);
}

namespace {

// What the access line keeps of a request's header, whole or not, and whether a browser sent
// it (Accept: text/html).
// One walk over the few fields a request has: two lookups by name cost 0.6k instructions a
// request more (callgrind), the unknown name's case-insensitive search most of it.
void note_for_access(const http::request_header<>& h, HttpRequest& req) {
  for (const auto& f : h) {
    if (f.name() == http::field::user_agent) {
      req.user_agent = std::string(f.value().substr(0, kMaxUserAgent));
    } else if (f.name() == http::field::accept) {
      req.accepts_html = f.value().find("text/html") != std::string_view::npos;
    } else if (f.name() == http::field::unknown &&
               beast::iequals(f.name_string(), "X-Request-ID")) {
      req.request_id = request_id_of(f.value());
    }
  }
}

}  // namespace

HttpRequest to_request(http::request<http::string_body>&& msg, const Peer& peer) {
  HttpRequest req;
  req.peer = peer;
  req.method = std::string(msg.method_string());
  req.target = origin_form(msg.target());
  req.version = msg.version();
  req.content_type = std::string(msg[http::field::content_type]);
  req.client_no_cache = has_no_cache(msg);
  req.authorization = std::string(msg[http::field::authorization]);
  req.host = std::string(msg[http::field::host]);
  req.keep_alive = msg.keep_alive();
  note_for_access(msg, req);
  req.body = std::move(msg.body());
  return req;
}

// A request refused before it was read whole: what the parser saw of it, for the access log
// ("-" when nothing).
HttpRequest partial_request(const http::request_parser<http::string_body>& parser, const Peer& peer) {
  HttpRequest req;
  req.peer = peer;
  req.method = std::string(parser.get().method_string());
  req.target = origin_form(parser.get().target());
  if (req.method.empty()) req.method = "-";
  if (req.target.empty()) req.target = "-";
  if (parser.is_header_done()) {  // what the body gate (AdminRouter::gate) decides on
    const auto& msg = parser.get();
    req.version = msg.version();
    req.content_type = std::string(msg[http::field::content_type]);
    req.authorization = std::string(msg[http::field::authorization]);
    req.host = std::string(msg[http::field::host]);
    note_for_access(msg, req);
  }
  return req;
}


}  // namespace hkpgw::gateway::wire
