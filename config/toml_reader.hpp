// Inside config/: the walker over a parsed TOML tree that config.cpp reads every section with.
// It collects every problem (FILE:LINE: key.path: what) instead of stopping at the first, checks
// types, units and unknown keys. toml11 is expensive to compile (docs/build.md): only config.cpp
// includes this.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <toml.hpp>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/units.hpp"

namespace hkpgw::config::detail {

using Value = toml::value;

// Walks the TOML tree, collecting every problem with its key path and line.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  void problem(const Value& at, const std::string& path, const std::string& what) {
    const auto line = at.location().line();
    problems_.push_back(source_ + ":" + (line > 0 ? std::to_string(line) : std::string("?")) +
                        ": " + path + ": " + what);
  }
  void problem_at_top(const std::string& path, const std::string& what) {
    problems_.push_back(source_ + ": " + path + ": " + what);
  }
  std::vector<std::string>& problems() { return problems_; }

  // Reports keys of `table` not in `known`, in line order.
  void check_keys(const Value& table, const std::string& prefix,
                  const std::vector<std::string_view>& known) {
    std::vector<std::pair<std::uint_least32_t, std::string>> unknown;
    for (const auto& [k, v] : table.as_table()) {
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        unknown.emplace_back(v.location().line(), k);
      }
    }
    std::sort(unknown.begin(), unknown.end());
    for (const auto& [line, k] : unknown) {
      problem(table.as_table().at(k), prefix + k, "unknown key");
    }
  }

  const Value* child(const Value& table, const std::string& key) {
    const auto& t = table.as_table();
    const auto it = t.find(key);
    return it == t.end() ? nullptr : &it->second;
  }

  void string(const Value& table, const std::string& prefix, const std::string& key,
              std::string& out) {
    if (const Value* v = child(table, key)) {
      if (v->is_string()) {
        out = v->as_string().str;
      } else {
        problem(*v, prefix + key, std::string("expected a string, got ") + type_name(*v));
      }
    }
  }

  // A file's path: as written, or "credential:NAME" for the file systemd's LoadCredential=NAME:…
  // placed in $CREDENTIALS_DIRECTORY (a secret only the service can read, which no config or
  // world-readable file has to hold).
  void path(const Value& table, const std::string& prefix, const std::string& key,
            std::string& out) {
    string(table, prefix, key, out);
    static constexpr std::string_view kCredential = "credential:";
    if (!out.starts_with(kCredential)) return;
    const std::string name = out.substr(kCredential.size());
    const Value& at = *child(table, key);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      problem(at, prefix + key, "\"" + out + "\": a credential's NAME is a file name, without '/'");
      return;
    }
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr || *dir == '\0') {
      problem(at, prefix + key,
              "\"" + out +
                  "\" names a systemd credential, but CREDENTIALS_DIRECTORY is not set: "
                  "give the unit LoadCredential=" +
                  name + ":/path/to/the/file");
      return;
    }
    out = std::string(dir) + "/" + name;
  }

  void boolean(const Value& table, const std::string& prefix, const std::string& key, bool& out) {
    if (const Value* v = child(table, key)) {
      if (v->is_boolean()) {
        out = v->as_boolean();
      } else {
        problem(*v, prefix + key, std::string("expected true or false, got ") + type_name(*v));
      }
    }
  }

  template <class Int>
  void integer(const Value& table, const std::string& prefix, const std::string& key, Int& out,
               std::int64_t min, std::int64_t max) {
    if (const Value* v = child(table, key)) {
      if (!v->is_integer()) {
        problem(*v, prefix + key, std::string("expected an integer, got ") + type_name(*v));
      } else if (v->as_integer() < min || v->as_integer() > max) {
        problem(*v, prefix + key,
                "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                    ", got " + std::to_string(v->as_integer()));
      } else {
        out = static_cast<Int>(v->as_integer());
      }
    }
  }

  void duration(const Value& table, const std::string& prefix, const std::string& key,
                Duration& out, Duration min) {
    if (const Value* v = child(table, key)) {
      if (!v->is_string()) {
        problem(*v, prefix + key,
                std::string("expected a duration string such as \"30s\", got ") + type_name(*v));
        return;
      }
      auto d = parse_duration(v->as_string().str);
      if (!d.ok()) {
        problem(*v, prefix + key, d.error());
      } else if (d.value() < min) {
        problem(*v, prefix + key, "must be at least " + std::to_string(min.count()) + "ms");
      } else {
        out = d.value();
      }
    }
  }

  void size(const Value& table, const std::string& prefix, const std::string& key,
            std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
    if (const Value* v = child(table, key)) {
      Parsed<std::uint64_t> s{std::string()};
      if (v->is_integer() && v->as_integer() >= 0) {
        s = Parsed<std::uint64_t>{static_cast<std::uint64_t>(v->as_integer())};
      } else if (v->is_string()) {
        s = parse_size(v->as_string().str);
      } else {
        problem(*v, prefix + key,
                std::string("expected a size such as \"1MiB\" or a byte count, got ") +
                    type_name(*v));
        return;
      }
      if (!s.ok()) {
        problem(*v, prefix + key, s.error());
      } else if (s.value() < min || s.value() > max) {
        problem(*v, prefix + key,
                "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                    " bytes, got " + std::to_string(s.value()));
      } else {
        out = s.value();
      }
    }
  }

  template <class Enum>
  void choice(const Value& table, const std::string& prefix, const std::string& key, Enum& out,
              std::initializer_list<std::pair<std::string_view, Enum>> options) {
    if (const Value* v = child(table, key)) {
      std::string allowed;
      for (const auto& [name, value] : options) {
        allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
        if (v->is_string() && v->as_string().str == name) {
          out = value;
          return;
        }
      }
      problem(*v, prefix + key, "expected one of " + allowed);
    }
  }

  void listen_list(const Value& table, const std::string& prefix, const std::string& key,
                   std::vector<ListenAddress>& out) {
    const Value* v = child(table, key);
    if (!v) {
      return;
    }
    if (!v->is_array()) {
      problem(*v, prefix + key, "expected an array of \"host:port\" strings");
      return;
    }
    out.clear();
    const auto& arr = v->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string path = prefix + key + "[" + std::to_string(i) + "]";
      if (!arr[i].is_string()) {
        problem(arr[i], path, "expected a \"host:port\" string");
        continue;
      }
      auto a = parse_listen(arr[i].as_string().str);
      if (a.ok()) {
        out.push_back(a.value());
      } else {
        problem(arr[i], path, a.error());
      }
    }
  }

  static const char* type_name(const Value& v) {
    switch (v.type()) {
      case toml::value_t::boolean: return "a boolean";
      case toml::value_t::integer: return "an integer";
      case toml::value_t::floating: return "a float";
      case toml::value_t::string: return "a string";
      case toml::value_t::array: return "an array";
      case toml::value_t::table: return "a table";
      default: return "a date/time";
    }
  }

 private:
  std::string source_;
  std::vector<std::string> problems_;
};

}  // namespace hkpgw::config::detail
