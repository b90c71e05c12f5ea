#include "kube_apiserver_router.h"

#include <vector>

namespace podid::test::kube {
namespace {

using nlohmann::json;

std::string percent_decode(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
            out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::vector<std::string> path_segments(const std::string& path) {
    std::vector<std::string> segs;
    size_t start = 1;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        if (slash == std::string::npos)
            slash = path.size();
        if (slash > start)
            segs.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return segs;
}

constexpr const char* kOpenIdConfigPath = "/.well-known/openid-configuration";
constexpr const char* kJwksPath = "/openid/v1/jwks";

std::string path_of(const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    if (path.size() > 1 && path.back() == '/')
        path.pop_back();
    return path;
}

ApiStatus no_such_resource() { return {404, "NotFound", "the server could not find the requested resource", "", ""}; }

bool truthy(const std::map<std::string, std::string>& q, const char* name) {
    auto it = q.find(name);
    return it != q.end() && (it->second == "true" || it->second == "1");
}

std::string param(const std::map<std::string, std::string>& q, const char* name) {
    auto it = q.find(name);
    return it == q.end() ? "" : it->second;
}

// The part of a resource path after /api/v1 or /apis/<group>/<version>.
struct ResourcePath {
    bool watch = false;  // the legacy /watch/ prefix
    std::string ns;
    std::string plural;
    std::string name;
};

std::optional<ResourcePath> parse_resource_path(std::vector<std::string> rest) {
    ResourcePath p;
    if (!rest.empty() && rest[0] == "watch") {
        p.watch = true;
        rest.erase(rest.begin());
    }
    if (rest.size() >= 3 && rest[0] == "namespaces") {
        p.ns = rest[1];
        rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (rest.empty() || rest.size() > 2)
        return std::nullopt;
    p.plural = rest[0];
    if (rest.size() == 2)
        p.name = rest[1];
    return p;
}

}  // namespace

std::map<std::string, std::string> parse_query(const std::string& query) {
    std::map<std::string, std::string> out;
    size_t start = 0;
    while (start < query.size()) {
        size_t amp = query.find('&', start);
        if (amp == std::string::npos)
            amp = query.size();
        std::string pair = query.substr(start, amp - start);
        size_t eq = pair.find('=');
        std::string key = percent_decode(pair.substr(0, eq));
        std::string value = eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
        if (!key.empty())
            out.emplace(key, value);
        start = amp + 1;
    }
    return out;
}

bool serves_anonymously(const std::string& method, const std::string& target) {
    std::string path = path_of(target);
    return method == "GET" && (path == kOpenIdConfigPath || path == kJwksPath);
}

Routed route_request(const ApiRequest& request, const RouteContext& context) {
    const std::string& method = request.method;
    const std::string& target = request.target;
    const ObjectStore& store = context.store;
    Routed out;
    size_t qmark = target.find('?');
    std::string path = path_of(target);
    auto query = parse_query(qmark == std::string::npos ? "" : target.substr(qmark + 1));

    // POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token: the only write the double takes over HTTP.
    if (auto segs = path_segments(path); segs.size() == 7 && segs[0] == "api" && segs[1] == "v1" &&
                                         segs[2] == "namespaces" && segs[4] == "serviceaccounts" &&
                                         segs[6] == "token") {
        out.resource = "serviceaccounts/token";
        out.ns = segs[3];
        out.name = segs[5];
        if (method != "POST") {
            out.reply = status_reply(
                {405, "MethodNotAllowed", "the server does not allow this method on the requested resource", "", ""});
            return out;
        }
        out.verb = Routed::Verb::create;
        if (request.content_type.find("protobuf") != std::string::npos) {
            out.reply = status_reply(
                {415, "UnsupportedMediaType", "the double reads JSON only, not " + request.content_type, "", ""});
            return out;
        }
        TokenReply answer =
            context.tokens.create_token(out.ns, out.name, request.body, store, context.server_url, context.now);
        out.reply = std::move(answer.reply);
        out.issued = std::move(answer.issued);
        return out;
    }

    if (method != "GET") {
        out.reply = status_reply(
            {405, "MethodNotAllowed", "the server does not allow this method on the requested resource", "", ""});
        return out;
    }
    if (path == "/healthz" || path == "/livez" || path == "/readyz") {
        out.reply = {200, "text/plain; charset=utf-8", "ok", {}};
        return out;
    }
    if (path == kOpenIdConfigPath) {
        out.verb = Routed::Verb::discovery;
        out.reply = context.tokens.openid_configuration(context.server_url);
        return out;
    }
    if (path == kJwksPath) {
        out.verb = Routed::Verb::discovery;
        out.reply = context.tokens.jwks();
        return out;
    }
    if (json doc = discovery_document(path, context.server_address); !doc.is_null()) {
        out.verb = Routed::Verb::discovery;
        out.reply = json_reply(doc);
        return out;
    }

    auto segs = path_segments(path);
    std::string group, version;
    std::vector<std::string> rest;
    if (segs.size() >= 2 && segs[0] == "api") {
        version = segs[1];
        rest.assign(segs.begin() + 2, segs.end());
    } else if (segs.size() >= 3 && segs[0] == "apis") {
        group = segs[1];
        version = segs[2];
        rest.assign(segs.begin() + 3, segs.end());
    } else {
        out.reply = status_reply(no_such_resource());  // /openapi/v2, /openapi/v3 included: kubectl copes
        return out;
    }
    auto rp = parse_resource_path(rest);
    const ResourceType* type = rp ? find_resource(group, version, rp->plural) : nullptr;
    if (!type || (!type->namespaced && !rp->ns.empty())) {
        out.reply = status_reply(no_such_resource());
        return out;
    }
    out.resource = type->plural;

    bool watch = rp->watch || truthy(query, "watch");
    std::string field_selector = param(query, "fieldSelector");
    if (!rp->name.empty() && watch) {
        // A watch on one object is a watch on its collection narrowed by name.
        field_selector = "metadata.name=" + rp->name + (field_selector.empty() ? "" : "," + field_selector);
    } else if (!rp->name.empty()) {
        out.verb = Routed::Verb::get;
        auto got = store.get(*type, rp->ns, rp->name);
        out.reply = std::holds_alternative<json>(got) ? json_reply(std::get<json>(got))
                                                      : status_reply(std::get<ApiStatus>(got));
        return out;
    }

    ParsedSelectors parsed = parse_selectors(*type, param(query, "labelSelector"), field_selector);
    if (parsed.error) {
        out.reply = status_reply(bad_request(*parsed.error));
        return out;
    }
    if (watch) {
        out.verb = Routed::Verb::watch;
        WatchCall call;
        call.request = {type, rp->ns, parsed.selectors, param(query, "resourceVersion")};
        call.bookmarks = truthy(query, "allowWatchBookmarks");
        std::string timeout = param(query, "timeoutSeconds");
        if (!timeout.empty() && timeout.find_first_not_of("0123456789") == std::string::npos && timeout.size() < 9)
            call.timeout = std::chrono::seconds(std::stol(timeout));
        out.watch = std::move(call);
        return out;
    }

    out.verb = Routed::Verb::list;
    ListRequest list;
    list.type = type;
    list.ns = rp->ns;
    list.selectors = parsed.selectors;
    list.has_selectors = !parsed.selectors.labels.empty() || !parsed.selectors.fields.empty();
    std::string limit = param(query, "limit");
    if (!limit.empty() && limit.find_first_not_of("0123456789") == std::string::npos && limit.size() < 9)
        list.limit = std::stoul(limit);
    list.continue_token = param(query, "continue");
    list.resource_version = param(query, "resourceVersion");
    list.resource_version_match = param(query, "resourceVersionMatch");
    auto listed = store.list(list);
    out.reply = std::holds_alternative<json>(listed) ? json_reply(std::get<json>(listed))
                                                     : status_reply(std::get<ApiStatus>(listed));
    return out;
}

}  // namespace podid::test::kube
