// The VKS front: Hagrid's API (keys.openpgp.org) over the same lookup and submission services as
// HKP. Lookups answer armored keys with Hagrid's Content-Disposition, errors in plain text;
// upload and request-verify answer JSON, errors as {"error": "..."} (docs/contract.md).
#include <boost/asio/awaitable.hpp>
#include <algorithm>

#include "gateway/http/router.hpp"
#include "gateway/http/stats.hpp"
#include "hkp/vks.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

namespace {

HttpResponse json_answer(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

HttpResponse json_error(unsigned status, std::string_view message) {
  return json_answer(status, "{\"error\":" + json_string(message) + "}");
}

// A refusal the services worded as one line of text, as JSON; its headers (Retry-After) kept.
HttpResponse as_json_error(HttpResponse refused) {
  std::string_view line = refused.payload();
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  HttpResponse r = json_error(refused.status, line);
  r.headers = std::move(refused.headers);
  r.log_op = refused.log_op;
  return r;
}

// The token an upload answers with: the gateway verifies no address (it serves what it was
// given), so the token only names the key for request-verify.
constexpr std::string_view kTokenPrefix = "hkpgw-";

std::string status_json(const std::vector<std::pair<std::string, bool>>& addresses,
                        const std::vector<std::string>& only) {
  std::string out = "{";
  bool first = true;
  for (const auto& [address, revoked] : addresses) {
    if (!only.empty() && std::find(only.begin(), only.end(), address) == only.end()) continue;
    out += (first ? "" : ",") + json_string(address) + ":" +
           json_string(revoked ? "revoked" : "published");
    first = false;
  }
  return out + "}";
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
    HttpResponse r = text_response(parsed.error().status, parsed.error().message());
    r.log_op = "vks";
    co_return r;
  }
  HttpResponse r = co_await lookups_.lookup(*parsed, req.client_no_cache, snap, std::move(only));
  if (r.status == 200) {  // named after the (first) key answered, as Hagrid names its files
    std::string fpr;
    store_.visit(parsed->search, [&fpr](const cache::KeyRecordView& v) {
      if (fpr.empty()) fpr = v.fingerprint.hex();
    });
    if (fpr.empty() && parsed->search.kind == hkp::SearchKind::fingerprint) {
      fpr = parsed->search.value;
    }
    if (!fpr.empty()) r.set("Content-Disposition", "attachment; filename=\"" + fpr + ".asc\"");
  }
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_vks_upload(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot> snap) {
  auto sub = hkp::parse_vks_upload(req.body);
  if (!sub) {
    HttpResponse r = json_error(sub.error().status, sub.error().message());
    r.log_op = "add";
    co_return r;
  }
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await adds_.submit(submission, req, std::move(snap));
  if (auto* refused = std::get_if<HttpResponse>(&done)) {
    co_return as_json_error(std::move(*refused));
  }
  const auto& keys = std::get<std::vector<AddService::AddedKey>>(done);
  HttpResponse r;
  if (keys.size() == 1) {
    const auto& k = keys.front();
    r = json_answer(200, "{\"key_fpr\":" + json_string(k.fingerprint) + ",\"status\":" +
                             status_json(k.addresses, {}) + ",\"token\":" +
                             json_string(std::string(kTokenPrefix) + k.fingerprint) + "}");
  } else {
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "" : ",") + json_string(k.fingerprint);
    r = json_answer(200, "{\"key_fprs\":[" + list + "]}");
  }
  r.log_op = "add";
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_vks_verify(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot>) {
  auto parsed = hkp::parse_vks_verify(req.body);
  if (!parsed) co_return json_error(parsed.error().status, parsed.error().message());
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
  const std::string status = status_json(hkp::addresses_of(*info), parsed->addresses);
  if (status == "{}") co_return json_error(400, "the key carries none of these addresses");
  co_return json_answer(200, "{\"key_fpr\":" + json_string(fpr->hex()) + ",\"status\":" + status +
                                 "}");
}

}  // namespace hkpgw::gateway
