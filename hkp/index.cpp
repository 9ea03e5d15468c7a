#include "hkp/index.hpp"

#include <cctype>
#include <charconv>
#include <ctime>

#include "hkp/json.hpp"
#include "hkp/text.hpp"

namespace hkpgw::hkp {
namespace {

void append_escaped_uid(std::string& out, std::string_view uid) {
  for (unsigned char c : uid) {
    if (c <= 0x20 || c >= 0x7F || c == ':' || c == '%') {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

void append_int(std::string& out, std::int64_t v) {
  if (v != 0) out += std::to_string(v);
}

// `t` in UTC per the strftime format, or "" for a time outside the years 1970 to 9999. Times
// come from upstream listings: one far in the future used to make strftime fill the buffer
// without a terminating NUL, and the copy read past it (fuzz_mr_index).
std::string utc_time(std::int64_t t, const char* format) {
  if (t <= 0 || t > kMaxRfc3339) return "";
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return "";
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, format, &tm);
  return std::string(buf, n);
}

std::string date(std::int64_t t) { return utc_time(t, "%Y-%m-%d"); }  // YYYY-MM-DD

std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto p = line.find(sep);
    out.push_back(line.substr(0, p));
    if (p == std::string_view::npos) break;
    line.remove_prefix(p + 1);
  }
  return out;
}

bool all_hex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

IndexEntry to_index_entry(const KeyInfo& key) {
  IndexEntry e;
  e.id = key.fingerprint;
  e.algo = key.algo;
  e.bits = key.bits;
  e.created = key.created;
  e.expires = key.expires;
  e.revoked = key.revoked;
  for (const auto& u : key.uids) {
    e.uids.push_back(IndexUid{u.text, u.created, 0, u.revoked});
  }
  for (const auto& s : key.subkeys) {
    e.subkeys.push_back({s.fingerprint, s.algo, s.bits, s.created, s.expires, s.revoked});
  }
  return e;
}

std::string format_mr_index(std::span<const IndexEntry> entries, std::int64_t now) {
  std::string out = "info:1:" + std::to_string(entries.size()) + "\n";
  for (const auto& e : entries) {
    out += "pub:";
    out += e.id;
    out += ':';
    append_int(out, e.algo);
    out += ':';
    append_int(out, e.bits);
    out += ':';
    append_int(out, e.created);
    out += ':';
    append_int(out, e.expires);
    out += ':';
    if (e.revoked) out += 'r';
    if (e.disabled) out += 'd';
    if (e.expires != 0 && e.expires <= now) out += 'e';
    out += '\n';
    for (const auto& u : e.uids) {
      out += "uid:";
      append_escaped_uid(out, u.text);
      out += ':';
      append_int(out, u.created);
      out += ':';
      append_int(out, u.expires);
      out += ':';
      if (u.revoked) out += 'r';
      if (u.expires != 0 && u.expires <= now) out += 'e';
      out += '\n';
    }
  }
  return out;
}

namespace {

// The names RFC 9580 section 9.1 gives the public-key algorithms.
const char* algo_long_name(std::uint8_t algo) {
  switch (algo) {
    case 1: return "RSA (Encrypt or Sign)";
    case 2: return "RSA Encrypt-Only";
    case 3: return "RSA Sign-Only";
    case 16: return "Elgamal (Encrypt-Only)";
    case 17: return "DSA";
    case 18: return "ECDH";
    case 19: return "ECDSA";
    case 22: return "EdDSALegacy";
    case 25: return "X25519";
    case 26: return "X448";
    case 27: return "Ed25519";
    case 28: return "Ed448";
    case 30: return "ML-DSA-65+Ed25519";
    case 31: return "ML-DSA-87+Ed448";
    case 35: return "ML-KEM-768+X25519";
    case 36: return "ML-KEM-1024+X448";
    default: return "unknown";
  }
}

// The version of the key a fingerprint names, by its length: 40 hex digits v4, 64 v6.
const char* version_of(std::string_view fingerprint) {
  return fingerprint.size() == 64 ? "6" : "4";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string rfc3339(std::int64_t t) { return utc_time(t, "%Y-%m-%dT%H:%M:%SZ"); }

std::string format_json_index(std::span<const IndexEntry> entries, std::int64_t now) {
  // Times only when known and of a four-digit year (an upstream's listing may say anything).
  const auto put_time = [](json::object& o, const char* name, std::int64_t t) {
    if (std::string text = rfc3339(t); !text.empty()) o[name] = text;
  };
  // What a key and a subkey share: version, fingerprint, algorithm, times and state.
  const auto describe = [&](std::string_view fpr, std::uint8_t algo, std::uint32_t bits,
                            std::int64_t created, std::int64_t expires, bool revoked) {
    json::object o;
    o["version"] = fpr.size() == 64 ? 6 : 4;
    o["fingerprint"] = lower(fpr);
    if (algo != 0) {
      o["algorithm"] = {{"code", algo}, {"name", algo_long_name(algo)}, {"bitLength", bits}};
    }
    put_time(o, "creation", created);
    put_time(o, "expiration", expires);
    if (algo != 0) {
      o["isRevoked"] = revoked;
      o["isExpired"] = expires != 0 && expires <= now;
    }
    return o;
  };
  json::array out;
  for (const auto& e : entries) {
    if (e.id.size() != 40 && e.id.size() != 64) continue;  // a key ID names no v2 certificate
    json::object key = describe(e.id, e.algo, e.bits, e.created, e.expires, e.revoked);
    // An upstream's listing may not say the algorithm: the key's own fields are always there.
    if (e.algo == 0) {
      key["algorithm"] = {{"code", 0}, {"name", algo_long_name(0)}, {"bitLength", e.bits}};
      key["isRevoked"] = e.revoked;
      key["isExpired"] = e.expires != 0 && e.expires <= now;
    }
    json::array uids;
    for (const IndexUid& u : e.uids) {
      json::object uid{{"uidString", json_text(u.text)}};
      put_time(uid, "creation", u.created);
      uid["isRevoked"] = u.revoked;
      uids.push_back(std::move(uid));
    }
    key["userIDs"] = std::move(uids);
    json::array subkeys;
    for (const IndexSubkey& s : e.subkeys) {
      subkeys.push_back(describe(s.fingerprint, s.algo, s.bits, s.created, s.expires, s.revoked));
    }
    key["subkeys"] = std::move(subkeys);
    out.push_back(std::move(key));
  }
  return json_body(out, true);
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string format_html_index(std::span<const IndexEntry> entries, std::string_view query,
                              bool verbose, std::int64_t now) {
  std::string out =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Search results for '" +
      html_escape(query) + "'</title></head>\n<body><h1>Search results for '" + html_escape(query) +
      "'</h1>\n<pre>\n";
  for (const auto& e : entries) {
    out += "<hr>pub  ";
    out += algo_display(e.algo);
    if (e.bits) out += std::to_string(e.bits);
    out += "/<a href=\"/pks/lookup?op=get&amp;search=0x" + e.id + "\">" + e.id + "</a> " +
           date(e.created);
    if (e.revoked) out += " [revoked]";
    if (e.expires != 0) out += (e.expires <= now ? " [expired: " : " [expires: ") + date(e.expires) + "]";
    out += '\n';
    for (const auto& u : e.uids) {
      out += "uid  " + html_escape(u.text) + (u.revoked ? " [revoked]" : "") + "\n";
    }
    if (verbose) {
      // As the pub line: algorithm and size, fingerprint, created, state (when known).
      for (const auto& s : e.subkeys) {
        out += "sub  ";
        if (s.algo != 0) {
          out += algo_display(s.algo);
          if (s.bits) out += std::to_string(s.bits);
          out += '/';
        }
        out += s.fingerprint;
        if (s.created != 0) out += " " + date(s.created);
        if (s.revoked) out += " [revoked]";
        if (s.expires != 0) {
          out += (s.expires <= now ? " [expired: " : " [expires: ") + date(s.expires) + "]";
        }
        out += '\n';
      }
    }
  }
  if (entries.empty()) out += "No keys found.\n";
  out += "</pre></body></html>\n";
  return out;
}

Result<std::vector<IndexEntry>> parse_mr_index(std::string_view body) {
  std::vector<IndexEntry> out;
  bool first = true;
  bool in_key = false;  // the last pub line was kept: uid lines belong to it
  while (!body.empty()) {
    const auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    const auto f = split(line, ':');
    const std::string type = ascii_lower(f[0]);
    if (type == "info" && first) {
      if (f.size() > 1 && !f[1].empty() && f[1] != "1") {
        return problem(503, GPG_ERR_INV_RESPONSE, "unsupported index version " + std::string(f[1]));
      }
    } else if (type == "pub") {
      if (out.size() == kMaxIndexEntries) break;  // enough: the rest of the listing is not read
      IndexEntry e;
      std::string_view id = f.size() > 1 ? f[1] : std::string_view();
      if (id.starts_with("0x") || id.starts_with("0X")) id.remove_prefix(2);
      if ((id.size() == 40 || id.size() == 16) && all_hex(id)) {
        e.id = upper_ascii(id);
        if (f.size() > 2) e.algo = static_cast<std::uint8_t>(to_int(f[2]));
        if (f.size() > 3) e.bits = static_cast<std::uint32_t>(to_int(f[3]));
        if (f.size() > 4) e.created = to_int(f[4]);
        if (f.size() > 5) e.expires = to_int(f[5]);
        if (f.size() > 6) {
          const std::string flags = ascii_lower(f[6]);
          e.revoked = flags.find('r') != std::string::npos;
          e.disabled = flags.find('d') != std::string::npos;
        }
        out.push_back(std::move(e));
        in_key = true;
      } else {
        in_key = false;  // skipped: a following uid must not attach to the previous key
      }
    } else if (type == "uid" && in_key && out.back().uids.size() < kMaxIndexUids) {
      IndexUid u;
      // Three escaped bytes at most per decoded one: cut before decoding, then exactly.
      const std::string_view raw = f.size() > 1 ? f[1] : std::string_view();
      u.text = percent_decode(raw.substr(0, 3 * kMaxIndexUidBytes), false);
      if (u.text.size() > kMaxIndexUidBytes) u.text.resize(kMaxIndexUidBytes);
      if (f.size() > 2) u.created = to_int(f[2]);
      if (f.size() > 3) u.expires = to_int(f[3]);
      if (f.size() > 4) u.revoked = ascii_lower(f[4]).find('r') != std::string::npos;
      out.back().uids.push_back(std::move(u));
    }
    first = false;
  }
  return out;
}

}  // namespace hkpgw::hkp
