#include "common/tcp_keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace podid {

Result<void> enable_tcp_keepalive(int fd, const TcpKeepalive& keepalive) {
    struct Option {
        int level, name, value;
        const char* label;
    };
    const Option options[] = {
        {SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
        {IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(keepalive.idle.count()), "TCP_KEEPIDLE"},
        {IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(keepalive.interval.count()), "TCP_KEEPINTVL"},
        {IPPROTO_TCP, TCP_KEEPCNT, keepalive.count, "TCP_KEEPCNT"},
    };
    for (const Option& o : options) {
        if (::setsockopt(fd, o.level, o.name, &o.value, sizeof o.value) != 0) {
            const int err = errno;
            return make_error(std::string("cannot set ") + o.label + ": " + std::strerror(err), err);
        }
    }
    return {};
}

}  // namespace podid
