// application/x-www-form-urlencoded, as the WHATWG URL standard defines it: the body of an OAuth 2.0 token request.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podid::entra {

using FormFields = std::vector<std::pair<std::string, std::string>>;

// The urlencoded byte serializer: ASCII letters, digits and * - . _ stay; a space becomes '+'; every other byte
// becomes %XX with upper-case hex. (Not RFC 3986's set: '~' is encoded and a space is '+'.)
std::string form_encode_component(std::string_view text);

// name=value pairs in order, joined by '&'.
std::string form_encode(const FormFields& fields);

// The urlencoded parser: split on '&' (empty pieces skipped), name and value split at the first '=', '+' is a
// space, %XX decoded; a '%' not followed by two hex digits stays as it is. Bytes are returned as sent (no UTF-8
// check): the tests compare them with what was encoded.
FormFields form_decode(std::string_view body);

}  // namespace podid::entra
