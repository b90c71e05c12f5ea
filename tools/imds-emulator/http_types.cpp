#include "http_types.h"

#include <nlohmann/json.hpp>

namespace podid::emulator {

HttpResponse json_response(const HttpRequest& req, unsigned status, std::string body) {
    HttpResponse res{static_cast<boost::beast::http::status>(status), req.version()};
    res.set(boost::beast::http::field::content_type, "application/json; charset=utf-8");
    res.set(boost::beast::http::field::server, "podid-imds-emulator");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

HttpResponse imds_error(const HttpRequest& req, unsigned status, std::string_view error, std::string_view description) {
    nlohmann::json body = {{"error", error}, {"error_description", description}};
    return json_response(req, status, body.dump());
}

}  // namespace podid::emulator
