#include "vm_profile.h"

namespace podid::emulator {

std::string VmProfile::resource_id() const {
    return "/subscriptions/" + subscription_id + "/resourceGroups/" + resource_group +
           "/providers/Microsoft.Compute/virtualMachines/" + vm_name;
}

std::string VmProfile::user_identity_resource_id(const std::string& name) const {
    return "/subscriptions/" + subscription_id + "/resourceGroups/" + resource_group +
           "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name;
}

}  // namespace podid::emulator
