#include "query.h"

#include <set>

namespace podid::emulator {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

Target split_target(std::string_view target) {
    Target out;
    size_t q = target.find('?');
    out.path = std::string(target.substr(0, q));
    if (q == std::string_view::npos) return out;
    out.raw_query = std::string(target.substr(q + 1));
    std::string_view rest = out.raw_query;
    while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.empty()) continue;  // "a=1&&b=2"
        size_t eq = pair.find('=');
        std::string name = percent_decode(pair.substr(0, eq));
        std::string value = eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
        out.params.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

std::optional<std::string> duplicate_param(const Target& target) {
    std::set<std::string_view> seen;
    for (const auto& [name, value] : target.params) {
        if (!seen.insert(name).second) return name;
    }
    return std::nullopt;
}

std::optional<std::string> param(const Target& target, std::string_view name) {
    for (const auto& [n, v] : target.params) {
        if (n == name) return v;
    }
    return std::nullopt;
}

}  // namespace podid::emulator
