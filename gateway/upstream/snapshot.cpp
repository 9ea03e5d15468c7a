#include "gateway/upstream/snapshot.hpp"

#include <stdexcept>

namespace hkpgw::gateway {

std::shared_ptr<Upstream> Snapshot::find(std::string_view name) const {
  for (const auto& u : upstreams) {
    if (u->name() == name) return u;
  }
  return nullptr;
}

std::size_t Snapshot::rank(std::string_view name) const {
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    if (upstreams[i]->name() == name) return i;
  }
  return upstreams.size();
}

std::shared_ptr<const Snapshot> build_snapshot(boost::asio::any_io_executor executor,
                                               std::shared_ptr<const config::Config> cfg,
                                               const Snapshot* previous, cache::Blocklist blocked) {
  auto snap = std::make_shared<Snapshot>();
  snap->config = cfg;
  snap->blocked = std::move(blocked);
  const auto& ups = cfg->upstreams;
  for (const std::size_t i : ups.try_order()) {
    const auto& u = ups.list[i];
    std::shared_ptr<Upstream> reuse;
    if (previous) {
      for (const auto& c : previous->upstreams) {
        if (c->same_settings(u, ups)) reuse = c;
      }
    }
    auto up = reuse ? reuse : make_upstream(executor, u, ups);
    up->health().set_thresholds({ups.unhealthy_threshold, ups.healthy_threshold});
    snap->upstreams.push_back(std::move(up));
  }
  return snap;
}

}  // namespace hkpgw::gateway
