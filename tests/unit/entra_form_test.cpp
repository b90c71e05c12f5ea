// application/x-www-form-urlencoded as the WHATWG URL standard defines it (the token request's body).
#include <gtest/gtest.h>

#include <string>

#include "entra/form.h"

namespace podid::entra {
namespace {

TEST(EntraForm, EncodesComponentsByTheUrlencodedByteSerializer) {
    struct Row {
        std::string in, out;
    };
    const Row rows[] = {
        {"", ""},
        {"AZaz09*-._", "AZaz09*-._"},  // the bytes left as they are
        {"a b", "a+b"},                // space is '+', not %20
        {"a+b", "a%2Bb"},
        {"~", "%7E"},  // unreserved in RFC 3986, encoded here
        {"&=?#%/:", "%26%3D%3F%23%25%2F%3A"},
        {"\xc3\xa9", "%C3%A9"},  // UTF-8 bytes, upper-case hex
        {std::string("\0\x7f", 2), "%00%7F"},
        {"client_credentials", "client_credentials"},
        {"https://vault.azure.net/.default", "https%3A%2F%2Fvault.azure.net%2F.default"},
        {"https://management.azure.com//.default", "https%3A%2F%2Fmanagement.azure.com%2F%2F.default"},
        {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
         "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"},
        {"eyJh.eyJz-_x.sig-_", "eyJh.eyJz-_x.sig-_"},  // a JWT passes unchanged
    };
    for (const auto& row : rows)
        EXPECT_EQ(form_encode_component(row.in), row.out) << row.in;
}

TEST(EntraForm, EncodesFieldsInOrder) {
    EXPECT_EQ(form_encode({}), "");
    EXPECT_EQ(form_encode({{"grant_type", "client_credentials"}, {"client_id", "c 1"}, {"scope", "api://x/.default"}}),
              "grant_type=client_credentials&client_id=c+1&scope=api%3A%2F%2Fx%2F.default");
    EXPECT_EQ(form_encode({{"a", ""}, {"", "b"}}), "a=&=b");
}

TEST(EntraForm, DecodesByTheUrlencodedParser) {
    struct Row {
        std::string in;
        FormFields out;
    };
    const Row rows[] = {
        {"", {}},
        {"a=b&c=d", {{"a", "b"}, {"c", "d"}}},
        {"a=b+c", {{"a", "b c"}}},
        {"&&a=1&&", {{"a", "1"}}},  // empty pieces skipped
        {"flag", {{"flag", ""}}},   // no '=': empty value
        {"a==b", {{"a", "=b"}}},    // split at the first '='
        {"=x", {{"", "x"}}},
        {"%2B=%2b", {{"+", "+"}}},              // either case of hex
        {"a=%41%zz%4", {{"a", "A%zz%4"}}},      // a bad escape stays as it is
        {"a=1&a=2", {{"a", "1"}, {"a", "2"}}},  // repeats kept, in order
        {"x=%C3%A9", {{"x", "\xc3\xa9"}}},
    };
    for (const auto& row : rows)
        EXPECT_EQ(form_decode(row.in), row.out) << row.in;
}

TEST(EntraForm, EveryByteRoundTrips) {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all += static_cast<char>(c);
    const FormFields fields = {{all, all}, {"k", "v w"}};
    const std::string body = form_encode(fields);
    EXPECT_EQ(body.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._+%=&"),
              std::string::npos);
    EXPECT_EQ(form_decode(body), fields);
}

}  // namespace
}  // namespace podid::entra
