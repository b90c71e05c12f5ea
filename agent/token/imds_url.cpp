#include "token/imds_url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace podid {

namespace {

Error bad_url(std::string_view url, const std::string& why) {
    return make_error("--imds-url \"" + std::string(url) + "\" is invalid: " + why +
                      " (expected http://host[:port], e.g. http://169.254.169.254)");
}

bool is_host_char(unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; }

}  // namespace

Result<ImdsUrl> parse_imds_url(std::string_view url) {
    constexpr std::string_view kScheme = "http://";
    if (url.size() < kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), url.begin(), [](char a, char b) {
            return a == std::tolower(static_cast<unsigned char>(b));
        })) {
        if (url.substr(0, 8) == "https://")
            return bad_url(url, "https is not supported, IMDS speaks plain http");
        return bad_url(url, "the scheme must be http://");
    }
    std::string_view rest = url.substr(kScheme.size());
    if (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    if (rest.find_first_of("/?#") != std::string_view::npos)
        return bad_url(url, "a path, query or fragment is not allowed");
    if (rest.find('@') != std::string_view::npos)
        return bad_url(url, "user info is not allowed");
    if (rest.empty())
        return bad_url(url, "the host is missing");

    ImdsUrl out;
    std::string_view port_text;
    if (rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos)
            return bad_url(url, "unterminated [IPv6] host");
        out.host = std::string(rest.substr(1, close - 1));
        if (out.host.empty() || !std::all_of(out.host.begin(), out.host.end(),
                                             [](unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; }))
            return bad_url(url, "bad IPv6 address");
        auto after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return bad_url(url, "unexpected text after the IPv6 address");
            port_text = after.substr(1);
            if (port_text.empty())
                return bad_url(url, "empty port");
        }
    } else {
        auto colon = rest.find(':');
        out.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = rest.substr(colon + 1);
            if (port_text.empty())
                return bad_url(url, "empty port");
        }
        if (out.host.empty())
            return bad_url(url, "the host is missing");
        if (!std::all_of(out.host.begin(), out.host.end(), [](unsigned char c) { return is_host_char(c); }))
            return bad_url(url, "the host has characters not allowed in a host name or IPv4 address");
    }
    if (!port_text.empty()) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
            return bad_url(url, "the port must be a number from 1 to 65535");
        out.port = static_cast<uint16_t>(value);
    }
    const bool v6 = out.host.find(':') != std::string::npos;
    out.host_header = v6 ? "[" + out.host + "]" : out.host;
    if (out.port != 80)
        out.host_header += ":" + std::to_string(out.port);
    return out;
}

}  // namespace podid
