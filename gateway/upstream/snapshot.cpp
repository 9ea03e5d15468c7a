#include "gateway/upstream/snapshot.hpp"

#include <fstream>
#include <stdexcept>

#include "hkp/text.hpp"

namespace hkpgw::gateway {

namespace {

// The admin bearer token: the file's first line without surrounding whitespace.
std::string read_token(const std::string& file) {
  if (file.empty()) return {};
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  std::string token(hkp::trim(line));
  if (token.size() < 16) {
    throw std::runtime_error("admin.token_file \"" + file +
                             "\" holds no token of at least 16 characters");
  }
  return token;
}

}  // namespace

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
                                               const Snapshot* previous,
                                               std::optional<cache::Blocklist> blocked) {
  auto snap = std::make_shared<Snapshot>();
  snap->config = cfg;
  snap->admin_token = read_token(cfg->admin.token_file);
  snap->blocked = blocked ? std::move(*blocked) : cache::Blocklist::load(cfg->cache.blocklist);
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
