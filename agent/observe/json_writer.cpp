#include "observe/json_writer.h"

#include <charconv>
#include <cmath>

namespace podid {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at the start of `s` (Unicode Table 3-7), or 0 when it is not one.
size_t utf8_sequence(std::string_view s) {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
        return i < s.size() && b(i) >= lo && b(i) <= hi;
    };
    const unsigned char c = b(0);
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return cont(1) ? 2 : 0;
    if (c == 0xE0)
        return cont(1, 0xA0) && cont(2) ? 3 : 0;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xED)
        return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;  // no UTF-16 surrogates
    if (c == 0xF0)
        return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3)
        return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xF4)
        return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

// How many bytes of an ill-formed sequence one U+FFFD stands for: the lead byte and the continuation bytes that
// could still have been part of a valid sequence ("maximal subpart", Unicode §3.9, as nlohmann's decoder does).
size_t maximal_subpart(std::string_view s) {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = b(0);
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 1;
    }
    size_t n = 1;
    for (size_t k = 0; k < need && n < s.size(); ++k, ++n) {
        const unsigned char x = b(n);
        if (x < (k == 0 ? lo : 0x80) || x > (k == 0 ? hi : 0xBF))
            break;
    }
    return n;
}

}  // namespace

void append_json_string(std::string& out, std::string_view value) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    size_t i = 0;
    while (i < value.size()) {
        // Runs of plain bytes are copied at once: tokens' fingerprints, paths and ids are nearly all plain.
        size_t run = i;
        while (run < value.size()) {
            const auto c = static_cast<unsigned char>(value[run]);
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
                break;
            ++run;
        }
        out.append(value.data() + i, run - i);
        i = run;
        if (i == value.size())
            break;
        const auto c = static_cast<unsigned char>(value[i]);
        if (c >= 0x80) {
            if (size_t n = utf8_sequence(value.substr(i)); n > 0) {
                out.append(value.data() + i, n);
                i += n;
            } else {
                out.append(kReplacement);
                i += maximal_subpart(value.substr(i));
            }
            continue;
        }
        switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
            out.append("\\u00");
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xf]);
        }
        ++i;
    }
    out.push_back('"');
}

void JsonObjectWriter::key(std::string_view name) {
    if (!first_)
        out_.push_back(',');
    first_ = false;
    append_json_string(out_, name);
    out_.push_back(':');
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, std::string_view value) {
    key(name);
    append_json_string(out_, value);
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, int64_t value) {
    key(name);
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    (void)ec;  // 24 chars hold any int64
    out_.append(buf, end);
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, uint64_t value) {
    key(name);
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    (void)ec;
    out_.append(buf, end);
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, bool value) {
    key(name);
    out_.append(value ? "true" : "false");
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, double value) {
    key(name);
    if (!std::isfinite(value)) {
        out_.append("null");  // JSON has no NaN or infinity
        return *this;
    }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
    (void)ec;  // 32 chars hold any shortest double
    const std::string_view text(buf, static_cast<size_t>(end - buf));
    out_.append(text);
    // Stay a float for readers that type by syntax ("2" would read back as an integer).
    if (text.find_first_of(".e") == std::string_view::npos)
        out_.append(".0");
    return *this;
}

JsonObjectWriter& JsonObjectWriter::null_field(std::string_view name) {
    key(name);
    out_.append("null");
    return *this;
}

JsonObjectWriter JsonObjectWriter::object(std::string_view name) {
    key(name);
    return JsonObjectWriter(out_);
}

}  // namespace podid
