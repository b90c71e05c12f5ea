// The DaemonSet's agent container as `podman run` arguments, read from the rendered manifest (`kubectl kustomize
// deploy/base`), so the image test runs the image with what the manifest says rather than a copy of it that could
// drift: the capabilities (drop, then add), privileged, allowPrivilegeEscalation, readOnlyRootFilesystem, runAsUser,
// the seccomp profile, hostNetwork (the test node's netns), a private cgroup namespace (what containerd and CRI-O
// give a container on cgroup v2), every volume mount (emptyDir: a tmpfs of its sizeLimit; hostPath: a directory
// of the test standing in for the host's path), the env (values and the downward API), and the args.
//
// What podman cannot express, or a test node cannot stand in for, is refused with a sentence (an unknown volume
// type, a fieldRef the test does not model, a Localhost seccomp profile), so a change to the manifest fails the test
// loudly instead of running something else.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podid::test {

struct ContainerHost {
    std::string node_netns;     // /run/netns/<name>: hostNetwork
    std::string cgroup_parent;  // --cgroup-parent, relative to the cgroup hierarchies (cgroupfs manager)
    // hostPath path -> directory of the test standing in for it. A hostPath not listed gets a fresh directory under
    // `scratch` (DirectoryOrCreate and DirectoryOrCreate-like types only; `Directory` must be listed).
    std::map<std::string, std::string> host_paths;
    std::string scratch;
    // fieldRef.fieldPath -> value: spec.nodeName, status.hostIP, status.podIP, metadata.name, metadata.namespace...
    std::map<std::string, std::string> fields;
    // What kubelet adds to every pod: KUBERNETES_SERVICE_HOST/PORT, and the service account's token volume at
    // /var/run/secrets/kubernetes.io/serviceaccount (mounted read-only from this directory; empty: none).
    std::map<std::string, std::string> kubelet_env;
    std::string service_account_dir;
};

struct ContainerSpec {
    nlohmann::json pod_spec;                // the DaemonSet's spec.template.spec
    nlohmann::json container;               // its first container
    std::vector<std::string> capabilities;  // securityContext.capabilities.add, "CAP_"-prefixed
};

// The DaemonSet named `name` from `yq -s .` output of the rendering (a JSON array of objects).
Result<ContainerSpec> daemonset_container(const nlohmann::json& rendered, const std::string& name);

// `podman run` options (everything between "run" and the image), then, after the image, the args. `drop_capability`
// ("CAP_BPF"), when set, is left out of the added capabilities (the test of each capability's necessity).
struct PodmanRun {
    std::vector<std::string> options;
    std::vector<std::string> args;
    int stop_timeout_seconds = 30;
};
Result<PodmanRun> podman_run_args(const ContainerSpec& spec, const ContainerHost& host,
                                  const std::string& drop_capability = "");

}  // namespace podid::test
