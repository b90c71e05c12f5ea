#include "admin_api.h"

#include "query.h"

namespace podid::emulator {
namespace http = boost::beast::http;

HttpResponse answer_admin(const HttpRequest& req, AdminState& state) {
    std::string path = split_target(req.target()).path;
    auto method_not_allowed = [&](const char* allowed) {
        auto res = imds_error(req, 405, "method_not_allowed", std::string("Use ") + allowed + " on " + path);
        res.set(http::field::allow, allowed);
        return res;
    };

    if (path == "/_emulator/stats") {
        if (req.method() != http::verb::get) return method_not_allowed("GET");
        return json_response(req, 200, state.stats.to_json().dump());
    }
    if (path == "/_emulator/reset") {
        if (req.method() != http::verb::post) return method_not_allowed("POST");
        state.stats.reset();
        return json_response(req, 200, R"({"reset":true})");
    }
    if (path == "/_emulator/faults") {
        if (req.method() == http::verb::get) return json_response(req, 200, to_json(state.faults.current()).dump());
        if (req.method() != http::verb::post) return method_not_allowed("GET, POST");
        auto spec = parse_fault(std::string_view(req.body()));
        if (!spec) return imds_error(req, 400, "invalid_request", spec.error().message);
        state.faults.set(*spec);
        return json_response(req, 200, to_json(*spec).dump());
    }
    if (path == "/_emulator/jwks") {
        if (req.method() != http::verb::get) return method_not_allowed("GET");
        return json_response(req, 200, state.signer.jwks().dump());
    }
    return imds_error(req, 404, "not_found", "No emulator endpoint at " + path);
}

}  // namespace podid::emulator
