// Separate compilation of Asio, Asio.SSL and Beast (docs/build.md): their function bodies are
// compiled once, here, instead of in every file that uses them.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
