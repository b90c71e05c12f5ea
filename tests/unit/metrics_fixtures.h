// Shared by the metrics, BPF collector and admin HTTP tests: audit records to count, reading samples back from a
// scrape, a fake node for the BPF collector, and the admin server running on loopback.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/admin_http.h"
#include "observe/bpf_collector.h"
#include "observe/metrics.h"

namespace podid::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

inline AuditRecord token_record(const std::string& ns, const std::string& pod, unsigned status, Reason reason,
                                std::string granted = "client_id=aaaa") {
    AuditRecord r;
    r.kind = RequestKind::token;
    r.status = status;
    r.reason = reason;
    r.latency_ms = 2.5;
    r.granted_identity = is_denial(reason) ? "" : std::move(granted);
    if (!pod.empty()) {
        PodInfo p;
        p.ns = ns;
        p.name = pod;
        r.caller.pod = p;
    }
    return r;
}

// The value of the sample whose line starts with `series` (name plus labels exactly as serialized), or -1.
inline double sample(const std::string& scrape, const std::string& series) {
    std::istringstream in(scrape);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(series + " ", 0) == 0)
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

inline size_t lines_containing(const std::string& scrape, const std::string& needle) {
    std::istringstream in(scrape);
    size_t n = 0;
    for (std::string line; std::getline(in, line);)
        n += line.find(needle) != std::string::npos && line[0] != '#';
    return n;
}

// A node for the BPF collector: counters per cgroup id, live cgroup paths and the pod directory.
inline const std::string kUidA = "11111111-2222-3333-4444-555555555555";
inline const std::string kUidB = "99999999-2222-3333-4444-555555555555";
inline std::string pod_dir(const std::string& uid) {
    std::string u = uid;
    std::replace(u.begin(), u.end(), '-', '_');
    return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice";
}
inline std::string container(const std::string& uid, char c) {
    return pod_dir(uid) + "/cri-containerd-" + std::string(64, c) + ".scope";
}

struct FakeNode {
    std::map<uint64_t, CgroupCounters> counters;
    std::map<uint64_t, std::string> paths;  // live cgroups
    std::map<std::string, PodInfo> pods;    // by uid

    void count(uint64_t id, int slot, uint64_t n) { counters[id][slot] = n; }
    BpfCollectorSources sources() {
        BpfCollectorSources s;
        s.counters = [this] { return counters; };
        s.cgroup_path = [this](uint64_t id) -> std::optional<std::string> {
            auto it = paths.find(id);
            return it == paths.end() ? std::nullopt : std::optional(it->second);
        };
        s.kubepods_root = "/kubepods.slice";
        s.pod_by_uid = [this](const std::string& uid) -> std::optional<PodInfo> {
            auto it = pods.find(uid);
            return it == pods.end() ? std::nullopt : std::optional(it->second);
        };
        return s;
    }
};

// The admin HTTP server over loopback.
struct Fetched {
    unsigned status = 0;
    std::string body;
};

inline Fetched http_get(const tcp::endpoint& ep, const std::string& target) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(ep);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return {res.result_int(), res.body()};
}

// The admin server with real metrics, on an io thread, for the socket-level tests.
struct RunningAdmin {
    Metrics metrics{"9.9.9"};
    bool ready = false;
    asio::io_context io;
    AdminServer server{io, AdminHandlers{[this] { return metrics.scrape(); },
                                         [this] {
                                             return ready ? Readiness{true, ""} : Readiness{false, "test"};
                                         }}};
    tcp::endpoint ep;
    std::thread thread;

    RunningAdmin() {
        auto bound = server.listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        if (!bound)
            throw std::runtime_error(bound.error().message);
        ep = *bound;
        thread = std::thread([this] { io.run(); });
    }
    ~RunningAdmin() {
        server.shutdown();
        io.stop();
        thread.join();
    }
};

}  // namespace podid::test
