#include "pod_layout.h"

#include <algorithm>
#include <random>
#include <stdexcept>

namespace podid::test {
namespace {

std::string random_hex(size_t n) {
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    static const char digits[] = "0123456789abcdef";
    std::string out(n, '0');
    for (auto& c : out)
        c = digits[gen() % 16];
    return out;
}

std::string systemd_scope_prefix(const std::string& runtime) {
    if (runtime == "containerd")
        return "cri-containerd-";
    if (runtime == "crio")
        return "crio-";
    if (runtime == "docker")
        return "docker-";
    throw std::invalid_argument("unknown container runtime '" + runtime + "' (containerd | crio | docker)");
}

void check_qos(const std::string& qos) {
    if (qos != "guaranteed" && qos != "burstable" && qos != "besteffort")
        throw std::invalid_argument("unknown QoS class '" + qos + "' (guaranteed | burstable | besteffort)");
}

}  // namespace

std::string random_pod_uid() {
    return random_hex(8) + "-" + random_hex(4) + "-" + random_hex(4) + "-" + random_hex(4) + "-" + random_hex(12);
}

std::string random_container_id() { return random_hex(64); }

PodCgroupLayout kubelet_cgroup_layout(const PodSpec& spec, const std::string& uid, const std::string& container_id) {
    check_qos(spec.qos);
    PodCgroupLayout out;
    if (spec.driver == "systemd") {
        // systemd unit names use '-' as the hierarchy separator, so kubelet escapes the UID's dashes.
        std::string escaped = uid;
        std::replace(escaped.begin(), escaped.end(), '-', '_');
        if (spec.qos == "guaranteed")
            out.pod_dir = "kubepods.slice/kubepods-pod" + escaped + ".slice";
        else
            out.pod_dir =
                "kubepods.slice/kubepods-" + spec.qos + ".slice/kubepods-" + spec.qos + "-pod" + escaped + ".slice";
        out.container_dir = out.pod_dir + "/" + systemd_scope_prefix(spec.runtime) + container_id + ".scope";
    } else if (spec.driver == "cgroupfs") {
        systemd_scope_prefix(spec.runtime);  // validates; cgroupfs leaves are the bare container id
        out.pod_dir = spec.qos == "guaranteed" ? "kubepods/pod" + uid : "kubepods/" + spec.qos + "/pod" + uid;
        out.container_dir = out.pod_dir + "/" + container_id;
    } else {
        throw std::invalid_argument("unknown cgroup driver '" + spec.driver + "' (systemd | cgroupfs)");
    }
    return out;
}

}  // namespace podid::test
