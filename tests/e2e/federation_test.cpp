// Entra ID token exchange end to end: pods call plain IMDS (curl, Python azure-identity, @azure/identity) and get
// tokens of identities that exist only in Entra ID (the emulator, tools/entra-emulator), never on the node's IMDS.
// Workload Identity federation: the agent asks the API-server double for a service-account token bound to the pod
// (TokenRequest) and the emulator verifies it against the double's OIDC issuer documents for real. Service
// principals (AzureIdentity type 1 and 2): the agent reads their Secret and presents the secret or a certificate
// assertion.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/entra_node.h"
#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kTenant = "4d2f7c3a-1b6e-4f0a-9c8d-7e5b3a2f1c0d";
const std::string kWiApp = "a1111111-1111-4111-8111-111111111111";      // federated with default:wi-sa
const std::string kOtherApp = "a2222222-2222-4222-8222-222222222222";   // federated with default:other-sa
const std::string kSecretApp = "a3333333-3333-4333-8333-333333333333";  // service principal, client secret
const std::string kCertApp = "a4444444-4444-4444-8444-444444444444";    // service principal, certificate
const std::string kNodeMi = "b5555555-5555-4555-8555-555555555555";     // assigned to the node (contrast)
const std::string kClientSecret = "sp-Secr3t-value-never-logged";
const std::string kCertPassword = "p12-Passw0rd-never-logged";
const std::string kNodeName = "aks-nodepool1-0";
// Where tools/install-deps.sh installs @azure/identity.
constexpr const char* kSdkDir = "/var/cache/podid-sdk";
const std::string kVault =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

// Standard base64 with padding, as a Secret's `data` holds its values.
std::string b64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock writes a terminating NUL
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

class FederationTest : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        PodidNodeOptions o;
        o.vm_identities = {kNodeMi};
        build_podid_node(o);
        kubeconfig_ = serve_api();
        make_certificate();

        const std::string issuer = api_->service_account_issuer();
        auto federated = [&](const std::string& client_id, const std::string& sa) {
            return json{{"tenant", kTenant},
                        {"client_id", client_id},
                        {"federated_credentials",
                         {{{"issuer", issuer},
                           {"subject", "system:serviceaccount:default:" + sa},
                           {"audiences", {"api://AzureADTokenExchange"}}}}}};
        };
        json config = {
            {"tenants", {{{"id", kTenant}, {"names", {"contoso.onmicrosoft.com"}}}}},
            {"apps",
             {federated(kWiApp, "wi-sa"),
              federated(kOtherApp, "other-sa"),
              {{"tenant", kTenant}, {"client_id", kSecretApp}, {"secrets", {kClientSecret}}},
              {{"tenant", kTenant}, {"client_id", kCertApp}, {"certificate_files", {cert_dir_ + "/sp.crt"}}}}}};
        entra_ = EntraNode::start(pn_->node(), config, {api_->pki().ca_path()});

        service_account("wi-sa", kWiApp, kTenant);
        service_account("other-sa", kOtherApp, "");        // tenant from --tenant-id
        service_account("untrusted-sa", kWiApp, kTenant);  // no federated credential for this subject
        create("Secret", {{"metadata", {{"name", "sp-secret"}, {"namespace", "default"}}},
                          {"data", {{"clientSecret", b64(kClientSecret)}}}});
        create("Secret", {{"metadata", {{"name", "sp-wrong"}, {"namespace", "default"}}},
                          {"data", {{"clientSecret", b64("not-the-secret")}}}});
        create("Secret",
               {{"metadata", {{"name", "sp-cert"}, {"namespace", "default"}}},
                {"data", {{"certificate", b64(read_file(cert_dir_ + "/sp.p12"))}, {"password", b64(kCertPassword)}}}});
        service_principal("sp-secret-id", 1, kSecretApp, "sp-secret", "uses-secret");
        service_principal("sp-wrong-id", 1, kSecretApp, "sp-wrong", "uses-wrong");
        service_principal("sp-cert-id", 2, kCertApp, "sp-cert", "uses-cert");
    }

    void TearDown() override {
        if (HasFailure()) {
            if (pn_)
                for (const auto& line : pn_->audit_lines())
                    std::cerr << "audit: " << line.dump() << "\n";
            if (entra_)
                std::cerr << "entra emulator: " << entra_->log() << "\n";
        }
        entra_.reset();
        std::error_code ec;
        if (!cert_dir_.empty())
            std::filesystem::remove_all(cert_dir_, ec);
        NodeFixture::TearDown();
    }

    void make_certificate() {
        char tmpl[] = "/tmp/podid-sp-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        cert_dir_ = tmpl;
        RunResult req = node().run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=podid-sp",
                                    "-days", "1", "-keyout", cert_dir_ + "/sp.key", "-out", cert_dir_ + "/sp.crt"},
                                   "", "", 30s);
        ASSERT_EQ(req.exit_code, 0) << req.err;
        RunResult p12 =
            node().run({"openssl", "pkcs12", "-export", "-in", cert_dir_ + "/sp.crt", "-inkey", cert_dir_ + "/sp.key",
                        "-passout", "pass:" + kCertPassword, "-out", cert_dir_ + "/sp.p12"},
                       "", "", 30s);
        ASSERT_EQ(p12.exit_code, 0) << p12.err;
    }

    void service_account(const std::string& name, const std::string& client_id, const std::string& tenant) {
        json annotations = {{"azure.workload.identity/client-id", client_id}};
        if (!tenant.empty())
            annotations["azure.workload.identity/tenant-id"] = tenant;
        create("ServiceAccount",
               {{"metadata", {{"name", name}, {"namespace", "default"}, {"annotations", annotations}}}});
    }

    void service_principal(const std::string& name, int type, const std::string& client_id, const std::string& secret,
                           const std::string& selector) {
        create("AzureIdentity", {{"metadata", {{"name", name}, {"namespace", "default"}}},
                                 {"spec",
                                  {{"type", type},
                                   {"clientID", client_id},
                                   {"tenantID", kTenant},
                                   {"clientPassword", {{"name", secret}, {"namespace", "default"}}}}}});
        create("AzureIdentityBinding", {{"metadata", {{"name", name + "-binding"}, {"namespace", "default"}}},
                                        {"spec", {{"azureIdentity", name}, {"selector", selector}}}});
    }

    // A pod on the test node and its Pod object, with `labels` and service account `sa`.
    Pod& add_pod(const std::string& test_name, const std::string& name, json labels, const std::string& sa,
                 bool host_network = false) {
        Pod& p = pn_->add_pod({.name = test_name, .host_network = host_network});
        json object = kube_pod_object(p, "default", name, std::move(labels), kNodeName, host_network);
        object["spec"]["serviceAccountName"] = sa;
        create("Pod", object);
        return p;
    }
    Pod& add_wi_pod(const std::string& test_name, const std::string& name, const std::string& sa,
                    bool host_network = false) {
        return add_pod(test_name, name, {{"azure.workload.identity/use", "true"}}, sa, host_network);
    }

    void start_agent(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {
            "--kubeconfig", kubeconfig_,        "--node-name",           kNodeName, "--metrics-addr", "", "--tenant-id",
            kTenant,        "--authority-host", entra_->authority_host()};
        args.insert(args.end(), extra.begin(), extra.end());
        pn_->set_agent_args(args);
        // Entra ID's certificate is trusted the way an operator points the agent at a private CA.
        pn_->set_agent_env({{"SSL_CERT_FILE", entra_->ca_path()}});
        pn_->start_emulator();
        pn_->start_agent();
    }

    RunResult ctl(std::vector<std::string> args) {
        std::vector<std::string> argv = {PODIDCTL_BIN, "--socket", pn_->admin_socket_path(), "--bpffs", pn_->pin_dir()};
        argv.insert(argv.end(), args.begin(), args.end());
        return node().run(argv, "", "", 20s);
    }

    std::vector<json> audit_for(const std::string& pod) {
        std::vector<json> out;
        for (const auto& line : pn_->audit_lines())
            if (line["caller"].value("pod", "") == pod)
                out.push_back(line);
        return out;
    }

    uint64_t entra_calls(const std::string& client_id) {
        json s = entra_->stats();
        return s["by_client_id"].value(client_id, uint64_t{0});
    }

    std::string kubeconfig_;
    std::string cert_dir_;
    std::unique_ptr<EntraNode> entra_;
};

// The seed scenario under Workload Identity: an app that exists only in Entra ID, a pod that only calls IMDS.
TEST_F(FederationTest, WorkloadIdentityPodGetsItsFederatedTokenThroughPlainImds) {
    add_wi_pod("wi", "web", "wi-sa");
    add_wi_pod("wihost", "web-host", "wi-sa", /*host_network=*/true);
    start_agent();

    for (const char* pod : {"wi", "wihost"}) {
        SCOPED_TRACE(pod);
        auto r = pn_->curl(pod, kVault);
        ASSERT_EQ(r.status, 200) << r.body;
        json body = r.json();
        // IMDS's exact shape: every field a string, expires_on absolute, resource echoed, client_id.
        for (const char* field : {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in",
                                  "not_before", "resource", "token_type"})
            EXPECT_TRUE(body.contains(field) && body[field].is_string()) << field << ": " << r.body;
        EXPECT_EQ(body.value("client_id", ""), kWiApp);
        EXPECT_EQ(body.value("resource", ""), "https://vault.azure.net");
        EXPECT_EQ(body.value("token_type", ""), "Bearer");
        const int64_t expires_on = std::stoll(body.value("expires_on", "0"));
        EXPECT_GT(expires_on,
                  std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                          .count() +
                      3000);
        json claims = jwt_claims(body.value("access_token", ""));
        EXPECT_EQ(claims.value("appid", ""), kWiApp) << claims.dump();
        EXPECT_EQ(claims.value("aud", ""), "https://vault.azure.net");
        EXPECT_EQ(claims.value("tid", ""), kTenant);
    }
    // Each pod exchanged a token bound to itself; the node's IMDS was never asked for the app.
    EXPECT_EQ(api_->token_requests("default", "wi-sa"), 2u);
    EXPECT_EQ(entra_calls(kWiApp), 2u);
    json imds = pn_->emulator_stats();
    EXPECT_EQ(imds.dump().find(kWiApp), std::string::npos) << imds.dump();

    // A second request is a cache hit: no new TokenRequest, no new Entra call.
    EXPECT_EQ(pn_->curl("wi", kVault).status, 200);
    EXPECT_EQ(api_->token_requests("default", "wi-sa"), 2u);
    EXPECT_EQ(entra_calls(kWiApp), 2u);

    // A resource with a trailing slash is echoed as asked; Entra got the SDKs' scope for it.
    auto arm = pn_->curl("wi",
                         "/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
                         "https%3A%2F%2Fmanagement.azure.com%2F");
    ASSERT_EQ(arm.status, 200) << arm.body;
    EXPECT_EQ(arm.json().value("resource", ""), "https://management.azure.com/");

    auto lines = audit_for("web");
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0].value("reason", ""), "ok_bound_identity");
    EXPECT_NE(lines[0].value("binding", "").find("federated (tenant " + kTenant), std::string::npos) << lines[0].dump();
}

// Real SDKs, unchanged, in a Workload Identity pod with no webhook-injected environment: they only know IMDS.
// Python azure-identity (Debian's python3-azure) and @azure/identity (npm, installed by tools/install-deps.sh).
TEST_F(FederationTest, RealSdksGetTheFederatedTokenFromImds) {
    add_wi_pod("wi", "web", "wi-sa");
    start_agent();
    const std::vector<std::pair<std::string, std::vector<std::string>>> sdks = {
        {"python azure-identity",
         {"/usr/bin/python3", "-c",
          "from azure.identity import ManagedIdentityCredential\n"
          "print(ManagedIdentityCredential().get_token('https://vault.azure.net/.default').token)"}},
        {"@azure/identity",
         {"env", "NODE_PATH=" + std::string(kSdkDir) + "/node_modules", "node", "-e",
          "const { ManagedIdentityCredential } = require('@azure/identity');"
          "new ManagedIdentityCredential().getToken('https://vault.azure.net/.default')"
          ".then(t => console.log(t.token), e => { console.error(e.message); process.exit(1); });"}},
    };
    for (const auto& [name, argv] : sdks) {
        SCOPED_TRACE(name);
        RunResult r = pn_->node().run_in_pod("wi", argv, 60s);
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        std::string token = r.out.substr(0, r.out.find_last_not_of("\n") + 1);
        json claims = jwt_claims(token);
        EXPECT_EQ(claims.value("appid", ""), kWiApp) << r.out;
        EXPECT_EQ(claims.value("aud", ""), "https://vault.azure.net");
    }
}

TEST_F(FederationTest, MissingFederatedCredentialSaysWhichSubjectWasRefused) {
    add_wi_pod("untrusted", "stranger", "untrusted-sa");
    start_agent();

    auto r = pn_->curl("untrusted", kVault);
    EXPECT_EQ(r.status, 400) << r.body;
    const std::string description = r.json().value("error_description", "");
    EXPECT_NE(description.find("system:serviceaccount:default:untrusted-sa"), std::string::npos) << description;
    EXPECT_NE(description.find(api_->service_account_issuer()), std::string::npos) << description;
    EXPECT_NE(description.find("api://AzureADTokenExchange"), std::string::npos) << description;

    auto lines = audit_for("stranger");
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().value("reason", ""), "deny_federation_untrusted") << lines.back().dump();

    RunResult explain = ctl({"explain", "default/stranger", "-o", "json"});
    ASSERT_EQ(explain.exit_code, 0) << explain.err;
    json e = json::parse(explain.out);
    ASSERT_FALSE(e["identities"].empty()) << explain.out;
    EXPECT_EQ(e["identities"][0].value("source", ""), "federated");
    EXPECT_EQ(e["identities"][0].value("subject", ""), "system:serviceaccount:default:untrusted-sa");
    EXPECT_EQ(e["identities"][0].value("tenant", ""), kTenant);
}

TEST_F(FederationTest, PodsNeverGetEachOthersTokensAndOneExchangeServesABurst) {
    add_wi_pod("wi", "web", "wi-sa");
    add_wi_pod("other", "api", "other-sa");
    start_agent();

    // 200 concurrent requests from one pod: one TokenRequest, one Entra call.
    // curl's -o applies to one URL: one per URL, or the bodies (tokens) go to stdout.
    std::vector<std::string> argv = {
        "curl",           "-s",  "-w", "%{http_code}\n", "--parallel", "--parallel-immediate",
        "--parallel-max", "200", "-H", "Metadata: true"};
    for (int i = 0; i < 200; ++i)
        argv.insert(argv.end(), {"-o", "/dev/null", "http://169.254.169.254" + kVault});
    RunResult burst = pn_->node().run_in_pod("other", argv, 60s);
    ASSERT_EQ(burst.exit_code, 0) << burst.err;
    std::istringstream codes(burst.out);
    std::string code;
    int ok = 0;
    while (codes >> code)
        ok += code == "200";
    EXPECT_EQ(ok, 200) << burst.out;
    EXPECT_EQ(api_->token_requests("default", "other-sa"), 1u);
    EXPECT_EQ(entra_calls(kOtherApp), 1u);

    // Each pod gets its own app's token, whatever it asks for.
    auto web = pn_->curl("wi", kVault);
    auto api = pn_->curl("other", kVault);
    ASSERT_EQ(web.status, 200) << web.body;
    ASSERT_EQ(api.status, 200) << api.body;
    EXPECT_EQ(jwt_claims(web.json().value("access_token", "")).value("appid", ""), kWiApp);
    EXPECT_EQ(jwt_claims(api.json().value("access_token", "")).value("appid", ""), kOtherApp);
    auto borrow = pn_->curl("other", kVault + "&client_id=" + kWiApp);
    EXPECT_EQ(borrow.status, 400) << "another service account's app: " << borrow.body;

    // A deleted pod's service-account token and access tokens go with it.
    std::string last_status;
    auto cached_for = [&](const std::string& pod) {
        RunResult st = ctl({"status", "-o", "json"});
        EXPECT_EQ(st.exit_code, 0) << st.err;
        last_status = st.out;
        int n = 0;
        const json status = json::parse(st.out);  // a named object: a range over a temporary's member dangles
        for (const auto& entry : status["agent"]["token_cache"]["tokens"])
            n += entry.value("pod", "") == pod;
        return n;
    };
    EXPECT_EQ(cached_for("default/api"), 1) << last_status;
    ASSERT_TRUE(api_->remove("Pod", "default", "api").ok());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (cached_for("default/api") != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    EXPECT_EQ(cached_for("default/api"), 0);
    EXPECT_EQ(cached_for("default/web"), 1);
}

TEST_F(FederationTest, ServicePrincipalsServeTokensAndNeverShowTheirSecrets) {
    add_pod("secret", "uses-secret", {{"aadpodidbinding", "uses-secret"}}, "default");
    add_pod("cert", "uses-cert", {{"aadpodidbinding", "uses-cert"}}, "default");
    add_pod("wrong", "uses-wrong", {{"aadpodidbinding", "uses-wrong"}}, "default");
    start_agent({"--metrics-addr", "127.0.0.1:9090"});

    auto secret = pn_->curl("secret", kVault);
    ASSERT_EQ(secret.status, 200) << secret.body;
    EXPECT_EQ(secret.json().value("client_id", ""), kSecretApp);
    EXPECT_EQ(jwt_claims(secret.json().value("access_token", "")).value("appid", ""), kSecretApp);

    auto cert = pn_->curl("cert", kVault);
    ASSERT_EQ(cert.status, 200) << cert.body;
    EXPECT_EQ(jwt_claims(cert.json().value("access_token", "")).value("appid", ""), kCertApp);
    json by_credential = entra_->stats()["by_credential"];
    EXPECT_EQ(by_credential.value("secret", 0), 1) << by_credential.dump();
    EXPECT_EQ(by_credential.value("certificate", 0), 1) << by_credential.dump();

    auto wrong = pn_->curl("wrong", kVault);
    EXPECT_GE(wrong.status, 400) << wrong.body;
    EXPECT_NE(wrong.json().value("error_description", "").find("AADSTS7000215"), std::string::npos) << wrong.body;
    auto lines = audit_for("uses-wrong");
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().value("reason", ""), "deny_credential_invalid");

    // No secret text anywhere an operator or another pod could read.
    std::string everything = pn_->agent_log() + read_file(pn_->audit_path()) + wrong.body + secret.body;
    for (const auto& args : std::vector<std::vector<std::string>>{{"status", "-o", "json"},
                                                                  {"pods", "-o", "json"},
                                                                  {"explain", "default/uses-secret", "-o", "json"},
                                                                  {"explain", "default/uses-cert", "-o", "json"}}) {
        RunResult r = ctl(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        everything += r.out + r.err;
    }
    RunResult metrics = pn_->node().run({"curl", "-s", "http://127.0.0.1:9090/metrics"}, pn_->node().node_netns(), "");
    everything += metrics.out;
    for (const std::string& secret_text :
         {kClientSecret, kCertPassword, b64(kClientSecret), std::string("not-the-secret")})
        EXPECT_EQ(everything.find(secret_text), std::string::npos) << "secret text leaked: " << secret_text;
}

TEST_F(FederationTest, EntraDownOrThrottlingKeepsCachedTokensAndNeverStorms) {
    add_wi_pod("wi", "web", "wi-sa");
    start_agent({"--upstream-timeout", "3s"});
    ASSERT_EQ(pn_->curl("wi", kVault).status, 200);
    entra_->reset();

    // A 429 storm with Retry-After: the cached token keeps being served without any Entra call.
    entra_->fault({{"mode", "status"}, {"status", 429}, {"retry_after", 5}, {"duration_ms", 20000}});
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(pn_->curl("wi", kVault).status, 200);
    EXPECT_EQ(entra_->stats().value("token_calls", 0), 0);
    // Entra ID down (503 on every call): the same.
    entra_->fault({{"mode", "status"}, {"status", 503}, {"duration_ms", 20000}});
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(pn_->curl("wi", kVault).status, 200);
    EXPECT_EQ(entra_->stats().value("token_calls", 0), 0);
    entra_->fault({{"mode", "status"}, {"status", 429}, {"retry_after", 5}, {"duration_ms", 20000}});

    // A resource not cached: 30 concurrent requests share one fetch, which honours Retry-After (5 s, beyond the
    // 3 s the client waits): one Entra call, and the pods get Entra's throttling answer.
    std::vector<std::string> argv = {
        "curl",           "-s", "-w", "%{http_code}\n", "--parallel", "--parallel-immediate",
        "--parallel-max", "30", "-H", "Metadata: true"};
    for (int i = 0; i < 30; ++i)
        argv.insert(argv.end(),
                    {"-o", "/dev/null",
                     "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
                     "https%3A%2F%2Fstorage.azure.com"});
    RunResult burst = pn_->node().run_in_pod("wi", argv, 60s);
    ASSERT_EQ(burst.exit_code, 0) << burst.err;
    EXPECT_EQ(burst.out.find("200"), std::string::npos) << burst.out;
    EXPECT_LE(entra_->stats().value("token_calls", 0), 2) << entra_->stats().dump();
    auto lines = audit_for("web");
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().value("reason", ""), "error_entra_unavailable") << lines.back().dump();
}

}  // namespace
}  // namespace podid::test
