// The managed identities assigned to the emulated VM, and how a token request's selector finds one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vm_profile.h"

namespace podid::emulator {

struct EmulatedIdentity {
    std::string client_id;    // appid claim, client_id selector
    std::string resource_id;  // xms_mirid claim, msi_res_id / mi_res_id selector
    std::string object_id;    // oid claim, object_id selector
};

// Which query parameter named the identity.
enum class Selector { none, client_id, object_id, resource_id };

// "CLIENT_ID[,RESOURCE_ID[,OBJECT_ID]]" as given to --identity; blanks are derived later by the store.
Result<EmulatedIdentity> parse_identity_flag(std::string_view text);

class IdentityStore {
public:
    explicit IdentityStore(VmProfile vm = {});

    // Missing resource/object ids are derived deterministically from the client id, so a test that only
    // knows the client id can still predict them (see derived_object_id()).
    void add_user_assigned(EmulatedIdentity identity);
    void set_system_assigned(std::string client_id);

    // IMDS compares identity selectors case-insensitively (GUIDs and ARM ids are case-insensitive).
    // Selector::none picks the system-assigned identity, if any.
    const EmulatedIdentity* find(Selector selector, std::string_view value) const;

    const std::optional<EmulatedIdentity>& system_assigned() const { return system_; }
    const std::vector<EmulatedIdentity>& user_assigned() const { return user_; }
    const VmProfile& vm() const { return vm_; }

private:
    VmProfile vm_;
    std::optional<EmulatedIdentity> system_;
    std::vector<EmulatedIdentity> user_;
};

// A UUID-shaped object id derived from a client id (SHA-256 based, stable across runs).
std::string derived_object_id(std::string_view client_id);

bool iequals(std::string_view a, std::string_view b);

}  // namespace podid::emulator
