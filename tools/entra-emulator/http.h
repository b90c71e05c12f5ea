// The HTTP message types of the Entra emulator and the few helpers every handler shares.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace podid::entra_emulator {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using Params = std::vector<std::pair<std::string, std::string>>;

// `body` as application/json; charset=utf-8 with Entra's cache headers; keep-alive mirrored from the request.
HttpResponse json_response(const HttpRequest& req, unsigned status, std::string body);
HttpResponse text_response(const HttpRequest& req, unsigned status, std::string body,
                           const char* content_type = "text/plain; charset=utf-8");

// "a=1&b=%2F" (a query string or an application/x-www-form-urlencoded body): decoded pairs in order.
Params parse_form(std::string_view text);
// The first value of `name`, if present.
std::optional<std::string> form_value(const Params& params, std::string_view name);

// Path and query of a request target; the path split on '/' without empty segments.
struct SplitTarget {
    std::string path;
    std::vector<std::string> segments;
    Params query;
};
SplitTarget split_request_target(std::string_view target);

}  // namespace podid::entra_emulator
