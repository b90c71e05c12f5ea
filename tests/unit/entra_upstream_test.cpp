// entra/entra_upstream: the Entra ID source behind the token cache, with fake credential sources and the real Entra
// client against the in-process Entra emulator (loopback, TLS with the emulator's CA through SSL_CERT_FILE): what a
// federated, secret or failing source turns into (status, IMDS-shaped body, audit reason), and the router that sends
// each key to its source.
#include "entra/entra_upstream.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "entra-emulator/server.h"

namespace podid {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

const std::string kTenant = "4d2f7c3a-1b6e-4f0a-9c8d-7e5b3a2f1c0d";
const std::string kFederatedApp = "a1111111-1111-4111-8111-111111111111";
const std::string kSecretApp = "a3333333-3333-4333-8333-333333333333";

TEST(EntraUpstream, CredentialFromSecretTakesNmisFormatsAndNamesOnlyKeys) {
    struct Row {
        const char* name;
        TokenSource source;
        std::map<std::string, std::string> data;
        bool ok;
        std::string error_has;
    };
    const Row rows[] = {
        {"clientSecret key", TokenSource::client_secret, {{"clientSecret", "s1"}, {"other", "x"}}, true, ""},
        {"the only key, whatever its name (NMI)", TokenSource::client_secret, {{"password", "s1"}}, true, ""},
        {"two keys, none clientSecret",
         TokenSource::client_secret,
         {{"a", "v-one"}, {"b", "v-two"}},
         false,
         "Secret ns/sp has no client secret: put it under the key clientSecret (keys: a, b)"},
        {"empty value", TokenSource::client_secret, {{"clientSecret", ""}}, false, "keys: clientSecret"},
        {"no certificate key",
         TokenSource::client_certificate,
         {{"password", "pw-value"}},
         false,
         "Secret ns/sp has no key certificate"},
        {"not a PKCS#12 file",
         TokenSource::client_certificate,
         {{"certificate", "garbage-bytes"}, {"password", "pw"}},
         false,
         "Secret ns/sp: "},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        auto got = credential_from_secret(row.source, row.data, "ns/sp");
        EXPECT_EQ(got.ok(), row.ok) << (got.ok() ? "" : got.error().message);
        if (row.ok) {
            ASSERT_TRUE(std::holds_alternative<entra::ClientSecret>(*got));
            EXPECT_EQ(std::get<entra::ClientSecret>(*got).value, "s1");
            continue;
        }
        EXPECT_NE(got.error().message.find(row.error_has), std::string::npos) << got.error().message;
        for (const auto& [key, value] : row.data) {
            if (!value.empty() && value != "x") {
                EXPECT_EQ(got.error().message.find(value), std::string::npos) << "a value in the message";
            }
        }
    }
}

TEST(EntraUpstream, EntraReasonWordsBecomeAuditReasons) {
    const std::pair<std::string_view, std::optional<Reason>> rows[] = {
        {entra::reason::federation_not_trusted, Reason::deny_federation_untrusted},
        {entra::reason::sp_secret_invalid, Reason::deny_credential_invalid},
        {entra::reason::sp_certificate_invalid, Reason::deny_credential_invalid},
        {entra::reason::entra_assertion_invalid, Reason::deny_credential_invalid},
        {entra::reason::entra_app_not_found, Reason::deny_entra_app_unknown},
        {entra::reason::entra_tenant_not_found, Reason::deny_entra_app_unknown},
        {entra::reason::entra_throttled, Reason::error_entra_unavailable},
        {entra::reason::entra_unavailable, Reason::error_entra_unavailable},
        {entra::reason::entra_unreachable, Reason::error_entra_unavailable},
        {entra::reason::entra_timeout, Reason::error_entra_unavailable},
        {entra::reason::entra_resource_not_found, std::nullopt},
        {entra::reason::entra_rejected, std::nullopt},
    };
    for (const auto& [word, reason] : rows)
        EXPECT_EQ(reason_for_entra(word), reason) << word;
}

class CountingUpstream : public TokenUpstream {
public:
    asio::awaitable<UpstreamResult> fetch(const TokenKey& key) override {
        ++calls;
        UpstreamResult r;
        r.status = 418;
        r.detail = key.client_id;
        co_return r;
    }
    std::atomic<int> calls{0};
};

UpstreamResult run(asio::io_context& io, TokenUpstream& upstream, const TokenKey& key) {
    auto future = asio::co_spawn(io, upstream.fetch(key), asio::use_future);
    io.restart();
    io.run();
    return future.get();
}

TokenKey entra_key(TokenSource source, const std::string& client_id, const std::string& resource) {
    TokenKey key{client_id, "", "", resource};
    EntraRef e;
    e.source = source;
    e.tenant = kTenant;
    e.pod_ns = "default";
    e.pod_name = "web";
    e.pod_uid = "uid-1";
    e.service_account = "wi-sa";
    e.secret_ns = "default";
    e.secret_name = "sp-secret";
    key.entra = e;
    return key;
}

TEST(EntraUpstream, RouterSendsEachKeyToItsSource) {
    asio::io_context io;
    CountingUpstream imds, entra;
    SourceRoutedUpstream without(imds);
    UpstreamResult r = run(io, without, TokenKey{"c", "", "", "https://vault.azure.net"});
    EXPECT_EQ(r.status, 418);
    EXPECT_EQ(imds.calls.load(), 1);
    r = run(io, without, entra_key(TokenSource::federated, "c", "https://vault.azure.net"));
    EXPECT_EQ(r.status, 400) << "no Entra upstream outside Kubernetes mode";
    EXPECT_EQ(r.reason, Reason::deny_entra_app_unknown);
    EXPECT_NE(r.body.find("Kubernetes mode"), std::string::npos) << r.body;

    SourceRoutedUpstream with(imds, &entra);
    run(io, with, entra_key(TokenSource::client_secret, "c", "https://vault.azure.net"));
    run(io, with, TokenKey{"c", "", "", "https://vault.azure.net"});
    EXPECT_EQ(entra.calls.load(), 1);
    EXPECT_EQ(imds.calls.load(), 2);
}

// The real client against the emulator: what each source's success or failure becomes.
class EntraUpstreamEmulated : public ::testing::Test {
protected:
    void SetUp() override {
        entra_emulator::EmulatorOptions options;
        emu_ = std::make_unique<entra_emulator::EntraEmulator>(options);
        ASSERT_TRUE(emu_->start().ok());
        issuer_ = *emu_->add_issuer("cluster1");
        emu_->directory().add_tenant({kTenant, {}});
        ASSERT_TRUE(emu_->directory()
                        .add_app(*entra_emulator::parse_app(json{{"tenant", kTenant},
                                                                 {"client_id", kFederatedApp},
                                                                 {"federated_credentials",
                                                                  {{{"issuer", issuer_},
                                                                    {"subject", "system:serviceaccount:default:wi-sa"},
                                                                    {"audiences", {"api://AzureADTokenExchange"}}}}}}))
                        .ok());
        ASSERT_TRUE(emu_->directory()
                        .add_app(*entra_emulator::parse_app(
                            json{{"tenant", kTenant}, {"client_id", kSecretApp}, {"secrets", {"s3cret"}}}))
                        .ok());
        ca_file_ = std::filesystem::temp_directory_path() / ("podid-entra-upstream-ca-" + std::to_string(::getpid()));
        std::ofstream(ca_file_) << emu_->ca_pem();
        ::setenv("SSL_CERT_FILE", ca_file_.c_str(), 1);  // read when the client is created
        entra::EntraClientOptions o;
        o.authority_host = emu_->origin() + "/";
        auto client = entra::EntraClient::create(io_.get_executor(), o);
        ASSERT_TRUE(client.ok()) << client.error().message;
        client_ = std::move(*client);
    }
    void TearDown() override {
        ::unsetenv("SSL_CERT_FILE");
        std::error_code ec;
        std::filesystem::remove(ca_file_, ec);
    }

    EntraUpstreamSources sources() {
        EntraUpstreamSources s;
        s.service_account_token = [this](const EntraRef& e) -> asio::awaitable<Result<std::string>> {
            ++sa_calls_;
            if (sa_error_)
                co_return make_error("the API server refused the TokenRequest: forbidden", EACCES);
            entra_emulator::IssuerTokenSpec spec;
            spec.subject = e.subject();
            co_return *emu_->mint_issuer_token("cluster1", spec);
        };
        s.secret = [this](const std::string&,
                          const std::string&) -> asio::awaitable<Result<std::map<std::string, std::string>>> {
            if (secret_error_)
                co_return make_error("secret default/sp-secret not found", ENOENT);
            co_return std::map<std::string, std::string>{{"clientSecret", secret_value_}};
        };
        return s;
    }

    asio::io_context io_;
    std::unique_ptr<entra_emulator::EntraEmulator> emu_;
    std::string issuer_;
    std::filesystem::path ca_file_;
    std::unique_ptr<entra::EntraClient> client_;
    int sa_calls_ = 0;
    bool sa_error_ = false;
    bool secret_error_ = false;
    std::string secret_value_ = "s3cret";
};

TEST_F(EntraUpstreamEmulated, EachSourceSucceedsOrSaysWhy) {
    EntraUpstream upstream(*client_, sources());
    struct Row {
        const char* name;
        TokenKey key;
        std::function<void()> arrange;
        int status;
        std::optional<Reason> reason;
        std::string body_has;
    };
    const std::vector<Row> rows = {
        {"federated", entra_key(TokenSource::federated, kFederatedApp, "https://vault.azure.net"), [] {}, 200,
         std::nullopt, ""},
        {"federated, another subject: no federated credential",
         [] {
             TokenKey k = entra_key(TokenSource::federated, kFederatedApp, "https://vault.azure.net");
             k.entra->service_account = "other-sa";
             return k;
         }(),
         [] {}, 400, Reason::deny_federation_untrusted, "system:serviceaccount:default:other-sa"},
        {"federated, TokenRequest refused", entra_key(TokenSource::federated, kFederatedApp, "https://vault.azure.net"),
         [this] { sa_error_ = true; }, 500, Reason::error_sa_token, "forbidden"},
        {"client secret", entra_key(TokenSource::client_secret, kSecretApp, "https://vault.azure.net"),
         [this] { sa_error_ = false; }, 200, std::nullopt, ""},
        {"wrong client secret", entra_key(TokenSource::client_secret, kSecretApp, "https://vault.azure.net"),
         [this] { secret_value_ = "wrong"; }, 401, Reason::deny_credential_invalid, "AADSTS7000215"},
        {"Secret unreadable", entra_key(TokenSource::client_secret, kSecretApp, "https://vault.azure.net"),
         [this] { secret_error_ = true; }, 500, Reason::error_secret_unreadable, "default/sp-secret not found"},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        row.arrange();
        UpstreamResult r = run(io_, upstream, row.key);
        ASSERT_EQ(r.status == 200, row.status == 200) << r.status << " " << r.body << " " << r.detail;
        if (row.status == 200) {
            ASSERT_TRUE(r.token.has_value());
            EXPECT_EQ(r.token->client_id, row.key.client_id);
            EXPECT_EQ(r.token->resource, "https://vault.azure.net");
            continue;
        }
        EXPECT_EQ(r.reason, row.reason) << r.body;
        EXPECT_NE(r.body.find(row.body_has), std::string::npos) << r.body;
        json body = json::parse(r.body, nullptr, false);
        EXPECT_TRUE(body.is_object() && body.contains("error") && body.contains("error_description")) << r.body;
        EXPECT_EQ(r.body.find("s3cret"), std::string::npos);
        EXPECT_EQ(r.body.find("\"wrong\""), std::string::npos);
    }
}

}  // namespace
}  // namespace podid
