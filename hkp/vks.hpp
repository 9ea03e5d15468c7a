// The VKS API of Hagrid (keys.openpgp.org; docs/contract.md, docs/clients.md): its request paths and upload
// bodies, parsed into the types the lookup and submission services take. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hkp/lookup.hpp"
#include "hkp/problem.hpp"
#include "hkp/submission.hpp"

namespace hkpgw::hkp {

inline constexpr std::string_view kVksPrefix = "/vks/v1/";

// GET /vks/v1/by-fingerprint/<40 hex>, /by-keyid/<16 hex>, /by-email/<percent-encoded address>
// as an op=get lookup. Hex in either case, with or without 0x (Hagrid's own nginx tolerates 0x).
// Errors: 404 for another /vks/v1/ path; 400 for a malformed value (a short key ID included:
// VKS never took them); 501 for a v6 fingerprint (64 hex).
Result<LookupRequest> parse_vks_lookup(std::string_view path);

// POST /vks/v1/upload: a JSON object whose "keytext" is an armored key or the base64 of a
// binary one (Hagrid takes both). Errors (400): not JSON, not an object, no string keytext,
// keytext that is neither armor nor base64. Bodies nest at most 32 deep.
Result<Submission> parse_vks_upload(std::string_view body);

// POST /vks/v1/request-verify: {"token": "...", "addresses": ["...", ...], "locale": [...]}.
struct VerifyRequest {
  std::string token;
  std::vector<std::string> addresses;  // lower-cased
  std::vector<std::string> locale;     // as given (passed on to an upstream that verifies)
};
// Errors (400): not a JSON object, no string token, addresses not a list of strings (at most
// 100 of them), locale not a list of at most 10 strings.
Result<VerifyRequest> parse_vks_verify(std::string_view body);
// The body of a request-verify, as an upstream is sent it.
std::string vks_verify_json(const VerifyRequest& r);

// What a VKS server answers an upload or a request-verify: {"key_fpr", "status": {address:
// state}, "token"}. Read from an upstream, so bounded: at most 100 states, strings of at most
// 512 bytes, nesting 32 deep. Errors (502 in spirit: the upstream's answer is unusable) say why.
struct VksReply {
  std::string key_fpr;
  std::string token;
  std::vector<std::pair<std::string, std::string>> status;  // in the answer's order
};
Result<VksReply> parse_vks_reply(std::string_view body);
// Hagrid's {"error": "..."}, or nothing.
std::optional<std::string> parse_vks_error(std::string_view body);

}  // namespace hkpgw::hkp
