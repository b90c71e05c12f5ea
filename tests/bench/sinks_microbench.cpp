// CPU per request of the two request sinks the I/O threads call inline: Metrics::on_request and the
// audit line's formatting (append_json_line). A plain loop, not a load test: each case is run `calls` times,
// five times over, and the median nanoseconds per call printed. Run on a quiet machine; figures from a busy one
// only compare with figures taken in the same minute.
//
//   podid-sinks-microbench [calls]   (default 1000000)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "observe/audit.h"
#include "observe/metrics.h"

namespace podid {
namespace {

// Keeps the compiler from dropping work whose result is not otherwise used.
void keep(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

double median_ns_per_call(size_t calls, const std::function<void()>& body) {
    std::vector<double> runs;
    for (int rep = 0; rep < 5; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        for (size_t i = 0; i < calls; ++i)
            body();
        const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
        runs.push_back(took.count() / static_cast<double>(calls));
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
}

// A token request as a pod on a real node makes it: kubelet cgroup path, containerd id, a bound identity.
AuditRecord served_token() {
    AuditRecord r;
    r.time_ms = 1732838400123;
    r.listener = "node";
    r.method = "GET";
    r.path = "/metadata/identity/oauth2/token";
    r.kind = RequestKind::token;
    r.caller.origin = Origin{123456789, 4242, "python3", "169.254.169.254:80", true};
    r.caller.cgroup_path =
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/"
        "cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";
    r.caller.pod_ref =
        PodRef{"0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "containerd", "burstable"};
    r.caller.pod =
        PodInfo{"team-a", "web-7d9f8b6c5-x2x4z", "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "web", "node-1", false, {}};
    r.requested_identity = "";
    r.granted_identity = "client_id=3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9";
    r.binding = "AzureIdentityBinding team-a/web-binding (selector web)";
    r.resource = "https://management.azure.com/";
    r.reason = Reason::ok_bound_identity;
    r.status = 200;
    r.latency_ms = 0.087;
    r.cache = "hit";
    r.token_expires_on = 1732842000;
    r.token_sha256 = "0123456789abcdef";
    return r;
}

AuditRecord denied_token() {
    AuditRecord r = served_token();
    r.reason = Reason::deny_identity_not_bound;
    r.status = 403;
    r.requested_identity = "client_id=00000000-0000-0000-0000-000000000000";
    r.granted_identity.clear();
    r.cache.clear();
    r.token_sha256.clear();
    return r;
}

AuditRecord probe() {
    AuditRecord r = served_token();
    r.kind = RequestKind::probe;
    r.path = "/metadata/identity/oauth2/token";
    r.reason = Reason::ok_probe;
    r.granted_identity.clear();
    r.cache.clear();
    r.token_sha256.clear();
    return r;
}

}  // namespace
}  // namespace podid

int main(int argc, char** argv) {
    using namespace podid;
    const size_t calls = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    const AuditRecord served = served_token(), denied = denied_token(), probed = probe();

    Metrics metrics("bench");
    std::printf("%-40s %10s\n", "case", "ns/call");
    auto report = [&](const char* name, const std::function<void()>& body) {
        body();  // first call pays for creating the series
        std::printf("%-40s %10.1f\n", name, median_ns_per_call(calls, body));
    };
    report("Metrics::on_request token 200", [&] { metrics.on_request(served); });
    report("Metrics::on_request token 403 (denial)", [&] { metrics.on_request(denied); });
    report("Metrics::on_request probe", [&] { metrics.on_request(probed); });

    std::string line;
    report("append_json_line token 200", [&] {
        line.clear();
        append_json_line(line, served);
        keep(line.data());
    });
    report("append_json_line token 403", [&] {
        line.clear();
        append_json_line(line, denied);
        keep(line.data());
    });
    std::printf("(audit line of the 200: %zu bytes)\n", to_json_line(served).size());
    return 0;
}
