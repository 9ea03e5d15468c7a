// The route table (gateway/http/routes.hpp): the one place paths are spelled, with the front
// and the budget of each.
#include <catch2/catch.hpp>
#include <set>

#include "gateway/http/routes.hpp"

using namespace hkpgw::gateway;

TEST_CASE("each route names its front, and per-upstream routes take the front under them",
          "[routes][unit]") {
  CHECK(front_of("/") == "web");  // the web pages' front since 0.4
  CHECK(front_of("/search") == "web");
  CHECK(front_of("/key/ABCD") == "web");
  CHECK(front_of("/upload") == "web");
  CHECK(front_of("/pks/lookup") == "hkp");
  CHECK(front_of("/pks/add") == "hkp");
  CHECK(front_of("/vks/v1/by-fingerprint/ABCD") == "vks");
  CHECK(front_of("/vks/v1/upload") == "vks");
  CHECK(front_of("/pks/v2/certs/by-identity/a@b.example") == "v2");
  CHECK(front_of("/pks/v2/certs") == "v2");
  CHECK(front_of("/u/ubuntu/vks/v1/by-keyid/116CE4D8CC373801") == "vks");
  CHECK(front_of("/u/ubuntu/pks/v2/index/x") == "v2");
  CHECK(front_of("/u/ubuntu") == "hkp");
  CHECK(front_of("/no/such/path") == "hkp");
}

TEST_CASE("the table knows each method and path once, and derives 405 and OPTIONS",
          "[routes][unit]") {
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const Route& r : routes()) CHECK(seen.insert({r.method, r.path}).second);
  CHECK(allowed_methods("/pks/lookup") == "GET");
  CHECK(allowed_methods("/pks/add") == "POST");
  CHECK(allowed_methods("/upload") == "GET, POST");
  CHECK(allowed_methods("/pks/v2/certs") == "GET, POST");  // the prefix route and the submission
  CHECK(allowed_methods("/nothing") == "");
  REQUIRE(find_route("HEAD", "/pks/lookup"));
  CHECK(find_route("HEAD", "/pks/lookup")->id == RouteId::lookup);
  CHECK(find_route("POST", "/pks/lookup") == nullptr);
  CHECK(find_route("GET", "/vks/v1/by-email/a%40b")->id == RouteId::vks_lookup);
}
