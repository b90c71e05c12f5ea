// Request-target handling (agent/http/target): path normalisation, routing, query parsing.
// Invariants, beyond "no crash": a path that is forwarded to the node's IMDS must read the same to IMDS
// as to podid and never name identity; a token route is exactly the token path; a parsed query never
// holds two parameters of the same name.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "http/request_target.h"

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

void check_route(std::string_view raw_path) {
    podid::RoutedPath routed = podid::route_path(raw_path);
    PODID_FUZZ_CHECK(routed.path == podid::normalise_path(raw_path));
    PODID_FUZZ_CHECK(!routed.path.empty() && routed.path.front() == '/');
    if (routed.route == podid::Route::token)
        PODID_FUZZ_CHECK(routed.path == podid::kTokenPath);
    if (routed.route == podid::Route::instance_metadata || routed.route == podid::Route::other_metadata) {
        // Forwarded unchanged: only a plain spelling, which IMDS cannot read as another path.
        PODID_FUZZ_CHECK(podid::is_plain_path(raw_path));
        PODID_FUZZ_CHECK(lower(raw_path).find("identity") == std::string::npos);
        PODID_FUZZ_CHECK(lower(raw_path).rfind("/metadata", 0) == 0);
        std::string expected = lower(raw_path.substr(0, 9)) + std::string(raw_path.substr(9));
        if (expected.size() > 1 && expected.back() == '/')
            expected.pop_back();
        PODID_FUZZ_CHECK(routed.path == expected);
    }
    if (routed.route == podid::Route::host_token)
        PODID_FUZZ_CHECK(raw_path == "/host/token" || raw_path == "/host/token/");
}

void check_query(std::string_view raw_query) {
    auto params = podid::parse_query(raw_query);
    if (params) {
        for (size_t i = 0; i < params->size(); ++i)
            for (size_t j = i + 1; j < params->size(); ++j)
                PODID_FUZZ_CHECK(lower((*params)[i].name) != lower((*params)[j].name));
    }
    auto query = podid::parse_imds_query(raw_query);
    // parse_imds_query is parse_query plus meaning: it cannot accept what parse_query refused.
    if (!params)
        PODID_FUZZ_CHECK(!query);
    if (query && query->selector.kind != podid::IdentitySelector::Kind::none)
        PODID_FUZZ_CHECK(!query->selector.value.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view target(reinterpret_cast<const char*>(data), size);
    podid::SplitTarget split = podid::split_target(target);
    PODID_FUZZ_CHECK(split.path.find('?') == std::string_view::npos);
    check_route(split.path);
    check_query(split.query);
    return 0;
}
