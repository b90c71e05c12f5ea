// The bindings file (--bindings FILE): cgroup path patterns -> managed identities, for hosts without Kubernetes
// pod identity objects (system services, tests, nodes whose pods are bound by cgroup). This file reads and
// validates it into a BindingTable; policy/static_bindings.h serves it and reloads it.
//
// File format (JSON, unknown keys anywhere are errors, so a typo cannot silently grant nothing):
//   {"bindings": [
//     {"cgroup": "/system.slice/app.service", "identities": [{"client_id": "<guid>"}]},
//     {"cgroup": "/kubepods.slice/*/kubepods-burstable-pod1234*.slice",
//      "identities": [{"client_id": "<guid>"}, {"resource_id": "/subscriptions/.../userAssignedIdentities/x"}]}
//   ]}
// Identity keys: client_id, object_id (GUIDs), resource_id (ARM id of a user-assigned identity; "msi_res_id" is
// accepted as another spelling), name (a label for logs); at least one of the ids. The first identity of an entry is
// the caller's default.
//
// "cgroup" is a pattern over the caller's cgroup path (policy/cgroup_glob.h has the syntax): a caller matches when
// its cgroup or any ancestor of it matches, and entries are tried in file order, the first match winning, so put
// narrow entries before broad ones.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "policy/binding_table.h"

namespace podid {

// A bindings file is a few KB; a larger file is refused rather than read (a mistaken path).
constexpr std::size_t kMaxBindingsFileBytes = 4 << 20;

// Parses a bindings document. Errors read "<source_name>:<line>:<column>: <reason>", e.g.
// "bindings.json:7:9: bindings entry 2: unknown key \"clientid\"", with errno EINVAL. Never throws.
Result<std::shared_ptr<const BindingTable>> parse_bindings_file(std::string_view json_text,
                                                                std::string_view source_name);

// Reads the file at `path` (at most kMaxBindingsFileBytes) and parses it; errors name the path.
Result<std::shared_ptr<const BindingTable>> read_bindings_file(const std::string& path);

}  // namespace podid
