#include "policy/binding.h"

namespace podid {

const char* to_string(BindingKind kind) {
    switch (kind) {
    case BindingKind::none: return "none";
    case BindingKind::static_file: return "static_file";
    case BindingKind::aad_pod_identity: return "aad_pod_identity";
    case BindingKind::workload_identity: return "workload_identity";
    case BindingKind::node_identity: return "node_identity";
    }
    return "unknown";  // a value cast from an out-of-range integer
}

}  // namespace podid
