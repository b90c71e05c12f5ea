#include "http/request_target.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace podid {
namespace {

// Enough for any honest client (they encode once) and for the usual double-encoding tricks; a path still
// holding escapes after this simply matches no route.
constexpr int kMaxDecodeRounds = 4;

// A name quoted back in an error body is cut here: the body must stay small whatever the client sent.
constexpr size_t kMaxQuotedName = 64;

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool icontains(std::string_view haystack, std::string_view needle) {
    return to_lower(haystack).find(to_lower(needle)) != std::string::npos;
}

// The byte `%XX` at s[i] stands for, if it is a well-formed escape.
std::optional<char> escape_at(std::string_view s, size_t i) {
    if (s[i] != '%' || i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) {
        return std::nullopt;
    }
    return static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
}

// One decoding pass over a path: malformed escapes are kept as they are.
std::string decode_path_once(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (std::optional<char> byte = escape_at(s, i)) {
            out.push_back(*byte);
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

// A query component: '+' is a space, a malformed escape is an error.
std::optional<std::string> decode_query_component(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out.push_back(' ');
        } else if (s[i] != '%') {
            out.push_back(s[i]);
        } else if (std::optional<char> byte = escape_at(s, i)) {
            out.push_back(*byte);
            i += 2;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true) {
        size_t end = s.find(sep, start);
        parts.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) {
            return parts;
        }
        start = end + 1;
    }
}

bool plain_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
}

std::string quoted_name(std::string_view name) { return "'" + std::string(name.substr(0, kMaxQuotedName)) + "'"; }

}  // namespace

SplitTarget split_target(std::string_view target) {
    size_t q = target.find('?');
    if (q == std::string_view::npos) {
        return {target, {}};
    }
    return {target.substr(0, q), target.substr(q + 1)};
}

namespace {

// normalise_path() of a plain path (is_plain_path): nothing to decode, no '\\', '.' or '..', at most one trailing
// slash; so only that slash goes and a "metadata" first segment is lower-cased. Every request pays this, the
// general form allocates per segment and pass.
std::string normalise_plain_path(std::string_view raw_path) {
    std::string path(raw_path);
    if (path.size() > 1 && path.back() == '/')
        path.pop_back();
    const size_t first_end = std::min(path.find('/', 1), path.size());
    if (iequals(std::string_view(path).substr(1, first_end - 1), "metadata"))
        std::transform(path.begin() + 1, path.begin() + static_cast<std::ptrdiff_t>(first_end), path.begin() + 1,
                       lower);
    return path;
}

}  // namespace

std::string normalise_path(std::string_view raw_path) {
    if (is_plain_path(raw_path))
        return normalise_plain_path(raw_path);
    std::string decoded(raw_path);
    for (int round = 0; round < kMaxDecodeRounds; ++round) {
        std::string next = decode_path_once(decoded);
        if (next == decoded) {
            break;
        }
        decoded = std::move(next);
    }
    std::replace(decoded.begin(), decoded.end(), '\\', '/');

    std::vector<std::string> segments;
    for (std::string_view segment : split(decoded, '/')) {
        if (segment.empty() || segment == ".") {
            continue;
        }
        if (segment == "..") {
            if (!segments.empty()) {
                segments.pop_back();
            }
            continue;
        }
        segments.emplace_back(segment);
    }
    if (!segments.empty() && iequals(segments.front(), "metadata")) {
        segments.front() = "metadata";
    }

    std::string path;
    for (const std::string& segment : segments) {
        path += '/';
        path += segment;
    }
    return path.empty() ? "/" : path;
}

bool is_plain_path(std::string_view raw_path) {
    if (raw_path.empty() || raw_path.front() != '/') {
        return false;
    }
    if (!std::all_of(raw_path.begin(), raw_path.end(), plain_char)) {
        return false;
    }
    if (raw_path == "/") {
        return true;
    }
    std::string_view rest = raw_path.substr(1);
    if (rest.back() == '/') {
        rest.remove_suffix(1);  // one trailing slash reads the same everywhere
    }
    // Every segment non-empty and neither "." nor "..".
    for (size_t start = 0;;) {
        const size_t end = std::min(rest.find('/', start), rest.size());
        const std::string_view segment = rest.substr(start, end - start);
        if (segment.empty() || segment == "." || segment == "..") {
            return false;
        }
        if (end == rest.size()) {
            return true;
        }
        start = end + 1;
    }
}

const char* to_string(Route route) {
    switch (route) {
    case Route::token: return "token";
    case Route::rejected: return "rejected";
    case Route::host_token: return "host_token";
    case Route::instance_metadata: return "instance_metadata";
    case Route::other_metadata: return "other_metadata";
    case Route::health: return "health";
    case Route::unknown: return "unknown";
    }
    return "unknown";
}

RoutedPath route_path(std::string_view raw_path) {
    const bool plain = is_plain_path(raw_path);
    RoutedPath out{Route::unknown, plain ? normalise_plain_path(raw_path) : normalise_path(raw_path)};
    const std::string& path = out.path;

    // Exact spellings only: the session authorises /host/token callers by what NMI's CSI client sends.
    if (raw_path == "/host/token" || raw_path == "/host/token/") {
        out.route = Route::host_token;
        return out;
    }
    if (plain && (path == "/healthz" || path == "/readyz")) {
        out.route = Route::health;
        return out;
    }
    if (path != "/metadata" && path.rfind("/metadata/", 0) != 0) {
        return out;  // never forwarded: only /metadata paths reach IMDS
    }
    if (path == kTokenPath) {
        out.route = Route::token;
        return out;
    }
    // Everything below reaches IMDS unchanged, so it must be a spelling IMDS cannot read differently from
    // us, and must not name anything identity-related (NMI's /(?i:metadata)/identity(.*?)oauth2(.*?)token
    // is a subset of this).
    if (!plain) {
        out.route = Route::rejected;
        return out;
    }
    if (path == "/metadata/identity/info") {
        return out;  // tenant of the node's identities: not a pod's business, and not forwarded
    }
    if (icontains(path, "identity")) {
        out.route = Route::rejected;
        return out;
    }
    // Case-insensitive prefix: a `/metadata/INSTANCE` IMDS might serve must not slip past
    // --block-instance-metadata.
    std::string_view rest = std::string_view(path).substr(std::string_view("/metadata").size());
    out.route = rest.size() > 1 && to_lower(rest.substr(1)).rfind("instance", 0) == 0 ? Route::instance_metadata
                                                                                      : Route::other_metadata;
    return out;
}

Result<std::vector<QueryParam>> parse_query(std::string_view raw_query) {
    std::vector<QueryParam> params;
    params.reserve(static_cast<size_t>(std::count(raw_query.begin(), raw_query.end(), '&')) + 1);
    for (std::string_view pair : split(raw_query, '&')) {
        if (pair.empty()) {
            continue;
        }
        size_t eq = pair.find('=');
        std::optional<std::string> name = decode_query_component(pair.substr(0, eq));
        std::optional<std::string> value =
            decode_query_component(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!name || !value) {
            return make_error("Malformed percent-encoding in query");
        }
        for (const QueryParam& seen : params) {
            if (iequals(seen.name, *name)) {
                return make_error("Duplicate query parameter " + quoted_name(*name));
            }
        }
        params.push_back({std::move(*name), std::move(*value)});
    }
    return params;
}

Result<ImdsQuery> parse_imds_query(std::string_view raw_query) {
    Result<std::vector<QueryParam>> params = parse_query(raw_query);
    if (!params) {
        return params.error();
    }
    ImdsQuery query;
    int selectors = 0;
    for (QueryParam& param : *params) {
        const std::string_view name = param.name;  // names compare case-insensitively
        std::optional<IdentitySelector::Kind> selector;
        if (iequals(name, "api-version")) {
            query.api_version = std::move(param.value);
        } else if (iequals(name, "resource")) {
            query.resource = std::move(param.value);
        } else if (iequals(name, "bypass_cache")) {
            query.bypass_cache = iequals(param.value, "true");
        } else if (iequals(name, "client_id")) {
            selector = IdentitySelector::Kind::client_id;
        } else if (iequals(name, "object_id")) {
            selector = IdentitySelector::Kind::object_id;
        } else if (iequals(name, "msi_res_id") || iequals(name, "mi_res_id")) {
            selector = IdentitySelector::Kind::msi_res_id;
        }
        // Some clients send `client_id=` when none is configured: that asks for the default identity.
        if (selector && !param.value.empty()) {
            if (++selectors > 1) {
                return make_error("Only one of client_id, object_id and msi_res_id may be specified");
            }
            query.selector = {*selector, std::move(param.value)};
        }
    }
    return query;
}

}  // namespace podid
