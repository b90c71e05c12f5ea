#include "token/token_fingerprint.h"

#include <openssl/sha.h>

namespace podid {

std::string token_fingerprint(std::string_view access_token) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(access_token.data()), access_token.size(), digest);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 8; ++i) {
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 0xf];
    }
    return out;
}

}  // namespace podid
