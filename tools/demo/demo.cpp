// podid-demo: the whole pipeline on a test node built inside this machine, then removed.
//
// Three pods (two bound to different identities, one unbound), the IMDS emulator at 169.254.169.254
// inside the node's network namespace, podid-agent with production defaults; each pod calls IMDS with
// plain curl. Then Kubernetes mode with an API-server double and the Entra ID emulator: a Workload Identity
// pod gets a federated token for an app that exists only in Entra ID. Nothing leaves this machine: every address lives
// in namespaces the demo creates.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "datapath/datapath.h"
#include "support/entra_node.h"
#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/podid_node.h"

namespace {

using nlohmann::json;
using podid::test::PodidNode;

const std::string kStorageReader = "5f1c7d2e-8a43-4e6b-9b1a-3c2d4e5f6a7b";
const std::string kVaultReader = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";
const std::string kNodeIdentity = "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b";
const std::string kWebApp = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";  // exists only in Entra ID
const std::string kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const std::string kNodeName = "demo-node";
const char* kPath = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

bool color = isatty(STDOUT_FILENO);
std::string bold(const std::string& s) { return color ? "\033[1m" + s + "\033[0m" : s; }
std::string green(const std::string& s) { return color ? "\033[32m" + s + "\033[0m" : s; }
std::string red(const std::string& s) { return color ? "\033[31m" + s + "\033[0m" : s; }

void step(const std::string& title) { std::cout << "\n" << bold("== " + title) << "\n"; }

std::string rel(PodidNode& pn, const std::string& abs) { return abs.substr(pn.node().cgroup2_mount().size()); }

int failures = 0;
void expect(bool ok, const std::string& what) {
    std::cout << "   " << (ok ? green("PASS ") : red("FAIL ")) << what << "\n";
    failures += ok ? 0 : 1;
}

void show_token(PodidNode& pn, const std::string& pod, const std::string& expected_client) {
    std::cout << "   $ kubectl exec " << pod << " -- curl -H 'Metadata: true' 'http://169.254.169.254" << kPath
              << "'\n";
    auto r = pn.curl(pod, kPath);
    json body = r.json();
    if (r.status == 200) {
        json claims = podid::test::jwt_claims(body.value("access_token", ""));
        std::cout << "   -> 200 client_id=" << body.value("client_id", "")
                  << " expires_in=" << body.value("expires_in", "") << " token.appid=" << claims.value("appid", "")
                  << " token.aud=" << claims.value("aud", "") << "\n";
    } else {
        std::cout << "   -> " << r.status << " " << r.body << r.err << "\n";
    }
    if (expected_client.empty())
        expect(r.status == 400 && body.value("error_description", "") == "Identity not found",
               pod + " is unbound: IMDS's own \"Identity not found\" (SDK credential chains move on)");
    else
        expect(r.status == 200 && body.value("client_id", "") == expected_client, pod + " got its own identity");
}

int run() {
    step("Building a test node: node netns (10.77.0.1, 169.254.169.254 on lo), 3 pods, kubelet-shaped cgroups");
    podid::test::PodidNodeOptions options;
    options.vm_identities = {kStorageReader, kVaultReader};
    options.system_identity = kNodeIdentity;
    options.bindings = json{{"bindings", json::array()}};
    auto pn = PodidNode::create(options);
    pn->add_pod({.name = "frontend"});
    pn->add_pod({.name = "worker", .qos = "besteffort"});
    pn->add_pod({.name = "batch", .qos = "guaranteed", .runtime = "crio"});
    for (const char* name : {"frontend", "worker", "batch"}) {
        const auto& p = pn->node().pod(name);
        std::cout << "   pod " << name << "  ip=" << p.ip << "  cgroup=" << p.cgroup_path << "\n";
    }
    json bindings = {{"bindings",
                      {{{"cgroup", rel(*pn, pn->node().pod("frontend").pod_cgroup_dir)},
                        {"identities", {{{"client_id", kStorageReader}, {"name", "storage-reader"}}}}},
                       {{"cgroup", rel(*pn, pn->node().pod("worker").pod_cgroup_dir)},
                        {"identities", {{{"client_id", kVaultReader}, {"name", "vault-reader"}}}}}}}};
    pn->write_bindings(bindings);
    std::cout << "   bindings file (" << pn->bindings_path() << "):\n" << bindings.dump(2) << "\n";

    step("Starting the IMDS emulator at 169.254.169.254:80 in the node netns, and podid-agent");
    pn->start_emulator();
    pn->start_agent();
    std::cout << "   podid-agent --node-ip " << pn->node().node_ip() << " --cgroup-root " << pn->node().kubepods_dir()
              << " --bpffs " << pn->pin_dir() << " --bindings ... --audit-log ...\n";
    std::string log = pn->agent_log();
    for (size_t pos = 0; (pos = log.find("program attached", pos)) != std::string::npos; ++pos) {
        auto start = log.rfind('\n', pos);
        auto end = log.find('\n', pos);
        std::cout << "   " << log.substr(start == std::string::npos ? 0 : start + 1, end - start - 1) << "\n";
    }

    step("Each bound pod gets its own identity's token, through plain curl to 169.254.169.254");
    show_token(*pn, "frontend", kStorageReader);
    show_token(*pn, "worker", kVaultReader);

    step("The unbound pod is refused");
    show_token(*pn, "batch", "");

    step("Bypass attempts");
    auto stolen = pn->curl("frontend", std::string(kPath) + "&client_id=" + kVaultReader);
    std::cout << "   frontend asks for worker's client_id -> " << stolen.status << " " << stolen.body << "\n";
    expect(stolen.status == 400, "another pod's identity is not served");
    auto trick = pn->curl("batch", "/metadata/identity\\oauth2\\token/?api-version=2018-02-01&resource=x");
    std::cout << "   batch tries the CVE-2022-23551 path /metadata/identity\\oauth2\\token/ -> " << trick.status << " "
              << trick.body << "\n";
    expect(trick.status != 200, "odd spellings of the token path never reach IMDS as the node");
    for (auto [what, args] : std::map<std::string, std::vector<std::string>>{
             {"raw TCP SYN", {PODID_PROBE_BIN, "raw-syn", "169.254.169.254", "80"}},
             {"UDP datagram", {PODID_PROBE_BIN, "udp", "169.254.169.254", "53"}},
             {"TCP to port 443", {PODID_PROBE_BIN, "tcp", "169.254.169.254", "443"}}}) {
        auto r = pn->node().run_in_pod("batch", args);
        std::cout << "   batch sends a " << what << " to 169.254.169.254 -> " << r.out;
        expect(r.exit_code != 0, what + " is dropped in the kernel");
    }
    bool pod_reached = false;
    for (const auto& peer : pn->emulator_peers())
        for (const char* p : {"frontend", "worker", "batch"})
            pod_reached |= peer.rfind(pn->node().pod(p).ip + ":", 0) == 0;
    expect(!pod_reached, "no pod connection ever reached the real IMDS (emulator's own record of peers)");

    // podidctl, as an SRE runs it on the node (kubectl exec ds/podid-agent -- podidctl ... in a cluster).
    auto ctl = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {PODIDCTL_BIN, "--socket", pn->admin_socket_path(), "--bpffs", pn->pin_dir()};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = pn->node().run(argv, "", "");
        std::istringstream lines(r.out + r.err);
        for (std::string line; std::getline(lines, line);)
            std::cout << "   | " << line << "\n";
        return r;
    };

    step("Fail closed: SIGKILL the agent, then start it again");
    pn->kill_agent();
    auto down = pn->curl("frontend", kPath);
    std::cout << "   agent down -> " << (down.status == 0 ? "connection refused" : std::to_string(down.status)) << "\n";
    expect(down.status == 0, "with the agent down, pods get no token (the pinned redirect stays)");
    std::cout << "   $ podidctl status   (agent down: reads the pins from bpffs itself)\n";
    auto down_status = ctl({"status"});
    expect(down_status.exit_code == 1 && down_status.out.find("fail closed") != std::string::npos,
           "podidctl status reports the agent down and the datapath failing closed");
    pn->start_agent();
    show_token(*pn, "frontend", kStorageReader);

    step("Audit log (one JSON line per token request; tokens appear only as a hash)");
    for (const auto& line : pn->audit_lines()) {
        std::cout << "   " << line.value("decision", "") << " " << line.value("reason", "")
                  << " status=" << line.value("status", 0) << " comm=" << line["caller"].value("comm", "")
                  << " cgroup_id=" << line["caller"].value("cgroup_id", 0u)
                  << " granted=" << line.value("granted_identity", "") << " cache=" << line.value("cache", "")
                  << " token_sha256=" << line.value("token_sha256", "") << "\n";
    }
    auto lines = pn->audit_lines();
    if (!lines.empty())
        std::cout << "   full line: " << lines.front().dump() << "\n";

    step("What an SRE sees: podidctl");
    for (int i = 0;
         i < 50 &&
         pn->node()
                 .run({PODIDCTL_BIN, "--socket", pn->admin_socket_path(), "--bpffs", pn->pin_dir(), "status"}, "", "")
                 .exit_code != 0;
         ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // readiness after the restart's self-check
    std::cout << "   $ podidctl status\n";
    auto status = ctl({"status"});
    expect(status.exit_code == 0, "podidctl status: agent ready, every pin present");
    std::cout << "   $ podidctl pods\n";
    auto pods = ctl({"pods"});
    expect(pods.out.find(pn->node().pod("frontend").uid) != std::string::npos &&
               pods.out.find(kStorageReader) != std::string::npos,
           "podidctl pods lists the frontend pod with its identity");
    std::cout << "   $ podidctl explain --cgroup " << pn->node().pod("batch").cgroup_path << "\n";
    auto why = ctl({"explain", "--cgroup", pn->node().pod("batch").cgroup_path});
    expect(why.out.find("Identity not found") != std::string::npos, "podidctl explain says why batch gets nothing");
    std::cout << "   $ podidctl conns --limit 6\n";
    auto conns = ctl({"conns", "--limit", "6"});
    expect(conns.out.find("curl") != std::string::npos, "podidctl conns shows the kernel's record of each caller");

    step("Per-pod kernel counters (pinned map " + pn->pin_dir() + "/cgroup_stats)");
    auto counters = podid::Datapath::read_pinned_counters(pn->pin_dir());
    if (counters) {
        for (const char* name : {"frontend", "worker", "batch"}) {
            const auto& pod = pn->node().pod(name);
            std::cout << "   " << name << ":";
            auto it = counters->find(pod.cgroup_id);
            if (it != counters->end())
                for (int slot = 0; slot < PODID_CTR_MAX; ++slot)
                    if (it->second[slot] && podid::counter_name(slot))
                        std::cout << " " << podid::counter_name(slot) << "=" << it->second[slot];
            std::cout << "\n";
        }
    }
    auto stats = pn->emulator_stats();
    std::cout << "   upstream IMDS token requests (emulator's count): " << stats.value("token_requests", -1) << " for "
              << pn->audit_lines().size() << " pod token requests\n";

    step(
        "Workload Identity with nothing on the node: the agent in Kubernetes mode exchanges the pod's own "
        "service-account token with Entra ID");
    {
        // The control plane: the API-server double on the node IP (TokenRequest, OIDC issuer documents), and the
        // Entra ID emulator, which knows an app the node's IMDS has never heard of, federated with web's service
        // account and checking the assertion against the cluster's issuer for real.
        podid::test::KubeApiServer api;
        auto kubeconfig = podid::test::serve_api_on_node(api, pn->node());
        if (!kubeconfig)
            throw std::runtime_error(kubeconfig.error().message);
        json app = {{"tenant", kTenant},
                    {"client_id", kWebApp},
                    {"federated_credentials",
                     {{{"issuer", api.service_account_issuer()},
                       {"subject", "system:serviceaccount:default:web-sa"},
                       {"audiences", {"api://AzureADTokenExchange"}}}}}};
        auto entra = podid::test::EntraNode::start(pn->node(), {{"apps", {app}}}, {api.pki().ca_path()});
        std::cout << "   Entra ID (emulator) at " << entra->authority_host() << ": app " << kWebApp
                  << ", federated credential for system:serviceaccount:default:web-sa\n";
        auto& web = pn->add_pod({.name = "web"});
        json sa = {{"metadata",
                    {{"name", "web-sa"},
                     {"namespace", "default"},
                     {"annotations", {{"azure.workload.identity/client-id", kWebApp}}}}}};
        json pod =
            podid::test::kube_pod_object(web, "default", "web", {{"azure.workload.identity/use", "true"}}, kNodeName);
        pod["spec"]["serviceAccountName"] = "web-sa";
        if (!api.create("ServiceAccount", sa).ok() || !api.create("Pod", pod).ok())
            throw std::runtime_error("the API-server double refused the demo's objects");
        std::cout << "   ServiceAccount default/web-sa  azure.workload.identity/client-id=" << kWebApp << "\n"
                  << "   Pod default/web  azure.workload.identity/use=true  (no sidecar, no injected environment)\n";
        pn->stop_agent();
        pn->set_agent_args({"--kubeconfig", *kubeconfig, "--node-name", kNodeName, "--tenant-id", kTenant,
                            "--authority-host", entra->authority_host()});
        pn->set_agent_env({{"SSL_CERT_FILE", entra->ca_path()}});
        pn->start_agent();
        std::cout << "   podid-agent --kubeconfig ... --node-name " << kNodeName << " --tenant-id " << kTenant
                  << " --authority-host " << entra->authority_host() << "\n";
        show_token(*pn, "web", kWebApp);
        expect(api.token_requests("default", "web-sa") == 1,
               "one TokenRequest, bound to the pod, for api://AzureADTokenExchange");
        expect(pn->emulator_stats().dump().find(kWebApp) == std::string::npos,
               "the node's IMDS was never asked for the app: nothing is assigned to the node");
        std::cout << "   $ podidctl explain default/web\n";
        auto why_web = ctl({"explain", "default/web"});
        expect(why_web.out.find("subject system:serviceaccount:default:web-sa") != std::string::npos,
               "podidctl explain names the subject Entra ID sees");
        pn->stop_agent();
    }

    step("Cleaning up (namespaces, cgroups, pins)");
    std::string prefix = pn->node().prefix();
    pn.reset();
    auto left = podid::test::TestNode::leftovers(prefix);
    expect(left.empty(), "nothing left behind");
    std::cout << "\n"
              << (failures == 0 ? green("demo finished: every check passed") : red("demo: some checks failed")) << "\n";
    return failures == 0 ? 0 : 1;
}

}  // namespace

int main() {
    if (geteuid() != 0) {
        std::cerr << "podid-demo: run as root (it loads BPF programs and builds network namespaces)\n";
        return 1;
    }
    try {
        return run();
    } catch (const std::exception& e) {
        std::cerr << "podid-demo: " << e.what() << "\n";
        return 1;
    }
}
