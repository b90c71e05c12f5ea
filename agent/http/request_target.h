// Reading an HTTP request-target the way IMDS might: path normalisation, routing of the IMDS paths,
// and the token query. Everything a spelling trick (CVE-2022-23551: `/metadata/identity\oauth2\token/`
// proxied to IMDS returned the node's identities) could exploit is decided here, in one place.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "token/identity_select.h"

namespace podid {

inline constexpr std::string_view kTokenPath = "/metadata/identity/oauth2/token";

struct SplitTarget {
    std::string_view path;   // up to the first '?'
    std::string_view query;  // after it, "" when absent
};
SplitTarget split_target(std::string_view target);

// Percent-decodes repeatedly (so `%252F` ends as `/`), turns `\` into `/`, drops empty and `.` segments,
// resolves `..` (never above the root), drops a trailing slash, and lower-cases the first segment when it
// is `metadata` (IMDS matches it case-insensitively). Malformed escapes stay literal: such a path then
// matches no route. Never fails.
std::string normalise_path(std::string_view raw_path);

// Only these characters, no empty/`.`/`..` segments: a path every server reads the same way.
bool is_plain_path(std::string_view raw_path);

enum class Route {
    token,              // normalises exactly to the token path: served with the caller's own identity
    rejected,           // any other spelling that touches identity under /metadata, or an odd /metadata path
    host_token,         // /host/token or /host/token/
    instance_metadata,  // /metadata/instance...
    other_metadata,     // any other plain /metadata path: forwardable
    health,             // /healthz, /readyz
    unknown,
};
const char* to_string(Route route);

struct RoutedPath {
    Route route = Route::unknown;
    std::string path;  // normalised
};

// Only plain paths without `identity` in them are ever forwardable (instance_metadata, other_metadata).
RoutedPath route_path(std::string_view raw_path);

struct QueryParam {
    std::string name;   // decoded
    std::string value;  // decoded
};

// application/x-www-form-urlencoded as Go's url.ParseQuery and .NET's ParseQueryString read it (NMI and
// IMDS): pairs split on '&', `+` is a space, `%XX` a byte, a name without '=' has an empty value.
// Stricter than both: a malformed escape or a name given twice (compared case-insensitively) is an error,
// never a silently dropped or "first wins" value.
Result<std::vector<QueryParam>> parse_query(std::string_view raw_query);

// The token request's query. Parameter names are matched case-insensitively; unknown ones are accepted.
struct ImdsQuery {
    std::string api_version;    // "" when absent
    std::string resource;       // decoded; "" when absent
    IdentitySelector selector;  // mi_res_id is folded into msi_res_id; an empty value counts as absent
    bool bypass_cache = false;
};

// Errors (duplicate names, two identity selectors, malformed escapes) carry an IMDS-style description.
// Missing api-version / resource are not errors here: /host/token needs no api-version.
Result<ImdsQuery> parse_imds_query(std::string_view raw_query);

}  // namespace podid
