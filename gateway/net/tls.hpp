// OpenSSL contexts. Upstream (client) contexts always verify: TLS 1.2 minimum, the system trust
// store plus optional extra PEM anchors, peer verification on. Host name checks and SNI are set
// per connection by HttpsClient.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

namespace hkpgw::gateway {

// Throws std::runtime_error naming the file when a CA file cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_client_tls(const std::vector<std::string>& ca_files);

// For hkps listeners; throws std::runtime_error naming the file on a bad certificate or key.
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::string& cert_file,
                                                           const std::string& key_file);

}  // namespace hkpgw::gateway
