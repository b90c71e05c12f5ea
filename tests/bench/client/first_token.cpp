// Driven line by line on stdin by the cold-path benchmark: "<cgroup dir>\t<path and query>" -> hop into
// the cgroup, request the token, print "<CLOCK_MONOTONIC ns at the end> <status>". The benchmark takes
// its start time when the pod becomes visible in the API server, on the same clock.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "client/args.h"
#include "client/client.h"

namespace podid::bench {

int run_first_token(const std::vector<std::string>&) {
    std::string line;
    while (std::getline(std::cin, line)) {
        auto tab = line.find('\t');
        if (tab == std::string::npos)
            continue;
        int status = 0;
        if (hop_to(line.substr(0, tab)).empty()) {
            int fd = connect_to("169.254.169.254", 80);
            if (fd >= 0) {
                std::string req = token_request(line.substr(tab + 1));
                if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()))
                    status = read_status_until_close(fd);
                ::close(fd);
            }
        }
        std::printf("%lld %d\n", static_cast<long long>(monotonic_ns()), status);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace podid::bench
