#include "kube_apiserver_base64url.h"

#include <openssl/evp.h>

namespace podid::test::kube {

std::string base64url_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    while (!out.empty() && out.back() == '=')
        out.pop_back();
    for (char& c : out)
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    std::string std64(text);
    for (char& c : std64) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!std::isalnum(static_cast<unsigned char>(c)))
            return std::nullopt;  // EVP_DecodeBlock would take '+', '/', '=' and blanks too
    }
    size_t pad = (4 - std64.size() % 4) % 4;
    if (pad == 3)
        return std::nullopt;
    std64.append(pad, '=');
    std::string out(std64.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(std64.data()), static_cast<int>(std64.size()));
    if (n < 0)
        return std::nullopt;
    out.resize(static_cast<size_t>(n) - pad);  // EVP_DecodeBlock counts the bytes the padding stands for
    return out;
}

}  // namespace podid::test::kube
