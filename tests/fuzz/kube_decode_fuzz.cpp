// Kubernetes API JSON (watch events and list items) into typed objects (agent/kube/decode). The API
// server is trusted less than it looks: a proxy, a version skew or a hostile CRD author can put any shape
// in an object. Invariant: decoding never throws, whatever the shape.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "kube/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    podid::kube::strip_container_runtime(text);
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded())
        return 0;
    // A watch event wraps the object: {"type": "...", "object": {...}}.
    const nlohmann::json& object = doc.is_object() && doc.contains("object") ? doc["object"] : doc;
    podid::kube::decode_meta(object);
    podid::kube::Pod pod = podid::kube::decode_pod(object);
    for (const auto& id : pod.container_ids)
        PODID_FUZZ_CHECK(!id.empty());
    pod.info();
    podid::kube::decode_azure_identity(object);
    podid::kube::decode_azure_identity_binding(object);
    podid::kube::decode_azure_pod_identity_exception(object);
    podid::kube::decode_service_account(object);
    podid::kube::object_key(object);
    return 0;
}
