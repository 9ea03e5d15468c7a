// An Upstream for in-process tests of the services: it answers from keys held in memory, or
// fails the way a real one does (not found, connection refused, timeout), and counts what it
// was asked. No network: the transport's own tests drive real HTTPS (tests/integration).
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "gateway/upstream/upstream.hpp"

namespace hkpgw::test {

class FakeUpstream final : public gateway::Upstream {
 public:
  enum class Mode { serve, fail, time_out };

  explicit FakeUpstream(std::string name) {
    config_.name = std::move(name);
    config_.url = "https://" + config_.name + ".invalid";
    health().set_thresholds({3, 2});
  }

  // Serves `armored` for searches its fingerprint (40 hex digits, upper case) ends with.
  void hold(const std::string& fingerprint, std::string armored) {
    held_[fingerprint] = std::move(armored);
  }
  void set_mode(Mode m) { mode_ = m; }
  int asked() const { return asked_.load(); }

  const config::UpstreamConfig& config() const override { return config_; }

  boost::asio::awaitable<gateway::UpstreamAnswer> keys(
      const hkp::Search& search, gateway::UpstreamLimits,
      std::shared_ptr<gateway::CancelToken>) override {
    ++asked_;
    gateway::UpstreamAnswer a;
    a.sent = true;
    if (mode_ == Mode::fail) {
      a.outcome = gateway::Outcome::connect_error;
      a.detail = config_.name + ": connection refused";
      co_return a;
    }
    if (mode_ == Mode::time_out) {
      a.outcome = gateway::Outcome::timeout;
      a.detail = config_.name + ": no answer in time";
      co_return a;
    }
    for (const auto& [fpr, armored] : held_) {
      if (!search.value.empty() && fpr.ends_with(search.value)) {
        a.outcome = gateway::Outcome::ok;
        a.status = 200;
        a.body = armored;
        co_return a;
      }
    }
    a.outcome = gateway::Outcome::not_found;
    a.status = 404;
    co_return a;
  }
  boost::asio::awaitable<gateway::UpstreamAnswer> submit(std::string_view,
                                                         gateway::UpstreamLimits) override {
    gateway::UpstreamAnswer a;
    a.outcome = gateway::Outcome::http_error;
    a.status = 501;
    co_return a;
  }
  boost::asio::awaitable<gateway::UpstreamAnswer> probe(gateway::UpstreamLimits) override {
    gateway::UpstreamAnswer a;
    a.outcome = mode_ == Mode::serve ? gateway::Outcome::ok : gateway::Outcome::connect_error;
    a.status = mode_ == Mode::serve ? 200 : 0;
    co_return a;
  }
  bool same_settings(const config::UpstreamConfig&, const config::UpstreamsConfig&) const override {
    return false;
  }
  std::size_t open_connections() const override { return 0; }
  std::uint64_t resumed_handshakes() const override { return 0; }

 private:
  config::UpstreamConfig config_;
  std::map<std::string, std::string> held_;
  Mode mode_ = Mode::serve;
  std::atomic<int> asked_{0};
};

}  // namespace hkpgw::test
