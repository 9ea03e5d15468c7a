// Who applies which config keys on a reload. A component that holds a value past the moment it
// read it (a listener's connection limits, the work pool's queue, the rate limiter) subscribes
// to the keys it uses; a reload publishes the previous and the next config, and each subscriber
// one of whose keys changed is called with both. Keys are names from config/keys.hpp; a
// `pushed` key nobody subscribed to is a wiring bug that `unsubscribed` names (the app refuses
// to start with one).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace hkpgw::config {

class Subscriptions {
 public:
  using Apply = std::function<void(const Config& previous, const Config& next)>;

  // `keys`: declared names ("server.max_body_bytes"), or a table ("limits") for all of its
  // members; none: called on every reload (what depends on files a config names, whose contents
  // may change while the config does not). Throws std::logic_error for a name not declared.
  // Not thread-safe: subscribe before the first publish.
  void subscribe(std::string who, std::vector<std::string> keys, Apply apply);

  // Calls, in subscription order, every subscriber one of whose keys differs between the two,
  // and those of every reload. One that throws does not stop the others: the failures come
  // back, each "who: what".
  std::vector<std::string> publish(const Config& previous, const Config& next) const;

  // The `pushed` keys no subscriber takes, by name.
  std::vector<std::string> unsubscribed() const;

 private:
  struct Subscriber {
    std::string who;
    std::vector<std::size_t> keys;  // indexes into declared_keys()
    bool every_reload;
    Apply apply;
  };
  std::vector<Subscriber> subscribers_;
};

}  // namespace hkpgw::config
