// Boost.JSON's compiled part, built once here (as net/asio_impl.cpp does for Asio): Debian ships
// its headers only.
#include <boost/json/src.hpp>
