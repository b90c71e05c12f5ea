// The HTTP message types every part of the emulator speaks, and the IMDS JSON error shape.
#pragma once

#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace podid::emulator {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// `status` with `body` as application/json; charset=utf-8, keep-alive mirrored from the request.
HttpResponse json_response(const HttpRequest& req, unsigned status, std::string body);

// {"error":"...","error_description":"..."} with the given status.
HttpResponse imds_error(const HttpRequest& req, unsigned status, std::string_view error, std::string_view description);

}  // namespace podid::emulator
