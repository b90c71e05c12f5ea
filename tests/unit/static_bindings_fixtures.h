// Shared by the bindings file, binding table and static bindings tests: identities and a builder of bindings
// documents whose error lines are easy to predict.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace podid::test {

inline const std::string kGuid1 = "11111111-2222-3333-4444-555555555555";
inline const std::string kGuid2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
inline const std::string kArmId =
    "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x";

// One entry per line: line 1 is {"bindings": [, entry i is on line i+1.
inline std::string doc(const std::vector<std::string>& entries) {
    std::string s = "{\"bindings\": [\n";
    for (std::size_t i = 0; i < entries.size(); ++i)
        s += "  " + entries[i] + (i + 1 < entries.size() ? ",\n" : "\n");
    return s + "]}\n";
}

inline std::string entry(const std::string& cgroup,
                         const std::string& identities = "{\"client_id\": \"" + kGuid1 + "\"}") {
    return "{\"cgroup\": \"" + cgroup + "\", \"identities\": [" + identities + "]}";
}

}  // namespace podid::test
