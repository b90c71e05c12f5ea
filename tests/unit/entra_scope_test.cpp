// The IMDS resource -> v2 scope rule (see entra/scope.h for where it comes from).
#include <gtest/gtest.h>

#include <string>

#include "entra/scope.h"

namespace podid::entra {
namespace {

TEST(EntraScope, AppendsDefaultAndKeepsTrailingSlashes) {
    struct Row {
        std::string resource, scope;
    };
    const Row rows[] = {
        {"https://vault.azure.net", "https://vault.azure.net/.default"},
        {"https://storage.azure.com", "https://storage.azure.com/.default"},
        // The SDKs do not trim: the token's audience keeps the slash the pod asked for.
        {"https://management.azure.com/", "https://management.azure.com//.default"},
        {"https://management.core.windows.net/", "https://management.core.windows.net//.default"},
        {"https://database.windows.net/", "https://database.windows.net//.default"},
        // Already a .default scope: unchanged, with or without the doubled slash.
        {"https://storage.azure.com/.default", "https://storage.azure.com/.default"},
        {"https://management.azure.com//.default", "https://management.azure.com//.default"},
        // App ID URIs and bare application ids.
        {"api://podid-test-app", "api://podid-test-app/.default"},
        {"00000003-0000-0000-c000-000000000000", "00000003-0000-0000-c000-000000000000/.default"},
        // The comparison is exact, as in the SDKs.
        {"https://x.example/.DEFAULT", "https://x.example/.DEFAULT/.default"},
        {".default", ".default/.default"},
        {"https://x.example/a.default", "https://x.example/a.default/.default"},
    };
    for (const auto& row : rows)
        EXPECT_EQ(scope_for_resource(row.resource), row.scope) << row.resource;
}

}  // namespace
}  // namespace podid::entra
