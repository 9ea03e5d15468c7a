// Answers the server may send again, byte for byte, to later requests for the same target,
// without running the handler: the cached-key hit path. The server only asks and keeps; what may
// be reused, for how long and when it stops being true is decided above net/ (service/
// AnswerCache implements this against the cache's change hook). An answer is prepared once:
// status line and headers already written, the body shared; only Age is added per request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/net/http_message.hpp"

namespace hkpgw::gateway {

struct PreparedAnswer {
  HttpResponse response;       // what the access hook is given (its Age header left out)
  AccessRecord access;         // what the access line says of each request it answers
  std::string head;            // status line and headers for HTTP/1.1 keep-alive, without the
                               // blank line that ends them (Age goes there); the server writes
                               // "HTTP/1.0" over its version and adds Connection as a request
                               // needs
  std::int64_t fetched_at = 0;  // Age: now - fetched_at
};

class AnswerReuse {
 public:
  virtual ~AnswerReuse() = default;
  // A prepared answer for this request, or null: then the handler runs. Called on the
  // connection's thread for GET and HEAD (HTTP/1.0 or 1.1, keep-alive or not); must be cheap.
  virtual std::shared_ptr<const PreparedAnswer> find(const HttpRequest& request) = 0;
  // The handler's answer to `request`: kept when it says it may be (HttpResponse::reuse).
  virtual void keep(const HttpRequest& request, const HttpResponse& response) = 0;
};

// The status line and headers of `r` for HTTP/1.1 keep-alive, without the final blank line,
// for PreparedAnswer::head.
std::string reusable_head(const HttpResponse& r);

}  // namespace hkpgw::gateway
