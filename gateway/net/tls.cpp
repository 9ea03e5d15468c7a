#include "gateway/net/tls.hpp"

#include <openssl/ssl.h>

#include <stdexcept>

namespace hkpgw::gateway {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_client_tls(const std::vector<std::string>& ca_files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // Session resumption is done per upstream by HttpsClient (one saved session each), not by
  // OpenSSL's client cache, which only stores and never offers sessions by itself.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
  boost::system::error_code ec;
  ctx->set_default_verify_paths(ec);  // the system store is always on
  for (const auto& file : ca_files) {
    if (file.empty()) continue;
    ctx->load_verify_file(file, ec);
    if (ec) {
      throw std::runtime_error("cannot load CA file \"" + file + "\": " + ec.message());
    }
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::shared_ptr<ssl::context> make_server_tls(const std::string& cert_file,
                                              const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) throw std::runtime_error("cannot load TLS certificate \"" + cert_file + "\": " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot load TLS key \"" + key_file + "\": " + ec.message());
  return ctx;
}

}  // namespace hkpgw::gateway
