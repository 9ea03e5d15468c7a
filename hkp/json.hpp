// The JSON documents the gateway writes (HKP v2 listings, VKS answers, the admin API, op=stats,
// requests to VKS upstreams): values built with Boost.JSON and serialized by it, never strings
// put together by hand. Text from outside (user IDs, an upstream's words) goes in through
// json_text, so every document parses whatever bytes a key holds. Log lines keep their own
// escaper (text.hpp: append_json_escaped), which also neutralises what a terminal would act on.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace hkpgw::hkp {

namespace json = boost::json;

// `s` as a JSON string's value: UTF-8 kept, each byte that is not UTF-8 replaced by U+FFFD.
json::string json_text(std::string_view s);

// A rate or other double as JSON shows numbers people read: 4, not 4E0 (Boost.JSON's form for
// a double); fractions stay doubles.
json::value json_number(double d);

// The document, compact, with a final newline when `newline`.
std::string json_body(const json::value& v, bool newline = false);

}  // namespace hkpgw::hkp
