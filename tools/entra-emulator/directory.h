// The emulated directory: tenants and the app registrations in them with their credentials (client secrets,
// certificates, federated identity credentials). Filled from the --config file, the admin API or a test, and
// read by every token request; thread-safe, lookups return copies.
//
// JSON (config file "tenants"/"apps" arrays, admin API bodies):
//   tenant: {"id":"<guid>","names":["contoso.onmicrosoft.com"]}
//   app:    {"tenant":"<id or name>","client_id":"<guid>","object_id":"<guid>","display_name":"...",
//            "secrets":["..."],
//            "certificates":["-----BEGIN CERTIFICATE-----..."],
//            "certificate_thumbprints":["<x5t#S256: base64url SHA-256 of the DER>" or SHA-1/SHA-256 hex],
//            "federated_credentials":[{"name":"...","issuer":"https://...","subject":"system:serviceaccount:ns:sa",
//                                      "audiences":["api://AzureADTokenExchange"]}],
//            "access_token_version":1}
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "crypto.h"

namespace podid::entra_emulator {

struct Tenant {
    std::string id;                  // a GUID in Entra; any name here
    std::vector<std::string> names;  // verified domains, also accepted in URLs
};

struct FederatedCredential {
    std::string name;
    std::string issuer;  // compared exactly, as Entra does (a trailing '/' matters)
    std::string subject;
    std::vector<std::string> audiences;
};

// A certificate credential. Uploaded certificates carry their public key; a credential configured by thumbprint
// alone needs the client to send the certificate in the assertion's x5c header (Entra's "SNI" style), whose
// digest must then equal the thumbprint.
struct CertificateCredential {
    std::string sha1;      // raw digest of the DER, empty when unknown
    std::string sha256;    // raw digest of the DER, empty when unknown
    SharedPkey key;        // null: thumbprint only
    std::string validity;  // "Start=..., End=..." for messages
};

struct App {
    std::string tenant_id;
    std::string client_id;
    std::string object_id;  // the service principal's object id: oid and sub of its tokens
    std::string display_name;
    std::vector<std::string> secrets;
    std::vector<CertificateCredential> certificates;
    std::vector<FederatedCredential> federated_credentials;
    int access_token_version = 1;  // the resource's accessTokenAcceptedVersion: 1 (most Azure APIs) or 2
};

Result<Tenant> parse_tenant(const nlohmann::json& json);
// `tenant_id` is set from the "tenant" field as given; Directory::add_app resolves names.
Result<App> parse_app(const nlohmann::json& json);
Result<CertificateCredential> certificate_from_pem(std::string_view pem);
// base64url (x5t / x5t#S256, padding allowed) or hex; 20 bytes = SHA-1, 32 bytes = SHA-256.
Result<CertificateCredential> certificate_from_thumbprint(std::string_view text);
// Secrets are never echoed: the admin API shows how many there are.
nlohmann::json to_json(const App& app);

class Directory {
public:
    // Adds a tenant or merges names into the tenant with the same id.
    void add_tenant(const Tenant& tenant);
    // Replaces any app with the same client id in the tenant. A tenant not yet known is created (its id is the
    // name the app gave). Fills object_id and display_name when empty.
    Result<void> add_app(App app);
    bool remove_app(std::string_view tenant, std::string_view client_id);
    // {"tenants":[...],"apps":[...]}; everything or nothing is added.
    Result<void> load(const nlohmann::json& config);

    // By id or by one of its names, ignoring case (tenant GUIDs and domains are case-insensitive).
    std::optional<Tenant> find_tenant(std::string_view id_or_name) const;
    std::optional<App> find_app(std::string_view tenant_id, std::string_view client_id) const;
    nlohmann::json to_json() const;

private:
    std::optional<Tenant> find_tenant_locked(std::string_view id_or_name) const;

    mutable std::mutex mu_;
    std::vector<Tenant> tenants_;
    std::map<std::string, App> apps_;  // key: lower(tenant id) + "/" + lower(client id)
};

}  // namespace podid::entra_emulator
