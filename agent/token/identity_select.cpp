#include "token/identity_select.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace podid {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// An empty field never matches: an identity without an object id must not be selected by "object_id=".
bool field_matches(const std::string& field, const std::string& wanted) {
    return !field.empty() && iequals(field, wanted);
}

bool matches(const Identity& identity, const IdentitySelector& selector) {
    switch (selector.kind) {
    case IdentitySelector::Kind::none: return true;
    case IdentitySelector::Kind::client_id: return field_matches(identity.client_id, selector.value);
    case IdentitySelector::Kind::object_id: return field_matches(identity.object_id, selector.value);
    case IdentitySelector::Kind::msi_res_id: return field_matches(identity.resource_id, selector.value);
    }
    return false;
}

}  // namespace

std::string IdentitySelector::to_string() const {
    switch (kind) {
    case Kind::none: return "";
    case Kind::client_id: return "client_id=" + value;
    case Kind::object_id: return "object_id=" + value;
    case Kind::msi_res_id: return "msi_res_id=" + value;
    }
    return "";
}

std::optional<Identity> select_identity(const Binding& binding, const IdentitySelector& selector) {
    if (binding.kind == BindingKind::none) {
        return std::nullopt;
    }
    for (const Identity& identity : binding.identities) {
        if (matches(identity, selector)) {
            return identity;
        }
    }
    return std::nullopt;
}

std::optional<TokenKey> token_key_for(const Identity& identity, const std::string& resource) {
    TokenKey key;
    key.resource = resource;
    if (identity.entra) {
        // Entra ID knows an application by its client id only.
        if (identity.client_id.empty())
            return std::nullopt;
        key.client_id = identity.client_id;
        key.entra = identity.entra;
        return key;
    }
    if (!identity.client_id.empty()) {
        key.client_id = identity.client_id;
    } else if (!identity.resource_id.empty()) {
        key.msi_res_id = identity.resource_id;
    } else if (!identity.object_id.empty()) {
        key.object_id = identity.object_id;
    } else {
        return std::nullopt;
    }
    return key;
}

TokenKey token_key_for(const IdentitySelector& selector, const std::string& resource) {
    TokenKey key;
    key.resource = resource;
    switch (selector.kind) {
    case IdentitySelector::Kind::none: break;
    case IdentitySelector::Kind::client_id: key.client_id = selector.value; break;
    case IdentitySelector::Kind::object_id: key.object_id = selector.value; break;
    case IdentitySelector::Kind::msi_res_id: key.msi_res_id = selector.value; break;
    }
    return key;
}

}  // namespace podid
