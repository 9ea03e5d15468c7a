#include "hkp/submission.hpp"

#include "hkp/lookup.hpp"

namespace hkpgw::hkp {

namespace {

std::string media_type(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string t = ascii_lower(content_type.substr(0, semi));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(t.begin());
  return t;
}

}  // namespace

Result<Submission> parse_submission(std::string_view content_type, std::string_view body,
                                    std::string_view query) {
  Submission s;
  const std::string type = media_type(content_type);
  // options may come in the URL (?options=mr) or as a form field.
  if (auto q = form_field(query, "options")) s.machine_readable = has_option(*q, "mr");
  if (type == "application/pgp-keys" || type == "application/pgp" ||
      type == "application/octet-stream") {
    if (body.empty()) return Problem{400, GPG_ERR_NO_DATA, "empty body: no key submitted"};
    s.keytext = std::string(body);
    return s;
  }
  // No content type at all: a form if it looks like one (some scripts forget the header).
  if (!type.empty() && type != "application/x-www-form-urlencoded") {
    return Problem{415, GPG_ERR_UNSUPPORTED_ENCODING,
                   "unsupported content type \"" + std::string(content_type.substr(0, 80)) +
                       "\": send keytext= as application/x-www-form-urlencoded"};
  }
  auto keytext = form_field(body, "keytext");
  if (!keytext) {
    return Problem{400, GPG_ERR_NO_DATA, "no keytext field in the form: nothing to add"};
  }
  if (keytext->empty()) return Problem{400, GPG_ERR_NO_DATA, "keytext is empty: no key submitted"};
  if (auto o = form_field(body, "options")) s.machine_readable = s.machine_readable || has_option(*o, "mr");
  s.keytext = std::move(*keytext);
  return s;
}

}  // namespace hkpgw::hkp
