#include "common/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

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

// Bytes copied as they are: printable ASCII other than quote and backslash (0x7f included, as JSON allows).
constexpr std::array<bool, 256> kPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c)
        t[static_cast<size_t>(c)] = c != '"' && c != '\\';
    return t;
}();

// Whether any of the 8 bytes in `x` is not plain. Exact (no false answers), endianness-free: each term is the
// classic "some byte is zero / below n" test on the whole word, so the scan tests eight bytes per step.
constexpr bool has_special(uint64_t x) {
    constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const auto has_zero = [&](uint64_t v) { return (v - ones) & ~v & highs; };
    const uint64_t below_space = (x - 0x20 * ones) & ~x & highs;
    return ((x & highs) | below_space | has_zero(x ^ ('"' * ones)) | has_zero(x ^ ('\\' * ones))) != 0;
}

uint64_t load8(const char* p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    return x;
}

uint64_t load4(const char* p) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    return x;
}

// Length of the plain prefix of `s`: the common case is that it is all of `s`, which is found with a few word
// tests (the last word overlapping the one before, short strings as two overlapping halves); the byte where the
// prefix ends is then looked for byte by byte.
inline size_t plain_prefix(std::string_view s) {
    const char* d = s.data();
    const size_t n = s.size();
    size_t i = 0;
    if (n >= 8) {
        for (; i + 8 <= n; i += 8)
            if (has_special(load8(d + i)))
                break;
        if (i == n || (i + 8 > n && !has_special(load8(d + n - 8))))
            return n;
    } else if (n >= 4) {
        if (!has_special(load4(d) | load4(d + n - 4) << 32))
            return n;
    }
    while (i < n && kPlain[static_cast<unsigned char>(d[i])])
        ++i;
    return i;
}

// The most bytes the JSON literal of `s` can take: quotes, and six bytes per byte (a control character as \u00XX;
// U+FFFD takes three per byte replaced, a valid UTF-8 sequence its own length).
constexpr size_t string_room(std::string_view s) { return 2 + 6 * s.size(); }

// Writes the JSON literal of `s` at `p`, which has string_room(s) bytes; returns the end of what it wrote.
char* put_string(char* p, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    *p++ = '"';
    size_t i = 0;
    for (;;) {
        const size_t run = plain_prefix(s.substr(i));
        std::memcpy(p, s.data() + i, run);
        p += run;
        i += run;
        if (i == s.size())
            break;
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            if (size_t n = utf8_sequence(s.substr(i)); n > 0) {
                std::memcpy(p, s.data() + i, n);
                p += n;
                i += n;
            } else {
                std::memcpy(p, kReplacement.data(), kReplacement.size());
                p += kReplacement.size();
                i += maximal_subpart(s.substr(i));
            }
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            std::memcpy(p, "u00", 3);
            p[3] = kHex[c >> 4];
            p[4] = kHex[c & 0xf];
            p += 5;
        }
        ++i;
    }
    *p++ = '"';
    return p;
}

constexpr size_t kIntegerRoom = 20;  // "-9223372036854775808", "18446744073709551615"
constexpr size_t kDoubleRoom = 32;   // any shortest round-trip double (24 at most: "-2.2250738585072014e-308")
// Growing `out` costs a string operation and zeroing the new room: grow by at least this much at a time.
constexpr size_t kGrowBy = 1024;

}  // namespace

void append_json_string(std::string& out, std::string_view value) {
    const size_t at = out.size();
    out.resize(at + string_room(value));
    char* end = put_string(out.data() + at, value);
    out.resize(static_cast<size_t>(end - out.data()));
}

JsonObjectWriter::JsonObjectWriter(std::string& out, size_t room_hint) : own_{out, out.size()}, cursor_(own_) {
    char* p = room(std::max<size_t>(room_hint, 1));
    *p = '{';
    end_field(p + 1);
}

JsonObjectWriter::JsonObjectWriter(Cursor& outer) : own_{outer.out, 0}, cursor_(outer) {
    char* p = room(1);
    *p = '{';
    end_field(p + 1);
}

JsonObjectWriter::~JsonObjectWriter() {
    if (outermost() && !ended_)
        cursor_.out.resize(cursor_.used);
}

void JsonObjectWriter::end() {
    char* p = room(1);
    *p = '}';
    end_field(p + 1);
    if (outermost() && !ended_)
        cursor_.out.resize(cursor_.used);
    ended_ = true;
}

void JsonObjectWriter::grow(size_t n) { cursor_.out.resize(cursor_.used + std::max(n, kGrowBy)); }

char* JsonObjectWriter::begin_field(std::string_view name, size_t value_room) {
    char* p = room(1 + string_room(name) + 1 + value_room);
    if (!first_)
        *p++ = ',';
    first_ = false;
    p = put_string(p, name);
    *p++ = ':';
    return p;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, std::string_view value) {
    char* p = begin_field(name, string_room(value));
    end_field(put_string(p, value));
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, int64_t value) {
    char* p = begin_field(name, kIntegerRoom);
    end_field(std::to_chars(p, p + kIntegerRoom, value).ptr);
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, uint64_t value) {
    char* p = begin_field(name, kIntegerRoom);
    end_field(std::to_chars(p, p + kIntegerRoom, value).ptr);
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, bool value) {
    const std::string_view text = value ? "true" : "false";
    char* p = begin_field(name, text.size());
    std::memcpy(p, text.data(), text.size());
    end_field(p + text.size());
    return *this;
}

JsonObjectWriter& JsonObjectWriter::field(std::string_view name, double value) {
    char* p = begin_field(name, kDoubleRoom + 2);
    if (!std::isfinite(value)) {
        std::memcpy(p, "null", 4);  // JSON has no NaN or infinity
        end_field(p + 4);
        return *this;
    }
    char* end = std::to_chars(p, p + kDoubleRoom, value).ptr;
    // Stay a float for readers that type by syntax ("2" would read back as an integer).
    if (std::string_view(p, static_cast<size_t>(end - p)).find_first_of(".e") == std::string_view::npos) {
        std::memcpy(end, ".0", 2);
        end += 2;
    }
    end_field(end);
    return *this;
}

JsonObjectWriter& JsonObjectWriter::null_field(std::string_view name) {
    char* p = begin_field(name, 4);
    std::memcpy(p, "null", 4);
    end_field(p + 4);
    return *this;
}

JsonObjectWriter JsonObjectWriter::object(std::string_view name) {
    end_field(begin_field(name, 0));
    return JsonObjectWriter(cursor_);
}

}  // namespace podid
