// The metadata MSAL reads before asking for a token: a tenant's OpenID Connect discovery document
// (GET /{tenant}/v2.0/.well-known/openid-configuration), instance discovery
// (GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...) and the tenant's token signing
// keys (GET /{tenant}/discovery/v2.0/keys). URLs in answers use the origin the client addressed, so clients
// using 127.0.0.1 or localhost each get endpoints they can reach.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "directory.h"
#include "errors.h"
#include "http.h"

namespace podid::entra_emulator {

// Well-known tenant aliases that have a discovery document but no directory of their own.
bool is_tenant_alias(const std::string& segment);

HttpResponse answer_openid_configuration(const HttpRequest& req, const std::string& origin,
                                         const std::string& tenant_segment, const Directory& directory,
                                         const TraceInfo& trace);
HttpResponse answer_instance_discovery(const HttpRequest& req, const std::string& origin, const Params& query,
                                       const TraceInfo& trace);
HttpResponse answer_signing_keys(const HttpRequest& req, const std::string& tenant_segment, const Directory& directory,
                                 const nlohmann::json& jwks, const TraceInfo& trace);

}  // namespace podid::entra_emulator
