// The gateway against a keyserver nobody here wrote: SKS from Debian (package sks), with its own
// answer formats (HTTP/1.0, its mr index, its 404 pages), put behind a TLS terminator of ours
// because the gateway speaks HTTPS only. The test starts and stops both itself, on loopback.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <thread>

#include "hkp/lookup.hpp"
#include "support/actors.hpp"

using namespace hkpgw::test;
using Catch::Matchers::Contains;

namespace {

// An SKS database server in a directory of its own, on a free loopback port.
class Sks {
 public:
  explicit Sks(const TempDir& dir) : base_(dir / "sks") {
    namespace fs = std::filesystem;
    // Debian's sks puts its files under BASEDIR/var/{lib,log,run}/sks.
    for (const char* d : {"var/lib/sks", "var/log/sks", "var/run/sks", "dump"}) {
      fs::create_directories(base_ + "/" + d);
    }
    write_file(base_ + "/dump/empty.pgp", "");
    const auto built = run({"sks", "build", base_ + "/dump/empty.pgp", "-n", "10", "-cache", "10",
                            "-basedir", base_, "-stdoutlog"});
    if (built.exit_code != 0) {
      throw std::runtime_error("sks build failed (is the sks package installed?): " + built.err +
                               built.out);
    }
    const std::string port = std::to_string(free_loopback_port());
    address_ = "127.0.0.1:" + port;
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"sks", "db", "-basedir", base_, "-stdoutlog", "-hkp_address",
                                 "127.0.0.1", "-hkp_port", port},
        dir / "sks-db");
    for (int i = 0; i < 200 && http_get(address_, "/pks/lookup?op=stats").status == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Sks() { stop(); }
  const std::string& address() const { return address_; }
  int add(const std::string& armored) {
    return http_request(address_, "POST", "/pks/add", "keytext=" + hkpgw::hkp::percent_encode(armored),
                        {"Content-Type: application/x-www-form-urlencoded"})
        .status;
  }
  void stop() {
    if (process_ && process_->running()) {
      process_->signal(SIGTERM);
      process_->wait(std::chrono::seconds(10));
    }
  }

 private:
  std::string base_, address_;
  std::unique_ptr<Process> process_;
};

class TlsRelay {
 public:
  TlsRelay(const TempDir& dir, const std::string& to) {
    const std::string d = data_dir();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{HKPGW_TLS_RELAY, "--cert", d + "/server.pem", "--key",
                                 d + "/server.key", "--to", to},
        dir / "relay");
    const auto line = process_->wait_for("tls=");
    if (!line) throw std::runtime_error("tls relay did not start: " + process_->err());
    port_ = line->substr(line->rfind(':') + 1);
  }
  std::string url() const { return "https://localhost:" + port_; }

 private:
  std::unique_ptr<Process> process_;
  std::string port_;
};

}  // namespace

TEST_CASE("against SKS from Debian behind TLS: fetch, search, gpg, and the cache when it dies",
          "[integration][real]") {
  TempDir dir;
  Sks sks(dir);
  REQUIRE(http_get(sks.address(), "/pks/lookup?op=stats").status == 200);
  for (const char* k : {"alice.asc", "bob.asc", "carol.asc", "erin.asc"}) {
    REQUIRE(sks.add(read_file(data_dir() + "/" + k)) == 200);
  }
  TlsRelay relay(dir, sks.address());
  Gateway gw{GatewayConfig(dir).upstreams({{"sks", relay.url()}})};
  REQUIRE(gw.started());
  const std::string alice = fixture("ALICE_FPR");

  // gpg through the gateway, which asks SKS.
  Gpg gpg;
  const auto recv = gpg({"--recv-keys", alice}, gw.hkp_url());
  CHECK(recv.exit_code == 0);
  CHECK(gpg.fingerprints() == std::vector<std::string>{alice});
  CHECK(gw.process().wait_for("cache=miss upstream=sks"));  // access lines come in batches

  // SKS's machine-readable index, parsed and re-served in ours.
  const HttpResult idx = gw.get("/pks/lookup?op=index&options=mr&search=erin@example.org");
  CHECK(idx.status == 200);
  CHECK_THAT(idx.body, Contains("pub:" + fixture("ERIN_FPR")));
  CHECK_THAT(idx.body, Contains("uid:Erin%20Current%20<erin@example.org>"));
  const auto search = gpg({"--with-colons", "--search-keys", "alice@example.org"}, gw.hkp_url());
  CHECK_THAT(search.out, Contains(alice));

  // A revoked key from SKS: cached, and flagged by our own index of it.
  REQUIRE(gw.get("/pks/lookup?op=get&search=0x" + fixture("CAROL_FPR")).status == 200);
  const HttpResult carol = gw.get("/pks/lookup?op=index&options=mr&search=0x" + fixture("CAROL_FPR"));
  CHECK(carol.header("x-hkp-cache") == "hit");
  CHECK_THAT(carol.body, Contains(":r\n"));

  // By address, as gpg --locate-external-keys asks.
  const HttpResult by_mail = gw.get("/pks/lookup?op=get&options=mr&search=bob%2Bkeys%40example.org");
  CHECK(by_mail.status == 200);
  CHECK_THAT(by_mail.body, Contains("BEGIN PGP PUBLIC KEY BLOCK"));

  // SKS's 404 page is a 404 to us too, and it is remembered.
  const std::string missing = "/pks/lookup?op=get&search=0x" + std::string(40, 'A');
  CHECK(gw.get(missing).status == 404);
  CHECK(gw.get(missing).header("x-hkp-cache") == "negative");

  // SKS goes away: what the gateway fetched is still served; anything else is 503, not 502.
  sks.stop();
  Gpg fresh;
  CHECK(fresh({"--recv-keys", alice}, gw.hkp_url()).exit_code == 0);
  const HttpResult down = gw.get("/pks/lookup?op=get&search=0x" + fixture("DAVE_FPR"));
  CHECK(down.status == 503);
}
