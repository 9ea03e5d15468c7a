// One upstream keyserver, whatever protocol it speaks. The services ask it for what they need
// ("the keys for this search", "the index for this search", "take this key", "are you alive")
// and each kind turns that into its own requests: HKP over HTTPS (hkp_upstream.hpp), Hagrid's
// VKS (vks_upstream.hpp) and WKD, an address's own domain (wkd_upstream.hpp), each created by
// make_upstream() from its [[upstream]] table.
//
// Every answer is an UpstreamAnswer: the transport's outcome plus, for index searches, the
// entries already parsed, so the services never see a protocol's wire format. An upstream owns
// its HealthState, but never records into it: the fleet does, once per answer.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gateway/net/https_client.hpp"
#include "gateway/upstream/health.hpp"
#include "hkp/index.hpp"
#include "hkp/lookup.hpp"

namespace hkpgw::gateway {

struct UpstreamAnswer : UpstreamResponse {
  // index(): the listing, when the outcome is ok (never empty then: an empty one is not_found).
  std::vector<hkp::IndexEntry> entries;
  // index() of a kind that has keys, not listings (WKD): `body` holds the keys and the caller
  // lists those carrying the search (parsing keys is the work pool's, not the network's).
  bool keys_to_list = false;
};

// What a fan-out asks every candidate.
struct UpstreamQuery {
  enum class What { keys, index, submit };
  What what = What::keys;
  hkp::Search search;   // keys, index
  std::string packets;  // submit: binary public key packets
};

class Upstream {
 public:
  virtual ~Upstream() = default;

  virtual const config::UpstreamConfig& config() const = 0;
  const std::string& name() const { return config().name; }
  // A keyserver (one server that takes submissions, whose health panic mode weighs); false for
  // a kind that asks each address's own domain (WKD).
  virtual bool keyserver() const { return true; }
  // Whether this upstream is asked `query` at all (a WKD upstream: address lookups only).
  virtual bool answers(const UpstreamQuery&) const { return true; }
  // Asked before the keyservers (the fleet moves it to the front of the order).
  virtual bool asked_first(const UpstreamQuery&) const { return false; }
  HealthState& health() { return health_; }
  const HealthState& health() const { return health_; }

  // The keys carrying a key ID, fingerprint or address, as OpenPGP (armored or binary) in body.
  virtual boost::asio::awaitable<UpstreamAnswer> keys(const hkp::Search& search,
                                                      UpstreamLimits limits,
                                                      std::shared_ptr<CancelToken> cancel) = 0;
  // An index listing for any search. By default, for kinds that have keys but no listings
  // (VKS, WKD): keys(), with keys_to_list set so the caller lists them.
  virtual boost::asio::awaitable<UpstreamAnswer> index(const hkp::Search& search,
                                                       UpstreamLimits limits,
                                                       std::shared_ptr<CancelToken> cancel);
  // Submits one key. Never retried behind the caller's back once it may have been sent.
  virtual boost::asio::awaitable<UpstreamAnswer> submit(std::string_view packets,
                                                        UpstreamLimits limits) = 0;
  // VKS's request-verify (a JSON body, the upstream's own token in it) for a token this
  // upstream issued; other kinds answer HTTP 501 without a request.
  virtual boost::asio::awaitable<UpstreamAnswer> request_verify(std::string json,
                                                                UpstreamLimits limits);
  // The HKP v2 draft's prefix log for one UTC day ("YYYY-MM-DD"): the hex fingerprint prefixes
  // of the certificates that changed that day, one per line (the refresher asks those first).
  // Other kinds answer 501 without a request.
  virtual boost::asio::awaitable<UpstreamAnswer> prefix_log(std::string date,
                                                            UpstreamLimits limits);
  // The active health probe: any answer below 500 counts as alive.
  virtual boost::asio::awaitable<UpstreamAnswer> probe(UpstreamLimits limits) = 0;

  // Dispatches a fan-out's query to the method above.
  boost::asio::awaitable<UpstreamAnswer> ask(const UpstreamQuery& query, UpstreamLimits limits,
                                             std::shared_ptr<CancelToken> cancel);

  // A reload keeps an upstream (its connections, its health) when these settings are unchanged.
  virtual bool same_settings(const config::UpstreamConfig& u,
                             const config::UpstreamsConfig& all) const = 0;
  // Transport figures for stats and the admin API.
  virtual std::size_t open_connections() const = 0;
  virtual std::uint64_t resumed_handshakes() const = 0;

 private:
  HealthState health_;
};

// The upstream for one [[upstream]] table. Throws std::runtime_error when a CA file cannot be
// loaded.
std::shared_ptr<Upstream> make_upstream(boost::asio::any_io_executor executor,
                                        const config::UpstreamConfig& u,
                                        const config::UpstreamsConfig& all);

}  // namespace hkpgw::gateway
