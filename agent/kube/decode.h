// API JSON -> the typed objects of objects.h. Tolerant: a missing or mistyped field decodes as its
// default, a non-object decodes as an empty object; nothing throws.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "kube/objects.h"

namespace podid::kube {

ObjectMeta decode_meta(const nlohmann::json& object);
Pod decode_pod(const nlohmann::json& object);
AzureIdentity decode_azure_identity(const nlohmann::json& object);
AzureIdentityBinding decode_azure_identity_binding(const nlohmann::json& object);
AzurePodIdentityException decode_azure_pod_identity_exception(const nlohmann::json& object);
ServiceAccount decode_service_account(const nlohmann::json& object);

// "containerd://0123…" -> "0123…" (any "<runtime>://" prefix: containerd, cri-o, docker, …).
std::string strip_container_runtime(std::string_view container_id);

// "namespace/name", or "name" for cluster-scoped objects: the key informers index objects by.
std::string object_key(const nlohmann::json& object);

}  // namespace podid::kube
