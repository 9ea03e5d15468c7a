#include "config/subscriptions.hpp"

#include <algorithm>
#include <stdexcept>

#include "config/keys.hpp"

namespace hkpgw::config {

void Subscriptions::subscribe(std::string who, std::vector<std::string> keys, Apply apply) {
  const auto declared = declared_keys();
  Subscriber s{std::move(who), {}, keys.empty(), std::move(apply)};
  for (const std::string& k : keys) {
    bool found = false;
    for (std::size_t i = 0; i < declared.size(); ++i) {
      if (declared[i].name() == k || declared[i].table == k) {
        s.keys.push_back(i);
        found = true;
      }
    }
    if (!found) {
      throw std::logic_error(s.who + " subscribes to \"" + k + "\", which config/keys.cpp does "
                             "not declare");
    }
  }
  subscribers_.push_back(std::move(s));
}

std::vector<std::string> Subscriptions::publish(const Config& previous, const Config& next) const {
  const auto declared = declared_keys();
  std::vector<std::string> failed;
  for (const Subscriber& s : subscribers_) {
    const bool changed =
        s.every_reload || std::any_of(s.keys.begin(), s.keys.end(), [&](std::size_t i) {
          return declared[i].differs(previous, next);
        });
    if (!changed) continue;
    try {
      s.apply(previous, next);
    } catch (const std::exception& e) {
      failed.push_back(s.who + ": " + e.what());
    }
  }
  return failed;
}

std::vector<std::string> Subscriptions::unsubscribed() const {
  const auto declared = declared_keys();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < declared.size(); ++i) {
    if (declared[i].reload != Reload::pushed) continue;
    const bool taken = std::any_of(subscribers_.begin(), subscribers_.end(), [&](const auto& s) {
      return std::find(s.keys.begin(), s.keys.end(), i) != s.keys.end();
    });
    if (!taken) out.push_back(declared[i].name());
  }
  return out;
}

}  // namespace hkpgw::config
