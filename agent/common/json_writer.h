// A small JSON object writer for one-line records (the audit log): appends to a caller-owned string, no DOM, no
// allocation beyond the string's growth. Output parses with any JSON parser and reads back as written: strings are
// escaped as JSON requires (quote, backslash, control characters), invalid UTF-8 becomes U+FFFD (as nlohmann's
// error_handler_t::replace does), doubles are written shortest-round-trip, NaN and infinities as null.
//
// It runs on the I/O threads for every request, so each field costs a couple of string operations, not one per byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace podid {

// `value` as a JSON string literal, quotes included, appended to `out`.
void append_json_string(std::string& out, std::string_view value);

class JsonObjectWriter {
public:
    // `room_hint`: about how long the object will be, so that `out` grows once for it.
    explicit JsonObjectWriter(std::string& out, size_t room_hint = 0);
    ~JsonObjectWriter();  // an outermost object left without end() is still trimmed (not closed)
    JsonObjectWriter(const JsonObjectWriter&) = delete;
    JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;

    JsonObjectWriter& field(std::string_view name, std::string_view value);
    JsonObjectWriter& field(std::string_view name, const char* value) { return field(name, std::string_view(value)); }
    JsonObjectWriter& field(std::string_view name, const std::string& value) {
        return field(name, std::string_view(value));
    }
    JsonObjectWriter& field(std::string_view name, int64_t value);
    JsonObjectWriter& field(std::string_view name, uint64_t value);
    JsonObjectWriter& field(std::string_view name, uint32_t value) { return field(name, uint64_t{value}); }
    JsonObjectWriter& field(std::string_view name, bool value);
    JsonObjectWriter& field(std::string_view name, double value);
    JsonObjectWriter& null_field(std::string_view name);

    // A nested object: write its fields with the returned writer, then call end() on it.
    JsonObjectWriter object(std::string_view name);
    // Closes the object. After the outermost object's end(), `out` holds exactly the text written.
    void end();

private:
    // Fields are written through a pointer into room made ahead of them at the end of `out`, which an outermost
    // object grows beyond its text and trims at its end(): a field costs no string operation unless `out` must
    // grow. Nested objects share their outermost object's cursor.
    struct Cursor {
        std::string& out;
        size_t used;  // the text ends here; what follows is room
    };

    explicit JsonObjectWriter(Cursor& outer);
    bool outermost() const { return &cursor_ == &own_; }
    // At least `n` writable bytes after the text. Inline: every field asks, and `out` seldom has to grow.
    char* room(size_t n) {
        if (cursor_.out.size() - cursor_.used < n)
            grow(n);
        return cursor_.out.data() + cursor_.used;
    }
    void grow(size_t n);
    // Writes the separator and `"name":` with room for `value_room` more bytes after it; returns where the value
    // goes. end_field() takes the end of the value.
    char* begin_field(std::string_view name, size_t value_room);
    void end_field(const char* end) { cursor_.used = static_cast<size_t>(end - cursor_.out.data()); }

    Cursor own_;  // used by an outermost object only
    Cursor& cursor_;
    bool first_ = true;
    bool ended_ = false;
};

}  // namespace podid
