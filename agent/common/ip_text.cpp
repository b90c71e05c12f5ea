#include "common/ip_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>

namespace podid {

Result<uint32_t> parse_ip4(const std::string& text) {
    in_addr addr{};
    if (::inet_pton(AF_INET, text.c_str(), &addr) != 1)
        return make_error("'" + text + "' is not an IPv4 address", EINVAL);
    return addr.s_addr;
}

std::string format_ip4(uint32_t network_order) {
    // Every accepted connection formats one or two of these: glibc's inet_ntop goes through sprintf.
    const auto* bytes = reinterpret_cast<const unsigned char*>(&network_order);
    char buf[INET_ADDRSTRLEN];
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
        if (i > 0)
            *p++ = '.';
        p = std::to_chars(p, buf + sizeof(buf), static_cast<unsigned>(bytes[i])).ptr;
    }
    return std::string(buf, p);
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
