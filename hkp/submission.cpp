#include "hkp/submission.hpp"

#include "hkp/lookup.hpp"
#include "hkp/text.hpp"

namespace hkpgw::hkp {

namespace {

std::string media_type(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string t = ascii_lower(content_type.substr(0, semi));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(t.begin());
  return t;
}

// The value of parameter `name` (lower case) in a Content-Type, unquoted, or "".
std::string type_parameter(std::string_view content_type, std::string_view name) {
  std::size_t semi = content_type.find(';');
  while (semi != std::string_view::npos) {
    std::string_view rest = content_type.substr(semi + 1);
    const auto next = rest.find(';');
    std::string_view param = trim(rest.substr(0, next));
    const auto eq = param.find('=');
    if (eq != std::string_view::npos && ascii_lower(trim(param.substr(0, eq))) == name) {
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
    semi = next == std::string_view::npos ? next : semi + 1 + next;
  }
  return {};
}

// The part named keytext of a multipart/form-data body (RFC 7578; what `curl -F keytext=@key.asc`
// and browsers' file forms send). Linear in the body, at most kMaxParts parts looked at.
Result<std::string> multipart_keytext(std::string_view content_type, std::string_view body) {
  constexpr std::size_t kMaxParts = 64;
  const std::string boundary = type_parameter(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 70) {
    return Problem{400, GPG_ERR_INV_VALUE, "multipart/form-data without a usable boundary"};
  }
  const std::string delimiter = "--" + boundary;
  const std::string separator = "\r\n" + delimiter;
  std::size_t at = body.starts_with(delimiter) ? 0 : body.find(separator);
  if (at == std::string_view::npos) {
    return Problem{400, GPG_ERR_INV_VALUE, "multipart body without its boundary"};
  }
  at = at == 0 ? delimiter.size() : at + separator.size();
  for (std::size_t part = 0; part < kMaxParts; ++part) {
    if (body.substr(at).starts_with("--")) break;  // the closing delimiter
    const auto headers_start = body.find("\r\n", at);
    const auto headers_end = body.find("\r\n\r\n", at);
    if (headers_start == std::string_view::npos || headers_end == std::string_view::npos) break;
    const std::string headers =
        ascii_lower(body.substr(headers_start, headers_end - headers_start));
    const std::size_t content = headers_end + 4;
    const auto end = body.find(separator, content);
    if (end == std::string_view::npos) {
      return Problem{400, GPG_ERR_INV_VALUE, "multipart body cut short: a part has no end"};
    }
    const auto disposition = headers.find("content-disposition:");
    if (disposition != std::string::npos) {
      const std::string_view line = std::string_view(headers).substr(
          disposition, headers.find("\r\n", disposition) - disposition);
      if (line.find("name=\"keytext\"") != std::string_view::npos ||
          line.find("name=keytext") != std::string_view::npos) {
        return std::string(body.substr(content, end - content));
      }
    }
    at = end + separator.size();
  }
  return Problem{400, GPG_ERR_NO_DATA, "no keytext part in the multipart form: nothing to add"};
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
  if (type == "multipart/form-data") {
    auto keytext = multipart_keytext(content_type, body);
    if (!keytext) return keytext.error();
    if (keytext->empty()) {
      return Problem{400, GPG_ERR_NO_DATA, "keytext is empty: no key submitted"};
    }
    s.keytext = std::move(*keytext);
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
