#include "gateway/service/reused_answers.hpp"

#include <cstring>
#include <string>
#include <unordered_map>

#include "gateway/service/random_entry.hpp"

namespace hkpgw::gateway {

namespace {

std::atomic<std::uint64_t> next_serial{1};

struct Entry {
  std::shared_ptr<const PreparedAnswer> answer;
  std::size_t slot = 0;
  std::uint32_t slot_generation = 0;
  std::uint64_t epoch = 0;
  std::int64_t reuse_until = 0;
  bool any_change = false;  // ends with any key or query record change
  std::uint64_t global = 0, queries = 0;
};

// One network thread's answers: only that thread reads or writes it.
struct Table {
  std::uint64_t owner = 0;
  std::unordered_map<std::string, Entry> entries;
  // Targets answered once lately (their hashes): an answer is prepared on its second time, so
  // lookups of a million keys each seen once cost no preparing and flush nothing.
  std::array<std::uint32_t, 1 << 14> seen{};
  std::uint64_t victim = 0x9E3779B97F4A7C15ULL;  // a tiny LCG picks what a full table drops
};
thread_local Table table;

// This thread's table, at most `max` entries (a reload may have lowered it).
Table& table_of(std::uint64_t owner, std::size_t max) {
  if (table.owner != owner) {  // another ReusedAnswers (tests): start over
    table.entries.clear();
    table.seen.fill(0);
    table.owner = owner;
  }
  if (max == 0 && !table.entries.empty()) {
    std::unordered_map<std::string, Entry>().swap(table.entries);  // and its memory back
  }
  while (table.entries.size() > max) table.entries.erase(random_entry(table.entries, table.victim));
  return table;
}

}  // namespace

ReusedAnswers::ReusedAnswers(std::function<std::int64_t()> now, std::size_t max_per_thread)
    : now_(std::move(now)), serial_(next_serial++), max_per_thread_(max_per_thread) {}

std::size_t ReusedAnswers::slot_of(const cache::Fingerprint& f) {
  std::uint32_t h;  // a fingerprint is a hash already
  std::memcpy(&h, f.bytes().data(), sizeof h);
  return h % kSlots;
}

std::shared_ptr<const PreparedAnswer> ReusedAnswers::find(const HttpRequest& request) {
  if (request.client_no_cache) return nullptr;  // the handler decides what no-cache means
  Table& t = table_of(serial_, max_per_thread_.load(std::memory_order_relaxed));
  const auto it = t.entries.find(request.target);
  if (it == t.entries.end()) return nullptr;
  const Entry& e = it->second;
  if (e.epoch != epoch_.load(std::memory_order_acquire) ||
      e.slot_generation != slots_[e.slot].load(std::memory_order_acquire) ||
      (e.any_change && (e.global != global_.load(std::memory_order_acquire) ||
                        e.queries != queries_.load(std::memory_order_acquire))) ||
      now_() >= e.reuse_until) {
    t.entries.erase(it);
    return nullptr;
  }
  return e.answer;
}

void ReusedAnswers::keep(const HttpRequest& request, const HttpResponse& response) {
  const auto* ticket = static_cast<const Ticket*>(response.reuse.get());
  const std::size_t max = max_per_thread_.load(std::memory_order_relaxed);
  if (!ticket || max == 0 || request.target.size() > 1024 || response.payload().size() > kMaxBody) {
    return;
  }
  Table& t = table_of(serial_, max);
  const auto h = static_cast<std::uint32_t>(std::hash<std::string_view>{}(request.target)) | 1;
  auto& seen = t.seen[h % t.seen.size()];
  if (seen != h) {
    seen = h;
    return;
  }
  Entry e;
  e.slot = slot_of(ticket->key);
  e.reuse_until = ticket->reuse_until;
  {
    std::lock_guard lock(mutex_);
    if (global_.load() != ticket->generation) return;  // a key changed since the answer's read
    if (ticket->any_change && queries_.load() != ticket->queries_generation) return;
    e.slot_generation = slots_[e.slot].load();
    e.epoch = epoch_.load();
    e.any_change = ticket->any_change;
    e.global = global_.load();
    e.queries = queries_.load();
  }
  auto prepared = std::make_shared<PreparedAnswer>();
  prepared->response = response;
  prepared->response.reuse.reset();
  prepared->access = request.access;
  prepared->access.reused = true;
  auto& headers = prepared->response.headers;
  std::erase_if(headers, [](const auto& h) { return h.first == "Age"; });  // added per request
  prepared->head = reusable_head(prepared->response);
  prepared->fetched_at = ticket->fetched_at;
  e.answer = std::move(prepared);
  if (t.entries.size() >= max) {  // full: one answer out, picked at random
    t.entries.erase(random_entry(t.entries, t.victim));
  }
  t.entries.insert_or_assign(request.target, std::move(e));
}

void ReusedAnswers::forget(const cache::Committed& changed) {
  if (changed.keys.empty() && changed.queries.empty()) return;
  std::lock_guard lock(mutex_);
  if (!changed.queries.empty()) queries_.fetch_add(1);  // only address answers watch these
  if (changed.keys.empty()) return;
  for (const auto& f : changed.keys) slots_[slot_of(f)].fetch_add(1);
  global_.fetch_add(1);
}

void ReusedAnswers::clear() {
  std::lock_guard lock(mutex_);
  epoch_.fetch_add(1);
  global_.fetch_add(1);
}

}  // namespace hkpgw::gateway
