// Everything a request needs from the configuration, fixed for its whole life: a reload builds a
// new Snapshot and swaps it in; requests in flight keep theirs. Upstreams whose settings did not
// change are carried over into the new snapshot, with their connections and health.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/blocklist.hpp"
#include "config/config.hpp"
#include "gateway/upstream/upstream.hpp"

namespace hkpgw::gateway {

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<std::shared_ptr<Upstream>> upstreams;  // in try order: default first
  cache::Blocklist blocked;  // from cache.blocklist, read with the config (the loader's job)

  // The upstream of that name, or null; its place in the try order (size() when absent).
  std::shared_ptr<Upstream> find(std::string_view name) const;
  std::size_t rank(std::string_view name) const;
};
using SnapshotSource = std::function<std::shared_ptr<const Snapshot>()>;

// Builds the snapshot for `cfg` and the blocklist read with it, reusing upstreams of `previous`
// whose settings match. Reads no file but the CA files (throws std::runtime_error when one
// cannot be loaded).
std::shared_ptr<const Snapshot> build_snapshot(boost::asio::any_io_executor executor,
                                               std::shared_ptr<const config::Config> cfg,
                                               const Snapshot* previous, cache::Blocklist blocked);

}  // namespace hkpgw::gateway
