#include "image/daemonset_container.h"

#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <set>

namespace podid::test {

using nlohmann::json;

namespace {

std::string cap_name(std::string c) {
    for (auto& ch : c)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return c.rfind("CAP_", 0) == 0 ? c : "CAP_" + c;
}

// Kubernetes quantities as podman's tmpfs-size takes them: "1Mi" -> "1m", "64Ki" -> "64k", plain bytes as is.
Result<std::string> tmpfs_size(const std::string& quantity) {
    static const std::vector<std::pair<std::string, std::string>> units = {{"Ki", "k"}, {"Mi", "m"}, {"Gi", "g"},
                                                                           {"k", "k"},  {"M", "m"},  {"G", "g"}};
    for (const auto& [suffix, podman] : units)
        if (quantity.size() > suffix.size() && quantity.ends_with(suffix))
            return quantity.substr(0, quantity.size() - suffix.size()) + podman;
    if (!quantity.empty() && quantity.find_first_not_of("0123456789") == std::string::npos)
        return quantity;
    return make_error("emptyDir sizeLimit " + quantity + " is not a quantity this test translates");
}

}  // namespace

Result<ContainerSpec> daemonset_container(const json& rendered, const std::string& name) {
    for (const auto& o : rendered) {
        if (o.value("kind", "") != "DaemonSet" || o["metadata"].value("name", "") != name)
            continue;
        ContainerSpec spec;
        spec.pod_spec = o["spec"]["template"]["spec"];
        if (!spec.pod_spec.contains("containers") || spec.pod_spec["containers"].size() != 1)
            return make_error("the DaemonSet " + name + " must have exactly one container for this test");
        spec.container = spec.pod_spec["containers"][0];
        const json sc = spec.container.value("securityContext", json::object());
        for (const auto& c : sc.value("capabilities", json::object()).value("add", json::array()))
            spec.capabilities.push_back(cap_name(c.get<std::string>()));
        return spec;
    }
    return make_error("the rendering has no DaemonSet " + name);
}

Result<PodmanRun> podman_run_args(const ContainerSpec& spec, const ContainerHost& host,
                                  const std::string& drop_capability) {
    PodmanRun run;
    auto& o = run.options;
    const json& pod = spec.pod_spec;
    const json& c = spec.container;
    const json sc = c.value("securityContext", json::object());

    // Pod-level settings.
    if (pod.value("hostNetwork", false))
        o.push_back("--network=ns:" + host.node_netns);
    if (pod.value("hostPID", false) || pod.value("hostIPC", false))
        return make_error("hostPID/hostIPC are not modelled by this test");
    if (pod.contains("securityContext") && !pod["securityContext"].empty())
        return make_error("a pod-level securityContext is not modelled by this test: " + pod["securityContext"].dump());
    run.stop_timeout_seconds = pod.value("terminationGracePeriodSeconds", 30);
    // containerd and CRI-O give every container a cgroup namespace of its own on cgroup v2.
    o.push_back("--cgroupns=private");
    if (!host.cgroup_parent.empty())
        o.push_back("--cgroup-parent=" + host.cgroup_parent);

    // The container's securityContext.
    static const std::set<std::string> modelled = {
        "runAsUser",    "runAsNonRoot",  "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
        "capabilities", "seccompProfile"};
    for (const auto& [key, value] : sc.items())
        if (!modelled.contains(key))
            return make_error("securityContext." + key + " is not modelled by this test");
    if (sc.value("privileged", false))
        o.push_back("--privileged");
    if (sc.contains("runAsUser"))
        o.push_back("--user=" + std::to_string(sc["runAsUser"].get<int64_t>()));
    if (!sc.value("allowPrivilegeEscalation", true))
        o.push_back("--security-opt=no-new-privileges");
    if (sc.value("readOnlyRootFilesystem", false)) {
        // Kubernetes adds no tmpfs on /tmp, /run or /var/tmp; podman's --read-only does unless told not to.
        o.push_back("--read-only");
        o.push_back("--read-only-tmpfs=false");
    }
    const json caps = sc.value("capabilities", json::object());
    for (const auto& d : caps.value("drop", json::array())) {
        std::string name = d.get<std::string>();
        o.push_back(name == "ALL" || name == "all" ? "--cap-drop=all" : "--cap-drop=" + cap_name(name));
    }
    for (const auto& a : spec.capabilities)
        if (a != drop_capability)
            o.push_back("--cap-add=" + a);
    const std::string seccomp = sc.value("seccompProfile", json::object()).value("type", "RuntimeDefault");
    if (seccomp == "Unconfined")
        o.push_back("--security-opt=seccomp=unconfined");
    else if (seccomp != "RuntimeDefault")
        return make_error("seccompProfile " + seccomp + " is not modelled by this test");

    // Volumes: emptyDir -> tmpfs, hostPath -> the test's stand-in directory.
    std::map<std::string, json> volumes;
    for (const auto& v : pod.value("volumes", json::array()))
        volumes[v.value("name", "")] = v;
    for (const auto& m : c.value("volumeMounts", json::array())) {
        const std::string name = m.value("name", ""), target = m.value("mountPath", "");
        if (!volumes.contains(name))
            return make_error("volumeMount " + name + " names no volume");
        const json& v = volumes[name];
        const bool read_only = m.value("readOnly", false);
        if (v.contains("emptyDir")) {
            std::string opt = "type=tmpfs,destination=" + target;
            if (v["emptyDir"].contains("sizeLimit")) {
                auto size = tmpfs_size(v["emptyDir"]["sizeLimit"].get<std::string>());
                if (!size)
                    return size.error();
                opt += ",tmpfs-size=" + *size;
            }
            o.push_back("--mount=" + opt + (read_only ? ",ro" : ""));
        } else if (v.contains("hostPath")) {
            const std::string path = v["hostPath"].value("path", ""), type = v["hostPath"].value("type", "");
            std::string source;
            if (auto it = host.host_paths.find(path); it != host.host_paths.end()) {
                source = it->second;
            } else if (type == "DirectoryOrCreate" || type.empty()) {
                source = host.scratch + "/hostpath" + path;
                std::filesystem::create_directories(source);
            } else {
                return make_error("hostPath " + path + " (type " + type + ") has no stand-in in this test");
            }
            std::string opt = "type=bind,source=" + source + ",destination=" + target;
            const std::string propagation = m.value("mountPropagation", "None");
            if (propagation == "HostToContainer")
                opt += ",bind-propagation=rslave";
            else if (propagation == "Bidirectional")
                opt += ",bind-propagation=rshared";
            o.push_back("--mount=" + opt + (read_only ? ",ro" : ""));
        } else {
            return make_error("volume " + name + " is of a type this test does not model: " + v.dump());
        }
    }
    if (!host.service_account_dir.empty())
        o.push_back("--mount=type=bind,source=" + host.service_account_dir +
                    ",destination=/var/run/secrets/kubernetes.io/serviceaccount,ro");

    // Environment: what kubelet adds, then the container's own (values and the downward API).
    for (const auto& [k, v] : host.kubelet_env)
        o.push_back("--env=" + k + "=" + v);
    for (const auto& e : c.value("env", json::array())) {
        const std::string name = e.value("name", "");
        if (e.contains("value")) {
            o.push_back("--env=" + name + "=" + e["value"].get<std::string>());
        } else if (e.contains("valueFrom") && e["valueFrom"].contains("fieldRef")) {
            const std::string field = e["valueFrom"]["fieldRef"].value("fieldPath", "");
            auto it = host.fields.find(field);
            if (it == host.fields.end())
                return make_error("env " + name + " comes from " + field + ", which this test does not fill");
            o.push_back("--env=" + name + "=" + it->second);
        } else {
            return make_error("env " + name + " has a source this test does not model: " + e.dump());
        }
    }
    if (c.contains("command"))
        return make_error("the container's command is not modelled by this test (the image's entrypoint is run)");
    for (const auto& a : c.value("args", json::array()))
        run.args.push_back(a.get<std::string>());
    return run;
}

}  // namespace podid::test
