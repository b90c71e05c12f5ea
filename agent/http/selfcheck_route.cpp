#include "http/selfcheck_route.h"

namespace podid {

std::string selfcheck_body(uint64_t origin_cgroup_id) {
    return std::string(kSelfCheckBodyPrefix) + std::to_string(origin_cgroup_id);
}

}  // namespace podid
