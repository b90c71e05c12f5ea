#include "kube/objects.h"

namespace podid::kube {

PodInfo Pod::info() const {
    PodInfo out;
    out.ns = meta.ns;
    out.name = meta.name;
    out.uid = meta.uid;
    out.service_account = service_account;
    out.node_name = node_name;
    out.host_network = host_network;
    out.labels = meta.labels;
    return out;
}

}  // namespace podid::kube
