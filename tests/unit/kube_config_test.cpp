// kubeconfig and in-cluster configuration: every credential form, relative paths, and bad files
// refused with an error naming the field; the token file re-read when the kubelet rotates it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kube/base64.h"
#include "kube/bearer_token.h"
#include "kube/config.h"

namespace podid::kube {
namespace {

namespace fs = std::filesystem;

// Test material only parsed, never used for TLS here (kube_informer_test makes live certificates).
const char* kCertPem = R"(-----BEGIN CERTIFICATE-----
MIIBiDCCAS+gAwIBAgIUfAA7GUFc8AA1mzjtvwKZ+KAfFHYwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOcG9kaWQtb3RoZXItY2EwIBcNMjYxMTI4MjAwMjQyWhgPMjEy
NjExMDQyMDAyNDJaMBkxFzAVBgNVBAMMDnBvZGlkLW90aGVyLWNhMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEbdT/RCyFTEvPrScZ9Hv8OKYV72kz83W5WS+ZlKnJ
SOPZSsoGdnvc9ifZuA6GkGzm7G5kZTpWA6ZhkWWd4g+Q9aNTMFEwHQYDVR0OBBYE
FNkI3r7ZDO8dv6uRWFhpYN9Dpa5ZMB8GA1UdIwQYMBaAFNkI3r7ZDO8dv6uRWFhp
YN9Dpa5ZMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgaR7fcygF
4lkNasySM+9ImhQI+twtaebmfTZDOfPMlgkCIGdetXx27c7wmRMLWflcnU9zK46Z
eMp8xFGmEaWPDaBp
-----END CERTIFICATE-----
)";
const char* kKeyPem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqyJWjo6rQFfxrT67
fbMSM+n6RKrWQGKz6IPGD20pybChRANCAAT4yi8eICaHwe73+LC8oxaXgZrsQLuB
Pptk/ZFsyP9TAuHTwezYtHVkqPabFNTChwRkh+bJYt9qGLT0rFUzFKgR
-----END PRIVATE KEY-----
)";

std::string base64(const std::string& text) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < text.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(text[i]) << 16) |
                           (static_cast<unsigned char>(text[i + 1]) << 8) | static_cast<unsigned char>(text[i + 2]);
        for (int shift : {18, 12, 6, 0})
            out += kAlphabet[(v >> shift) & 63];
    }
    if (i < text.size()) {
        unsigned v = static_cast<unsigned char>(text[i]) << 16;
        if (i + 1 < text.size())
            v |= static_cast<unsigned char>(text[i + 1]) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < text.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "podid-kubeconfig-XXXXXX").string();
        path_ = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path_); }
    std::string write(const std::string& name, const std::string& text) const {
        const fs::path p = path_ / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
        return p.string();
    }
    std::string path() const { return path_.string(); }

private:
    fs::path path_;
};

// A kubeconfig with one context; `cluster` and `user` are the indented bodies of the entries.
std::string kubeconfig(const std::string& cluster, const std::string& user, const std::string& extra = "") {
    return "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
           "contexts:\n- name: other\n  context: {cluster: nowhere, user: nobody}\n"
           "- name: dev\n  context:\n    cluster: c1\n    user: u1\n    namespace: shop\n"
           "clusters:\n- name: c1\n  cluster:\n" +
           cluster + "users:\n- name: u1\n  user:\n" + user + extra;
}

TEST(KubeConfig, TokenAndCaData) {
    auto config = parse_kubeconfig(kubeconfig("    server: https://api.example.test:6443\n"
                                              "    certificate-authority-data: " +
                                                  base64(kCertPem) + "\n",
                                              "    token: abc.def.ghi\n"),
                                   "/nonexistent");
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->server, "https://api.example.test:6443");
    EXPECT_EQ(config->host, "api.example.test");
    EXPECT_EQ(config->port, "6443");
    EXPECT_EQ(config->path_prefix, "");
    EXPECT_EQ(config->ca_pem, kCertPem);
    EXPECT_EQ(config->token, "abc.def.ghi");
    EXPECT_EQ(config->token_file, "");
    EXPECT_EQ(config->ns, "shop");
}

TEST(KubeConfig, RelativeFilesResolveAgainstTheKubeconfigDirectory) {
    TempDir dir;
    dir.write("pki/ca.crt", kCertPem);
    dir.write("pki/client.crt", kCertPem);
    dir.write("pki/client.key", kKeyPem);
    dir.write("token", "from-file\n");
    const std::string path = dir.write("kube/config", kubeconfig("    server: https://[fd00::1]/k8s/clusters/c-1/\n"
                                                                 "    certificate-authority: ../pki/ca.crt\n"
                                                                 "    tls-server-name: kubernetes.default\n",
                                                                 "    tokenFile: ../token\n"
                                                                 "    client-certificate: " +
                                                                     dir.path() +
                                                                     "/pki/client.crt\n"
                                                                     "    client-key: ../pki/client.key\n"));
    auto config = load_kubeconfig(path);
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->host, "fd00::1");
    EXPECT_EQ(config->port, "443");
    EXPECT_EQ(config->path_prefix, "/k8s/clusters/c-1");
    EXPECT_EQ(config->tls_server_name, "kubernetes.default");
    EXPECT_EQ(config->ca_pem, kCertPem);
    EXPECT_EQ(config->token_file, dir.path() + "/kube/../token");
    EXPECT_EQ(config->client_cert_pem, kCertPem);
    EXPECT_EQ(config->client_key_pem, kKeyPem);
}

TEST(KubeConfig, ClientCertificateData) {
    auto config = parse_kubeconfig(
        kubeconfig("    server: https://10.0.0.1\n", "    client-certificate-data: " + base64(kCertPem) +
                                                         "\n"
                                                         "    client-key-data: " +
                                                         base64(kKeyPem) + "\n"),
        "");
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->client_cert_pem, kCertPem);
    EXPECT_EQ(config->client_key_pem, kKeyPem);
    EXPECT_EQ(config->ca_pem, "");  // system trust store
}

TEST(KubeConfig, JsonKubeconfigIsYamlToo) {
    auto config = parse_kubeconfig(
        R"({"current-context":"a","contexts":[{"name":"a","context":{"cluster":"c","user":"u"}}],
            "clusters":[{"name":"c","cluster":{"server":"https://k:8443"}}],
            "users":[{"name":"u","user":{"token":"t"}}]})",
        "");
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->host, "k");
    EXPECT_EQ(config->port, "8443");
    EXPECT_EQ(config->token, "t");
}

struct BadCase {
    const char* name;
    std::string text;
    std::string error_contains;
};

class KubeConfigBad : public testing::TestWithParam<BadCase> {};

TEST_P(KubeConfigBad, RefusedWithClearError) {
    auto config = parse_kubeconfig(GetParam().text, "/nonexistent");
    ASSERT_FALSE(config);
    EXPECT_NE(config.error().message.find(GetParam().error_contains), std::string::npos) << config.error().message;
}

const std::string kServer = "    server: https://k\n";
const std::string kToken = "    token: t\n";

INSTANTIATE_TEST_SUITE_P(
    Table, KubeConfigBad,
    testing::Values(
        BadCase{"not_yaml", "a: [b", "not valid YAML"}, BadCase{"scalar_document", "just text", "not a mapping"},
        BadCase{"no_current_context", "apiVersion: v1\n", "no current-context"},
        BadCase{"unknown_context", "current-context: x\ncontexts: []\n", "\"x\" is not among its contexts"},
        BadCase{"unknown_cluster", "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n",
                "cluster \"c\", which is not among its clusters"},
        BadCase{"insecure", kubeconfig(kServer + "    insecure-skip-tls-verify: true\n", kToken),
                "insecure-skip-tls-verify"},
        BadCase{"no_server", kubeconfig("    certificate-authority-data: \"\"\n", kToken), "has no server"},
        BadCase{"plain_http", kubeconfig("    server: http://k:8080\n", kToken), "not an https:// URL"},
        BadCase{"bad_port", kubeconfig("    server: https://k:99999\n", kToken), "invalid port"},
        BadCase{"ca_not_base64", kubeconfig(kServer + "    certificate-authority-data: '***'\n", kToken),
                "certificate-authority-data is not valid base64"},
        BadCase{"ca_not_pem", kubeconfig(kServer + "    certificate-authority-data: " + base64("hello") + "\n", kToken),
                "certificate-authority holds no PEM certificate"},
        BadCase{"ca_file_missing", kubeconfig(kServer + "    certificate-authority: missing.crt\n", kToken),
                "cannot read kubeconfig cluster \"c1\" certificate-authority /nonexistent/missing.crt"},
        BadCase{"exec_plugin", kubeconfig(kServer, "    exec: {command: kubelogin}\n"), "credential plugin"},
        BadCase{"auth_provider", kubeconfig(kServer, "    auth-provider: {name: azure}\n"), "credential plugin"},
        BadCase{"basic_auth", kubeconfig(kServer, "    username: admin\n    password: x\n"), "basic auth"},
        BadCase{"no_credential", kubeconfig(kServer, "    {}\n"), "no token, tokenFile or client certificate"},
        BadCase{"token_file_missing", kubeconfig(kServer, "    tokenFile: /nonexistent/token\n"),
                "cannot read kubeconfig user \"u1\" tokenFile /nonexistent/token"},
        BadCase{"cert_without_key", kubeconfig(kServer, "    client-certificate-data: " + base64(kCertPem) + "\n"),
                "without its key"},
        BadCase{"key_is_a_cert",
                kubeconfig(kServer, "    client-certificate-data: " + base64(kCertPem) +
                                        "\n    client-key-data: " + base64(kCertPem) + "\n"),
                "client-key holds no unencrypted PEM private key"}),
    [](const testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(KubeConfig, MissingFileNamesThePath) {
    auto config = load_kubeconfig("/nonexistent/kubeconfig");
    ASSERT_FALSE(config);
    EXPECT_NE(config.error().message.find("/nonexistent/kubeconfig"), std::string::npos);
    EXPECT_EQ(config.error().code, ENOENT);
}

struct UrlCase {
    std::string url;
    bool ok;
    std::string host, port, prefix;
};

class KubeServerUrl : public testing::TestWithParam<UrlCase> {};

TEST_P(KubeServerUrl, Parses) {
    const UrlCase& c = GetParam();
    auto address = parse_server_url(c.url);
    ASSERT_EQ(address.ok(), c.ok) << c.url;
    if (c.ok) {
        EXPECT_EQ(address->host, c.host);
        EXPECT_EQ(address->port, c.port);
        EXPECT_EQ(address->path_prefix, c.prefix);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubeServerUrl,
    testing::Values(UrlCase{"https://10.0.0.1", true, "10.0.0.1", "443", ""},
                    UrlCase{"https://10.0.0.1:6443/", true, "10.0.0.1", "6443", ""},
                    UrlCase{"https://[::1]:6443", true, "::1", "6443", ""},
                    UrlCase{"https://rancher.example/k8s/clusters/c-1", true, "rancher.example", "443",
                            "/k8s/clusters/c-1"},
                    UrlCase{"https://k:", false, "", "", ""}, UrlCase{"https://:443", false, "", "", ""},
                    UrlCase{"https://user@k", false, "", "", ""}, UrlCase{"https://[::1", false, "", "", ""},
                    UrlCase{"https://k/?x=1", false, "", "", ""}, UrlCase{"k:443", false, "", "", ""}));

TEST(KubeInClusterConfig, ReadsServiceAccountDirectory) {
    TempDir dir;
    dir.write("token", "sa-token\n");
    dir.write("ca.crt", kCertPem);
    dir.write("namespace", "podid-system\n");
    auto config =
        in_cluster_config({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, dir.path());
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->server, "https://10.96.0.1:443");
    EXPECT_EQ(config->host, "10.96.0.1");
    EXPECT_EQ(config->token_file, dir.path() + "/token");
    EXPECT_EQ(config->token, "");  // read through the file, so rotation is seen
    EXPECT_EQ(config->ca_pem, kCertPem);
    EXPECT_EQ(config->ns, "podid-system");

    auto v6 = in_cluster_config({{"KUBERNETES_SERVICE_HOST", "fd00:10:96::1"}, {"KUBERNETES_SERVICE_PORT", "443"}},
                                dir.path());
    ASSERT_TRUE(v6) << v6.error().message;
    EXPECT_EQ(v6->server, "https://[fd00:10:96::1]:443");
    EXPECT_EQ(v6->host, "fd00:10:96::1");
}

TEST(KubeInClusterConfig, Refusals) {
    TempDir dir;
    const std::map<std::string, std::string> env{{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                                 {"KUBERNETES_SERVICE_PORT", "443"}};
    auto no_env = in_cluster_config({}, dir.path());
    ASSERT_FALSE(no_env);
    EXPECT_NE(no_env.error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
    auto no_token = in_cluster_config(env, dir.path());
    ASSERT_FALSE(no_token);
    EXPECT_NE(no_token.error().message.find("service account token"), std::string::npos);
    dir.write("token", "\n");
    auto empty_token = in_cluster_config(env, dir.path());
    ASSERT_FALSE(empty_token);
    EXPECT_NE(empty_token.error().message.find("is empty"), std::string::npos);
    dir.write("token", "t");
    dir.write("ca.crt", "not a certificate");
    auto bad_ca = in_cluster_config(env, dir.path());
    ASSERT_FALSE(bad_ca);
    EXPECT_NE(bad_ca.error().message.find("holds no PEM certificate"), std::string::npos);
}

TEST(KubeBearerToken, RereadsOnlyWhenTheFileChanges) {
    TempDir dir;
    const std::string file = dir.write("token", "first\n");
    BearerToken token("", file);
    ASSERT_EQ(token.get().value(), "first");
    ASSERT_EQ(token.get().value(), "first");
    EXPECT_EQ(token.reads(), 1u);

    // The kubelet's rotation: a new file swapped in by rename.
    dir.write("token.new", "second");
    fs::rename(dir.path() + "/token.new", file);
    EXPECT_EQ(token.get().value(), "second");
    EXPECT_EQ(token.reads(), 2u);

    // A rotation in progress (file briefly absent) keeps the last token.
    fs::remove(file);
    EXPECT_EQ(token.get().value(), "second");
}

TEST(KubeBearerToken, FixedAndMissing) {
    BearerToken fixed("static", "");
    EXPECT_EQ(fixed.get().value(), "static");
    BearerToken none("", "");
    EXPECT_EQ(none.get().value(), "");
    BearerToken missing("", "/nonexistent/token");
    auto result = missing.get();
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ENOENT);
}

struct Base64Case {
    std::string input;
    std::optional<std::string> expected;
};

class KubeBase64 : public testing::TestWithParam<Base64Case> {};

TEST_P(KubeBase64, Decodes) { EXPECT_EQ(base64_decode(GetParam().input), GetParam().expected); }

INSTANTIATE_TEST_SUITE_P(Table, KubeBase64,
                         testing::Values(Base64Case{"", std::string()}, Base64Case{"Zg==", std::string("f")},
                                         Base64Case{"Zm8=", std::string("fo")}, Base64Case{"Zm9v", std::string("foo")},
                                         Base64Case{"Zm9vYg", std::string("foob")},  // unpadded
                                         Base64Case{"Zm9v\nYmFy\n", std::string("foobar")},
                                         Base64Case{"Zm9v*", std::nullopt}, Base64Case{"Zg==Zg==", std::nullopt},
                                         Base64Case{"Z", std::nullopt}));

}  // namespace
}  // namespace podid::kube
