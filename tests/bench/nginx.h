// The baseline HTTP server: nginx serving one static file on the node IP inside the test node's netns.
// Its own config, pid and logs live in a temp dir under the node's workdir; the system service is never
// touched. Tuned as the strongest fair baseline: as many workers as CPUs (the agent's default is 2
// I/O threads here), no access log, unlimited keep-alive requests per connection.
#pragma once

#include <memory>
#include <string>

#include "support/test_node.h"

namespace podid::bench {

class NginxServer {
public:
    // Serves `body` as /token.json (application/json) on ip:port; throws std::runtime_error with
    // nginx's own words when it does not come up.
    static std::unique_ptr<NginxServer> start(test::TestNode& node, const std::string& ip, int port,
                                              const std::string& body);
    ~NginxServer();  // SIGQUIT to the master (workers follow), SIGKILL if it lingers
    NginxServer(const NginxServer&) = delete;
    NginxServer& operator=(const NginxServer&) = delete;

    std::string url() const { return url_; }

private:
    NginxServer() = default;
    test::Process master_;
    std::string dir_, url_;
};

}  // namespace podid::bench
