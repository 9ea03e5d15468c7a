// Talking to another replica of the cluster ([cluster] peers, docs/contract.md): one POST to the
// peer's admin listener over plain HTTP, one connection each (a key pushed to /cluster/keys, a
// second's spent budgets to /cluster/spends: rare or small; no pool to keep).
//
// Plain HTTP is enough for what is sent. Keys are public keys, which the peer verifies as it verifies any
// submission (self-signatures, cleaning, the blocklist). Someone on the path could drop a push
// (the peer's copy then waits for its next refresh) or inject a key (no more than uploading it
// to /pks/add does); the peer accepts pushes only from cluster.trusted networks, since a push
// skips the submission budget and is never forwarded. Spent budgets name client addresses and
// counts: someone on the path could read them (the operator's network, like its access logs) or
// charge a client more, which the trust on the receiving side keeps to the trusted networks.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "config/units.hpp"
#include "gateway/net/https_client.hpp"

namespace hkpgw::gateway {

// The outbox names a push to a peer by this prefix and the peer's "host:port".
inline constexpr std::string_view kPeerTarget = "peer:";

struct PeerPush {
  unsigned status = 0;  // the peer's answer; 0 when there was none
  std::string detail;   // one line for the log: what failed, or the peer's first line
  bool delivered() const { return status == 200; }
  bool refused() const { return status >= 400 && status < 500; }  // not worth retrying
};

// One POST to a peer's admin listener.
struct PeerPost {
  std::string_view target;        // "/cluster/keys", "/cluster/spends"
  std::string_view content_type;
  std::string_view body;
};

// Runs on the caller's executor. Never throws; every failure is in the result.
boost::asio::awaitable<PeerPush> post_to_peer(const config::ListenAddress& peer, PeerPost post,
                                              UpstreamLimits limits);

// A key's binary packets to POST /cluster/keys.
boost::asio::awaitable<PeerPush> push_to_peer(const config::ListenAddress& peer,
                                              std::string_view packets, UpstreamLimits limits);

}  // namespace hkpgw::gateway
