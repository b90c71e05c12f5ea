// Which pod (and container) a cgroup v2 path belongs to, from the path shapes kubelet creates.
//
// systemd driver:  /kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid, '_' for '-'>.slice
//                      [/<runtime>-<64 hex>.scope]     runtime: cri-containerd, crio, docker
// cgroupfs driver: /kubepods[/<qos>]/pod<uid>[/[<runtime>-]<64 hex>]
// (qos: burstable or besteffort; guaranteed pods sit directly under the kubepods cgroup.)
//
// Anything else is not a pod: the kubepods and QoS cgroups themselves, CRI-O's conmon scopes, malformed UIDs or
// container ids. Cgroups a container created below its own scope (systemd in a container, a nested kind node) still
// belong to that container: the container owns its delegated subtree, so the outermost kubelet pod is the answer and
// a "kubepods.slice/...pod<uid>..." path forged inside a container cannot name another pod.
#pragma once

#include <optional>
#include <string_view>

#include "caller/caller.h"

namespace podid {

// Finds the first "kubepods.slice" or "kubepods" segment anywhere in `path` (the kubelet's root may sit below a
// prefix) and parses what follows. Never throws; any input that is not a kubelet shape gives nullopt.
std::optional<PodRef> parse_kubelet_cgroup(std::string_view path);

// Same, but only below `kubepods_root` (a path such as "/kubepods.slice" from detect_kubepods_root()); the agent
// should use this form, so that a cgroup named kubepods.slice elsewhere on the node (say, under a docker container
// with a writable cgroupfs) cannot pass for a pod.
std::optional<PodRef> parse_kubelet_cgroup(std::string_view path, std::string_view kubepods_root);

}  // namespace podid
