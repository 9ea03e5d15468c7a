// A thread named for top -H, perf and ps -T before it runs. The name is set by the thread that
// starts it, so it is in place when the constructor that started it returns: a probe of the
// process (a test, an operator's ps -T right after start-up) never sees an unnamed worker.
// Here because config is the one library every folder links.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace hkpgw {

// The CPUs a new thread may run on, once network threads are pinned (server.pin_threads): the
// process's whole set, so that a thread a pinned one starts later (a reload's) is not tied to its
// starter's one CPU. Set once, before any thread is pinned; empty without pinning.
inline std::optional<cpu_set_t>& unpinned_cpus() {
  static std::optional<cpu_set_t> all;
  return all;
}

// Linux keeps 15 bytes of a thread's name; longer names are cut.
template <class F>
std::thread named_thread(const std::string& name, F&& body) {
  std::thread t(std::forward<F>(body));
  pthread_setname_np(t.native_handle(), name.substr(0, 15).c_str());
  if (const auto& all = unpinned_cpus()) {
    pthread_setaffinity_np(t.native_handle(), sizeof(cpu_set_t), &*all);
  }
  return t;
}

}  // namespace hkpgw
