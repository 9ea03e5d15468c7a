// The web pages: what people without a command line meet. Search, a page per key with its
// download and how to import it, upload, help and status, and error pages for browsers. Pages
// are Mustache templates (gateway/http/web/, compiled into the binary) rendered with data made
// here; every value from outside (user IDs, searches, Host) is escaped by the template engine,
// its bidirectional and other invisible controls are written out as "[U+202E]" (a user ID
// cannot show an address it does not hold), and user IDs sit in <bdi>, so right-to-left
// names cannot reorder the text around them. The
// lookups and uploads go through the same services as HKP: the OpenPGP work runs on the work
// pool there, never on the network threads that serve cached answers. No inline script or
// style and nothing from elsewhere: a strict Content-Security-Policy holds every page to that.
#include <algorithm>
#include <cctype>
#include <kainjow/mustache.hpp>

#include "gateway/http/formats.hpp"
#include "gateway/http/router.hpp"
#include "gateway/http/stats.hpp"
#include "gateway/http/web_assets.hpp"
#include "gateway/observe/version.hpp"
#include "hkp/armor.hpp"
#include "hkp/index.hpp"
#include "hkp/lookup.hpp"
#include "hkp/submission.hpp"
#include "hkp/text.hpp"
#include "hkp/usage.hpp"

namespace hkpgw::gateway {

namespace asio = boost::asio;
namespace mustache = kainjow::mustache;

namespace {

constexpr std::string_view kHtml = "text/html; charset=utf-8";
// Scripts and styles from this origin only, no inline ones, no frames, forms post here.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
// Results shown on one search page; the listing behind it is bounded already (hkp/index.hpp).
constexpr std::size_t kMaxResults = 50;
constexpr std::size_t kMaxQuery = 256;

// A template rendered with `data`; a template that fails to parse or render is a bug caught by
// the tests, shown as the engine's message rather than half a page.
std::string render(std::string_view name, const mustache::data& data) {
  mustache::mustache tmpl{std::string(web_asset(std::string(name) + ".mustache"))};
  std::string out = tmpl.render(data);
  if (!tmpl.is_valid()) return "template " + std::string(name) + ": " + tmpl.error_message();
  return out;
}

// Text from outside as a person should see it (hkp/text.hpp): the template engine escapes the
// markup characters, this makes the rest harmless.
std::string shown(std::string_view s) { return hkp::displayable(s); }

mustache::data flag(bool b) {
  return b ? mustache::data::type::bool_true : mustache::data::type::bool_false;
}

// A whole page: `content` (already rendered) inside the layout, with the search box holding
// `query`. Served with the security headers every page carries.
HttpResponse page(unsigned status, std::string_view title, std::string content,
                  std::string_view query = {}) {
  mustache::data d;
  d.set("title", shown(title));
  d.set("site", "hkp-gateway");
  d.set("query", shown(query));
  d.set("version", std::string(kVersion));
  d.set("content", std::move(content));
  HttpResponse r;
  r.status = status;
  r.content_type = kHtml;
  r.body = render("layout", d);
  r.set("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.set("Referrer-Policy", "no-referrer");
  r.set("X-Frame-Options", "DENY");
  r.set("Cache-Control", "no-store");  // a key's state changes: a revocation must show at once
  return r;
}

HttpResponse error_page(unsigned status, std::string_view heading, std::string_view message,
                        std::string_view query = {}) {
  mustache::data d;
  d.set("heading", shown(heading));
  d.set("message", shown(message));
  return page(status, heading, render("error", d), query);
}

// "CD48 4131 3846 CBF8 38E3  17BF 5956 9E3B FA05 5881": groups of four, read aloud in pairs,
// a wider gap in the middle (as gpg prints it). v6 fingerprints (64 digits) likewise.
std::string grouped(std::string_view fpr) {
  std::string out;
  for (std::size_t i = 0; i < fpr.size(); i += 4) {
    if (i) out += i == fpr.size() / 2 ? "  " : " ";
    out.append(fpr.substr(i, 4));
  }
  return out;
}

std::string day(std::int64_t t) { return hkp::rfc3339(t).substr(0, 10); }

std::string algorithm(std::uint8_t algo, std::uint32_t bits) {
  std::string out = hkp::algo_display(algo);
  if (bits) out += " " + std::to_string(bits) + "-bit";
  return out;
}

void set_time(mustache::data& d, const std::string& name, std::int64_t t) {
  if (t == 0 || hkp::rfc3339(t).empty()) return;  // unset: the template's ^name shows "never"
  d.set(name, day(t));
  d.set(name + "_iso", hkp::rfc3339(t));
}

// What a key is called: its first user ID that is not revoked, else its first, else its
// fingerprint.
std::string title_of(const hkp::IndexEntry& e) {
  for (const auto& u : e.uids) {
    if (!u.revoked) return shown(u.text);
  }
  return e.uids.empty() ? e.id : shown(e.uids.front().text);
}

bool all_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c));
  });
}

using KeyFlags = std::map<std::string, std::uint8_t>;  // fingerprint → key flags

// The key flags of every key of a lookup's keys (hkp/usage.hpp).
KeyFlags flags_of(const LookupOutcome& keys) {
  KeyFlags out;
  for (const auto& k : keys.keys) out.merge(hkp::key_flags(k.binary()));
  return out;
}

void set_usage(mustache::data& d, const KeyFlags& flags, const std::string& fpr) {
  const auto it = flags.find(fpr);
  if (it == flags.end()) return;
  if (std::string words = hkp::usage_words(it->second); !words.empty()) d.set("usage", words);
}

// One key as the key template shows it. `level`: the heading level of its title (2 in a list
// of results, 1 on its own page); `flags`: what each of its keys is for, when known.
std::string key_summary(const hkp::IndexEntry& e, std::int64_t now, int level, bool link,
                        const KeyFlags& flags) {
  mustache::data d;
  const bool expired = e.expires != 0 && e.expires <= now;
  d.set("fingerprint", e.id);
  d.set("grouped", grouped(e.id));
  d.set("v6", flag(e.id.size() == 64));
  d.set("level", std::to_string(level));
  d.set("sublevel", std::to_string(level + 1));
  d.set("link", flag(link));
  d.set("copy", flag(!link));
  d.set("revoked", flag(e.revoked));
  d.set("expired", flag(expired && !e.revoked));
  d.set("algorithm", algorithm(e.algo, e.bits));
  set_usage(d, flags, e.id);
  set_time(d, "created", e.created);
  set_time(d, "expires", e.expires);
  d.set("title", title_of(e));
  mustache::data uids{mustache::data::type::list};
  for (const auto& u : e.uids) {
    mustache::data uid;
    uid.set("text", shown(u.text));
    uid.set("revoked", flag(u.revoked));
    uids.push_back(uid);
  }
  d.set("has_uids", flag(!e.uids.empty()));
  d.set("uids", uids);
  mustache::data subkeys{mustache::data::type::list};
  for (const auto& s : e.subkeys) {
    mustache::data sub;
    sub.set("fingerprint", s.fingerprint);
    sub.set("algorithm", s.algo ? algorithm(s.algo, s.bits) : std::string());
    set_usage(sub, flags, s.fingerprint);
    set_time(sub, "created", s.created);
    set_time(sub, "expires", s.expires);
    const bool sub_expired = s.expires != 0 && s.expires <= now;
    sub.set("expiry_word", sub_expired ? "expired" : "expires");
    sub.set("revoked", flag(s.revoked));
    sub.set("expired", flag(sub_expired && !s.revoked));
    subkeys.push_back(sub);
  }
  d.set("has_subkeys", flag(!e.subkeys.empty()));
  d.set("subkeys", subkeys);
  return render("key", d);
}

// What a person typed into the search box, as the search a lookup takes: a fingerprint with
// its spaces (as gpg prints it) or a key ID, with or without 0x; else an address or text.
std::optional<hkp::Search> search_of(std::string_view text) {
  std::string compact;
  for (char c : hkp::trim(text)) {
    if (c != ' ' && c != '\t') compact.push_back(c);
  }
  std::string digits = compact;
  if (digits.starts_with("0x") || digits.starts_with("0X")) digits.erase(0, 2);
  const bool key_like = all_hex(digits) && (digits.size() == 8 || digits.size() == 16 ||
                                            digits.size() == 40 || digits.size() == 64);
  auto parsed = hkp::parse_search(
      hkp::percent_encode(key_like ? "0x" + digits : std::string(hkp::trim(text))));
  if (!parsed) return std::nullopt;
  return *parsed;
}

// The value of parameter `name` in a query string, decoded as a form sends it.
std::string query_param(std::string_view query, std::string_view name) {
  for (std::string_view rest = query; !rest.empty();) {
    const auto amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    if (param.size() > name.size() && param.starts_with(name) && param[name.size()] == '=') {
      return hkp::percent_decode(param.substr(name.size() + 1), true);
    }
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return {};
}

// How clients should name this gateway: the Host the browser used, on the scheme it came in on.
std::string server_of(const HttpRequest& req) {
  const std::string host = req.host.empty() ? "this-gateway" : shown(req.host.substr(0, 255));
  return (req.tls ? "hkps://" : "hkp://") + host;
}

HttpResponse outcome_error(const LookupOutcome& o, std::string_view query) {
  switch (o.result) {
    case LookupOutcome::Result::not_found:
      return error_page(404, "No key found", "No key matches \"" + std::string(query) + "\".",
                        query);
    case LookupOutcome::Result::refused:
      return error_page(o.problem.status, "Not a search this gateway can answer",
                        o.problem.message(), query);
    default:
      return error_page(o.problem.status ? o.problem.status : 503, "Lookups fail right now",
                        o.problem.message(), query);
  }
}

}  // namespace

asio::awaitable<HttpResponse> Router::serve_home(const HttpRequest&,
                                                 std::shared_ptr<const Snapshot>) {
  co_return page(200, "Find an OpenPGP key", render("home", mustache::data()));
}

asio::awaitable<HttpResponse> Router::serve_web_search(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot> snap) {
  req.access.op = "web_search";
  const std::string q = shown(hkp::trim(query_param(req.query(), "q")));
  if (q.empty())
    co_return error_page(400, "Nothing to search for",
                         "Type an email address, a fingerprint or a key ID.");
  if (q.size() > kMaxQuery) {
    co_return error_page(400, "Search too long",
                         "A search is at most " + std::to_string(kMaxQuery) + " bytes.");
  }
  const auto search = search_of(q);
  if (!search) {
    co_return error_page(400, "Not a search this gateway can answer",
                         "Type an email address, a fingerprint or a key ID.", q);
  }
  // The keys first (fetched, verified and cached as op=get does), then the listing: it shows
  // the verified copies of what it lists, subkeys included, not an upstream's summary.
  hkp::LookupRequest lookup;
  lookup.op = hkp::Op::get;
  lookup.search = *search;
  const LookupOutcome keys = co_await lookups_.lookup(lookup, false, snap, {});
  if (keys.result == LookupOutcome::Result::refused ||
      keys.result == LookupOutcome::Result::unavailable) {
    co_return outcome_error(keys, q);
  }
  const KeyFlags flags = flags_of(keys);
  lookup.op = hkp::Op::index;
  LookupOutcome o = co_await lookups_.lookup(lookup, false, snap, {});
  if (o.result != LookupOutcome::Result::listing) co_return outcome_error(o, q);
  // A whole fingerprint that names one key: its page.
  if (search->kind == hkp::SearchKind::fingerprint && o.entries.size() == 1) {
    HttpResponse r;
    r.status = 303;
    r.set("Location", "/key/" + o.entries.front().id);
    co_return r;
  }
  std::string results;
  std::size_t shown_count = 0;
  for (const auto& e : o.entries) {
    if (shown_count == kMaxResults) break;
    results += key_summary(e, o.now, 2, true, flags);
    ++shown_count;
  }
  mustache::data d;
  d.set("query", q);
  d.set("count", std::to_string(o.entries.size()));
  d.set("count_word", o.entries.size() == 1 ? "key" : "keys");
  d.set("truncated", flag(o.entries.size() > shown_count));
  d.set("shown", std::to_string(shown_count));
  d.set("results", std::move(results));
  co_return page(200, "Keys for " + q, render("search", d), q);
}

asio::awaitable<HttpResponse> Router::serve_web_key(const HttpRequest& req,
                                                    std::shared_ptr<const Snapshot> snap) {
  req.access.op = "web_key";
  std::string_view rest = req.path().substr(std::string_view("/key/").size());
  const bool download = rest.ends_with(".asc");
  if (download) rest.remove_suffix(4);
  if (!all_hex(rest) || (rest.size() != 40 && rest.size() != 64)) {
    co_return error_page(404, "No such key page",
                         "A key page is /key/ and a whole fingerprint (40 or 64 hex digits).");
  }
  std::string fpr(rest);
  for (char& c : fpr) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // The key itself (cached, or fetched and verified as op=get does): the download, and what
  // its keys are for; then its listing entry.
  hkp::LookupRequest lookup;
  lookup.op = hkp::Op::get;
  lookup.search = hkp::Search{hkp::SearchKind::fingerprint, fpr};
  const LookupOutcome keys = co_await lookups_.lookup(lookup, false, snap, {});
  if (!keys.found()) co_return outcome_error(keys, fpr);
  if (download) {
    std::string binary;
    for (const auto& k : keys.keys) binary += k.binary();
    HttpResponse r;
    r.content_type = "application/pgp-keys";
    r.body = hkp::armor_public_keys(binary);
    r.set("Content-Disposition", "attachment; filename=\"" + fpr + ".asc\"");
    r.set("Cache-Control", "no-store");
    co_return r;
  }
  lookup.op = hkp::Op::index;
  LookupOutcome o = co_await lookups_.lookup(lookup, false, snap, {});
  if (!o.found()) co_return outcome_error(o, fpr);
  const auto it = std::find_if(o.entries.begin(), o.entries.end(),
                               [&](const hkp::IndexEntry& e) { return e.id == fpr; });
  if (it == o.entries.end()) co_return outcome_error(LookupOutcome{}, fpr);
  mustache::data d;
  d.set("summary", key_summary(*it, o.now, 1, false, flags_of(keys)));
  d.set("fingerprint", fpr);
  d.set("fingerprint_short", fpr.substr(fpr.size() - 16));
  d.set("server", server_of(req));
  d.set("plain", flag(!req.tls));
  co_return page(200, title_of(*it), render("keypage", d));
}

asio::awaitable<HttpResponse> Router::serve_web_upload_form(const HttpRequest&,
                                                            std::shared_ptr<const Snapshot>) {
  co_return page(200, "Upload a public key", render("upload", mustache::data()));
}

asio::awaitable<HttpResponse> Router::serve_web_upload(const HttpRequest& req,
                                                       std::shared_ptr<const Snapshot> snap) {
  req.access.op = "web_upload";
  mustache::data d;
  auto refused = [&](const std::string& why) {
    d.set("ok", flag(false));
    d.set("summary", "The gateway did not take it.");
    d.set("result", shown(why));
    return page(422, "Not uploaded", render("uploaded", d));
  };
  auto sub = hkp::parse_submission(req.content_type, req.body, {});
  if (!sub) {
    HttpResponse r = refused(sub.error().message());
    r.status = sub.error().status;
    co_return r;
  }
  const bool kept_here_only = snap->config->upstreams.forward_adds == config::ForwardAdds::none;
  const hkp::Submission& submission = *sub;
  AddService::Submitted done = co_await adds_.submit(submission, req, std::move(snap));
  if (auto* refusal = std::get_if<Refusal>(&done)) {
    HttpResponse r = refused(refusal->problem.message());
    r.status = refusal->problem.status;
    co_return r;
  }
  const auto& keys = std::get<std::vector<AddService::AddedKey>>(done);
  mustache::data list{mustache::data::type::list};
  for (const auto& k : keys) {
    mustache::data key;
    key.set("fingerprint", k.fingerprint);
    list.push_back(key);
  }
  d.set("ok", flag(true));
  d.set("summary", keys.size() == 1 ? "The gateway took 1 key."
                                    : "The gateway took " + std::to_string(keys.size()) + " keys.");
  d.set("result", add_text(keys, kept_here_only));
  d.set("keys", list);
  co_return page(200, "Uploaded", render("uploaded", d));
}

asio::awaitable<HttpResponse> Router::serve_web_help(const HttpRequest& req,
                                                     std::shared_ptr<const Snapshot> snap) {
  const Readiness ready = readiness(store_, *snap);
  mustache::data d;
  d.set("ready", flag(ready.ready));
  d.set("not_ready_reason", ready.ready ? std::string() : ready.why);
  d.set("keys", std::to_string(store_.stats().keys));
  std::size_t healthy = 0;
  mustache::data upstreams{mustache::data::type::list};
  for (const auto& u : snap->upstreams) {
    const bool up = u->health().healthy();
    healthy += up;
    mustache::data row;
    row.set("name", shown(u->name()));
    row.set("url", shown(u->config().url));
    row.set("default", flag(u->name() == snap->config->upstreams.default_name));
    row.set("state", up ? "answering" : "not answering");
    row.set("route", std::string(kRoutePrefix) + hkp::percent_encode(u->name()));
    upstreams.push_back(row);
  }
  d.set("healthy", std::to_string(healthy));
  d.set("upstreams", std::to_string(snap->upstreams.size()));
  d.set("healthy_none", flag(healthy == 0));
  d.set("show_upstreams", flag(snap->config->web.show_upstreams));
  d.set("upstream_list", upstreams);
  d.set("server", server_of(req));
  d.set("plain", flag(!req.tls));
  co_return page(200, "Help", render("help", d));
}

asio::awaitable<HttpResponse> Router::serve_web_robots(const HttpRequest&,
                                                       std::shared_ptr<const Snapshot>) {
  HttpResponse r;
  r.body = std::string(web_asset("robots.txt"));
  co_return r;
}

asio::awaitable<HttpResponse> Router::serve_web_asset(const HttpRequest& req,
                                                      std::shared_ptr<const Snapshot>) {
  const std::string_view name = req.path().substr(std::string_view("/assets/").size());
  HttpResponse r;
  if (name == "site.css") {
    r.content_type = "text/css; charset=utf-8";
  } else if (name == "site.js") {
    r.content_type = "text/javascript; charset=utf-8";
  } else if (name == "icon.svg") {
    r.content_type = "image/svg+xml";
  } else {
    co_return text_response(404, "Not found: no such asset");
  }
  r.body = std::string(web_asset(name));
  r.set("Cache-Control", "public, max-age=3600");
  co_return r;
}

void html_error_for_browsers(const HttpRequest& request, HttpResponse& r) {
  if (r.status < 400 || !request.accepts_html || !r.content_type.starts_with("text/plain")) return;
  const unsigned status = r.status;
  std::string message = r.body;
  while (!message.empty() && message.back() == '\n') message.pop_back();
  std::vector<std::pair<std::string_view, std::string>> kept;
  for (auto& h : r.headers) {
    if (h.first == "Retry-After" || h.first == "Allow" || h.first == "WWW-Authenticate") {
      kept.push_back(std::move(h));
    }
  }
  const char* heading = status == 404   ? "Not found"
                        : status == 429 ? "Too many requests"
                        : status >= 500 ? "The gateway cannot answer right now"
                                        : "The request was refused";
  r = error_page(status, heading, message);
  for (auto& h : kept) r.headers.push_back(std::move(h));
}

}  // namespace hkpgw::gateway
