// Where the submission path meets the cluster (gateway/cluster/): every key a client submits is
// "accepted" here, queued in the outbox for each replica the cluster names, and pushed by the
// outbox retrier through this interface, with the forwards' backoff. AddService knows nothing
// of how a replica is reached, and a gateway without a cluster has no Replicas at all.
//
// The outbox stores where an entry goes as text; Destination is its typed form: an upstream by
// name, or a replica by its admin listener ("peer:HOST:PORT" on disk, unchanged since schema 4).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gateway/net/peer_client.hpp"
#include "gateway/upstream/snapshot.hpp"

namespace hkpgw::gateway {

struct Destination {
  enum class Kind { upstream, replica };
  Kind kind = Kind::upstream;
  std::string name;  // an upstream's name, or a replica's "host:port"

  static Destination upstream(std::string name) { return {Kind::upstream, std::move(name)}; }
  static Destination replica(std::string address) { return {Kind::replica, std::move(address)}; }
  // The outbox's stored form, and back.
  std::string outbox_key() const {
    return kind == Kind::replica ? std::string(kReplicaPrefix) + name : name;
  }
  static Destination from_outbox(std::string_view key) {
    if (key.starts_with(kReplicaPrefix)) {
      return replica(std::string(key.substr(kReplicaPrefix.size())));
    }
    return upstream(std::string(key));
  }

 private:
  static constexpr std::string_view kReplicaPrefix = "peer:";
};

class Replicas {
 public:
  virtual ~Replicas() = default;
  // The replicas every accepted key goes to under this config ("host:port" each).
  virtual std::vector<std::string> replicas(const config::Config& cfg) const = 0;
  // Whether `replica` is still one of them (an entry for one that left is dropped).
  virtual bool knows(const config::Config& cfg, std::string_view replica) const = 0;
  // One push of a key's packets; never throws.
  virtual boost::asio::awaitable<PeerPush> push(std::string_view replica, std::string_view packets,
                                                const Snapshot& snap) = 0;
};

}  // namespace hkpgw::gateway
