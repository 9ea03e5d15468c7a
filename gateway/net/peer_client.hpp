// Talking to another replica of the cluster ([cluster] peers, docs/contract.md): one POST to the
// peer's admin listener over plain HTTP, one connection each (a key pushed to /cluster/keys, a
// second's spent budgets to /cluster/spends: rare or small; no pool to keep).
//
// Plain HTTP is enough for what is sent. Keys are public keys, which the peer verifies as it
// verifies any submission (self-signatures, cleaning, the blocklist). Someone on the path could
// drop a push (the peer's copy then waits for its next refresh) or read a report's client
// addresses (the operator's network, like its access logs). What a push or a report may do (skip
// the submission budget, charge a client's) is for peers only: the peer takes a request only
// from cluster.trusted networks and only with an HMAC keyed with the cluster's secret, signed
// within a minute and never taken before (gateway/net/cluster_auth.hpp), so nothing on the path
// can forge, alter or replay one.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "config/units.hpp"
#include "gateway/net/https_client.hpp"  // UpstreamLimits

namespace hkpgw::gateway {

struct PeerPush {
  unsigned status = 0;  // the peer's answer; 0 when there was none
  std::string detail;   // one line for the log: what failed, or the peer's first line
  bool delivered() const { return status == 200; }
  // Not worth retrying; a 401 is (a secret being rolled out to every replica, a clock set right).
  bool refused() const { return status >= 400 && status < 500 && status != 401; }
};

// One POST to a peer's admin listener.
struct PeerPost {
  std::string_view target;        // "/cluster/keys", "/cluster/spends"
  std::string_view content_type;
  std::string_view body;
  std::string_view secret;        // cluster.secret: the request's HMAC key (cluster_auth.hpp)
};

// Runs on the caller's executor. Never throws; every failure is in the result.
boost::asio::awaitable<PeerPush> post_to_peer(const config::ListenAddress& peer, PeerPost post,
                                              UpstreamLimits limits);

// A key's binary packets to POST /cluster/keys.
boost::asio::awaitable<PeerPush> push_to_peer(const config::ListenAddress& peer,
                                              std::string_view packets, std::string_view secret,
                                              UpstreamLimits limits);

}  // namespace hkpgw::gateway
