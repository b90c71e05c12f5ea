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
    return out;
}

}  // namespace podid
