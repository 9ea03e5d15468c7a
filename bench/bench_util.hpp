// What every benchmark prints with: percentiles of a sample and elapsed milliseconds.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace hkpgw::bench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Stats {
  std::vector<double> v;
  double pct(double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * v.size()))];
  }
};

}  // namespace hkpgw::bench
