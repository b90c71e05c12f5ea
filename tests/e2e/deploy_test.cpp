// The Kubernetes manifests under deploy/: rendered by the real kustomize (`kubectl kustomize`), turned into JSON by
// yq, and checked for what the agent and the cluster rely on. No cluster, no privileges, no network: kustomize and
// yq only read files.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/options.h"

namespace podid {
namespace {

using nlohmann::json;

const std::string kSource = PODID_SOURCE_DIR;
const std::string kNamespace = "podid-system";

struct CommandResult {
    int status = -1;  // exit status, or -1 when the command did not exit normally
    std::string out;
    std::string err;
};

// Runs `command` with /bin/sh; stdin from `input` when given.
CommandResult run(const std::string& command, const std::string& input = "") {
    char in_path[] = "/tmp/podid-deploy-test-in.XXXXXX";
    char err_path[] = "/tmp/podid-deploy-test-err.XXXXXX";
    int in_fd = ::mkstemp(in_path);
    int err_fd = ::mkstemp(err_path);
    CommandResult r;
    if (in_fd < 0 || err_fd < 0) {
        r.err = "mkstemp failed";
        return r;
    }
    if (!input.empty() && ::write(in_fd, input.data(), input.size()) != static_cast<ssize_t>(input.size()))
        r.err = "cannot write the command's input";
    ::close(in_fd);
    ::close(err_fd);
    std::string full = "(" + command + ") <" + in_path + " 2>" + err_path;
    if (FILE* p = ::popen(full.c_str(), "r")) {
        char buf[65536];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
            r.out.append(buf, n);
        int status = ::pclose(p);
        r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::ifstream err(err_path);
    r.err += std::string(std::istreambuf_iterator<char>(err), {});
    ::unlink(in_path);
    ::unlink(err_path);
    return r;
}

bool have(const std::string& tool) { return run("command -v " + tool).status == 0; }

// Fails the test with the fix when a tool is missing; tests that need it stop (ASSERT_* in the caller).
::testing::AssertionResult tools_present() {
    std::string missing;
    if (!have("kubectl"))
        missing +=
            "kubectl is missing: install a kubectl >= 1.21 (kustomize v4+), e.g. the `kubectl` package of the "
            "Kubernetes apt repository. Debian's `apt-get install kubernetes-client` gives kubectl 1.20, whose "
            "kustomize v2.0.3 rejects these kustomizations.\n";
    if (!have("yq"))
        missing += "yq is missing: apt-get install yq (tools/install-deps.sh)\n";
    if (!have("yamllint"))
        missing += "yamllint is missing: apt-get install yamllint (tools/install-deps.sh)\n";
    if (missing.empty())
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << missing;
}

// `kubectl kustomize deploy/<dir>` as a JSON array of objects.
json render(const std::string& dir) {
    CommandResult yaml = run("kubectl kustomize " + kSource + "/deploy/" + dir);
    if (yaml.status != 0) {
        ADD_FAILURE() << "kubectl kustomize deploy/" << dir << " failed (" << yaml.status << "): " << yaml.err;
        return json::array();
    }
    CommandResult js = run("yq -s .", yaml.out);
    if (js.status != 0) {
        ADD_FAILURE() << "yq could not read the rendering of deploy/" << dir << ": " << js.err;
        return json::array();
    }
    json objects = json::parse(js.out, nullptr, false);
    if (!objects.is_array()) {
        ADD_FAILURE() << "yq did not print a JSON array for deploy/" << dir;
        return json::array();
    }
    return objects;
}

const json* find(const json& objects, const std::string& kind, const std::string& name) {
    for (const auto& o : objects)
        if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name)
            return &o;
    return nullptr;
}

// The value at a JSON pointer, or null when any step is missing.
json at(const json& j, const std::string& pointer) {
    json::json_pointer p(pointer);
    return j.contains(p) ? j.at(p) : json();
}

std::set<std::string> strings(const json& array) {
    std::set<std::string> out;
    if (array.is_array())
        for (const auto& s : array)
            out.insert(s.get<std::string>());
    return out;
}

// Every "privileged": true anywhere below `j`, as JSON pointers.
void find_privileged(const json& j, const std::string& where, std::vector<std::string>& found) {
    if (j.is_object()) {
        for (const auto& [key, value] : j.items()) {
            if (key == "privileged" && value == true)
                found.push_back(where + "/" + key);
            find_privileged(value, where + "/" + key, found);
        }
    } else if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i)
            find_privileged(j[i], where + "/" + std::to_string(i), found);
    }
}

class DeployTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(tools_present()); }
};

using Ref = std::pair<std::string, std::string>;  // kind, name

struct RenderCase {
    std::string dir;
    std::set<Ref> objects;
};

const std::set<Ref> kAgentObjects = {
    {"Namespace", "podid-system"},         {"ServiceAccount", "podid-agent"}, {"ClusterRole", "podid-agent"},
    {"ClusterRoleBinding", "podid-agent"}, {"DaemonSet", "podid-agent"},
};
const std::set<Ref> kCrdObjects = {
    {"CustomResourceDefinition", "azureidentities.aadpodidentity.k8s.io"},
    {"CustomResourceDefinition", "azureidentitybindings.aadpodidentity.k8s.io"},
    {"CustomResourceDefinition", "azurepodidentityexceptions.aadpodidentity.k8s.io"},
};

// The example overlay adds the policy that narrows the agent's TokenRequests (deploy/components/token-request-policy).
const std::set<Ref> kTokenPolicyObjects = {
    {"ValidatingAdmissionPolicy", "podid-agent-token-requests"},
    {"ValidatingAdmissionPolicyBinding", "podid-agent-token-requests"},
};

std::set<Ref> example() {
    std::set<Ref> all = kAgentObjects;
    all.insert(kCrdObjects.begin(), kCrdObjects.end());
    all.insert(kTokenPolicyObjects.begin(), kTokenPolicyObjects.end());
    return all;
}

TEST_F(DeployTest, EachKustomizationRendersExactlyItsObjects) {
    const std::vector<RenderCase> cases = {
        {"base", kAgentObjects},
        {"crds", kCrdObjects},
        {"overlays/example", example()},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("deploy/" + c.dir);
        std::set<Ref> got;
        for (const auto& o : render(c.dir))
            got.insert({o.value("kind", ""), o["metadata"].value("name", "")});
        EXPECT_EQ(got, c.objects);
    }
}

TEST_F(DeployTest, NamespacedObjectsLiveInPodidSystem) {
    json objects = render("overlays/example");
    for (const auto& o : objects) {
        std::string kind = o.value("kind", "");
        SCOPED_TRACE(kind + " " + o["metadata"].value("name", ""));
        if (kind == "ServiceAccount" || kind == "DaemonSet")
            EXPECT_EQ(at(o, "/metadata/namespace"), kNamespace);
        else
            EXPECT_FALSE(o["metadata"].contains("namespace")) << "a cluster-scoped object carries a namespace";
    }
}

// The example overlay's ValidatingAdmissionPolicy: only the agent's own TokenRequests, only Pod-bound, only Entra's
// audience, at most a day, denied otherwise. No API server runs here, so this checks what it says, not that it is
// enforced.
TEST_F(DeployTest, TokenRequestPolicyNarrowsTheAgentsTokens) {
    json objects = render("overlays/example");
    const json* policy = find(objects, "ValidatingAdmissionPolicy", "podid-agent-token-requests");
    const json* binding = find(objects, "ValidatingAdmissionPolicyBinding", "podid-agent-token-requests");
    ASSERT_NE(policy, nullptr);
    ASSERT_NE(binding, nullptr);
    EXPECT_EQ(at(*policy, "/apiVersion"), "admissionregistration.k8s.io/v1");
    EXPECT_EQ(at(*policy, "/spec/failurePolicy"), "Fail");
    EXPECT_EQ(strings((*policy)["spec"]["matchConstraints"]["resourceRules"][0]["resources"]),
              std::set<std::string>{"serviceaccounts/token"});
    EXPECT_NE(at(*policy, "/spec/matchConditions/0/expression")
                  .get<std::string>()
                  .find("system:serviceaccount:podid-system:podid-agent"),
              std::string::npos);
    std::string expressions;
    for (const auto& v : (*policy)["spec"]["validations"])
        expressions += v.value("expression", "") + "\n";
    EXPECT_NE(expressions.find("object.spec.boundObjectRef.kind == 'Pod'"), std::string::npos) << expressions;
    EXPECT_NE(expressions.find("['api://AzureADTokenExchange']"), std::string::npos) << expressions;
    EXPECT_NE(expressions.find("<= 86400"), std::string::npos) << expressions;
    EXPECT_EQ(at(*binding, "/spec/policyName"), "podid-agent-token-requests");
    EXPECT_EQ(strings((*binding)["spec"]["validationActions"]), std::set<std::string>{"Deny"});
}

TEST_F(DeployTest, ClusterRoleOnlyReadsWhatDecidesAnIdentity) {
    json objects = render("base");
    const json* role = find(objects, "ClusterRole", "podid-agent");
    ASSERT_NE(role, nullptr);
    const std::set<std::string> read_only = {"get", "list", "watch"};
    std::set<std::pair<std::string, std::string>> granted;  // api group, resource
    for (const auto& rule : (*role)["rules"]) {
        EXPECT_FALSE(rule.contains("nonResourceURLs")) << rule.dump();
        EXPECT_FALSE(rule.contains("resourceNames")) << rule.dump();
        // The one write: service-account tokens for Workload Identity federation, create only.
        const bool token_rule = strings(rule["resources"]) == std::set<std::string>{"serviceaccounts/token"};
        EXPECT_EQ(strings(rule["verbs"]), token_rule ? std::set<std::string>{"create"} : read_only) << rule.dump();
        for (const auto& group : rule["apiGroups"])
            for (const auto& resource : rule["resources"])
                granted.insert({group.get<std::string>(), resource.get<std::string>()});
    }
    const std::set<std::pair<std::string, std::string>> expected = {
        {"", "pods"},
        {"", "serviceaccounts"},
        {"aadpodidentity.k8s.io", "azureidentities"},
        {"aadpodidentity.k8s.io", "azureidentitybindings"},
        {"aadpodidentity.k8s.io", "azurepodidentityexceptions"},
        {"", "serviceaccounts/token"},
    };
    EXPECT_EQ(granted, expected) << "no secrets, no wildcards, nothing the agent does not watch or need";

    const json* binding = find(objects, "ClusterRoleBinding", "podid-agent");
    ASSERT_NE(binding, nullptr);
    EXPECT_EQ(at(*binding, "/roleRef/kind"), "ClusterRole");
    EXPECT_EQ(at(*binding, "/roleRef/name"), "podid-agent");
    ASSERT_EQ((*binding)["subjects"].size(), 1u);
    EXPECT_EQ(at(*binding, "/subjects/0/kind"), "ServiceAccount");
    EXPECT_EQ(at(*binding, "/subjects/0/name"), "podid-agent");
    EXPECT_EQ(at(*binding, "/subjects/0/namespace"), kNamespace);
}

// What every rendering of the DaemonSet must keep, base or overlay.
void check_daemonset(const json& ds) {
    const json spec = ds["spec"]["template"]["spec"];
    EXPECT_EQ(at(ds, "/spec/updateStrategy/type"), "RollingUpdate");
    // A surge rollout: the new agent takes over from the old one on each node (docs/upgrades.md).
    EXPECT_EQ(at(ds, "/spec/updateStrategy/rollingUpdate/maxSurge"), 1);
    EXPECT_EQ(at(ds, "/spec/updateStrategy/rollingUpdate/maxUnavailable"), 0);
    const json pod_labels = at(ds, "/spec/template/metadata/labels");
    for (const auto& [key, value] : ds["spec"]["selector"]["matchLabels"].items())
        EXPECT_EQ(pod_labels.is_object() ? pod_labels.value(key, json()) : json(), value)
            << "the selector's " << key << " does not match the pods";

    EXPECT_EQ(spec.value("serviceAccountName", ""), "podid-agent");
    EXPECT_EQ(spec.value("hostNetwork", false), true);
    EXPECT_EQ(spec.value("dnsPolicy", ""), "ClusterFirstWithHostNet");
    EXPECT_EQ(spec.value("priorityClassName", ""), "system-node-critical");
    EXPECT_EQ(spec.value("terminationGracePeriodSeconds", 0), 30);
    bool tolerates_all = false;
    for (const auto& t : spec["tolerations"])
        tolerates_all =
            tolerates_all || (t.value("operator", "") == "Exists" && !t.contains("key") && !t.contains("effect"));
    EXPECT_TRUE(tolerates_all) << "needs a toleration {operator: Exists} without key or effect";

    ASSERT_EQ(spec["containers"].size(), 1u);
    const json c = spec["containers"][0];

    std::map<std::string, std::string> env_fields;
    for (const auto& e : c["env"])
        env_fields[e.value("name", "")] = at(e, "/valueFrom/fieldRef/fieldPath").is_string()
                                              ? at(e, "/valueFrom/fieldRef/fieldPath").get<std::string>()
                                              : "";
    EXPECT_EQ(env_fields["NODE_NAME"], "spec.nodeName");
    EXPECT_EQ(env_fields["NODE_IP"], "status.hostIP");

    // A hostNetwork pod's container ports are host ports: declared, they keep the surge pod from scheduling
    // beside the old one (the scheduler's NodePorts filter).
    EXPECT_FALSE(c.contains("ports") && !c["ports"].empty()) << "no ports may be declared: " << c["ports"].dump();
    EXPECT_EQ(at(c, "/livenessProbe/httpGet/path"), "/healthz");
    EXPECT_EQ(at(c, "/livenessProbe/httpGet/port"), 9090);
    // Readiness asks this container's own agent (the metrics port is shared with the old agent during a hand-over).
    EXPECT_EQ(at(c, "/readinessProbe/exec/command/0"), "podidctl");
    EXPECT_EQ(at(c, "/readinessProbe/exec/command/1"), "status");

    EXPECT_EQ(at(c, "/resources/requests/cpu"), "50m");
    EXPECT_EQ(at(c, "/resources/requests/memory"), "32Mi");
    EXPECT_EQ(at(c, "/resources/limits/memory"), "128Mi");

    const json sc = c["securityContext"];
    EXPECT_NE(at(sc, "/privileged"), true);
    EXPECT_EQ(at(sc, "/runAsUser"), 0);
    EXPECT_EQ(at(sc, "/readOnlyRootFilesystem"), true);
    EXPECT_EQ(at(sc, "/allowPrivilegeEscalation"), false);
    EXPECT_EQ(strings(at(sc, "/capabilities/drop")), std::set<std::string>{"ALL"});
    EXPECT_EQ(strings(at(sc, "/capabilities/add")),
              (std::set<std::string>{"BPF", "NET_ADMIN", "PERFMON", "DAC_READ_SEARCH"}));
    EXPECT_EQ(at(sc, "/seccompProfile/type"), "Unconfined") << "RuntimeDefault blocks bpf(2) without SYS_ADMIN";

    std::map<std::string, std::string> host_paths;  // volume name -> host path
    for (const auto& v : spec["volumes"])
        host_paths[v.value("name", "")] =
            at(v, "/hostPath/path").is_string() ? at(v, "/hostPath/path").get<std::string>() : "";
    std::map<std::string, json> mounts;  // host path -> volumeMount
    for (const auto& m : c["volumeMounts"])
        mounts[host_paths[m.value("name", "")]] = m;
    ASSERT_EQ(mounts.count("/sys/fs/bpf"), 1u);
    ASSERT_EQ(mounts.count("/sys/fs/cgroup"), 1u);
    ASSERT_EQ(mounts.count("/var/log/podid"), 1u);
    ASSERT_EQ(mounts.count("/run/podid"), 1u) << "the host directory the old and the new agent share";
    EXPECT_EQ(mounts["/sys/fs/cgroup"].value("mountPath", ""), "/sys/fs/cgroup");
    // Writable: the self-check and the feature probes create (and remove) a cgroup of their own.
    EXPECT_EQ(mounts["/sys/fs/cgroup"].value("readOnly", false), false);

    // The flags must parse as the agent parses them, and pin and audit on the host paths mounted above.
    std::vector<std::string> args;
    for (const auto& a : c["args"])
        args.push_back(a.get<std::string>());
    auto options = parse_agent_options(args, {{"NODE_IP", "10.0.0.4"}});
    ASSERT_TRUE(options) << options.error().message;
    std::string bpf_mount = mounts["/sys/fs/bpf"].value("mountPath", "");
    EXPECT_EQ(options->bpffs.rfind(bpf_mount + "/", 0), 0u) << options->bpffs << " is not under " << bpf_mount;
    std::string audit_mount = mounts["/var/log/podid"].value("mountPath", "");
    EXPECT_EQ(options->audit_log.rfind(audit_mount + "/", 0), 0u) << options->audit_log;
    // The root filesystem is read-only: the admin socket's directory must be a writable volume.
    const std::string socket_dir = options->admin_socket.substr(0, options->admin_socket.rfind('/'));
    bool socket_dir_mounted = false;
    for (const auto& m : c["volumeMounts"])
        socket_dir_mounted |= m.value("mountPath", "") == socket_dir && !m.value("readOnly", false);
    EXPECT_TRUE(socket_dir_mounted) << options->admin_socket << " would sit on the read-only root filesystem";
    // The hand-over socket and the token cache are in the host directory both agents of a node see; the admin
    // socket is not (each pod's podidctl talks to its own agent).
    const std::string node_run = mounts["/run/podid"].value("mountPath", "");
    EXPECT_EQ(options->handover_socket.rfind(node_run + "/", 0), 0u) << options->handover_socket;
    EXPECT_EQ(options->token_cache_file.rfind(node_run + "/", 0), 0u) << options->token_cache_file;
    EXPECT_NE(options->admin_socket.rfind(node_run + "/", 0), 0u) << options->admin_socket;
    EXPECT_FALSE(options->exit_after_handover) << "an exited container would be restarted and take the pins back";
    // podidctl run with kubectl exec finds the pins where the agent puts them.
    std::map<std::string, std::string> env;
    for (const auto& e : c["env"])
        if (e.contains("value"))
            env[e.value("name", "")] = e.value("value", "");
    EXPECT_EQ(env["PODID_BPFFS"], options->bpffs);
}

TEST_F(DeployTest, DaemonSetRunsOnEveryNodeWithLeastPrivilege) {
    for (const std::string dir : {"base", "overlays/example"}) {
        SCOPED_TRACE("deploy/" + dir);
        json objects = render(dir);
        const json* ds = find(objects, "DaemonSet", "podid-agent");
        ASSERT_NE(ds, nullptr);
        check_daemonset(*ds);
    }
}

TEST_F(DeployTest, NothingIsPrivileged) {
    for (const std::string dir : {"base", "crds", "overlays/example"}) {
        std::vector<std::string> found;
        json objects = render(dir);
        for (size_t i = 0; i < objects.size(); ++i)
            find_privileged(objects[i], "/" + std::to_string(i), found);
        EXPECT_TRUE(found.empty()) << "deploy/" << dir << ": privileged: true at " << found.front();
    }
}

TEST_F(DeployTest, OverlaySetsImageAndFlags) {
    struct Case {
        std::string dir;
        std::string image;
        bool block_instance_metadata;
    };
    const std::vector<Case> cases = {
        {"base", "podid:0.1.0", false},
        {"overlays/example", "myregistry.azurecr.io/podid:0.1.0", true},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("deploy/" + c.dir);
        json objects = render(c.dir);
        const json* ds = find(objects, "DaemonSet", "podid-agent");
        ASSERT_NE(ds, nullptr);
        EXPECT_EQ(at(*ds, "/spec/template/spec/containers/0/image"), c.image);
        std::vector<std::string> args;
        for (const auto& a : at(*ds, "/spec/template/spec/containers/0/args"))
            args.push_back(a.get<std::string>());
        auto options = parse_agent_options(args, {{"NODE_IP", "10.0.0.4"}});
        ASSERT_TRUE(options) << options.error().message;
        EXPECT_EQ(options->block_instance_metadata, c.block_instance_metadata);
    }
}

// One row per field the agent (agent/kube) or an existing AAD Pod Identity object relies on.
struct CrdField {
    std::string crd;
    std::string pointer;  // inside openAPIV3Schema
    std::string type;
};

TEST_F(DeployTest, CrdsMatchTheAadPodIdentityV1Shape) {
    json objects = render("crds");
    for (const auto& [kind, name] : kCrdObjects) {
        SCOPED_TRACE(name);
        const json* crd = find(objects, kind, name);
        ASSERT_NE(crd, nullptr);
        EXPECT_EQ(crd->value("apiVersion", ""), "apiextensions.k8s.io/v1");
        EXPECT_EQ(at(*crd, "/spec/group"), "aadpodidentity.k8s.io");
        EXPECT_EQ(at(*crd, "/spec/scope"), "Namespaced");
        EXPECT_TRUE(at(*crd, "/metadata/annotations/api-approved.kubernetes.io").is_string())
            << "the API server refuses CRDs in *.k8s.io groups without api-approved.kubernetes.io";
        EXPECT_EQ(name, at(*crd, "/spec/names/plural").get<std::string>() + ".aadpodidentity.k8s.io");
        ASSERT_EQ((*crd)["spec"]["versions"].size(), 1u);
        EXPECT_EQ(at(*crd, "/spec/versions/0/name"), "v1");
        EXPECT_EQ(at(*crd, "/spec/versions/0/served"), true);
        EXPECT_EQ(at(*crd, "/spec/versions/0/storage"), true);
    }
    const std::vector<CrdField> fields = {
        {"azureidentities", "/properties/spec/properties/type", "integer"},
        {"azureidentities", "/properties/spec/properties/resourceID", "string"},
        {"azureidentities", "/properties/spec/properties/clientID", "string"},
        {"azureidentities", "/properties/spec/properties/tenantID", "string"},
        {"azureidentities", "/properties/spec/properties/clientPassword", "object"},
        {"azureidentitybindings", "/properties/spec/properties/azureIdentity", "string"},
        {"azureidentitybindings", "/properties/spec/properties/selector", "string"},
        {"azureidentitybindings", "/properties/spec/properties/weight", "integer"},
        {"azurepodidentityexceptions", "/properties/spec/properties/podLabels", "object"},
        {"azurepodidentityexceptions", "/properties/spec/properties/podLabels/additionalProperties", "string"},
    };
    for (const auto& f : fields) {
        SCOPED_TRACE(f.crd + f.pointer);
        const json* crd = find(objects, "CustomResourceDefinition", f.crd + ".aadpodidentity.k8s.io");
        ASSERT_NE(crd, nullptr);
        EXPECT_EQ(at(*crd, "/spec/versions/0/schema/openAPIV3Schema" + f.pointer + "/type"), f.type);
    }
}

TEST_F(DeployTest, YamlLintIsClean) {
    CommandResult lint = run("yamllint -s -f parsable -c " + kSource + "/deploy/.yamllint.yaml " + kSource + "/deploy");
    EXPECT_EQ(lint.status, 0) << lint.out << lint.err;
}

}  // namespace
}  // namespace podid
