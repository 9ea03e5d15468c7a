// Awaiting a cache write from a coroutine: the batch goes to the store's writer thread and the
// coroutine resumes on its own executor once the batch is committed (or failed).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <system_error>

#include "cache/blocklist.hpp"
#include "cache/store.hpp"

namespace hkpgw::gateway {

boost::asio::awaitable<std::error_code> commit(cache::Store& store, cache::WriteBatch batch);

// Purges the cached keys `blocked` names (at start and after each reload), in one batch; logs
// keys_blocked with how many went. Returns at once; the writer commits it.
void purge_blocked(cache::Store& store, const cache::Blocklist& blocked);

}  // namespace hkpgw::gateway
