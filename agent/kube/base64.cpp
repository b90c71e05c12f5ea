#include "kube/base64.h"

#include <cstdint>

namespace podid::kube {

namespace {

int sextet(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t acc = 0;
    int bits = 0;
    int digits = 0;
    bool padding = false;
    for (char c : text) {
        if (is_space(c))
            continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        const int v = sextet(c);
        if (v < 0 || padding)  // nothing may follow padding
            return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        ++digits;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    if (digits % 4 == 1)  // one digit carries 6 bits: not a whole byte
        return std::nullopt;
    return out;
}

}  // namespace podid::kube
