// The pretend VM the emulator runs as: one place for the subscription, group and names that appear in
// resource ids, the instance metadata document and the system identity's xms_mirid.
#pragma once

#include <string>

namespace podid::emulator {

struct VmProfile {
    std::string subscription_id = "00000000-0000-4000-8000-00000000e3a1";
    std::string resource_group = "podid-emulator";
    std::string vm_name = "aks-nodepool1-00000000-vmss_0";
    std::string vm_id = "5c0ffee0-0000-4000-8000-000000000001";
    std::string location = "westeurope";
    std::string private_ip = "10.224.0.4";

    // "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>"
    std::string resource_id() const;
    // Where a user-assigned identity named `name` would live in this subscription.
    std::string user_identity_resource_id(const std::string& name) const;
};

}  // namespace podid::emulator
