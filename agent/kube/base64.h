// Standard base64 (RFC 4648 §4) decoding for kubeconfig "*-data" fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace podid::kube {

// Whitespace (line breaks from wrapped YAML scalars) is ignored; padding is optional.
// nullopt for any other character outside the alphabet or a truncated final group.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace podid::kube
