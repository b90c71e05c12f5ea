// TCP keepalive on a connected socket: a peer that vanished without a FIN or RST (a crashed or partitioned
// control-plane node) is noticed after idle + interval * count instead of when a long idle limit ends.
#pragma once

#include <chrono>

#include "common/result.h"

namespace podid {

struct TcpKeepalive {
    std::chrono::seconds idle{30};      // quiet time before the first probe (client-go's dialer uses 30 s)
    std::chrono::seconds interval{10};  // between unanswered probes
    int count = 3;                      // unanswered probes before the kernel ends the connection
};

// SO_KEEPALIVE plus TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT; the error names the option that failed.
Result<void> enable_tcp_keepalive(int fd, const TcpKeepalive& keepalive = {});

}  // namespace podid
