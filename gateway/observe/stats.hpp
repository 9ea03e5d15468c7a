// A component's own metrics, declared where the component is (Envoy's stats per filter): it
// asks the Metrics it was given for its families once, when it is built, and counts on them;
// a new component's metrics touch only its own files. observe/ registers them (prometheus-cpp
// stays in metrics.cpp) under the hkp_gateway_ prefix. A family of Metrics::none(), or a
// default-constructed one, counts nothing.
//   CounterFamily limited = metrics.counter("rate_limited_total", "Requests answered 429...",
//                                           {"budget"});
//   limited.add({"searches"});
// Each add() looks its series up under the family's lock: for events, not for every request
// (Metrics::request keeps its series per thread for that).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace hkpgw::gateway {

class CounterFamily {
 public:
  CounterFamily() = default;
  // `labels`: the values of the family's label names, in their order.
  void add(std::initializer_list<std::string_view> labels = {}, double by = 1) const;

 private:
  friend class Metrics;
  void* family_ = nullptr;  // prometheus::Family<prometheus::Counter>
  std::vector<std::string> names_;
};

class GaugeFamily {
 public:
  GaugeFamily() = default;
  void set(double value, std::initializer_list<std::string_view> labels = {}) const;

 private:
  friend class Metrics;
  void* family_ = nullptr;  // prometheus::Family<prometheus::Gauge>
  std::vector<std::string> names_;
};

}  // namespace hkpgw::gateway
