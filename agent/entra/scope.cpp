#include "entra/scope.h"

namespace podid::entra {

std::string scope_for_resource(std::string_view resource) {
    constexpr std::string_view kDefault = "/.default";
    if (resource.size() >= kDefault.size() && resource.substr(resource.size() - kDefault.size()) == kDefault)
        return std::string(resource);
    std::string scope(resource);
    scope += kDefault;
    return scope;
}

}  // namespace podid::entra
