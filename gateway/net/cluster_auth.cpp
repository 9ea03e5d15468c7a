#include "gateway/net/cluster_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>

#include "hkp/text.hpp"

namespace hkpgw::gateway {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  return hkp::hex_lower({reinterpret_cast<const char*>(p), n});
}

bool lower_hex(std::string_view s, std::size_t digits) {
  if (s.size() != digits) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string hmac_hex(std::string_view key, std::string_view text, std::size_t bytes) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len)) {
    return {};
  }
  return hex(mac, std::min<std::size_t>(len, bytes));
}

namespace {

std::string mac_of(std::string_view secret, std::string_view method, std::string_view target,
                   std::string_view body, std::uint64_t t, std::string_view nonce) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(body.data(), body.size(), digest, &len, EVP_sha256(), nullptr) != 1) return {};
  std::string text = "hkpgw-cluster 1\n";
  text.append(method).append("\n").append(target).append("\n").append(std::to_string(t));
  text.append("\n").append(nonce).append("\n").append(hex(digest, len));
  return hmac_hex(secret, text);
}

}  // namespace

std::string cluster_authorization(std::string_view secret, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  std::uint64_t now, std::string_view nonce) {
  return std::string(kClusterAuthScheme) + "t=" + std::to_string(now) + ",n=" +
         std::string(nonce) + ",mac=" + mac_of(secret, method, target, body, now, nonce);
}

std::string random_nonce() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return {};
  return hex(b, sizeof b);
}

std::optional<ClusterAuthorization> parse_cluster_authorization(std::string_view h) {
  if (!h.starts_with(kClusterAuthScheme)) return std::nullopt;
  h.remove_prefix(kClusterAuthScheme.size());
  ClusterAuthorization a;
  auto take = [&h](std::string_view name) -> std::optional<std::string_view> {
    if (!h.starts_with(name)) return std::nullopt;
    h.remove_prefix(name.size());
    const auto comma = h.find(',');
    const std::string_view v = h.substr(0, comma);
    h = comma == std::string_view::npos ? std::string_view() : h.substr(comma + 1);
    return v;
  };
  const auto t = take("t=");
  const auto n = take("n=");
  const auto mac = take("mac=");
  if (!t || !n || !mac || !h.empty() || !lower_hex(*n, 32) || !lower_hex(*mac, 64)) {
    return std::nullopt;
  }
  const auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), a.t);
  if (ec != std::errc() || end != t->data() + t->size()) return std::nullopt;
  a.nonce = std::string(*n);
  a.mac = std::string(*mac);
  return a;
}

ReplayGuard::Use ReplayGuard::first_use(const std::string& nonce, std::uint64_t now) {
  std::lock_guard lock(mutex_);
  if (now >= pruned_ + kClusterAuthWindow) {  // at most once a window: linear in what is live
    std::erase_if(seen_, [now](const auto& e) { return e.second < now; });
    pruned_ = now;
  }
  // Remembered until the request's time could no longer pass the window check.
  const std::uint64_t until = now + 2 * kClusterAuthWindow;
  if (const auto it = seen_.find(nonce); it != seen_.end()) {
    if (it->second >= now) return Use::replay;
    it->second = until;
    return Use::first;
  }
  if (seen_.size() >= kMaxNonces) return Use::full;
  seen_.emplace(nonce, until);
  return Use::first;
}

std::optional<std::string> check_cluster_request(std::string_view secret, std::string_view header,
                                                 std::string_view method, std::string_view target,
                                                 std::string_view body, std::uint64_t now,
                                                 ReplayGuard& replays) {
  if (secret.empty()) return "this gateway has no cluster.secret_file";
  const auto a = parse_cluster_authorization(header);
  if (!a) return "the request carries no HKPGW-HMAC authorization";
  const std::string want = mac_of(secret, method, target, body, a->t, a->nonce);
  if (want.size() != a->mac.size() ||
      CRYPTO_memcmp(want.data(), a->mac.data(), want.size()) != 0) {
    return "wrong MAC: the sender does not hold this cluster's secret";
  }
  if (a->t + kClusterAuthWindow < now || a->t > now + kClusterAuthWindow) {
    return "signed at " + std::to_string(a->t) + ", over " + std::to_string(kClusterAuthWindow) +
           " s from this gateway's clock (" + std::to_string(now) + ")";
  }
  switch (replays.first_use(a->nonce, now)) {
    case ReplayGuard::Use::first:
      return std::nullopt;
    case ReplayGuard::Use::replay:
      return "a replay: this request was taken already";
    case ReplayGuard::Use::full:
      break;
  }
  return "over " + std::to_string(ReplayGuard::kMaxNonces) + " cluster requests in " +
         std::to_string(2 * kClusterAuthWindow) + " s";
}

}  // namespace hkpgw::gateway
