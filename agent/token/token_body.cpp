#include "token/token_body.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "token/token_fingerprint.h"

namespace podid {

namespace {

using Json = nlohmann::ordered_json;  // IMDS's field order, so responses diff cleanly against IMDS

// Rendered by nlohmann with an empty expires_in, then cut there. A `"` inside any value is escaped, so the key's
// text with an unescaped comma and quotes before it can only be the key itself.
constexpr std::string_view kCut = ",\"expires_in\":\"\"";

Json fields(const Token& token, std::string_view client_id, std::string_view resource) {
    return Json{
        {"access_token", token.access_token},
        {"client_id", client_id},
        {"expires_in", ""},
        {"expires_on", std::to_string(token.expires_on)},
        {"ext_expires_in", std::to_string(token.ext_expires_in)},
        {"not_before", std::to_string(token.not_before)},
        {"resource", resource},
        {"token_type", token.token_type},
    };
}

}  // namespace

TokenBody::TokenBody(const Token& token, std::string_view client_id, std::string_view resource, bool host_shape)
    : expires_on_(token.expires_on) {
    Json doc = fields(token, client_id, resource);
    if (host_shape)
        doc = Json{{"token", std::move(doc)}, {"clientid", client_id}};
    // Values may come from upstream as any bytes: never throw on them.
    std::string text = doc.dump(-1, ' ', false, Json::error_handler_t::replace);
    const size_t at = text.find(kCut);
    if (at == std::string::npos)
        throw std::logic_error("token body without expires_in");  // cannot happen: the key is always there
    const size_t split = at + kCut.size() - 1;
    head_ = text.substr(0, split);
    tail_ = text.substr(split);
}

std::string TokenBody::at(int64_t now) const {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), std::max<int64_t>(0, expires_on_ - now));
    (void)ec;  // 24 chars hold any int64
    std::string out;
    out.reserve(head_.size() + static_cast<size_t>(end - digits) + tail_.size());
    out.append(head_).append(digits, end).append(tail_);
    return out;
}

std::shared_ptr<const TokenRendering> render_once(const Token& token) {
    return std::make_shared<const TokenRendering>(
        TokenRendering{token.client_id, token.resource, token_fingerprint(token.access_token),
                       TokenBody(token, token.client_id, token.resource, false),
                       TokenBody(token, token.client_id, token.resource, true)});
}

}  // namespace podid
