// /host/token in Kubernetes mode (policy/kube_host_tokens.h): who may ask is --host-token-callers' answer, and the
// named pod's binding comes from the pod directory and the binding snapshot of a KubeState (fed by a scripted API
// server, fake_kube_api.h), decided as for the pod's own requests.
#include "policy/kube_host_tokens.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "fake_kube_api.h"

namespace podid {
namespace {

using namespace podid::test;

// Node n1's pods and the objects their bindings depend on.
void fill(FakeKubeApi& api) {
    api.lists[kPodsPath] = {
        pod_object("shop", "web", "uid-web", {{"aadpodidbinding", "web"}}),
        pod_object("shop", "wi", "uid-wi", {{"azure.workload.identity/use", "true"}}, "wi-sa"),
        pod_object("shop", "excepted", "uid-ex", {{"app", "excepted"}, {"aadpodidbinding", "web"}}),
        pod_object("shop", "plain", "uid-plain"),
        pod_object("shop", "sp", "uid-sp", {{"aadpodidbinding", "sp"}}),
        pod_object("shop", "far", "uid-far", {{"aadpodidbinding", "web"}}, "default", "n2"),  // another node's
    };
    api.lists[kIdentitiesPath] = {
        named_object("shop", "web-id", {{"type", 0}, {"clientID", "c-web"}}),
        named_object("shop", "sp-id", {{"type", 1}, {"clientID", "c-sp"}}),  // a service principal
    };
    api.lists[kBindingsPath] = {
        named_object("shop", "web-binding", {{"azureIdentity", "web-id"}, {"selector", "web"}}),
        named_object("shop", "sp-binding", {{"azureIdentity", "sp-id"}, {"selector", "sp"}}),
    };
    api.lists[kExceptionsPath] = {named_object("shop", "ex", {{"podLabels", {{"app", "excepted"}}}})};
    api.lists[kServiceAccountsPath] = {
        named_object("shop", "wi-sa", {}, {{"azure.workload.identity/client-id", "c-wi"}}),
    };
}

TEST(KubeHostTokens, NamedPodsBinding) {
    KubeStateFixture f;
    fill(*f.api);
    ASSERT_TRUE(f.start_synced());
    KubeHostTokens authority(*HostTokenPolicy::parse("kube-system"), f.state);

    struct Row {
        const char* name;
        std::string ns, pod;
        bool known;  // false: nullopt (the handler answers deny_host_token_pod)
        BindingKind kind;
        std::vector<std::string> client_ids;
    };
    const std::vector<Row> rows = {
        {"AzureIdentityBinding", "shop", "web", true, BindingKind::aad_pod_identity, {"c-web"}},
        {"workload identity", "shop", "wi", true, BindingKind::workload_identity, {"c-wi"}},
        {"exception: the node's identity", "shop", "excepted", true, BindingKind::node_identity, {}},
        {"known pod, nothing binds it", "shop", "plain", true, BindingKind::none, {}},
        {"unknown pod", "shop", "nope", false, BindingKind::none, {}},
        {"another node's pod is not known here", "shop", "far", false, BindingKind::none, {}},
        {"wrong namespace", "default", "web", false, BindingKind::none, {}},
        {"empty names", "", "", false, BindingKind::none, {}},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        auto got = f.run(authority.binding_of(row.ns, row.pod));
        ASSERT_TRUE(got.has_value()) << "binding_of did not finish";
        ASSERT_EQ(got->has_value(), row.known);
        if (!row.known)
            continue;
        const Binding& b = **got;
        EXPECT_STREQ(to_string(b.kind), to_string(row.kind)) << b.explanation;
        std::vector<std::string> ids;
        for (const Identity& id : b.identities)
            ids.push_back(id.client_id);
        EXPECT_EQ(ids, row.client_ids) << b.explanation;
        EXPECT_NE(b.explanation.find("pod " + row.ns + "/" + row.pod), std::string::npos) << b.explanation;
    }
}

// The answer follows the snapshot: a binding added after start applies to the next request.
TEST(KubeHostTokens, FollowsTheSnapshot) {
    KubeStateFixture f;
    fill(*f.api);
    ASSERT_TRUE(f.start_synced());
    KubeHostTokens authority(*HostTokenPolicy::parse("kube-system"), f.state);
    auto before = f.run(authority.binding_of("shop", "plain"));
    ASSERT_TRUE(before && *before);
    EXPECT_EQ((*before)->kind, BindingKind::none);

    f.api->push(kPodsPath, kube::WatchEvent::Type::modified,
                pod_object("shop", "plain", "uid-plain", {{"aadpodidbinding", "web"}}, "default", "n1", "2"));
    ASSERT_TRUE(run_until(f.io, [&] {
        auto p = f.state.pod_by_name("shop", "plain");
        return p && p->labels.count("aadpodidbinding") > 0;
    }));
    auto after = f.run(authority.binding_of("shop", "plain"));
    ASSERT_TRUE(after && *after);
    EXPECT_EQ((*after)->kind, BindingKind::aad_pod_identity);
    ASSERT_EQ((*after)->identities.size(), 1u);
    EXPECT_EQ((*after)->identities[0].client_id, "c-web");
}

// authorised() is the --host-token-callers policy the authority was built with (host_token_policy_test.cpp has the
// policy's own table); the pod comes from the caller, never from the pod the request names.
TEST(KubeHostTokens, AuthorisedByThePolicy) {
    KubeStateFixture f;  // not started: authorisation reads only the caller
    const Origin origin{7, 1, "csi", "127.0.0.1:2579", false};
    auto pod_caller = [&](const std::string& ns, const std::string& sa) {
        Caller c;
        c.origin = origin;
        c.cgroup_path = "/kubepods.slice/kubepods-pod1.slice";
        c.pod_ref = PodRef{"uid-1", "", "", "besteffort"};
        c.pod = PodInfo{ns, "provider-0", "uid-1", sa, "n1", false, {}};
        return c;
    };
    Caller host;
    host.origin = origin;
    host.cgroup_path = "/system.slice/csi.service";
    Caller no_origin = pod_caller("kube-system", "csi");
    no_origin.origin.reset();

    struct Row {
        const char* name;
        std::string policy;
        Caller caller;
        bool want;
    };
    const std::vector<Row> rows = {
        {"namespace rule", "kube-system", pod_caller("kube-system", "csi"), true},
        {"other namespace", "kube-system", pod_caller("shop", "csi"), false},
        {"service account rule", "kube-system/csi", pod_caller("kube-system", "csi"), true},
        {"other service account", "kube-system/csi", pod_caller("kube-system", "default"), false},
        {"host rule, node process", "host", host, true},
        {"node process without host rule", "kube-system", host, false},
        {"none", "none", pod_caller("kube-system", "csi"), false},
        {"no origin record", "kube-system", no_origin, false},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        auto policy = HostTokenPolicy::parse(row.policy);
        ASSERT_TRUE(policy.ok()) << policy.error().message;
        KubeHostTokens authority(*policy, f.state);
        EXPECT_EQ(authority.authorised(row.caller), row.want);
    }
}

}  // namespace
}  // namespace podid
