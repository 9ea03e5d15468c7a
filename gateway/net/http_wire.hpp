// Inside net/: the HTTP/1.x wire rules of the server between Beast's messages and the plain
// HttpRequest/HttpResponse values (see http_wire.cpp). Included by http_server.cpp only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/net/http_message.hpp"
#include "gateway/net/http_server.hpp"

namespace hkpgw::gateway::wire {

namespace http = boost::beast::http;

// The status line and header fields of our answer, appended to `out` (cleared first), ending in
// the blank line: Content-Length always (dirmngr has no chunked decoder), "Connection: close" or
// "keep-alive" as HTTP/1.1 and 1.0 need it. Written by hand into a buffer the connection reuses:
// Beast's serializer was half of a cached answer's instructions. CR, LF and NUL in a value are
// written as spaces (no header injection, whatever a handler puts there).
void write_head(const HttpResponse& r, unsigned version, bool keep_alive, std::string& out);
// Pragma: no-cache or Cache-Control: no-cache.
bool has_no_cache(const http::request<http::string_body>& req);
// "http://host:port/path?q" (absolute-form, as sent to a proxy) -> "/path?q".
std::string origin_form(std::string_view target);
// RFC 9112 sections 6.1 and 6.3: a body is framed by Content-Length or by a Transfer-Encoding
// whose last coding is chunked; anything else is refused (400, or 501 for a coding we lack).
std::optional<HttpResponse> check_framing(const http::request_parser<http::string_body>& parser);
// Dotted decimal, as inet_ntop writes it.
std::string ipv4_text(const boost::asio::ip::address_v4::bytes_type& b);
// Whose connection this is, for per-client limits: the IPv4 address or the IPv6 /64.
std::string client_key(const boost::asio::ip::address& a);
Peer peer_of(const boost::asio::ip::tcp::endpoint& ep);

HttpResponse too_large(std::uint64_t max_body_bytes, std::optional<std::uint64_t> announced = {});
// The client went away, idled out, or we are stopping: nobody to answer.
bool client_gone(const boost::beast::error_code& ec);
// What the header alone says: an answer to give at once (framing, two Host fields, a
// Content-Length over the limit), or nothing.
std::optional<HttpResponse> check_header(const http::request_parser<http::string_body>& parser,
                                         std::uint64_t max_body_bytes);
// At most this much of a User-Agent is kept for the access line.
constexpr std::size_t kMaxUserAgent = 256;
// An X-Request-ID worth carrying into the access line: 1 to 128 bytes of letters, digits and
// -_.:/+= (what balancers and tracing headers make); anything else is "" and one is made.
std::string request_id_of(std::string_view header);
HttpRequest to_request(http::request<http::string_body>&& msg, const Peer& peer);
// A request refused before it was read whole: what the parser saw of it, for the access log.
HttpRequest partial_request(const http::request_parser<http::string_body>& parser, const Peer& peer);

}  // namespace hkpgw::gateway::wire
