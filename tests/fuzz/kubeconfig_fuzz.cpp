// kubeconfig (YAML or JSON) and server URL parsing (agent/kube/config). Invariant: never throws (yaml-cpp
// does, on its own; the parser must catch it), and an accepted config names a host.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    podid::kube::parse_server_url(text);
    // Relative file references resolve under a directory that does not exist: nothing on the machine is read.
    auto config = podid::kube::parse_kubeconfig(text, "/nonexistent-podid-fuzz");
    if (config)
        PODID_FUZZ_CHECK(!config->host.empty());
    return 0;
}
