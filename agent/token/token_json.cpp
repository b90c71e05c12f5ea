#include "token/token_json.h"

#include <charconv>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace podid {

namespace {

using nlohmann::json;

// A field that IMDS writes as "123" but other producers write as 123.
Result<std::optional<int64_t>> integer_field(const json& doc, const char* name) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null())
        return std::optional<int64_t>{};
    if (it->is_number_integer())
        return std::optional<int64_t>{it->get<int64_t>()};
    if (it->is_number_float())
        return std::optional<int64_t>{static_cast<int64_t>(it->get<double>())};
    if (it->is_string()) {
        const auto& text = it->get_ref<const std::string&>();
        int64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc() && end == text.data() + text.size() && !text.empty())
            return std::optional<int64_t>{value};
    }
    return make_error(std::string("token response field \"") + name + "\" is not an integer");
}

Result<std::string> string_field(const json& doc, const char* name) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null())
        return std::string();
    if (it->is_string())
        return it->get<std::string>();
    return make_error(std::string("token response field \"") + name + "\" is not a string");
}

}  // namespace

Result<Token> parse_token_json(std::string_view body, int64_t now) {
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object())
        return make_error("token response is not a JSON object");

    Token token;
    auto access_token = string_field(doc, "access_token");
    if (!access_token)
        return access_token.error();
    if (access_token->empty())
        return make_error("token response has no access_token");
    token.access_token = std::move(*access_token);

    for (auto [name, out] : {std::pair{"client_id", &token.client_id}, std::pair{"resource", &token.resource},
                             std::pair{"token_type", &token.token_type}}) {
        auto value = string_field(doc, name);
        if (!value)
            return value.error();
        if (!value->empty())
            *out = std::move(*value);
    }

    auto expires_on = integer_field(doc, "expires_on");
    if (!expires_on)
        return expires_on.error();
    auto expires_in = integer_field(doc, "expires_in");
    if (!expires_in)
        return expires_in.error();
    if (*expires_on) {
        token.expires_on = **expires_on;
    } else if (*expires_in) {
        token.expires_on = now + **expires_in;
    } else {
        return make_error("token response has neither expires_on nor expires_in");
    }

    auto not_before = integer_field(doc, "not_before");
    if (!not_before)
        return not_before.error();
    token.not_before = not_before->value_or(0);
    auto ext_expires_in = integer_field(doc, "ext_expires_in");
    if (!ext_expires_in)
        return ext_expires_in.error();
    token.ext_expires_in = ext_expires_in->value_or(0);
    return token;
}

}  // namespace podid
