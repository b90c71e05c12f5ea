// /metadata/instance: podid forwards non-identity paths to the node's IMDS, so the emulator answers them
// with a small but plausible document.
#pragma once

#include <nlohmann/json.hpp>

#include "http_types.h"
#include "query.h"
#include "vm_profile.h"

namespace podid::emulator {

nlohmann::json instance_document(const VmProfile& vm);

// `sub_path` is what follows "/metadata/instance" ("", "/compute", "/compute/location", ...).
// `format=text` on a leaf returns the bare value, as IMDS does.
HttpResponse answer_instance(const HttpRequest& req, const Target& target, std::string_view sub_path,
                             const VmProfile& vm);

}  // namespace podid::emulator
