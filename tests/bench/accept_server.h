// The connect benchmark's server: accepts and closes at once on the node IP, so only the client's connect path
// is measured (not an HTTP server, not the agent). A port may have a hook run on each accepted connection
// before the close: the podid variants read the connection's origin there, as the agent does on accept.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace podid::bench {

class AcceptCloseServer {
public:
    // (peer from accept, the listener's own address), like the agent's Datapath::origin_of(peer, local).
    using OnAccept = std::function<void(const sockaddr_storage& peer, const sockaddr_storage& local)>;

    // One listener (and one blocking accept thread) per port, in the netns. Throws std::runtime_error.
    AcceptCloseServer(const std::string& netns, const std::string& ip, const std::vector<uint16_t>& ports,
                      std::map<uint16_t, OnAccept> on_accept = {});
    ~AcceptCloseServer();
    AcceptCloseServer(const AcceptCloseServer&) = delete;
    AcceptCloseServer& operator=(const AcceptCloseServer&) = delete;

    uint64_t accepted() const { return accepted_; }

private:
    std::vector<int> listeners_;
    std::vector<std::thread> threads_;
    std::atomic<uint64_t> accepted_{0};
    std::atomic<bool> stopping_{false};
};

}  // namespace podid::bench
