// The VKS front: Hagrid's API (keys.openpgp.org) over the same lookup and submission services as
// HKP. Lookups answer armored keys with Hagrid's Content-Disposition, errors in plain text;
// upload and request-verify answer JSON, errors as {"error": "..."} (docs/contract.md).
#include "hkp/vks.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/asio/awaitable.hpp>

#include "gateway/http/formats.hpp"
#include "gateway/http/router.hpp"
#include "gateway/http/stats.hpp"
#include "gateway/net/cluster_auth.hpp"
#include "hkp/json.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

namespace json = hkp::json;

HttpResponse json_answer(unsigned status, const json::value& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = hkp::json_body(body, true);
  return r;
}

HttpResponse json_error(unsigned status, std::string_view message) {
  return json_answer(status, {{"error", hkp::json_text(message)}});
}

// A submission's refusal, as JSON (with Retry-After when it has one).
HttpResponse as_json_error(const Refusal& refused) {
  HttpResponse r = json_error(refused.problem.status, refused.problem.message());
  if (refused.retry_after.count() > 0) {
    r.set("Retry-After", std::to_string(refused.retry_after.count()));
  }
  return r;
}

// The token an upload answers with. The gateway verifies no address (it serves what it was
// given), so its own token only names the key for request-verify: "hkpgw-<FPR>". A VKS upstream
// that took the upload issued a token of its own, passed back sealed as
// "hkpgw:<seal>:<upstream>:<token>" so that request-verify reaches the upstream that issued it
// and nothing else does: the seal (an HMAC of upstream and token, Router::relay_token) is what
// this gateway wrote, so a made-up token is refused here, never relayed (they were relayed 1:1,
// each holding an upstream connection). No state is kept: with a cluster secret any replica
// relays it.
constexpr std::string_view kTokenPrefix = "hkpgw-";
constexpr std::string_view kRelayedPrefix = "hkpgw:";
constexpr std::size_t kSealDigits = 32;

}  // namespace

std::string Router::relay_token(const Snapshot& snap, std::string_view upstream,
                                std::string_view token) const {
  const std::string& secret = snap.config->cluster.secret;
  std::string text = "hkpgw-relay 1\n";
  text.append(upstream).append("\n").append(token);
  return hmac_hex(secret.empty() ? token_key_ : secret, text, kSealDigits / 2);
}

namespace {

// The first upstream reply to an upload that is Hagrid's JSON with a token.
std::optional<std::pair<std::string, hkp::VksReply>> vks_reply(const AddService::AddedKey& k) {
  for (const auto& [upstream, body] : k.replies) {
    auto reply = hkp::parse_vks_reply(body);
    if (reply && !reply->token.empty()) return std::make_pair(upstream, std::move(*reply));
  }
  return std::nullopt;
}

json::object states_json(const std::vector<std::pair<std::string, std::string>>& states) {
  json::object out;
  for (const auto& [address, state] : states) out[hkp::json_text(address)] = hkp::json_text(state);
  return out;
}

json::object status_json(const std::vector<std::pair<std::string, bool>>& addresses,
                         const std::vector<std::string>& only) {
  json::object out;
  for (const auto& [address, revoked] : addresses) {
    if (!only.empty() && std::find(only.begin(), only.end(), address) == only.end()) continue;
    out[hkp::json_text(address)] = revoked ? "revoked" : "published";
  }
  return out;
}

}  // namespace

asio::awaitable<HttpResponse> Router::serve_vks_lookup(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot> snap) {
  HttpResponse r = co_await vks_lookup(req.path(), req, std::move(snap), {});
  co_return r;
}

asio::awaitable<HttpResponse> Router::vks_lookup(std::string_view path, const HttpRequest& req,
                                                 std::shared_ptr<const Snapshot> snap,
                                                 std::string only) {
  auto parsed = hkp::parse_vks_lookup(path);
  if (!parsed) {
    req.access.op = "vks";
    co_return text_response(parsed.error().status, parsed.error().message());
  }
  LookupOutcome o = co_await lookups_.lookup(*parsed, req.client_no_cache, snap, std::move(only));
  co_return render(vks_format(), *parsed, std::move(o), req);
}

asio::awaitable<HttpResponse> Router::serve_vks_upload(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot> snap) {
  req.access.op = "add";
  auto sub = hkp::parse_vks_upload(req.body);
  if (!sub) co_return json_error(sub.error().status, sub.error().message());
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await adds_.submit(submission, req, snap);
  if (auto* refused = std::get_if<Refusal>(&done)) co_return as_json_error(*refused);
  const auto& keys = std::get<std::vector<AddService::AddedKey>>(done);
  HttpResponse r;
  if (keys.size() == 1) {
    const auto& k = keys.front();
    // A VKS upstream's states (its addresses are unpublished until verified) and token, or ours.
    const auto upstream = vks_reply(k);
    json::object status =
        upstream ? states_json(upstream->second.status) : status_json(k.addresses, {});
    const std::string token =
        upstream ? std::string(kRelayedPrefix) +
                       relay_token(*snap, upstream->first, upstream->second.token) + ":" +
                       upstream->first + ":" + upstream->second.token
                 : std::string(kTokenPrefix) + k.fingerprint;
    r = json_answer(200, {{"key_fpr", k.fingerprint},
                          {"status", std::move(status)},
                          {"token", hkp::json_text(token)}});
  } else {
    json::array list;
    for (const auto& k : keys) list.push_back(json::string(k.fingerprint));
    r = json_answer(200, {{"key_fprs", std::move(list)}});
  }
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_vks_verify(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot> snap) {
  auto parsed = hkp::parse_vks_verify(req.body);
  if (!parsed) co_return json_error(parsed.error().status, parsed.error().message());
  if (parsed->token.starts_with(kRelayedPrefix)) {
    HttpResponse r = co_await relay_verify(*parsed, std::move(snap));
    co_return r;
  }
  std::string_view token = parsed->token;
  const auto fpr = token.starts_with(kTokenPrefix)
                       ? cache::Fingerprint::from_hex(token.substr(kTokenPrefix.size()))
                       : std::nullopt;
  if (!fpr) co_return json_error(400, "unknown token: this gateway issued no such token");
  std::optional<hkp::KeyInfo> info;
  store_.visit_fingerprints(std::span(&*fpr, 1), [&info](const cache::KeyRecordView& v) {
    info = cache::decode_key_info(v.info_bytes);
  });
  if (!info) co_return json_error(404, "the key of this token is no longer cached here");
  json::object status = status_json(hkp::addresses_of(*info), parsed->addresses);
  if (status.empty()) co_return json_error(400, "the key carries none of these addresses");
  co_return json_answer(200, {{"key_fpr", fpr->hex()}, {"status", std::move(status)}});
}

asio::awaitable<HttpResponse> Router::relay_verify(hkp::VerifyRequest request,
                                                   std::shared_ptr<const Snapshot> snap) {
  std::string_view rest = std::string_view(request.token).substr(kRelayedPrefix.size());
  const std::string_view seal = rest.substr(0, kSealDigits);
  rest = rest.size() > kSealDigits && rest[kSealDigits] == ':' ? rest.substr(kSealDigits + 1)
                                                              : std::string_view();
  const auto colon = rest.find(':');
  const std::string name(rest.substr(0, colon));
  const std::string_view token =
      colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  const std::string want = relay_token(*snap, name, token);
  if (token.empty() || seal.size() != want.size() ||
      CRYPTO_memcmp(seal.data(), want.data(), want.size()) != 0) {
    co_return json_error(400, "unknown token: this gateway issued no such token");
  }
  auto upstream = snap->find(name);
  if (!upstream) {
    co_return json_error(400, "unknown token: no upstream named \"" + name.substr(0, 80) +
                                  "\" issued it (any more)");
  }
  request.token = std::string(token);
  // Each relay holds one of the upstream's connections until it answers (Hagrid sends mail
  // first): bounded, so twenty slow ones cannot take the connections a cache miss needs.
  if (relays_.fetch_add(1) >= kMaxRelays) {
    relays_.fetch_sub(1);
    HttpResponse busy = json_error(503, "too many request-verify relays in progress (at most " +
                                            std::to_string(kMaxRelays) +
                                            "); try again in a few seconds");
    busy.set("Retry-After", "5");
    co_return busy;
  }
  struct Release {
    std::atomic<int>& n;
    ~Release() { n.fetch_sub(1); }
  } release{relays_};
  std::string body = hkp::vks_verify_json(request);
  const auto& u = snap->config->upstreams;
  const UpstreamLimits limits{u.connect_timeout, u.request_timeout, 64 << 10};
  const UpstreamAnswer a = co_await upstream->request_verify(std::move(body), limits);
  if (a.outcome == Outcome::ok) {
    auto reply = hkp::parse_vks_reply(a.body);
    if (!reply) {
      co_return json_error(503, upstream->name() + " answered request-verify with no VKS reply: " +
                                    reply.error().message());
    }
    co_return json_answer(
        200, {{"key_fpr", hkp::json_text(reply->key_fpr)}, {"status", states_json(reply->status)}});
  }
  if (a.status >= 400 && a.status < 500) {  // it answered, and said no: its words, its status
    const auto why = hkp::parse_vks_error(a.body);
    co_return json_error(a.status, upstream->name() + ": " +
                                       (why ? *why : "HTTP " + std::to_string(a.status)));
  }
  co_return json_error(a.outcome == Outcome::timeout ? 504 : 503,
                       "request-verify could not be relayed: " + a.detail);
}

}  // namespace hkpgw::gateway
