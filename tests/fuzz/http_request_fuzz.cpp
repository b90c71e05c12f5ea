// The bytes a pod sends, through Beast's parser (with the server's limits) into the pure IMDS handler.
// Invariants: nothing throws; a caller is only ever given an identity of its own binding; an unbound or
// unattributed caller never gets a token plan; only plain, identity-free /metadata paths are forwarded;
// every reply is an IMDS-shaped JSON error or a local answer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "http/imds_handler.h"
#include "http/request_target.h"

namespace {

namespace http = boost::beast::http;

// Who is calling: the first input byte picks one; the rest is the request.
struct Scenario {
    bool attributed;
    podid::Binding binding;
};

podid::Binding bound(std::vector<podid::Identity> ids) {
    return podid::Binding{podid::BindingKind::static_file, std::move(ids), "fuzz"};
}

const Scenario& scenario(uint8_t pick) {
    static const Scenario scenarios[] = {
        {true, {}},                                                               // unbound pod
        {false, bound({{"11111111-1111-4111-8111-111111111111", "", "", "a"}})},  // no kernel record
        {true, bound({{"11111111-1111-4111-8111-111111111111", "", "", "a"}})},
        {true, bound({{"", "/subscriptions/s/resourcegroups/g/providers/x/userAssignedIdentities/y", "", "r"},
                      {"22222222-2222-4222-8222-222222222222", "", "", "b"}})},
        {true, podid::Binding{podid::BindingKind::node_identity, {}, "exception"}},
        {true, bound({{"", "", "", "empty"}})},  // an identity with no id at all
    };
    return scenarios[pick % (sizeof(scenarios) / sizeof(scenarios[0]))];
}

bool ieq(const std::string& a, const std::string& b) {
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool is_bound(const podid::Binding& binding, const podid::Identity& id) {
    for (const podid::Identity& b : binding.identities)
        if (ieq(b.client_id, id.client_id) && ieq(b.resource_id, id.resource_id) && ieq(b.object_id, id.object_id))
            return true;
    return false;
}

void check_plan(const podid::HttpRequest& req, const Scenario& who, bool loopback) {
    podid::Classified what = podid::classify(req);
    podid::Caller caller;
    if (who.attributed)
        caller.origin = podid::Origin{42, 7, "fuzz", "169.254.169.254:80", true};
    podid::HandlerOptions options{loopback, loopback};
    podid::Plan plan = podid::plan_request(req, what, caller, who.binding, options);

    if (auto* fetch = std::get_if<podid::FetchToken>(&plan)) {
        if (fetch->host_token_shape) {
            PODID_FUZZ_CHECK(loopback && what.kind == podid::RequestKind::host_token);
        } else {
            PODID_FUZZ_CHECK(who.attributed);
            PODID_FUZZ_CHECK(what.path == podid::kTokenPath);
            PODID_FUZZ_CHECK(req.count("X-Forwarded-For") == 0);
            PODID_FUZZ_CHECK(req.method() == http::verb::get);
        }
        if (fetch->reason == podid::Reason::ok_node_identity) {
            PODID_FUZZ_CHECK(who.binding.kind == podid::BindingKind::node_identity);
        } else {
            PODID_FUZZ_CHECK(fetch->reason == podid::Reason::ok_bound_identity);
            PODID_FUZZ_CHECK(is_bound(who.binding, fetch->identity));
        }
        PODID_FUZZ_CHECK(!fetch->key.resource.empty());
        // Render both outcomes: any resource bytes must serialise.
        podid::TokenOutcome ok;
        ok.token =
            std::make_shared<const podid::Token>(podid::Token{"eyJ.x.y", "", "", "Bearer", 2000, 1000, 3600, nullptr});
        podid::HttpResponse res = podid::render_token(req, *fetch, ok, 1500);
        PODID_FUZZ_CHECK(res.result_int() == 200);
        PODID_FUZZ_CHECK(!nlohmann::json::parse(res.body(), nullptr, false).is_discarded());
        podid::TokenOutcome failed;
        failed.status = 200;  // a provider bug: still a failure to the client
        PODID_FUZZ_CHECK(podid::render_token(req, *fetch, failed, 1500).result_int() >= 400);
    } else if (std::get_if<podid::Forward>(&plan)) {
        podid::SplitTarget split = podid::split_target(req.target());
        podid::RoutedPath routed = podid::route_path(split.path);
        PODID_FUZZ_CHECK(routed.route == podid::Route::instance_metadata ||
                         routed.route == podid::Route::other_metadata);
        PODID_FUZZ_CHECK(req.count("X-Forwarded-For") == 0);
    } else {
        const podid::Reply& reply = std::get<podid::Reply>(plan);
        PODID_FUZZ_CHECK(reply.response.result_int() >= 200 && reply.response.result_int() < 600);
        if (reply.response.result_int() >= 400)
            PODID_FUZZ_CHECK(!nlohmann::json::parse(reply.response.body(), nullptr, false).is_discarded());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1)
        return 0;
    const Scenario& who = scenario(data[0]);
    const bool loopback = data[0] & 0x80;
    std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

    // The server's parser settings (agent/http/server.cpp: ServerLimits defaults).
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = 0;
    while (!parser.is_done() && used < bytes.size()) {
        size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (ec || n == 0)
            break;
        used += n;
    }
    if (!ec && !parser.is_done() && used == bytes.size())
        parser.put_eof(ec);
    if (ec || !parser.is_done())
        return 0;
    check_plan(parser.get(), who, loopback);
    return 0;
}
