// Which of a caller's bound identities a token request gets, and how to name it to the node's IMDS.
#pragma once

#include <optional>
#include <string>

#include "policy/binding.h"
#include "token/token.h"

namespace podid {

// The identity a client asked for in its query (IMDS client_id / object_id / msi_res_id; mi_res_id is
// folded into msi_res_id by the parser). kind none = "my default identity".
struct IdentitySelector {
    enum class Kind { none, client_id, object_id, msi_res_id };
    Kind kind = Kind::none;
    std::string value;

    bool operator==(const IdentitySelector&) const = default;
    std::string to_string() const;  // "client_id=<value>", ..., "" for none
};

// The identity of `binding` that `selector` names, or its first (default) identity for no selector.
// Empty when the selector names no bound identity or the binding has none: the caller must never be
// given an identity it is not bound to. GUIDs and ARM ids compare case-insensitively, as Azure does.
std::optional<Identity> select_identity(const Binding& binding, const IdentitySelector& selector);

// The upstream key for `identity`: by client_id when known (what NMI sent), else msi_res_id, else
// object_id. Empty when the identity has none of them.
std::optional<TokenKey> token_key_for(const Identity& identity, const std::string& resource);

// The upstream key naming exactly what the client asked for (node-identity passthrough).
TokenKey token_key_for(const IdentitySelector& selector, const std::string& resource);

}  // namespace podid
