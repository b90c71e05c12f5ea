// API JSON -> typed objects: real-shaped objects of each kind, missing and mistyped fields, container
// id prefixes, and the memory filters KubeState applies.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/decode.h"
#include "kube/state.h"

namespace podid::kube {
namespace {

using nlohmann::json;

// Trimmed from `kubectl get pod -o json` on a containerd node.
const char* kPodJson = R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {
    "name": "web-7d4b9c-x2x9z", "namespace": "shop", "uid": "8f5e2b4c-1d3a-4c5e-9f7a-2b6c8d0e1f23",
    "resourceVersion": "123456", "creationTimestamp": "2024-05-01T10:00:00Z",
    "labels": {"app": "web", "aadpodidbinding": "web-identity", "pod-template-hash": "7d4b9c"},
    "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T09:59:00Z"},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c"}]
  },
  "spec": {
    "nodeName": "aks-nodepool1-12345678-vmss000000", "serviceAccountName": "web", "serviceAccount": "web",
    "containers": [{"name": "web", "image": "nginx:1.25"}]
  },
  "status": {
    "phase": "Running", "podIP": "10.244.1.7",
    "initContainerStatuses": [{"name": "init", "containerID": "containerd://aaaa1111"}],
    "containerStatuses": [
      {"name": "web", "containerID": "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
      {"name": "sidecar", "containerID": "cri-o://bbbb2222"},
      {"name": "starting", "ready": false}
    ]
  }
})";

TEST(KubeDecode, PodFromRealShapedJson) {
    const Pod pod = decode_pod(json::parse(kPodJson));
    EXPECT_EQ(pod.meta.ns, "shop");
    EXPECT_EQ(pod.meta.name, "web-7d4b9c-x2x9z");
    EXPECT_EQ(pod.meta.uid, "8f5e2b4c-1d3a-4c5e-9f7a-2b6c8d0e1f23");
    EXPECT_EQ(pod.meta.resource_version, "123456");
    EXPECT_EQ(pod.meta.labels.at("aadpodidbinding"), "web-identity");
    EXPECT_EQ(pod.meta.labels.size(), 3u);
    EXPECT_EQ(pod.meta.annotations.size(), 1u);
    EXPECT_EQ(pod.node_name, "aks-nodepool1-12345678-vmss000000");
    EXPECT_EQ(pod.service_account, "web");
    EXPECT_EQ(pod.phase, "Running");
    EXPECT_FALSE(pod.host_network);
    EXPECT_EQ(pod.container_ids,
              (std::vector<std::string>{"aaaa1111", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                        "bbbb2222"}));
    const PodInfo info = pod.info();
    EXPECT_EQ(info.ns, "shop");
    EXPECT_EQ(info.name, "web-7d4b9c-x2x9z");
    EXPECT_EQ(info.uid, pod.meta.uid);
    EXPECT_EQ(info.service_account, "web");
    EXPECT_EQ(info.node_name, pod.node_name);
    EXPECT_EQ(info.labels, pod.meta.labels);
}

struct PodCase {
    const char* name;
    const char* json;
    std::string ns, pod_name, service_account, node, phase;
    bool host_network;
    std::vector<std::string> container_ids;
};

class KubeDecodePod : public testing::TestWithParam<PodCase> {};

TEST_P(KubeDecodePod, Decodes) {
    const PodCase& c = GetParam();
    const Pod pod = decode_pod(json::parse(c.json));
    EXPECT_EQ(pod.meta.ns, c.ns);
    EXPECT_EQ(pod.meta.name, c.pod_name);
    EXPECT_EQ(pod.service_account, c.service_account);
    EXPECT_EQ(pod.node_name, c.node);
    EXPECT_EQ(pod.phase, c.phase);
    EXPECT_EQ(pod.host_network, c.host_network);
    EXPECT_EQ(pod.container_ids, c.container_ids);
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubeDecodePod,
    testing::Values(
        PodCase{"empty_object", "{}", "", "", "default", "", "", false, {}},
        PodCase{"not_an_object", "[1,2]", "", "", "default", "", "", false, {}},
        PodCase{"null", "null", "", "", "default", "", "", false, {}},
        PodCase{"metadata_wrong_type",
                R"({"metadata": "x", "spec": 3, "status": []})",
                "",
                "",
                "default",
                "",
                "",
                false,
                {}},
        PodCase{"host_network_pending",
                R"({"metadata":{"namespace":"kube-system","name":"kube-proxy-abc"},
                    "spec":{"hostNetwork":true,"nodeName":"n1","serviceAccountName":"kube-proxy"},
                    "status":{"phase":"Pending"}})",
                "kube-system",
                "kube-proxy-abc",
                "kube-proxy",
                "n1",
                "Pending",
                true,
                {}},
        PodCase{"host_network_not_bool", R"({"spec":{"hostNetwork":"true"}})", "", "", "default", "", "", false, {}},
        PodCase{"deprecated_service_account_field",
                R"({"spec":{"serviceAccount":"legacy"}})",
                "",
                "",
                "legacy",
                "",
                "",
                false,
                {}},
        PodCase{"service_account_name_wins",
                R"({"spec":{"serviceAccountName":"new","serviceAccount":"old"}})",
                "",
                "",
                "new",
                "",
                "",
                false,
                {}},
        PodCase{
            "service_account_wrong_type", R"({"spec":{"serviceAccountName":7}})", "", "", "default", "", "", false, {}},
        PodCase{"container_statuses_not_array",
                R"({"status":{"containerStatuses":{"containerID":"docker://x"}}})",
                "",
                "",
                "default",
                "",
                "",
                false,
                {}},
        PodCase{"docker_and_ephemeral",
                R"({"status":{"containerStatuses":[{"containerID":"docker://d1"}],
                              "ephemeralContainerStatuses":[{"containerID":"containerd://e1"}]}})",
                "",
                "",
                "default",
                "",
                "",
                false,
                {"d1", "e1"}},
        PodCase{"empty_container_id_skipped",
                R"({"status":{"containerStatuses":[{"containerID":""},{"containerID":5}]}})",
                "",
                "",
                "default",
                "",
                "",
                false,
                {}}),
    [](const testing::TestParamInfo<PodCase>& info) { return std::string(info.param.name); });

struct StripCase {
    std::string input, expected;
};

class KubeStripRuntime : public testing::TestWithParam<StripCase> {};

TEST_P(KubeStripRuntime, Strips) { EXPECT_EQ(strip_container_runtime(GetParam().input), GetParam().expected); }

INSTANTIATE_TEST_SUITE_P(Table, KubeStripRuntime,
                         testing::Values(StripCase{"containerd://abc123", "abc123"},
                                         StripCase{"cri-o://abc123", "abc123"}, StripCase{"docker://abc123", "abc123"},
                                         StripCase{"abc123", "abc123"},  // already bare
                                         StripCase{"containerd://", ""}, StripCase{"", ""}));

TEST(KubeDecode, MetaLabelsSkipNonStrings) {
    const ObjectMeta meta =
        decode_meta(json::parse(R"({"metadata":{"labels":{"a":"1","b":2,"c":null},"annotations":["x"]}})"));
    EXPECT_EQ(meta.labels, (std::map<std::string, std::string>{{"a", "1"}}));
    EXPECT_TRUE(meta.annotations.empty());
}

TEST(KubeDecode, ObjectKey) {
    EXPECT_EQ(object_key(json::parse(R"({"metadata":{"namespace":"ns","name":"n"}})")), "ns/n");
    EXPECT_EQ(object_key(json::parse(R"({"metadata":{"name":"cluster-scoped"}})")), "cluster-scoped");
    EXPECT_EQ(object_key(json::parse("7")), "");
}

struct IdentityCase {
    const char* name;
    const char* json;
    int type;
    std::string resource_id, client_id, tenant_id;
};

class KubeDecodeIdentity : public testing::TestWithParam<IdentityCase> {};

TEST_P(KubeDecodeIdentity, Decodes) {
    const IdentityCase& c = GetParam();
    const AzureIdentity id = decode_azure_identity(json::parse(c.json));
    EXPECT_EQ(id.type, c.type);
    EXPECT_EQ(id.resource_id, c.resource_id);
    EXPECT_EQ(id.client_id, c.client_id);
    EXPECT_EQ(id.tenant_id, c.tenant_id);
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubeDecodeIdentity,
    testing::Values(
        IdentityCase{
            "documented_spelling",
            R"({"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity",
                         "metadata":{"name":"web-identity","namespace":"shop"},
                         "spec":{"type":0,"resourceID":"/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web",
                                 "clientID":"11111111-2222-3333-4444-555555555555"}})",
            0, "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web",
            "11111111-2222-3333-4444-555555555555", ""},
        IdentityCase{"early_capitalised_spelling",
                     R"({"spec":{"type":0,"ResourceID":"/r","ClientID":"c","TenantID":"t"}})", 0, "/r", "c", "t"},
        IdentityCase{"service_principal_type_as_string", R"({"spec":{"type":"1","clientID":"c","tenantID":"t"}})", 1,
                     "", "c", "t"},
        IdentityCase{"type_garbage", R"({"spec":{"type":"x1"}})", 0, "", "", ""},
        IdentityCase{"no_spec", R"({"metadata":{"name":"x"}})", 0, "", "", ""},
        IdentityCase{"spec_not_object", R"({"spec":"x"})", 0, "", "", ""}),
    [](const testing::TestParamInfo<IdentityCase>& info) { return std::string(info.param.name); });

TEST(KubeDecode, BindingBothSpellings) {
    const auto documented = decode_azure_identity_binding(json::parse(
        R"({"metadata":{"name":"b","namespace":"shop"},"spec":{"azureIdentity":"web-identity","selector":"web"}})"));
    EXPECT_EQ(documented.meta.ns, "shop");
    EXPECT_EQ(documented.azure_identity, "web-identity");
    EXPECT_EQ(documented.selector, "web");
    const auto early =
        decode_azure_identity_binding(json::parse(R"({"spec":{"AzureIdentity":"id","Selector":"sel"}})"));
    EXPECT_EQ(early.azure_identity, "id");
    EXPECT_EQ(early.selector, "sel");
    const auto missing = decode_azure_identity_binding(json::parse(R"({"spec":{}})"));
    EXPECT_EQ(missing.azure_identity, "");
    EXPECT_EQ(missing.selector, "");
}

TEST(KubeDecode, PodIdentityException) {
    const auto exception = decode_azure_pod_identity_exception(json::parse(
        R"({"metadata":{"name":"mic-exception","namespace":"default"},
            "spec":{"podLabels":{"app":"mic","component":"mic","bad":1}}})"));
    EXPECT_EQ(exception.meta.name, "mic-exception");
    EXPECT_EQ(exception.pod_labels, (std::map<std::string, std::string>{{"app", "mic"}, {"component", "mic"}}));
    EXPECT_TRUE(decode_azure_pod_identity_exception(json::parse("{}")).pod_labels.empty());
}

TEST(KubeDecode, ServiceAccountAnnotations) {
    const auto sa = decode_service_account(json::parse(
        R"({"metadata":{"name":"web","namespace":"shop",
            "annotations":{"azure.workload.identity/client-id":"c1","other":"x"}}})"));
    EXPECT_EQ(sa.meta.name, "web");
    EXPECT_EQ(sa.meta.annotations.at("azure.workload.identity/client-id"), "c1");
}

// The memory rules of KubeState (state.h): which objects and fields are kept.
struct KeepSaCase {
    const char* name;
    const char* json;
    bool kept;
    std::map<std::string, std::string> annotations;
};

class KubeKeepServiceAccount : public testing::TestWithParam<KeepSaCase> {};

TEST_P(KubeKeepServiceAccount, Filters) {
    const KeepSaCase& c = GetParam();
    const auto sa = keep_service_account(json::parse(c.json));
    ASSERT_EQ(sa.has_value(), c.kept);
    if (sa) {
        EXPECT_EQ(sa->meta.annotations, c.annotations);
        EXPECT_TRUE(sa->meta.labels.empty());
    }
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubeKeepServiceAccount,
    testing::Values(
        KeepSaCase{"workload_identity",
                   R"({"metadata":{"name":"web","namespace":"shop","labels":{"azure.workload.identity/use":"true"},
                       "annotations":{"azure.workload.identity/client-id":"c1","azure.workload.identity/tenant-id":"t1",
                                      "kubectl.kubernetes.io/last-applied-configuration":"{}"}}})",
                   true,
                   {{"azure.workload.identity/client-id", "c1"}, {"azure.workload.identity/tenant-id", "t1"}}},
        KeepSaCase{"plain", R"({"metadata":{"name":"default","namespace":"shop"}})", false, {}},
        KeepSaCase{"other_annotations_only", R"({"metadata":{"name":"x","annotations":{"a":"b"}}})", false, {}},
        KeepSaCase{"prefix_must_be_at_start",
                   R"({"metadata":{"name":"x","annotations":{"example.com/azure.workload.identity/client-id":"c"}}})",
                   false,
                   {}}),
    [](const testing::TestParamInfo<KeepSaCase>& info) { return std::string(info.param.name); });

TEST(KubeKeepPod, DropsAnnotationsOtherNodesAndUidless) {
    auto pod = keep_pod(json::parse(kPodJson), "aks-nodepool1-12345678-vmss000000");
    ASSERT_TRUE(pod);
    EXPECT_TRUE(pod->meta.annotations.empty());
    EXPECT_EQ(pod->meta.labels.size(), 3u);
    EXPECT_FALSE(keep_pod(json::parse(kPodJson), "another-node"));
    EXPECT_FALSE(keep_pod(json::parse(R"({"metadata":{"name":"x"},"spec":{"nodeName":"n"}})"), "n"));
    auto upper = keep_pod(json::parse(R"({"metadata":{"uid":"ABCD-EF"},"spec":{"nodeName":"n"}})"), "n");
    ASSERT_TRUE(upper);
    EXPECT_EQ(upper->meta.uid, "abcd-ef");  // cgroup paths spell UIDs in lower case
}

}  // namespace
}  // namespace podid::kube
