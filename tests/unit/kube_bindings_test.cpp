// Kubernetes bindings: AzurePodIdentityException, AzureIdentityBinding/AzureIdentity (managed mode) and Workload
// Identity service accounts resolved for one pod, with the precedence documented in docs/bindings.md.
#include "policy/kube_bindings.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/beast/http/verb.hpp>
#include <memory>
#include <string>
#include <vector>

#include "http/imds_handler.h"

namespace podid {
namespace {

const std::string kVoteClient = "1111aaaa-1111-4111-8111-111111111111";
const std::string kOtherClient = "22222222-2222-4222-8222-222222222222";
const std::string kWiClient = "33333333-3333-4333-8333-333333333333";
const std::string kVoteResource =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/azure-vote";

kube::ObjectMeta meta(const std::string& ns, const std::string& name) {
    kube::ObjectMeta m;
    m.ns = ns;
    m.name = name;
    return m;
}

kube::AzureIdentity azure_identity(const std::string& ns, const std::string& name, int type,
                                   const std::string& client_id, const std::string& resource_id = "") {
    kube::AzureIdentity id;
    id.meta = meta(ns, name);
    id.type = type;
    id.client_id = client_id;
    id.resource_id = resource_id;
    return id;
}

kube::AzureIdentityBinding identity_binding(const std::string& ns, const std::string& name, const std::string& identity,
                                            const std::string& selector) {
    kube::AzureIdentityBinding b;
    b.meta = meta(ns, name);
    b.azure_identity = identity;
    b.selector = selector;
    return b;
}

kube::AzurePodIdentityException exception(const std::string& ns, const std::string& name,
                                          std::map<std::string, std::string> pod_labels) {
    kube::AzurePodIdentityException e;
    e.meta = meta(ns, name);
    e.pod_labels = std::move(pod_labels);
    return e;
}

kube::ServiceAccount service_account(const std::string& ns, const std::string& name, const std::string& client_id) {
    kube::ServiceAccount sa;
    sa.meta = meta(ns, name);
    if (!client_id.empty()) {
        sa.meta.annotations[kWorkloadIdentityClientIdAnnotation] = client_id;
    }
    sa.meta.annotations["azure.workload.identity/tenant-id"] = "tenant";
    return sa;
}

struct Objects {
    std::vector<kube::AzureIdentity> identities;
    std::vector<kube::AzureIdentityBinding> bindings;
    std::vector<kube::AzurePodIdentityException> exceptions;
    std::vector<kube::ServiceAccount> accounts;
};

kube::Snapshot snapshot_of(const Objects& o) {
    kube::Snapshot s;
    for (const auto& x : o.identities) {
        s.identities[x.meta.ns].push_back(x);
    }
    for (const auto& x : o.bindings) {
        s.bindings[x.meta.ns].push_back(x);
    }
    for (const auto& x : o.exceptions) {
        s.exceptions[x.meta.ns].push_back(x);
    }
    for (const auto& x : o.accounts) {
        s.service_accounts[x.meta.ns][x.meta.name] = x;
    }
    return s;
}

PodInfo pod(const std::string& ns, std::map<std::string, std::string> labels, const std::string& sa = "") {
    PodInfo p;
    p.ns = ns;
    p.name = "vote-pod";
    p.uid = "0f1e2d3c-4b5a-4968-8776-655443322110";
    p.service_account = sa;
    p.labels = std::move(labels);
    return p;
}

const std::map<std::string, std::string> kVoteLabel = {{"aadpodidbinding", "azure-vote"}, {"app", "vote"}};
const std::map<std::string, std::string> kWiLabel = {{"azure.workload.identity/use", "true"}};

std::map<std::string, std::string> merged(std::map<std::string, std::string> a,
                                          const std::map<std::string, std::string>& b) {
    a.insert(b.begin(), b.end());
    return a;
}

// The seed scenario: one user-assigned identity bound by selector azure-vote in namespace default.
Objects seed() {
    return Objects{{azure_identity("default", "azure-vote", 0, kVoteClient, kVoteResource)},
                   {identity_binding("default", "b1", "azure-vote", "azure-vote")},
                   {},
                   {}};
}

Objects with(Objects base, const Objects& more) {
    base.identities.insert(base.identities.end(), more.identities.begin(), more.identities.end());
    base.bindings.insert(base.bindings.end(), more.bindings.begin(), more.bindings.end());
    base.exceptions.insert(base.exceptions.end(), more.exceptions.begin(), more.exceptions.end());
    base.accounts.insert(base.accounts.end(), more.accounts.begin(), more.accounts.end());
    return base;
}

// "name|client_id|resource_id" per offered identity, in order.
std::vector<std::string> describe(const std::vector<Identity>& identities) {
    std::vector<std::string> out;
    for (const Identity& i : identities) {
        out.push_back(i.name + "|" + i.client_id + "|" + i.resource_id);
    }
    return out;
}

struct Row {
    std::string name;
    Objects objects;
    PodInfo pod;
    BindingKind kind;
    std::vector<std::string> identities;   // describe() of the result
    std::vector<std::string> unsupported;  // AzureIdentity "ns/name"
    std::vector<std::string> explanation_has;
};

std::vector<Row> rows() {
    const std::string vote = "azure-vote|" + kVoteClient + "|" + kVoteResource;
    const std::string wi = "sa:default/wi-sa|" + kWiClient + "|";
    const Objects wi_sa{{}, {}, {}, {service_account("default", "wi-sa", kWiClient)}};
    return {
        {"seed: labelled pod is bound",
         seed(),
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {vote},
         {},
         {"AzureIdentityBinding default/b1 (selector azure-vote) -> AzureIdentity default/azure-vote (clientID " +
          kVoteClient + ")"}},
        {"seed: no label",
         seed(),
         pod("default", {{"app", "vote"}}),
         BindingKind::none,
         {},
         {},
         {"pod default/vote-pod: no binding", "no aadpodidbinding label", "no azure.workload.identity/use label"}},
        {"seed: same label in another namespace",
         seed(),
         pod("other", kVoteLabel),
         BindingKind::none,
         {},
         {},
         {"no AzureIdentityBinding in namespace other has selector azure-vote (0 looked at)"}},
        {"seed: label with another value",
         seed(),
         pod("default", {{"aadpodidbinding", "azure-votes"}}),
         BindingKind::none,
         {},
         {},
         {"no AzureIdentityBinding in namespace default has selector azure-votes (1 looked"}},
        {"identity in another namespace is not found (managed mode is namespace-local)",
         Objects{{azure_identity("other", "azure-vote", 0, kVoteClient)},
                 {identity_binding("default", "b1", "azure-vote", "azure-vote")},
                 {},
                 {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {},
         {},
         {"AzureIdentity default/azure-vote not found, skipped", "no identity to serve"}},
        {"exception pod gets the node identity",
         with(seed(), Objects{{}, {}, {exception("default", "probes", {{"app", "probe"}})}, {}}),
         pod("default", {{"app", "probe"}}),
         BindingKind::node_identity,
         {},
         {},
         {"AzurePodIdentityException default/probes (podLabels app=probe) -> node identity"}},
        {"exception matches on any one of its labels",
         Objects{{}, {}, {exception("default", "ex", {{"app", "probe"}, {"tier", "infra"}})}, {}},
         pod("default", {{"tier", "infra"}}),
         BindingKind::node_identity,
         {},
         {},
         {"(podLabels tier=infra)"}},
        {"exception key with another value does not match",
         with(seed(), Objects{{}, {}, {exception("default", "ex", {{"app", "probe"}})}, {}}),
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {vote},
         {},
         {"AzureIdentityBinding default/b1"}},
        {"exception in another namespace does not apply",
         Objects{{}, {}, {exception("other", "ex", {{"app", "probe"}})}, {}},
         pod("default", {{"app", "probe"}}),
         BindingKind::none,
         {},
         {},
         {"no AzurePodIdentityException in namespace default"}},
        {"exception without podLabels matches nothing",
         Objects{{}, {}, {exception("default", "ex", {})}, {}},
         pod("default", {{"app", "probe"}}),
         BindingKind::none,
         {},
         {},
         {"none of 1 AzurePodIdentityException(s) in namespace default matches the pod's labels"}},
        {"exception wins over a binding",
         with(seed(), Objects{{}, {}, {exception("default", "ex", {{"app", "vote"}})}, {}}),
         pod("default", kVoteLabel),
         BindingKind::node_identity,
         {},
         {},
         {"AzurePodIdentityException default/ex (podLabels app=vote) -> node identity",
          "takes precedence over aadpodidbinding=azure-vote"}},
        {"exception wins over workload identity",
         with(wi_sa, Objects{{}, {}, {exception("default", "ex", {{"app", "vote"}})}, {}}),
         pod("default", merged(kWiLabel, {{"app", "vote"}}), "wi-sa"),
         BindingKind::node_identity,
         {},
         {},
         {"takes precedence over workload identity"}},
        {"first matching exception by name",
         Objects{{},
                 {},
                 {exception("default", "zz", {{"app", "vote"}}), exception("default", "aa", {{"app", "vote"}})},
                 {}},
         pod("default", {{"app", "vote"}}),
         BindingKind::node_identity,
         {},
         {},
         {"AzurePodIdentityException default/aa"}},
        {"type 1 identity without a tenant is not served",
         Objects{{azure_identity("default", "sp", 1, kOtherClient)},
                 {identity_binding("default", "b1", "sp", "azure-vote")},
                 {},
                 {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {},
         {"default/sp"},
         {"AzureIdentity default/sp (service principal with client secret) has no tenantID, skipped",
          "no identity to serve"}},
        {"type 2 beside a type 0 identity",
         with(seed(), Objects{{azure_identity("default", "cert", 2, kOtherClient)},
                              {identity_binding("default", "a0", "cert", "azure-vote")},
                              {},
                              {}}),
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {vote},
         {"default/cert"},
         {"(service principal with certificate) has no tenantID, skipped"}},
        {"unknown identity type is unsupported",
         Objects{{azure_identity("default", "odd", 7, kOtherClient)},
                 {identity_binding("default", "b1", "odd", "azure-vote")},
                 {},
                 {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {},
         {"default/odd"},
         {"type 7 (unknown type)"}},
        {"missing AzureIdentity is skipped",
         Objects{{}, {identity_binding("default", "b1", "gone", "azure-vote")}, {}, {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {},
         {},
         {"AzureIdentityBinding default/b1 (selector azure-vote) -> AzureIdentity default/gone not found, skipped"}},
        {"missing AzureIdentity beside a good one",
         with(seed(), Objects{{}, {identity_binding("default", "a0", "gone", "azure-vote")}, {}, {}}),
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {vote},
         {},
         {"default/gone not found, skipped"}},
        {"binding naming no identity",
         Objects{{}, {identity_binding("default", "b1", "", "azure-vote")}, {}, {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {},
         {},
         {"names no AzureIdentity, skipped"}},
        {"two bindings: ordered by binding name, not identity name or list order",
         Objects{
             {azure_identity("default", "id-a", 0, kOtherClient), azure_identity("default", "id-z", 0, kVoteClient)},
             {identity_binding("default", "b2", "id-a", "azure-vote"),
              identity_binding("default", "b1", "id-z", "azure-vote")},
             {},
             {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {"id-z|" + kVoteClient + "|", "id-a|" + kOtherClient + "|"},
         {},
         {"default/b1", "default/b2"}},
        {"same identity through two bindings is offered once",
         with(seed(), Objects{{}, {identity_binding("default", "b0", "azure-vote", "azure-vote")}, {}, {}}),
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {vote},
         {},
         {"already offered as azure-vote"}},
        {"type 0 with only a resourceID",
         Objects{{azure_identity("default", "by-res", 0, "", kVoteResource)},
                 {identity_binding("default", "b1", "by-res", "azure-vote")},
                 {},
                 {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {"by-res||" + kVoteResource},
         {},
         {"(resourceID " + kVoteResource + ")"}},
        {"type 0 with neither id is skipped",
         Objects{{azure_identity("default", "blank", 0, "")},
                 {identity_binding("default", "b1", "blank", "azure-vote")},
                 {},
                 {}},
         pod("default", kVoteLabel),
         BindingKind::aad_pod_identity,
         {},
         {},
         {"has neither clientID nor resourceID"}},
        {"empty aadpodidbinding label selects nothing",
         Objects{
             {azure_identity("default", "x", 0, kOtherClient)}, {identity_binding("default", "b1", "x", "")}, {}, {}},
         pod("default", {{"aadpodidbinding", ""}}),
         BindingKind::none,
         {},
         {},
         {"label is empty and selects nothing"}},
        {"workload identity with annotated service account",
         wi_sa,
         pod("default", kWiLabel, "wi-sa"),
         BindingKind::workload_identity,
         {wi},
         {},
         {"ServiceAccount default/wi-sa (azure.workload.identity/client-id " + kWiClient + ") -> workload identity"}},
        {"workload identity without the annotation",
         Objects{{}, {}, {}, {service_account("default", "wi-sa", "")}},
         pod("default", kWiLabel, "wi-sa"),
         BindingKind::none,
         {},
         {},
         {"ServiceAccount default/wi-sa has no azure.workload.identity/client-id annotation"}},
        {"workload identity label false",
         wi_sa,
         pod("default", {{"azure.workload.identity/use", "false"}}, "wi-sa"),
         BindingKind::none,
         {},
         {},
         {"label azure.workload.identity/use is \"false\", not \"true\""}},
        {"workload identity label must be exactly true",
         wi_sa,
         pod("default", {{"azure.workload.identity/use", "True"}}, "wi-sa"),
         BindingKind::none,
         {},
         {},
         {"is \"True\", not \"true\""}},
        {"workload identity through the default service account",
         Objects{{}, {}, {}, {service_account("default", "default", kWiClient)}},
         pod("default", kWiLabel, ""),
         BindingKind::workload_identity,
         {"sa:default/default|" + kWiClient + "|"},
         {},
         {"ServiceAccount default/default"}},
        {"workload identity with an unknown service account",
         wi_sa,
         pod("default", kWiLabel, "ghost"),
         BindingKind::none,
         {},
         {},
         {"ServiceAccount default/ghost not found"}},
        {"service account of the same name in another namespace",
         Objects{{}, {}, {}, {service_account("other", "wi-sa", kWiClient)}},
         pod("default", kWiLabel, "wi-sa"),
         BindingKind::none,
         {},
         {},
         {"ServiceAccount default/wi-sa not found"}},
        {"annotated service account without the pod label",
         wi_sa,
         pod("default", {}, "wi-sa"),
         BindingKind::none,
         {},
         {},
         {"no azure.workload.identity/use label"}},
        {"AAD and workload identity: AAD first",
         with(seed(), wi_sa),
         pod("default", merged(kVoteLabel, kWiLabel), "wi-sa"),
         BindingKind::aad_pod_identity,
         {vote, wi},
         {},
         {"AzureIdentityBinding default/b1", "-> workload identity"}},
        {"unsupported AAD identity leaves workload identity as the default",
         with(Objects{{azure_identity("default", "sp", 1, kOtherClient)},
                      {identity_binding("default", "b1", "sp", "azure-vote")},
                      {},
                      {}},
              wi_sa),
         pod("default", merged(kVoteLabel, kWiLabel), "wi-sa"),
         BindingKind::workload_identity,
         {wi},
         {"default/sp"},
         {"(service principal with client secret) has no tenantID", "-> workload identity"}},
        {"AAD and workload identity naming the same client id",
         with(seed(),
              Objects{{}, {}, {}, {service_account("default", "wi-sa", "1111AAAA-1111-4111-8111-111111111111")}}),
         pod("default", merged(kVoteLabel, kWiLabel), "wi-sa"),
         BindingKind::aad_pod_identity,
         {vote},
         {},
         {"already offered as azure-vote"}},
    };
}

TEST(ResolveKubeBinding, Table) {
    for (const Row& row : rows()) {
        SCOPED_TRACE(row.name);
        KubeResolution got = resolve_kube(row.pod, snapshot_of(row.objects));
        EXPECT_EQ(to_string(got.binding.kind), std::string(to_string(row.kind)));
        EXPECT_EQ(describe(got.binding.identities), row.identities);
        std::vector<std::string> unsupported;
        for (const UnsupportedIdentity& u : got.unsupported) {
            unsupported.push_back(u.identity);
        }
        EXPECT_EQ(unsupported, row.unsupported);
        for (const std::string& part : row.explanation_has) {
            EXPECT_NE(got.binding.explanation.find(part), std::string::npos)
                << "explanation: " << got.binding.explanation << "\nmissing: " << part;
        }
        EXPECT_EQ(resolve_kube_binding(row.pod, snapshot_of(row.objects)).explanation, got.binding.explanation);
    }
}

kube::AzureIdentity service_principal(int type, const std::string& secret_ns = "") {
    kube::AzureIdentity id = azure_identity("default", "sp", type, kOtherClient);
    id.tenant_id = "contoso.onmicrosoft.com";
    id.password_secret_name = "sp-secret";
    id.password_secret_ns = secret_ns;
    return id;
}

// Service principals (AzureIdentity type 1 and 2) come from Entra ID with the credential in their Secret.
TEST(ResolveKubeBinding, ServicePrincipalsAreServedFromTheirSecret) {
    struct SpRow {
        const char* name;
        int type;
        std::string secret_ns;
        std::optional<TokenSource> source;  // nullopt: skipped
        std::string explanation_has;
    };
    const SpRow rows[] = {
        {"type 1, secret in its namespace", 1, "", TokenSource::client_secret,
         "(clientID " + kOtherClient +
             ", service principal with client secret in Secret default/sp-secret, tenant "
             "contoso.onmicrosoft.com)"},
        {"type 1, namespace named", 1, "default", TokenSource::client_secret, "in Secret default/sp-secret"},
        {"type 2", 2, "", TokenSource::client_certificate, "service principal with certificate in Secret"},
        {"secret in another namespace", 1, "kube-system", std::nullopt,
         "references Secret kube-system/sp-secret outside its namespace default (not allowed), skipped"},
    };
    for (const SpRow& row : rows) {
        SCOPED_TRACE(row.name);
        Objects o{{service_principal(row.type, row.secret_ns)},
                  {identity_binding("default", "b1", "sp", "azure-vote")},
                  {},
                  {}};
        KubeResolution got = resolve_kube(pod("default", kVoteLabel), snapshot_of(o));
        EXPECT_NE(got.binding.explanation.find(row.explanation_has), std::string::npos) << got.binding.explanation;
        if (!row.source) {
            EXPECT_TRUE(got.binding.identities.empty());
            EXPECT_TRUE(got.binding.unsupported_identities);
            continue;
        }
        ASSERT_EQ(got.binding.identities.size(), 1u);
        const Identity& identity = got.binding.identities[0];
        ASSERT_TRUE(identity.entra.has_value());
        EXPECT_EQ(identity.source(), *row.source);
        EXPECT_EQ(identity.client_id, kOtherClient);
        EXPECT_EQ(identity.entra->tenant, "contoso.onmicrosoft.com");
        EXPECT_EQ(identity.entra->secret_ns, "default");
        EXPECT_EQ(identity.entra->secret_name, "sp-secret");
        EXPECT_TRUE(identity.entra->pod_uid.empty());  // shared by every pod bound to it
        EXPECT_FALSE(got.binding.unsupported_identities);
    }
}

// Workload Identity is federated by default: the pod's own service-account token is the assertion.
TEST(ResolveKubeBinding, WorkloadIdentityFederatedOrThroughTheNode) {
    kube::ServiceAccount annotated = service_account("default", "wi-sa", kWiClient);  // tenant-id "tenant"
    kube::ServiceAccount bare = service_account("default", "wi-sa", kWiClient);
    bare.meta.annotations.erase("azure.workload.identity/tenant-id");
    bare.meta.annotations["azure.workload.identity/service-account-token-expiration"] = "7200";
    PodInfo p = pod("default", kWiLabel, "wi-sa");
    p.uid = "0a0b0c0d-1111-2222-3333-444455556666";
    struct WiRow {
        const char* name;
        kube::ServiceAccount account;
        KubeBindingOptions options;
        std::optional<std::string> tenant;  // nullopt: node IMDS
        int64_t lifetime;
    };
    const WiRow rows[] = {
        {"tenant from the annotation", annotated, {true, "fallback"}, "tenant", 3600},
        {"tenant from --tenant-id, lifetime from the annotation", bare, {true, "fallback"}, "fallback", 7200},
        {"no tenant anywhere: kept, the handler refuses it", bare, {true, ""}, "", 7200},
        {"--workload-identity=node", annotated, {false, "fallback"}, std::nullopt, 0},
    };
    for (const WiRow& row : rows) {
        SCOPED_TRACE(row.name);
        Objects o{{}, {}, {}, {row.account}};
        KubeResolution got = resolve_kube(p, snapshot_of(o), row.options);
        ASSERT_EQ(got.binding.identities.size(), 1u);
        const Identity& identity = got.binding.identities[0];
        EXPECT_EQ(identity.client_id, kWiClient);
        if (!row.tenant) {
            EXPECT_FALSE(identity.entra.has_value());
            EXPECT_NE(got.binding.explanation.find("through the node's IMDS"), std::string::npos);
            continue;
        }
        ASSERT_TRUE(identity.entra.has_value());
        EXPECT_EQ(identity.source(), TokenSource::federated);
        EXPECT_EQ(identity.entra->tenant, *row.tenant);
        EXPECT_EQ(identity.entra->pod_ns, "default");
        EXPECT_EQ(identity.entra->pod_name, p.name);
        EXPECT_EQ(identity.entra->pod_uid, p.uid);
        EXPECT_EQ(identity.entra->service_account, "wi-sa");
        EXPECT_EQ(identity.entra->assertion_lifetime_s, row.lifetime);
        EXPECT_EQ(identity.entra->subject(), "system:serviceaccount:default:wi-sa");
        EXPECT_NE(got.binding.explanation.find("federated (tenant " +
                                               (row.tenant->empty() ? std::string("unknown") : *row.tenant) +
                                               ", subject system:serviceaccount:default:wi-sa)"),
                  std::string::npos)
            << got.binding.explanation;
    }
}

TEST(ResolveKubeBinding, TableHasTheCasesTheDocsPromise) { EXPECT_GE(rows().size(), 20u); }

TEST(ResolveKubeBinding, SeedExplanationInFull) {
    Binding got = resolve_kube_binding(pod("default", kVoteLabel), snapshot_of(seed()));
    EXPECT_EQ(got.explanation,
              "pod default/vote-pod: AzureIdentityBinding default/b1 (selector azure-vote) -> AzureIdentity "
              "default/azure-vote (clientID " +
                  kVoteClient + "); no azure.workload.identity/use label");
}

TEST(ResolveKubeBinding, UnsupportedNamesBindingAndType) {
    Objects o{{azure_identity("default", "sp", 2, kOtherClient)},
              {identity_binding("default", "b9", "sp", "azure-vote")},
              {},
              {}};
    KubeResolution got = resolve_kube(pod("default", kVoteLabel), snapshot_of(o));
    ASSERT_EQ(got.unsupported.size(), 1u);
    EXPECT_EQ(got.unsupported[0].binding, "default/b9");
    EXPECT_EQ(got.unsupported[0].identity, "default/sp");
    EXPECT_EQ(got.unsupported[0].type, 2);
}

// Every order of the snapshot's lists gives the same answer, explanation included.
TEST(ResolveKubeBinding, IndependentOfListOrder) {
    Objects o = with(
        seed(),
        Objects{{azure_identity("default", "id-b", 0, kOtherClient), azure_identity("default", "sp", 1, kWiClient)},
                {identity_binding("default", "b3", "id-b", "azure-vote"),
                 identity_binding("default", "b2", "sp", "azure-vote"),
                 identity_binding("default", "b0", "gone", "azure-vote")},
                {exception("default", "ex2", {{"app", "nomatch"}}), exception("default", "ex1", {{"tier", "nomatch"}})},
                {}});
    const PodInfo p = pod("default", kVoteLabel);
    const KubeResolution first = resolve_kube(p, snapshot_of(o));
    ASSERT_EQ(first.binding.identities.size(), 2u);
    std::sort(o.bindings.begin(), o.bindings.end(),
              [](const auto& a, const auto& b) { return a.meta.name < b.meta.name; });
    int permutations = 0;
    do {
        std::reverse(o.identities.begin(), o.identities.end());
        std::reverse(o.exceptions.begin(), o.exceptions.end());
        KubeResolution got = resolve_kube(p, snapshot_of(o));
        EXPECT_EQ(describe(got.binding.identities), describe(first.binding.identities));
        EXPECT_EQ(got.binding.explanation, first.binding.explanation);
        ASSERT_EQ(got.unsupported.size(), 1u);
        ++permutations;
    } while (std::next_permutation(o.bindings.begin(), o.bindings.end(),
                                   [](const auto& a, const auto& b) { return a.meta.name < b.meta.name; }));
    EXPECT_EQ(permutations, 24);
}

// What the IMDS handler makes of a pod whose only binding names a service principal: IMDS's "Identity not found",
// so SDK credential chains move on (docs/bindings.md promises this).
TEST(ResolveKubeBinding, UnsupportedOnlyMeansIdentityNotFound) {
    Objects o{{azure_identity("default", "sp", 1, kOtherClient)},
              {identity_binding("default", "b1", "sp", "azure-vote")},
              {},
              {}};
    Binding binding = resolve_kube_binding(pod("default", kVoteLabel), snapshot_of(o));
    ASSERT_EQ(binding.kind, BindingKind::aad_pod_identity);
    HttpRequest req{boost::beast::http::verb::get,
                    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net", 11};
    req.set("Metadata", "true");
    Caller caller;
    caller.origin = Origin{4242, 17, "python3", "169.254.169.254:80", true};
    Plan plan = plan_request(req, classify(req), caller, binding, {});
    ASSERT_TRUE(std::holds_alternative<Reply>(plan));
    const Reply& reply = std::get<Reply>(plan);
    EXPECT_EQ(reply.response.result_int(), 400u);
    EXPECT_NE(reply.response.body().find("Identity not found"), std::string::npos);
}

// KubeBindingSource: how a caller becomes a pod lookup.
struct SourceRow {
    std::string name;
    Caller caller;
    bool have_snapshot;
    BindingKind kind;
    std::string explanation_has;
};

Caller caller_with(std::optional<PodRef> ref, std::optional<PodInfo> p, std::string cgroup) {
    Caller c;
    c.origin = Origin{99, 1, "app", "169.254.169.254:80", true};
    c.cgroup_path = std::move(cgroup);
    c.pod_ref = std::move(ref);
    c.pod = std::move(p);
    return c;
}

TEST(KubeBindingSource, Table) {
    const PodRef ref{"0f1e2d3c-4b5a-4968-8776-655443322110", "", "containerd", "besteffort"};
    const std::string pod_cgroup = "/kubepods.slice/kubepods-besteffort.slice/x.slice";
    const std::vector<SourceRow> rows = {
        {"node process", caller_with(std::nullopt, std::nullopt, "/system.slice/cron.service"), true, BindingKind::none,
         "not a pod cgroup (/system.slice/cron.service)"},
        {"unknown cgroup", caller_with(std::nullopt, std::nullopt, ""), true, BindingKind::none,
         "not a pod cgroup (cgroup unknown)"},
        {"pod not in the directory", caller_with(ref, std::nullopt, pod_cgroup), true, BindingKind::none,
         "caller is not a known pod (pod 0f1e2d3c-4b5a-4968-8776-655443322110"},
        {"known bound pod", caller_with(ref, pod("default", kVoteLabel), pod_cgroup), true,
         BindingKind::aad_pod_identity, "AzureIdentityBinding default/b1"},
        {"known unbound pod", caller_with(ref, pod("default", {}), pod_cgroup), true, BindingKind::none,
         "no aadpodidbinding label"},
        {"no snapshot yet", caller_with(ref, pod("default", kVoteLabel), pod_cgroup), false, BindingKind::none,
         "pod default/vote-pod: no Kubernetes bindings snapshot yet"},
    };
    for (const SourceRow& row : rows) {
        SCOPED_TRACE(row.name);
        kube::SnapshotPtr snap =
            row.have_snapshot ? std::make_shared<const kube::Snapshot>(snapshot_of(seed())) : nullptr;
        KubeBindingSource source([snap] { return snap; }, [] { return true; });
        Binding got = source.bindings_for(row.caller);
        EXPECT_EQ(got.kind, row.kind);
        EXPECT_NE(got.explanation.find(row.explanation_has), std::string::npos) << got.explanation;
    }
}

TEST(KubeBindingSource, ReadyFollowsTheFlagAndSnapshotsAreReadPerCall) {
    bool ready = false;
    kube::SnapshotPtr current = std::make_shared<const kube::Snapshot>();
    KubeBindingSource source([&] { return current; }, [&] { return ready; });
    EXPECT_FALSE(source.ready());
    ready = true;
    EXPECT_TRUE(source.ready());

    Caller c = caller_with(PodRef{"u", "", "", ""}, pod("default", kVoteLabel), "/kubepods.slice/p");
    EXPECT_EQ(source.bindings_for(c).kind, BindingKind::none);
    current = std::make_shared<const kube::Snapshot>(snapshot_of(seed()));  // the watch published a new one
    EXPECT_EQ(source.bindings_for(c).kind, BindingKind::aad_pod_identity);
}

TEST(KubeBindingSource, ResolveCarriesUnsupported) {
    Objects o{{azure_identity("default", "sp", 1, kOtherClient)},
              {identity_binding("default", "b1", "sp", "azure-vote")},
              {},
              {}};
    auto snap = std::make_shared<const kube::Snapshot>(snapshot_of(o));
    KubeBindingSource source([snap] { return snap; }, [] { return true; });
    KubeResolution got = source.resolve(caller_with(PodRef{"u", "", "", ""}, pod("default", kVoteLabel), "/k"));
    ASSERT_EQ(got.unsupported.size(), 1u);
    EXPECT_TRUE(got.binding.identities.empty());
}

TEST(KubeBindingSource, EmptyFunctionsMeanNothing) {
    KubeBindingSource source({}, {});
    EXPECT_FALSE(source.ready());
    EXPECT_EQ(source.bindings_for(caller_with(PodRef{"u", "", "", ""}, pod("default", kVoteLabel), "/k")).kind,
              BindingKind::none);
}

}  // namespace
}  // namespace podid
