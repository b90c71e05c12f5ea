// The kubelet cgroup path parser (agent/caller/kubelet_cgroup): cgroup paths are partly chosen by pods
// (a container may create cgroups below its own). Invariants: a result always has a well-formed lower-case
// UID and either no container id or 64 lower-case hex; the rooted form never finds a pod outside its root.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "caller/kubelet_cgroup.h"
#include "fuzz_check.h"

namespace {

bool well_formed_uid(const std::string& uid) {
    if (uid.size() != 36)
        return false;
    for (size_t i = 0; i < uid.size(); ++i) {
        const char c = uid[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool well_formed_container(const std::string& id) {
    if (id.empty())
        return true;
    if (id.size() != 64)
        return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

void check(const std::optional<podid::PodRef>& ref) {
    if (!ref)
        return;
    PODID_FUZZ_CHECK(well_formed_uid(ref->uid));
    PODID_FUZZ_CHECK(well_formed_container(ref->container_id));
    PODID_FUZZ_CHECK(ref->qos == "guaranteed" || ref->qos == "burstable" || ref->qos == "besteffort");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view path(reinterpret_cast<const char*>(data), size);
    check(podid::parse_kubelet_cgroup(path));
    for (std::string_view root : {"/kubepods.slice", "/kubepods", "/podid-t1/kubepods.slice"}) {
        auto ref = podid::parse_kubelet_cgroup(path, root);
        check(ref);
        if (ref)
            PODID_FUZZ_CHECK(path.substr(0, root.size()) == root);
    }
    return 0;
}
