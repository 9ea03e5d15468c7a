// Every member of Config, declared once (keys.cpp): the table it belongs to, the file keys it is
// read from, and what a reload does with it. The reader takes each table's known keys from here,
// restart_only_changes and changed_keys compare by it, Subscriptions checks subscribers against
// it, and a unit test fails when a Config member is declared nowhere or the docs disagree.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace hkpgw::config {

enum class Reload {
  // Read from the snapshot a request or a loop pinned: the next request sees the new value.
  snapshot,
  // Held by a component that applies it when told (Subscriptions): a connection limit, the work
  // pool's queue, the rate limiter. Each such key needs a subscriber, or the start fails.
  pushed,
  // Read once at start (a listener's address, a thread count): a reload that changes it says so
  // in `restart_required_for`, and the old value stays in effect.
  restart,
};

struct KeyDecl {
  std::string_view table;  // "server", ..., "upstream" for each [[upstream]]; "" for Config itself
  std::string_view field;  // the member
  // The file keys it is read from, space-separated ("key_lookups key_lookups_burst"); "" for a
  // member the loader derives (a file's contents, the source's name).
  std::string_view file_keys;
  Reload reload;
  bool (*differs)(const Config& a, const Config& b);

  std::string name() const;  // "server.max_body_bytes", "upstream.url", "source"
};

// In Config's member order, each table's members in declaration order.
std::span<const KeyDecl> declared_keys();

// The file keys of one table ("server"; "" for the top level: the tables themselves), for the
// reader's unknown-key check.
std::vector<std::string_view> file_keys_of(std::string_view table);

// The declared members that differ between a and b, by name, in declaration order.
std::vector<std::string> changed_keys(const Config& a, const Config& b);

}  // namespace hkpgw::config
