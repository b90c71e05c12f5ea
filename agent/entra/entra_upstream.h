// Tokens from Entra ID for the identities that are not the node's: Workload Identity federation (the pod's
// service-account token is the client assertion) and AAD Pod Identity service principals (a client secret, or a
// certificate podid signs assertions with), read from their Kubernetes objects. They sit behind the same cache,
// single-flight, refresh-ahead, retries and limits as IMDS: SourceRoutedUpstream sends each key to its source.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/result.h"
#include "entra/entra_client.h"
#include "kube/secrets.h"
#include "kube/service_account_tokens.h"
#include "token/token_upstream.h"

namespace podid {

struct EntraUpstreamSources {
    // The pod's service-account token for Entra's audience, bound to the pod (TokenRequest).
    std::function<boost::asio::awaitable<Result<std::string>>(const EntraRef& identity)> service_account_token;
    // A Secret's data, decoded.
    std::function<boost::asio::awaitable<Result<std::map<std::string, std::string>>>(const std::string& ns,
                                                                                     const std::string& name)>
        secret;
};

class EntraUpstream : public TokenUpstream {
public:
    EntraUpstream(entra::EntraClient& client, EntraUpstreamSources sources)
        : client_(client), sources_(std::move(sources)) {}
    // `key.entra` must be set. One attempt: the credential is read (cached by its source), then one token request.
    boost::asio::awaitable<UpstreamResult> fetch(const TokenKey& key) override;

private:
    entra::EntraClient& client_;
    EntraUpstreamSources sources_;
};

// The sources as the agent has them in Kubernetes mode: TokenRequests and Secret reads through the API server.
// Both must outlive the upstream.
EntraUpstreamSources kube_sources(kube::ServiceAccountTokens& tokens, kube::SecretReader& secrets);

// The credential a service principal's Secret holds, in NMI's formats: type 1 the client secret (key clientSecret,
// or the Secret's only key); type 2 keys `certificate` (PKCS#12 bytes, or a PEM bundle of certificate and key)
// and `password`. The error names the Secret and its keys, never a value.
Result<entra::EntraCredential> credential_from_secret(TokenSource source,
                                                      const std::map<std::string, std::string>& data,
                                                      const std::string& secret_name);

// The audit reason for an Entra answer's reason word; nullopt where the status says enough.
std::optional<Reason> reason_for_entra(std::string_view word);

// Sends each key to the upstream of its identity's source: Entra ID when the key names an Entra identity, the node's
// IMDS otherwise. Without an Entra upstream (no Kubernetes mode), Entra keys are refused.
class SourceRoutedUpstream : public TokenUpstream {
public:
    explicit SourceRoutedUpstream(TokenUpstream& imds, TokenUpstream* entra = nullptr) : imds_(imds), entra_(entra) {}
    // Before any fetch (the agent sets it once Kubernetes mode is up).
    void set_entra(TokenUpstream* entra) { entra_ = entra; }
    boost::asio::awaitable<UpstreamResult> fetch(const TokenKey& key) override;

private:
    TokenUpstream& imds_;
    TokenUpstream* entra_;
};

}  // namespace podid
