// Choosing among a caller's bound identities, and naming the choice to the node's IMDS.
#include "token/identity_select.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace podid {
namespace {

using Kind = IdentitySelector::Kind;

const Identity kA{"11111111-aaaa-4aaa-aaaa-aaaaaaaaaaaa",
                  "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a",
                  "aaaaaaaa-0000-4000-8000-000000000001", "id-a"};
const Identity kB{"22222222-bbbb-4bbb-bbbb-bbbbbbbbbbbb",
                  "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-b",
                  "", "id-b"};
const Identity kResourceOnly{"", "/subscriptions/s/resourceGroups/rg/providers/x/userAssignedIdentities/id-r", "",
                             "id-r"};
const Identity kObjectOnly{"", "", "cccccccc-0000-4000-8000-000000000003", "id-o"};

Binding bound(std::vector<Identity> identities) {
    return Binding{BindingKind::static_file, std::move(identities), "test"};
}

struct SelectRow {
    std::string name;
    Binding binding;
    IdentitySelector selector;
    std::optional<std::string> want;  // Identity::name of the choice
};

TEST(SelectIdentity, Table) {
    const std::vector<SelectRow> rows = {
        {"default is the first", bound({kA, kB}), {}, "id-a"},
        {"default of the other order", bound({kB, kA}), {}, "id-b"},
        {"client_id", bound({kA, kB}), {Kind::client_id, kB.client_id}, "id-b"},
        {"client_id upper case", bound({kA, kB}), {Kind::client_id, "22222222-BBBB-4BBB-BBBB-BBBBBBBBBBBB"}, "id-b"},
        {"object_id", bound({kB, kA}), {Kind::object_id, kA.object_id}, "id-a"},
        {"msi_res_id", bound({kA, kB}), {Kind::msi_res_id, kB.resource_id}, "id-b"},
        {"msi_res_id other case",
         bound({kA, kB}),
         {Kind::msi_res_id,
          "/SUBSCRIPTIONS/s/resourcegroups/RG/providers/microsoft.managedidentity/userassignedidentities/ID-A"},
         "id-a"},
        {"resource-only identity by msi_res_id",
         bound({kA, kResourceOnly}),
         {Kind::msi_res_id, kResourceOnly.resource_id},
         "id-r"},
        {"unknown client_id", bound({kA, kB}), {Kind::client_id, "33333333-cccc-4ccc-cccc-cccccccccccc"}, std::nullopt},
        {"client_id given as object_id", bound({kA}), {Kind::object_id, kA.client_id}, std::nullopt},
        {"prefix of a client_id", bound({kA}), {Kind::client_id, "11111111"}, std::nullopt},
        {"empty object_id never matches", bound({kB}), {Kind::object_id, ""}, std::nullopt},
        {"no identities", bound({}), {}, std::nullopt},
        {"kind none", Binding{BindingKind::none, {kA}, ""}, {}, std::nullopt},
        {"kind none with selector",
         Binding{BindingKind::none, {kA}, ""},
         {Kind::client_id, kA.client_id},
         std::nullopt},
        {"workload identity", Binding{BindingKind::workload_identity, {kB}, "sa"}, {}, "id-b"},
    };
    for (const SelectRow& row : rows) {
        std::optional<Identity> got = select_identity(row.binding, row.selector);
        ASSERT_EQ(got.has_value(), row.want.has_value()) << row.name;
        if (got) {
            EXPECT_EQ(got->name, *row.want) << row.name;
        }
    }
}

struct KeyRow {
    std::string name;
    Identity identity;
    std::optional<TokenKey> want;
};

TEST(TokenKeyForIdentity, Table) {
    const std::string r = "https://vault.azure.net";
    const std::vector<KeyRow> rows = {
        {"client_id preferred", kA, TokenKey{kA.client_id, "", "", r}},
        {"resource id next", kResourceOnly, TokenKey{"", kResourceOnly.resource_id, "", r}},
        {"object id last", kObjectOnly, TokenKey{"", "", kObjectOnly.object_id, r}},
        {"nothing to name it by", Identity{"", "", "", "empty"}, std::nullopt},
    };
    for (const KeyRow& row : rows) {
        EXPECT_EQ(token_key_for(row.identity, r), row.want) << row.name;
    }
}

TEST(TokenKeyForSelector, PassesTheClientsChoiceThrough) {
    const std::string r = "https://storage.azure.com";
    EXPECT_EQ(token_key_for(IdentitySelector{}, r), (TokenKey{"", "", "", r}));
    EXPECT_EQ(token_key_for(IdentitySelector{Kind::client_id, "c"}, r), (TokenKey{"c", "", "", r}));
    EXPECT_EQ(token_key_for(IdentitySelector{Kind::msi_res_id, "m"}, r), (TokenKey{"", "m", "", r}));
    EXPECT_EQ(token_key_for(IdentitySelector{Kind::object_id, "o"}, r), (TokenKey{"", "", "o", r}));
}

TEST(IdentitySelector, ToStringNamesTheCanonicalParameter) {
    EXPECT_EQ(IdentitySelector{}.to_string(), "");
    EXPECT_EQ((IdentitySelector{Kind::client_id, "c"}).to_string(), "client_id=c");
    EXPECT_EQ((IdentitySelector{Kind::object_id, "o"}).to_string(), "object_id=o");
    EXPECT_EQ((IdentitySelector{Kind::msi_res_id, "m"}).to_string(), "msi_res_id=m");
}

}  // namespace
}  // namespace podid
