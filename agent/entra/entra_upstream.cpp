#include "entra/entra_upstream.h"

#include "entra/token_response.h"

namespace podid {

namespace {

UpstreamResult failure(int status, Reason reason, std::string_view error, const std::string& description) {
    UpstreamResult r;
    r.status = status;
    r.reason = reason;
    r.body = entra::imds_error_body(error, description);
    r.detail = description;
    return r;
}

std::string keys_of(const std::map<std::string, std::string>& data) {
    std::string out;
    for (const auto& [key, value] : data)
        out += (out.empty() ? "" : ", ") + key;
    return out.empty() ? "none" : out;
}

// The Kubernetes objects that hold the credential, for Entra error descriptions.
std::string holder_of(const TokenKey& key) {
    const EntraRef& e = *key.entra;
    if (e.source == TokenSource::federated)
        return "service account " + e.pod_ns + "/" + e.service_account + " (pod " + e.pod_ns + "/" + e.pod_name + ")";
    return "AzureIdentity with client id " + key.client_id + " (Secret " + e.secret_ns + "/" + e.secret_name + ")";
}

boost::asio::awaitable<Result<std::string>> service_account_token(kube::ServiceAccountTokens* tokens, EntraRef e) {
    PodInfo pod;
    pod.ns = e.pod_ns;
    pod.name = e.pod_name;
    pod.uid = e.pod_uid;
    pod.service_account = e.service_account;
    auto token = co_await tokens->token_for(pod, std::chrono::seconds(e.assertion_lifetime_s));
    if (!token)
        co_return token.error();
    co_return std::move(token->token);
}

boost::asio::awaitable<Result<std::map<std::string, std::string>>> secret_data(kube::SecretReader* secrets,
                                                                               std::string ns, std::string name) {
    auto data = co_await secrets->read(std::move(ns), std::move(name));
    if (!data)
        co_return data.error();
    co_return std::move(*data);
}

}  // namespace

EntraUpstreamSources kube_sources(kube::ServiceAccountTokens& tokens, kube::SecretReader& secrets) {
    EntraUpstreamSources s;
    // Plain functions, not coroutine lambdas: their frames own copies of what they need.
    s.service_account_token = [t = &tokens](const EntraRef& e) { return service_account_token(t, e); };
    s.secret = [r = &secrets](const std::string& ns, const std::string& name) { return secret_data(r, ns, name); };
    return s;
}

Result<entra::EntraCredential> credential_from_secret(TokenSource source,
                                                      const std::map<std::string, std::string>& data,
                                                      const std::string& secret_name) {
    if (source == TokenSource::client_secret) {
        if (auto it = data.find("clientSecret"); it != data.end() && !it->second.empty())
            return entra::EntraCredential{entra::ClientSecret{it->second}};
        // NMI took the Secret's value whatever its key was; only an unambiguous one is taken here.
        if (data.size() == 1 && !data.begin()->second.empty())
            return entra::EntraCredential{entra::ClientSecret{data.begin()->second}};
        return make_error("Secret " + secret_name +
                              " has no client secret: put it under the key clientSecret (keys: " + keys_of(data) + ")",
                          EINVAL);
    }
    auto cert = data.find("certificate");
    if (cert == data.end() || cert->second.empty())
        return make_error(
            "Secret " + secret_name + " has no key certificate (PKCS#12 bytes or PEM; keys: " + keys_of(data) + ")",
            EINVAL);
    auto password = data.find("password");
    const std::string pass = password == data.end() ? "" : password->second;
    auto loaded = cert->second.rfind("-----BEGIN", 0) == 0 ? entra::ClientCertificate::from_pem(cert->second, pass)
                                                           : entra::ClientCertificate::from_pkcs12(cert->second, pass);
    if (!loaded)
        return make_error("Secret " + secret_name + ": " + loaded.error().message, loaded.error().code);
    return entra::EntraCredential{std::make_shared<const entra::ClientCertificate>(std::move(*loaded))};
}

std::optional<Reason> reason_for_entra(std::string_view word) {
    namespace w = entra::reason;
    if (word == w::federation_not_trusted)
        return Reason::deny_federation_untrusted;
    if (word == w::sp_secret_invalid || word == w::sp_certificate_invalid || word == w::entra_assertion_invalid)
        return Reason::deny_credential_invalid;
    if (word == w::entra_app_not_found || word == w::entra_tenant_not_found)
        return Reason::deny_entra_app_unknown;
    if (word == w::entra_throttled || word == w::entra_unavailable || word == w::entra_unreachable ||
        word == w::entra_timeout || word == "entra_tls_failed")
        return Reason::error_entra_unavailable;
    return std::nullopt;
}

boost::asio::awaitable<UpstreamResult> EntraUpstream::fetch(const TokenKey& key) {
    const EntraRef& e = *key.entra;
    entra::EntraTokenRequest request;
    request.info.tenant = e.tenant;
    request.info.client_id = key.client_id;
    request.info.resource = key.resource;
    request.info.identity = holder_of(key);
    if (e.source == TokenSource::federated) {
        auto token = co_await sources_.service_account_token(e);
        if (!token)
            co_return failure(500, Reason::error_sa_token, "server_error",
                              "podid could not get the service-account token of pod " + e.pod_ns + "/" + e.pod_name +
                                  " for Entra ID: " + token.error().message);
        request.credential = entra::ClientAssertion{std::move(*token)};
    } else {
        const std::string secret = e.secret_ns + "/" + e.secret_name;
        auto data = co_await sources_.secret(e.secret_ns, e.secret_name);
        if (!data)
            co_return failure(500, Reason::error_secret_unreadable, "server_error",
                              "podid could not read Secret " + secret + " of the AzureIdentity with client id " +
                                  key.client_id + ": " + data.error().message);
        auto credential = credential_from_secret(e.source, *data, secret);
        if (!credential)
            co_return failure(400, Reason::error_secret_unreadable, "invalid_request", credential.error().message);
        request.credential = std::move(*credential);
    }
    entra::EntraResult result = co_await client_.fetch(request);
    if (!result.upstream.token)
        result.upstream.reason = reason_for_entra(result.reason);
    // No answer at all: say it was Entra ID, not IMDS, that could not be reached (the cache's generic wording).
    if (result.upstream.status == 0 && result.upstream.body.empty())
        result.upstream.body = entra::imds_error_body(
            result.upstream.timed_out ? "gateway_timeout" : "service_unavailable",
            std::string(result.upstream.timed_out ? "Entra ID did not answer in time" : "Entra ID is unreachable") +
                " from this node (" + e.tenant + "): " + result.upstream.detail);
    co_return std::move(result.upstream);
}

boost::asio::awaitable<UpstreamResult> SourceRoutedUpstream::fetch(const TokenKey& key) {
    if (!key.entra)
        co_return co_await imds_.fetch(key);
    if (entra_ == nullptr)
        co_return failure(400, Reason::deny_entra_app_unknown, "invalid_request",
                          "Identity not found: Entra ID identities are served only in Kubernetes mode");
    co_return co_await entra_->fetch(key);
}

}  // namespace podid
