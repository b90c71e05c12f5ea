#include "common/ip_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cerrno>
#include <cstddef>

namespace podid {

Result<uint32_t> parse_ip4(const std::string& text) {
    in_addr addr{};
    if (::inet_pton(AF_INET, text.c_str(), &addr) != 1)
        return make_error("'" + text + "' is not an IPv4 address", EINVAL);
    return addr.s_addr;
}

std::string format_ip4(uint32_t network_order) {
    // Every accepted connection formats one or two of these: glibc's inet_ntop goes through sprintf. Digits are
    // written by hand: GCC 12 at -O3 cannot see that std::to_chars stays inside the buffer (-Wstringop-overflow).
    const auto* bytes = reinterpret_cast<const unsigned char*>(&network_order);
    std::array<char, INET_ADDRSTRLEN> buf{};
    std::size_t n = 0;
    for (int i = 0; i < 4; ++i) {
        if (i > 0)
            buf[n++] = '.';
        const unsigned v = bytes[i];
        if (v >= 100)
            buf[n++] = static_cast<char>('0' + v / 100);
        if (v >= 10)
            buf[n++] = static_cast<char>('0' + v / 10 % 10);
        buf[n++] = static_cast<char>('0' + v % 10);
    }
    return std::string(buf.data(), n);
}

std::string format_sockaddr(const sockaddr_storage& ss) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
        return format_ip4(a->sin_addr.s_addr) + ":" + std::to_string(ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    return std::string(host) + ":" + std::to_string(port);
}

}  // namespace podid
