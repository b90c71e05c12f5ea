#include "directory.h"

#include <openssl/x509.h>

#include <algorithm>
#include <cctype>

#include "imds-emulator/base64url.h"

namespace podid::entra_emulator {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool iequals(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

std::string app_key(std::string_view tenant_id, std::string_view client_id) {
    return lower(tenant_id) + "/" + lower(client_id);
}

Result<std::vector<std::string>> string_list(const nlohmann::json& json, const char* field) {
    std::vector<std::string> out;
    if (!json.contains(field))
        return out;
    if (!json[field].is_array())
        return make_error(std::string("'") + field + "' must be an array of strings");
    for (const auto& item : json[field]) {
        if (!item.is_string() || item.get<std::string>().empty())
            return make_error(std::string("'") + field + "' must be an array of non-empty strings");
        out.push_back(item.get<std::string>());
    }
    return out;
}

Result<std::string> string_field(const nlohmann::json& json, const char* field, bool required) {
    if (!json.contains(field)) {
        if (required)
            return make_error(std::string("missing '") + field + "'");
        return std::string();
    }
    if (!json[field].is_string() || (required && json[field].get<std::string>().empty()))
        return make_error(std::string("'") + field + "' must be a non-empty string");
    return json[field].get<std::string>();
}

std::optional<std::string> hex_decode(std::string_view text) {
    if (text.size() % 2 != 0)
        return std::nullopt;
    std::string out;
    for (size_t i = 0; i < text.size(); i += 2) {
        auto nibble = [](char c) -> int {
            if (c >= '0' && c <= '9')
                return c - '0';
            if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
            if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
            return -1;
        };
        int hi = nibble(text[i]), lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

Result<FederatedCredential> parse_federated(const nlohmann::json& json) {
    if (!json.is_object())
        return make_error("a federated credential must be an object");
    FederatedCredential fic;
    auto name = string_field(json, "name", false);
    auto issuer = string_field(json, "issuer", true);
    auto subject = string_field(json, "subject", true);
    auto audiences = string_list(json, "audiences");
    if (!name)
        return name.error();
    if (!issuer)
        return make_error("federated credential: " + issuer.error().message);
    if (!subject)
        return make_error("federated credential: " + subject.error().message);
    if (!audiences)
        return make_error("federated credential: " + audiences.error().message);
    fic.name = *name;
    fic.issuer = *issuer;
    fic.subject = *subject;
    // The portal's default for a new federated credential.
    fic.audiences = audiences->empty() ? std::vector<std::string>{"api://AzureADTokenExchange"} : *audiences;
    return fic;
}

}  // namespace

Result<Tenant> parse_tenant(const nlohmann::json& json) {
    if (!json.is_object())
        return make_error("a tenant must be a JSON object");
    auto id = string_field(json, "id", true);
    if (!id)
        return make_error("tenant: " + id.error().message);
    auto names = string_list(json, "names");
    if (!names)
        return make_error("tenant: " + names.error().message);
    return Tenant{*id, *names};
}

Result<CertificateCredential> certificate_from_pem(std::string_view pem) {
    auto cert = parse_certificate_pem(pem);
    if (!cert)
        return cert.error();
    std::string der = certificate_der(cert->get());
    EVP_PKEY* key = X509_get_pubkey(cert->get());  // a new reference
    if (der.empty() || !key)
        return openssl_error("cannot read the certificate's public key");
    CertificateCredential cred;
    cred.sha1 = sha1_digest(der);
    cred.sha256 = sha256_digest(der);
    cred.key = SharedPkey(key, PkeyFree{});
    cred.validity = certificate_validity(cert->get());
    return cred;
}

Result<CertificateCredential> certificate_from_thumbprint(std::string_view text) {
    std::optional<std::string> raw;
    if (text.size() == 40 || text.size() == 64)
        raw = hex_decode(text);
    if (!raw) {
        std::string_view b64 = text;
        while (!b64.empty() && b64.back() == '=')
            b64.remove_suffix(1);
        raw = emulator::base64url_decode(b64);
    }
    CertificateCredential cred;
    if (raw && raw->size() == 20)
        cred.sha1 = *raw;
    else if (raw && raw->size() == 32)
        cred.sha256 = *raw;
    else
        return make_error("'" + std::string(text) + "' is not a SHA-1 or SHA-256 thumbprint (hex or base64url)");
    return cred;
}

Result<App> parse_app(const nlohmann::json& json) {
    if (!json.is_object())
        return make_error("an app must be a JSON object");
    App app;
    auto tenant = string_field(json, "tenant", true);
    auto client_id = string_field(json, "client_id", true);
    auto object_id = string_field(json, "object_id", false);
    auto display_name = string_field(json, "display_name", false);
    for (auto* r : {&tenant, &client_id, &object_id, &display_name}) {
        if (!*r)
            return make_error("app: " + r->error().message);
    }
    app.tenant_id = *tenant;
    app.client_id = *client_id;
    app.object_id = *object_id;
    app.display_name = *display_name;

    auto secrets = string_list(json, "secrets");
    auto pems = string_list(json, "certificates");
    auto thumbprints = string_list(json, "certificate_thumbprints");
    for (auto* r : {&secrets, &pems, &thumbprints}) {
        if (!*r)
            return make_error("app " + app.client_id + ": " + r->error().message);
    }
    app.secrets = *secrets;
    for (const auto& pem : *pems) {
        auto cred = certificate_from_pem(pem);
        if (!cred)
            return make_error("app " + app.client_id + ": certificate: " + cred.error().message);
        app.certificates.push_back(*cred);
    }
    for (const auto& thumbprint : *thumbprints) {
        auto cred = certificate_from_thumbprint(thumbprint);
        if (!cred)
            return make_error("app " + app.client_id + ": " + cred.error().message);
        app.certificates.push_back(*cred);
    }
    if (json.contains("federated_credentials")) {
        if (!json["federated_credentials"].is_array())
            return make_error("app " + app.client_id + ": 'federated_credentials' must be an array");
        for (const auto& item : json["federated_credentials"]) {
            auto fic = parse_federated(item);
            if (!fic)
                return make_error("app " + app.client_id + ": " + fic.error().message);
            app.federated_credentials.push_back(*fic);
        }
    }
    if (json.contains("access_token_version")) {
        const auto& v = json["access_token_version"];
        if (!v.is_number_integer() || (v.get<int>() != 1 && v.get<int>() != 2))
            return make_error("app " + app.client_id + ": 'access_token_version' must be 1 or 2");
        app.access_token_version = v.get<int>();
    }
    return app;
}

nlohmann::json to_json(const App& app) {
    nlohmann::json certs = nlohmann::json::array();
    for (const auto& c : app.certificates) {
        nlohmann::json cert = {{"has_public_key", c.key != nullptr}};
        if (!c.sha1.empty()) {
            cert["x5t"] = emulator::base64url_encode(c.sha1);
            cert["sha1_hex"] = hex_upper(c.sha1);
        }
        if (!c.sha256.empty())
            cert["x5t#S256"] = emulator::base64url_encode(c.sha256);
        certs.push_back(std::move(cert));
    }
    nlohmann::json fics = nlohmann::json::array();
    for (const auto& f : app.federated_credentials) {
        fics.push_back({{"name", f.name}, {"issuer", f.issuer}, {"subject", f.subject}, {"audiences", f.audiences}});
    }
    return {{"tenant", app.tenant_id},
            {"client_id", app.client_id},
            {"object_id", app.object_id},
            {"display_name", app.display_name},
            {"secrets", app.secrets.size()},
            {"certificates", std::move(certs)},
            {"federated_credentials", std::move(fics)},
            {"access_token_version", app.access_token_version}};
}

void Directory::add_tenant(const Tenant& tenant) {
    std::lock_guard lock(mu_);
    for (auto& t : tenants_) {
        if (iequals(t.id, tenant.id)) {
            for (const auto& name : tenant.names) {
                if (std::none_of(t.names.begin(), t.names.end(), [&](const auto& n) { return iequals(n, name); }))
                    t.names.push_back(name);
            }
            return;
        }
    }
    tenants_.push_back(tenant);
}

Result<void> Directory::add_app(App app) {
    if (app.tenant_id.empty() || app.client_id.empty())
        return make_error("an app needs a tenant and a client id");
    std::lock_guard lock(mu_);
    if (auto tenant = find_tenant_locked(app.tenant_id))
        app.tenant_id = tenant->id;
    else
        tenants_.push_back(Tenant{app.tenant_id, {}});
    if (app.object_id.empty())
        app.object_id = uuid_from_seed("service-principal:" + lower(app.tenant_id) + "/" + lower(app.client_id));
    if (app.display_name.empty())
        app.display_name = "app-" + app.client_id.substr(0, 8);
    std::string key = app_key(app.tenant_id, app.client_id);
    apps_[key] = std::move(app);
    return {};
}

bool Directory::remove_app(std::string_view tenant, std::string_view client_id) {
    std::lock_guard lock(mu_);
    auto t = find_tenant_locked(tenant);
    return t && apps_.erase(app_key(t->id, client_id)) > 0;
}

Result<void> Directory::load(const nlohmann::json& config) {
    if (!config.is_object())
        return make_error("the configuration must be a JSON object");
    std::vector<Tenant> tenants;
    std::vector<App> apps;
    for (const char* field : {"tenants", "apps"}) {
        if (config.contains(field) && !config[field].is_array())
            return make_error(std::string("'") + field + "' must be an array");
    }
    for (const auto& item : config.value("tenants", nlohmann::json::array())) {
        auto tenant = parse_tenant(item);
        if (!tenant)
            return tenant.error();
        tenants.push_back(*tenant);
    }
    for (const auto& item : config.value("apps", nlohmann::json::array())) {
        auto app = parse_app(item);
        if (!app)
            return app.error();
        apps.push_back(*app);
    }
    for (const auto& t : tenants)
        add_tenant(t);
    for (auto& a : apps) {
        if (auto r = add_app(std::move(a)); !r)
            return r;
    }
    return {};
}

std::optional<Tenant> Directory::find_tenant_locked(std::string_view id_or_name) const {
    for (const auto& t : tenants_) {
        if (iequals(t.id, id_or_name) ||
            std::any_of(t.names.begin(), t.names.end(), [&](const auto& n) { return iequals(n, id_or_name); }))
            return t;
    }
    return std::nullopt;
}

std::optional<Tenant> Directory::find_tenant(std::string_view id_or_name) const {
    std::lock_guard lock(mu_);
    return find_tenant_locked(id_or_name);
}

std::optional<App> Directory::find_app(std::string_view tenant_id, std::string_view client_id) const {
    std::lock_guard lock(mu_);
    auto it = apps_.find(app_key(tenant_id, client_id));
    if (it == apps_.end())
        return std::nullopt;
    return it->second;
}

nlohmann::json Directory::to_json() const {
    std::lock_guard lock(mu_);
    nlohmann::json tenants = nlohmann::json::array();
    for (const auto& t : tenants_)
        tenants.push_back({{"id", t.id}, {"names", t.names}});
    nlohmann::json apps = nlohmann::json::array();
    for (const auto& [key, app] : apps_)
        apps.push_back(entra_emulator::to_json(app));
    return {{"tenants", std::move(tenants)}, {"apps", std::move(apps)}};
}

}  // namespace podid::entra_emulator
