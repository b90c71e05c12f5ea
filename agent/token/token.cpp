#include "token/token.h"

namespace podid {

std::string TokenKey::to_string() const {
    std::string out;
    auto add = [&out](const char* name, const std::string& value) {
        if (value.empty())
            return;
        if (!out.empty())
            out += ';';
        out += name;
        out += '=';
        out += value;
    };
    add("client_id", client_id);
    add("msi_res_id", msi_res_id);
    add("object_id", object_id);
    add("resource", resource);
    if (entra) {
        add("source", podid::to_string(entra->source));
        add("tenant", entra->tenant);
        add("pod", entra->pod_ns.empty() ? "" : entra->pod_ns + "/" + entra->pod_name);
        add("secret", entra->secret_name.empty() ? "" : entra->secret_ns + "/" + entra->secret_name);
    }
    return out;
}

}  // namespace podid
