// bpffs handling for the pin directory.
#pragma once

#include <string>

#include "common/result.h"

namespace podid {

// Makes sure `pin_dir` is a directory on a bpf filesystem: mounts bpffs on its parent when the parent
// is not one already (a fresh node has none mounted), then creates pin_dir (0700).
Result<void> ensure_pin_dir(const std::string& pin_dir);

bool is_on_bpffs(const std::string& path);

}  // namespace podid
