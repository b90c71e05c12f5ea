// The IMDS `resource` a pod asks for -> the v2 `scope` Entra ID's token endpoint wants.
#pragma once

#include <string>
#include <string_view>

namespace podid::entra {

// scope = resource + "/.default", unless the resource already ends in "/.default" (kept as it is). Nothing is
// trimmed: a trailing slash is part of the resource, so "https://management.azure.com/" becomes
// "https://management.azure.com//.default". This is what the Azure SDKs do when they turn a v1 resource into a v2
// scope (Azure.Identity's ScopeUtilities.ResourceToScopes in .NET, azure-cli's resource_to_scopes, which says why
// it must not trim, and the azure-workload-identity proxy's getScope, which trimmed one slash in its first releases
// and stopped); azure-identity (Python)'s _scopes_to_resource is the inverse, stripping only "/.default". Entra
// takes everything before the last "/" as the resource, so the token's `aud` is exactly what the pod asked for:
// "https://management.azure.com/" (ARM accepts both spellings, other resources may not). The comparison is exact
// (case-sensitive), as in the SDKs. The caller rejects an empty resource before asking.
std::string scope_for_resource(std::string_view resource);

}  // namespace podid::entra
