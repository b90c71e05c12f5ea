#include "http.h"

#include "imds-emulator/query.h"

namespace podid::entra_emulator {
namespace http = boost::beast::http;

HttpResponse text_response(const HttpRequest& req, unsigned status, std::string body, const char* content_type) {
    HttpResponse res{static_cast<http::status>(status), req.version()};
    res.set(http::field::content_type, content_type);
    res.set(http::field::server, "podid-entra-emulator");
    // Entra marks every token and error answer uncacheable; clients and proxies must not reuse them.
    res.set(http::field::cache_control, "no-store, no-cache");
    res.set(http::field::pragma, "no-cache");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

HttpResponse json_response(const HttpRequest& req, unsigned status, std::string body) {
    return text_response(req, status, std::move(body), "application/json; charset=utf-8");
}

Params parse_form(std::string_view text) {
    Params out;
    while (!text.empty()) {
        size_t amp = text.find('&');
        std::string_view pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (pair.empty())
            continue;
        size_t eq = pair.find('=');
        std::string value =
            eq == std::string_view::npos ? std::string{} : emulator::percent_decode(pair.substr(eq + 1));
        out.emplace_back(emulator::percent_decode(pair.substr(0, eq)), std::move(value));
    }
    return out;
}

std::optional<std::string> form_value(const Params& params, std::string_view name) {
    for (const auto& [key, value] : params) {
        if (key == name)
            return value;
    }
    return std::nullopt;
}

SplitTarget split_request_target(std::string_view target) {
    SplitTarget out;
    size_t q = target.find('?');
    out.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos)
        out.query = parse_form(target.substr(q + 1));
    std::string_view rest = out.path;
    while (!rest.empty()) {
        size_t slash = rest.find('/');
        std::string_view segment = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (!segment.empty())
            out.segments.push_back(emulator::percent_decode(segment));
    }
    return out;
}

}  // namespace podid::entra_emulator
