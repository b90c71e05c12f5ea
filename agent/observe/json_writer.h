// A small JSON object writer for one-line records (the audit log): appends to a caller-owned string, no DOM, no
// allocation beyond the string's growth. Output parses with any JSON parser and reads back as written: strings are
// escaped as JSON requires (quote, backslash, control characters), invalid UTF-8 becomes U+FFFD (as nlohmann's
// error_handler_t::replace does), doubles are written shortest-round-trip, NaN and infinities as null.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace podid {

// `value` as a JSON string literal, quotes included, appended to `out`.
void append_json_string(std::string& out, std::string_view value);

class JsonObjectWriter {
public:
    explicit JsonObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }

    JsonObjectWriter& field(std::string_view key, std::string_view value);
    JsonObjectWriter& field(std::string_view key, const char* value) { return field(key, std::string_view(value)); }
    JsonObjectWriter& field(std::string_view key, const std::string& value) {
        return field(key, std::string_view(value));
    }
    JsonObjectWriter& field(std::string_view key, int64_t value);
    JsonObjectWriter& field(std::string_view key, uint64_t value);
    JsonObjectWriter& field(std::string_view key, uint32_t value) { return field(key, uint64_t{value}); }
    JsonObjectWriter& field(std::string_view key, bool value);
    JsonObjectWriter& field(std::string_view key, double value);
    JsonObjectWriter& null_field(std::string_view key);

    // A nested object: write its fields with the returned writer, then call end() on it.
    JsonObjectWriter object(std::string_view key);
    void end() { out_.push_back('}'); }

private:
    void key(std::string_view name);

    std::string& out_;
    bool first_ = true;
};

}  // namespace podid
