// The gateway's own log lines, read back by the readers operators use: the reference logfmt
// decoder (Go's github.com/go-logfmt/logfmt) and a JSON parser; access lines' fields; the least
// level; privacy by default.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <sstream>

#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

const std::string kToken = "test-token-0123456789abcdef";

// A User-Agent an attacker chose: quotes, a backslash, '=', a tab, UTF-8 to keep, a right-to-left
// override and a C1 CSI (valid UTF-8, written escaped) and a byte that is not UTF-8 (obs-text,
// which HTTP allows in a field value).
const std::string kHostileAgent =
    "evil/1.0 \"q\" \\ a=b\tcaf\xc3\xa9 \xe2\x80\xae rlo \xc2\x9b csi \xff end";
// What a reader gets back: the same, with U+FFFD for the byte that was not UTF-8.
const std::string kHostileAgentRead =
    "evil/1.0 \"q\" \\ a=b\tcaf\xc3\xa9 \xe2\x80\xae rlo \xc2\x9b csi \xef\xbf\xbd end";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The access line holding `needle`, or "".
std::string access_line_with(const std::string& log, const std::string& needle) {
  for (const auto& line : lines_of(log)) {
    if (line.find("event=request") != std::string::npos && line.find(needle) != std::string::npos) {
      return line;
    }
  }
  return "";
}

HttpResult admin_reload(const Gateway& gw) {
  return http_request(gw.admin(), "POST", "/admin/reload", "", {"Authorization: Bearer " + kToken});
}

// The config file again, with `lines` first in [server].
void rewrite_server(const Gateway& gw, const std::string& lines) {
  std::string toml = read_file(gw.config_path());
  toml.replace(toml.find("[server]\n"), 9, "[server]\n" + lines);
  write_file(gw.config_path(), toml);
}

}  // namespace

TEST_CASE("access lines name the listener and carry bytes, a request ID and the user agent",
          "[integration][logs]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  const std::string d = data_dir();
  Gateway gw{GatewayConfig(dir).upstreams({{"ks", ks.url()}}).server(hkps_server_lines())};
  REQUIRE(gw.started());
  const std::string hkps = listening(gw, "hkps");
  REQUIRE_FALSE(hkps.empty());
  const std::string port = hkps.substr(hkps.rfind(':') + 1);

  // Plain HKP, as a balancer forwards it: its request ID is kept.
  const HttpResult plain = http_request(gw.address(), "GET", get_target(fixture("ALICE_FPR")), "",
                                        {"User-Agent: GnuPG/2.2.40", "X-Request-ID: lb-0001.abc"});
  REQUIRE(plain.status == 200);
  // HKPS, with curl's own User-Agent set by us.
  const auto tls = run({"curl", "-sf", "-o", "/dev/null", "--cacert", d + "/ca.pem", "--resolve",
                        "gateway.test:" + port + ":127.0.0.1", "-A", "sq/1.0",
                        "https://gateway.test:" + port + get_target(fixture("BOB_FPR"))});
  REQUIRE(tls.exit_code == 0);
  // A request ID that is not well-formed is replaced by one made here; no User-Agent: "-".
  REQUIRE(http_request(gw.address(), "GET", "/pks/lookup?op=stats", "",
                       {"X-Request-ID: has spaces and \"quotes\""})
              .status == 200);

  REQUIRE(gw.process().wait_for("agent=sq/1.0"));  // access lines come in batches
  REQUIRE(gw.process().wait_for("op=stats"));
  const std::string log = gw.log();
  const std::string hkp_line = access_line_with(log, "request_id=lb-0001.abc");
  INFO(log);
  REQUIRE_FALSE(hkp_line.empty());
  CHECK(field(hkp_line, "listener") == "hkp");
  CHECK(field(hkp_line, "bytes") == std::to_string(plain.body.size()));
  CHECK(field(hkp_line, "agent") == "GnuPG/2.2.40");
  // Searches are personal data: redacted unless the operator asks for them.
  CHECK(field(hkp_line, "target") == "/pks/lookup?op=get&options=mr&search=<redacted>");
  const std::string hkps_line = access_line_with(log, "agent=sq/1.0");
  CHECK(field(hkps_line, "listener") == "hkps");
  CHECK(field(hkps_line, "status") == "200");
  const std::string made = field(access_line_with(log, "op=stats"), "request_id");
  CHECK(made.size() == 20);
  CHECK(made.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(field(access_line_with(log, "op=stats"), "agent") == "-");
  CHECK_THAT(log, !Contains("has spaces"));
  // Made IDs differ from request to request.
  CHECK(field(access_line_with(log, "agent=sq/1.0"), "request_id") != made);
}

TEST_CASE("an oversized or repeated User-Agent and X-Request-ID stay bounded in the access line",
          "[integration][logs]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir)};
  REQUIRE(gw.started());
  // 8 KiB of agent, an ID one byte over its 128, then 300 repeats of both (under the 16 KiB
  // header limit): one line, one agent of at most 256 bytes, one ID.
  std::vector<std::string> headers = {"User-Agent: " + std::string(8192, 'A'),
                                      "X-Request-ID: " + std::string(129, 'b')};
  REQUIRE(http_request(gw.address(), "GET", "/pks/lookup?op=stats&n=1", "", headers).status == 200);
  headers.clear();
  for (int i = 0; i < 300; ++i) {
    headers.push_back("User-Agent: ua" + std::to_string(i));
    headers.push_back("X-Request-ID: id" + std::to_string(i));
  }
  REQUIRE(http_request(gw.address(), "GET", "/pks/lookup?op=stats&n=2", "", headers).status == 200);
  REQUIRE(gw.process().wait_for("n=2"));  // access lines come in batches
  const std::string log = gw.log();
  const std::string big = access_line_with(log, "n=1");
  INFO(big.substr(0, 400));
  CHECK(field(big, "agent") == std::string(256, 'A'));
  CHECK(field(big, "request_id").size() == 20);  // 129 bytes is not an ID: one made here
  CHECK(big.size() < 1024);
  const std::string many = access_line_with(log, "n=2");
  INFO(many);
  CHECK(field(many, "agent") == "ua299");  // the last one, alone
  CHECK(field(many, "request_id") == "id299");
  CHECK(occurrences(many, " agent=") == 1);
  CHECK(many.size() < 1024);
}

TEST_CASE("the reference logfmt decoder reads every line back, hostile values included",
          "[integration][logs]") {
  TempDir dir;
  Gateway gw{GatewayConfig(dir).server("log_searches = true\n")};
  REQUIRE(gw.started());
  const HttpResult r = http_request(gw.address(), "GET", "/pks/lookup?op=stats&x=%E2%80%AE", "",
                                    {"User-Agent: " + kHostileAgent});
  REQUIRE(r.status == 200);
  REQUIRE(gw.process().wait_for("op=stats"));  // access lines come in batches

  // Go's decoder, built from tests/logfmt/decode.go against Debian's copy of the library.
  const std::map<std::string, std::string> go_env = {{"GO111MODULE", "off"},
                                                     {"GOPATH", "/usr/share/gocode"},
                                                     {"GOCACHE", dir / "gocache"},
                                                     {"HOME", dir.path()},
                                                     {"GOFLAGS", ""}};
  const auto built = run({"go", "build", "-o", dir / "decode",
                          std::string(HKPGW_SOURCE_DIR) + "/tests/logfmt/decode.go"},
                         go_env, std::chrono::seconds(120));
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  write_file(dir / "gateway.log", gw.log());
  const auto decoded =
      run({"sh", "-c", "'" + dir / "decode" + "' < '" + dir / "gateway.log" + "'"});
  INFO(decoded.err);
  CHECK(decoded.exit_code == 0);  // every line read
  const auto records = lines_of(decoded.out);
  CHECK(records.size() == lines_of(gw.log()).size());  // one record per line, none split
  bool found = false;
  for (const auto& rec : records) {
    const auto pairs = boost::json::parse(rec).as_array();
    std::map<std::string, std::string> kv;
    for (const auto& p : pairs) {
      kv[std::string(p.as_array()[0].as_string())] = std::string(p.as_array()[1].as_string());
    }
    if (kv["event"] != "request" || kv["op"] != "stats") continue;
    found = true;
    CHECK(kv["agent"] == kHostileAgentRead);
    CHECK(kv["target"] == "/pks/lookup?op=stats&x=%E2%80%AE");
    CHECK(kv["listener"] == "hkp");
  }
  CHECK(found);
}

TEST_CASE("a reload to log_format = json makes every line one JSON object", "[integration][logs]") {
  TempDir dir;
  write_file(dir / "token", kToken + "\n");
  Gateway gw{GatewayConfig(dir)
                 .server("log_searches = true\n")
                 .admin("token_file = \"" + dir / "token" + "\"\n")};
  REQUIRE(gw.started());
  const std::size_t before = lines_of(gw.log()).size();
  rewrite_server(gw, "log_format = \"json\"\n");
  REQUIRE(admin_reload(gw).status == 200);
  REQUIRE(http_request(gw.address(), "GET", "/pks/lookup?op=stats", "",
                       {"User-Agent: " + kHostileAgent, "X-Request-ID: trace-42"})
              .status == 200);
  REQUIRE(gw.process().wait_for("\"request_id\":\"trace-42\""));  // access lines come in batches
  const auto lines = lines_of(gw.log());
  REQUIRE(lines.size() > before);
  bool found = false;
  for (std::size_t i = before; i < lines.size(); ++i) {
    INFO(lines[i]);
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(lines[i], ec);
    REQUIRE_FALSE(ec);
    const auto& o = v.as_object();
    CHECK(o.contains("ts"));
    CHECK(o.contains("level"));
    if (o.at("event").as_string() != "request") continue;
    found = true;
    CHECK(std::string(o.at("agent").as_string()) == kHostileAgentRead);
    CHECK(o.at("request_id").as_string() == "trace-42");
    CHECK(o.at("status").as_string() == "200");
    CHECK(o.at("listener").as_string() == "hkp");
  }
  CHECK(found);
}

TEST_CASE("log_level = warn keeps failed answers' access lines and drops the rest",
          "[integration][logs]") {
  TempDir dir;
  TestKeyserver ks(dir, "ks");
  write_file(dir / "token", kToken + "\n");
  Gateway gw{GatewayConfig(dir)
                 .upstreams({{"ks", ks.url()}})
                 .admin("token_file = \"" + dir / "token" + "\"\n")};
  REQUIRE(gw.started());
  rewrite_server(gw, "log_level = \"warn\"\n");
  REQUIRE(admin_reload(gw).status == 200);
  const std::size_t before = gw.log().size();
  ks.set_mode("fail");
  CHECK(gw.get("/pks/lookup?op=stats").status == 200);
  const HttpResult failed = gw.get(get_target(fixture("ALICE_FPR")));
  REQUIRE(failed.status >= 500);
  REQUIRE(gw.process().wait_for(" status=" + std::to_string(failed.status)));
  const std::string after = gw.log().substr(before);
  INFO(after);
  CHECK_THAT(after, Contains("level=warn event=request"));
  CHECK_THAT(after, !Contains("level=info"));
  CHECK_THAT(after, !Contains("op=stats"));
}
