#include "identity_store.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstdio>

namespace podid::emulator {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string derived_object_id(std::string_view client_id) {
    std::string input = "podid-emulator-oid:" + std::string(client_id);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
    digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);  // version 5 style: name-based
    digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);  // RFC 4122 variant
    char out[37];
    std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", digest[0],
                  digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7], digest[8], digest[9],
                  digest[10], digest[11], digest[12], digest[13], digest[14], digest[15]);
    return out;
}

Result<EmulatedIdentity> parse_identity_flag(std::string_view text) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t comma = text.find(',', start);
        parts.emplace_back(text.substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (parts.size() > 3) return make_error("--identity takes CLIENT_ID[,RESOURCE_ID[,OBJECT_ID]]");
    if (parts[0].empty()) return make_error("--identity needs a client id");
    EmulatedIdentity identity;
    identity.client_id = parts[0];
    if (parts.size() > 1) identity.resource_id = parts[1];
    if (parts.size() > 2) identity.object_id = parts[2];
    if (parts.size() > 1 && !identity.resource_id.empty() && identity.resource_id.front() != '/') {
        return make_error("--identity resource id must be an ARM id starting with '/': " + identity.resource_id);
    }
    return identity;
}

IdentityStore::IdentityStore(VmProfile vm) : vm_(std::move(vm)) {}

void IdentityStore::add_user_assigned(EmulatedIdentity identity) {
    if (identity.resource_id.empty()) {
        identity.resource_id = vm_.user_identity_resource_id("id-" + identity.client_id.substr(0, 8));
    }
    if (identity.object_id.empty()) identity.object_id = derived_object_id(identity.client_id);
    user_.push_back(std::move(identity));
}

void IdentityStore::set_system_assigned(std::string client_id) {
    EmulatedIdentity identity;
    identity.object_id = derived_object_id(client_id);
    identity.client_id = std::move(client_id);
    identity.resource_id = vm_.resource_id();
    system_ = std::move(identity);
}

const EmulatedIdentity* IdentityStore::find(Selector selector, std::string_view value) const {
    if (selector == Selector::none) return system_ ? &*system_ : nullptr;
    auto matches = [&](const EmulatedIdentity& id) {
        switch (selector) {
            case Selector::client_id: return iequals(id.client_id, value);
            case Selector::object_id: return iequals(id.object_id, value);
            case Selector::resource_id: return iequals(id.resource_id, value);
            case Selector::none: break;
        }
        return false;
    };
    for (const auto& identity : user_) {
        if (matches(identity)) return &identity;
    }
    // Naming the system identity explicitly works on real IMDS too.
    if (system_ && matches(*system_)) return &*system_;
    return nullptr;
}

}  // namespace podid::emulator
