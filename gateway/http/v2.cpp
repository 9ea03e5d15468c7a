// The HKP v2 front (draft-ietf-openpgp-hkp; docs/contract.md): lookups by versioned
// fingerprint, key ID and address over the same lookup service as every front, answered as the
// binary bundle (application/pgp-keys;armor=no) or, for index/, as JSON; POST /pks/v2/certs onto
// the submission path, answered with the draft's five lists; OPTIONS per category (501 for a
// category not served). Errors are one line of plain text, as on every front.
#include "hkp/v2.hpp"

#include <boost/asio/awaitable.hpp>

#include "gateway/http/formats.hpp"
#include "gateway/http/router.hpp"
#include "hkp/json.hpp"
#include "hkp/text.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;

asio::awaitable<HttpResponse> Router::serve_v2_lookup(const HttpRequest& req,
                                                      std::shared_ptr<const Snapshot> snap) {
  HttpResponse r = co_await v2_lookup(req.path(), req, std::move(snap), {});
  co_return r;
}

asio::awaitable<HttpResponse> Router::v2_lookup(std::string_view path, const HttpRequest& req,
                                                std::shared_ptr<const Snapshot> snap,
                                                std::string only) {
  auto parsed = hkp::parse_v2_lookup(path);
  if (!parsed) {
    req.access.op = "v2";
    co_return text_response(parsed.error().status, parsed.error().message());
  }
  LookupOutcome o = co_await lookups_.lookup(*parsed, req.client_no_cache, snap, std::move(only));
  co_return render(v2_format(), *parsed, std::move(o), req);
}

HttpResponse Router::v2_options(std::string_view path) {
  const std::string_view methods = hkp::v2_allowed_methods(path);
  if (methods.empty()) {
    return text_response(501, "Not implemented: HKP v2 category not served here (served: "
                              "certs/by-vfingerprint, certs/by-keyid, certs/by-identity, index, "
                              "certs)");
  }
  HttpResponse r = options(std::string(methods.substr(0, methods.rfind(", OPTIONS"))));
  if (methods.starts_with("POST")) r.set("Accept", std::string(hkp::kV2KeysType));
  return r;
}

asio::awaitable<HttpResponse> Router::serve_v2_submit(const HttpRequest& req,
                                                      std::shared_ptr<const Snapshot> snap) {
  req.access.op = "add";
  // "Not well formed" is 422 in v2 (400 is reserved for the request itself): v2's wording of
  // the refusals every front shares.
  auto v2_refusal = [](Refusal refused) {
    if (refused.problem.status == 400) refused.problem.status = 422;
    return refusal_text(refused);
  };
  auto sub = hkp::parse_submission(req.content_type, req.body, {});
  if (!sub) co_return v2_refusal(Refusal{sub.error(), {}});
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await adds_.submit(submission, req, std::move(snap));
  if (auto* refused = std::get_if<Refusal>(&done)) co_return v2_refusal(std::move(*refused));
  hkp::json::array inserted, updated, ignored;
  for (const auto& k : std::get<std::vector<AddService::AddedKey>>(done)) {
    hkp::json::object cert{{"version", k.fingerprint.size() == 64 ? 6 : 4},
                           {"fingerprint", hkp::ascii_lower(k.fingerprint)}};
    if (k.change == cache::Change::unchanged) {
      cert["comment"] = "nothing new: the cached copy already holds all of it";
    }
    (k.change == cache::Change::added     ? inserted
     : k.change == cache::Change::updated ? updated
                                          : ignored)
        .push_back(std::move(cert));
  }
  HttpResponse r;
  r.content_type = "application/json";
  r.body = hkp::json_body({{"inserted", std::move(inserted)},
                           {"updated", std::move(updated)},
                           {"deleted", hkp::json::array()},
                           {"ignored", std::move(ignored)},
                           {"invalid", hkp::json::array()}},
                          true);
  co_return r;
}

}  // namespace hkpgw::gateway
