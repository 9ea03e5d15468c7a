#include "gateway/cluster/spend_report.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <string>

namespace hkpgw::gateway {

namespace {

constexpr std::string_view kHead = "hkpgw-spends 1 ";
constexpr std::uint32_t kMaxCount = 1'000'000;  // per client, budget and second: more is a lie

// A client as the rate limiter keys it, and nothing else: an IPv4 address or the /64 of an IPv6
// one, each in the one text form the limiter writes (client_key in gateway/net/http_wire.cpp),
// so a report cannot name "/", ":::::" or another spelling of a client to charge or evict.
bool client_key_shaped(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  char text[INET6_ADDRSTRLEN] = {};
  if (s.ends_with("/64")) {
    const std::string addr(s.substr(0, s.size() - 3));
    in6_addr a{};
    if (inet_pton(AF_INET6, addr.c_str(), &a) != 1) return false;
    for (int i = 8; i < 16; ++i) {
      if (a.s6_addr[i] != 0) return false;
    }
    const bool mapped = IN6_IS_ADDR_V4MAPPED(&a);  // keyed as IPv4, never as a /64
    return !mapped && inet_ntop(AF_INET6, &a, text, sizeof text) && addr == text;
  }
  const std::string addr(s);
  in_addr a{};
  return inet_pton(AF_INET, addr.c_str(), &a) == 1 && inet_ntop(AF_INET, &a, text, sizeof text) &&
         addr == text;
}

bool hex16(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool parse_count(std::string_view s, std::uint32_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out <= kMaxCount;
}

// Splits "a b c d" on single spaces into exactly `n` non-empty fields.
bool fields(std::string_view line, std::string_view* out, int n) {
  for (int i = 0; i < n; ++i) {
    const auto sp = line.find(' ');
    if ((sp == std::string_view::npos) != (i == n - 1)) return false;
    out[i] = line.substr(0, sp);
    if (out[i].empty()) return false;
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  }
  return true;
}

}  // namespace

std::string format_spend_report(const std::string& instance,
                                const std::vector<ClientSpend>& spent) {
  std::string out = std::string(kHead) + instance + "\n";
  for (const auto& s : spent) {
    out += s.client + ' ' + std::to_string(s.n[0]) + ' ' + std::to_string(s.n[1]) + ' ' +
           std::to_string(s.n[2]) + '\n';
  }
  return out;
}

std::variant<SpendReport, std::string> parse_spend_report(std::string_view body) {
  const auto first_end = body.find('\n');
  const std::string_view head = body.substr(0, first_end);
  if (!head.starts_with(kHead) || !hex16(head.substr(kHead.size()))) {
    return std::string("line 1: expected \"hkpgw-spends 1 <instance>\"");
  }
  SpendReport report;
  report.instance = std::string(head.substr(kHead.size()));
  body = first_end == std::string_view::npos ? std::string_view() : body.substr(first_end + 1);
  std::size_t line_no = 1;
  while (!body.empty()) {
    ++line_no;
    const auto end = body.find('\n');
    const std::string_view line = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
    if (report.spent.size() >= kMaxReportClients) {
      return "line " + std::to_string(line_no) + ": more than 20000 clients";
    }
    std::string_view f[4];
    ClientSpend s;
    if (!fields(line, f, 4) || !client_key_shaped(f[0]) || !parse_count(f[1], s.n[0]) ||
        !parse_count(f[2], s.n[1]) || !parse_count(f[3], s.n[2])) {
      return "line " + std::to_string(line_no) +
             ": expected \"<client> <lookups> <searches> <submissions>\"";
    }
    s.client = std::string(f[0]);
    report.spent.push_back(std::move(s));
  }
  return report;
}

}  // namespace hkpgw::gateway
