#include "gateway/http/formats.hpp"

#include <algorithm>
#include <cctype>

#include "hkp/armor.hpp"
#include "hkp/index.hpp"
#include "hkp/v2.hpp"

namespace hkpgw::gateway {

namespace {

// The keys' binary packets, one after the other.
std::string concatenated(const LookupOutcome& o) {
  std::string all;
  for (const auto& k : o.keys) all += k.binary();
  return all;
}

// Armored keys: one prepared key's armor is the body itself, shared (no copy).
HttpResponse armored(const LookupOutcome& o) {
  HttpResponse r;
  r.content_type = "application/pgp-keys";
  if (o.keys.size() == 1 && o.keys.front().prepared) {
    auto p = o.keys.front().prepared;
    const std::string* armor = &p->armor;
    r.shared_body = std::shared_ptr<const std::string>(std::move(p), armor);
  } else {
    r.body = hkp::armor_public_keys(concatenated(o));
  }
  return r;
}

HttpResponse mr_or_html_listing(const hkp::LookupRequest& req, const LookupOutcome& o) {
  HttpResponse r;
  if (req.machine_readable) {
    r.body = hkp::format_mr_index(o.entries, o.now);
  } else {
    r.content_type = "text/html; charset=utf-8";
    r.body = hkp::format_html_index(o.entries, req.search.value, req.op == hkp::Op::vindex, o.now);
  }
  return r;
}

// gpg 2.2 fails a whole import ("Invalid keyring", nothing imported) when an answer carries one
// v6 certificate, even after a good v4 key, so HKP answers (what gpg, dirmngr and GpgFrontend's
// HKP path read) carry v4 keys only; VKS and v2 serve v6 keys. A lookup that found only v6 keys
// says where they are.
bool is_v6(std::string_view fingerprint_hex) { return fingerprint_hex.size() == 64; }

HttpResponse only_v6(const std::string& fingerprint) {
  return text_response(404, "No keys found for gpg: " + fingerprint +
                                " is a v6 key (RFC 9580), which GnuPG 2.2 cannot import; it is "
                                "served at /vks/v1/by-fingerprint/" +
                                fingerprint + " and /pks/v2/certs/by-vfingerprint/06" +
                                fingerprint);
}

class HkpFormat final : public LookupFormat {
 public:
  HttpResponse keys(const hkp::LookupRequest&, const LookupOutcome& o) const override {
    const auto v6 = [](const AnsweredKey& k) {
      return k.id.bytes().size() == cache::Fingerprint::kMaxBytes;  // no allocation: the hot path
    };
    if (std::none_of(o.keys.begin(), o.keys.end(), v6)) return armored(o);
    LookupOutcome v4 = o;
    std::erase_if(v4.keys, v6);
    if (v4.keys.empty()) return only_v6(o.keys.front().id.hex());
    return armored(v4);
  }
  HttpResponse listing(const hkp::LookupRequest& req, const LookupOutcome& o) const override {
    const auto v6 = [](const hkp::IndexEntry& e) { return is_v6(e.id); };
    if (std::none_of(o.entries.begin(), o.entries.end(), v6)) return mr_or_html_listing(req, o);
    LookupOutcome v4 = o;
    std::erase_if(v4.entries, v6);
    if (v4.entries.empty()) return only_v6(o.entries.front().id);
    return mr_or_html_listing(req, v4);
  }
};

class VksFormat final : public LookupFormat {
 public:
  HttpResponse keys(const hkp::LookupRequest&, const LookupOutcome& o) const override {
    HttpResponse r = armored(o);
    // Named after the (first) key answered, as Hagrid names its files.
    r.set("Content-Disposition", "attachment; filename=\"" + o.keys.front().id.hex() + ".asc\"");
    return r;
  }
  HttpResponse listing(const hkp::LookupRequest& req, const LookupOutcome& o) const override {
    return mr_or_html_listing(req, o);  // VKS has none; never asked for one
  }
};

class V2Format final : public LookupFormat {
 public:
  HttpResponse keys(const hkp::LookupRequest&, const LookupOutcome& o) const override {
    HttpResponse r;
    r.content_type = hkp::kV2KeysType;
    if (o.keys.size() == 1 && o.keys.front().prepared) {
      auto p = o.keys.front().prepared;
      const std::string* packets = &p->packets;
      r.shared_body = std::shared_ptr<const std::string>(std::move(p), packets);
    } else {
      r.body = concatenated(o);
    }
    return r;
  }
  HttpResponse listing(const hkp::LookupRequest&, const LookupOutcome& o) const override {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = hkp::format_json_index(o.entries, o.now);
    return r;
  }
};

}  // namespace

HttpResponse LookupFormat::problem(const hkp::LookupRequest&, const LookupOutcome& o) const {
  return text_response(o.problem.status, o.problem.message());
}

const LookupFormat& hkp_format() {
  static const HkpFormat format;
  return format;
}

const LookupFormat& vks_format() {
  static const VksFormat format;
  return format;
}

const LookupFormat& v2_format() {
  static const V2Format format;
  return format;
}

HttpResponse render(const LookupFormat& format, const hkp::LookupRequest& request, LookupOutcome o,
                    const HttpRequest& http) {
  using Result = LookupOutcome::Result;
  HttpResponse r = o.result == Result::keys      ? format.keys(request, o)
                   : o.result == Result::listing ? format.listing(request, o)
                                                 : format.problem(request, o);
  if (o.retry_after.count() > 0) r.set("Retry-After", std::to_string(o.retry_after.count()));
  if (o.result != Result::refused) {
    r.set("X-HKP-Cache", std::string(cache_result_name(o.cache)));
    if (o.age >= 0) r.set("Age", std::to_string(o.age));
  }
  r.reuse = std::move(o.reuse);
  AccessRecord& a = http.access;
  a.op = hkp::op_name(request.op);
  a.kind = hkp::kind_name(request.search.kind);
  a.cache = o.cache;
  a.upstream = std::move(o.upstream);
  return r;
}

void allow_any_origin(HttpResponse& r) {
  auto same = [](std::string_view a, std::string_view b) {  // header names: ASCII, any case
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& h : r.headers) {
    if (same(h.first, "Access-Control-Allow-Origin")) return;
  }
  r.set("Access-Control-Allow-Origin", "*");
}

HttpResponse refusal_text(const Refusal& refused) {
  HttpResponse r = text_response(refused.problem.status, refused.problem.message());
  if (refused.retry_after.count() > 0) {
    r.set("Retry-After", std::to_string(refused.retry_after.count()));
  }
  return r;
}

}  // namespace hkpgw::gateway
