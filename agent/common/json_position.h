// Where values are in a JSON text, for error messages that name a line and a column. nlohmann/json reports no
// positions for the values it parsed, so after it accepted a text a small scanner maps JSON pointers
// ("/bindings/1/identities/0/client_id") to byte offsets. The scanner also finds duplicate keys, which nlohmann
// silently collapses (the last one wins).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace podid {

struct JsonPositions {
    // Object member: offset of its key; array element: offset of its value. The document itself is "".
    std::map<std::string, std::size_t> offsets;
    // The first key given twice in one object: its pointer and the offset of the second occurrence.
    std::optional<std::pair<std::string, std::size_t>> duplicate;

    // 0 (the start of the text) for a pointer that was not indexed.
    std::size_t offset_of(const std::string& pointer) const;
};

// Indexes the members and elements of `text`, a document a JSON parser already accepted (on other text the
// answer is incomplete, never an error). Containers nested deeper than `max_depth` are skipped whole: a schema
// only needs its own levels indexed.
JsonPositions locate_json_values(std::string_view text, std::size_t max_depth);

// One key as a JSON pointer writes it: "~" becomes "~0" and "/" becomes "~1".
std::string json_pointer_escape(std::string_view key);

// 1-based; the column counts bytes, as editors' "go to column" does for ASCII.
struct TextPosition {
    int line = 1;
    int column = 1;
};

// The position of byte `offset` (clamped to the end of `text`).
TextPosition text_position(std::string_view text, std::size_t offset);

// nlohmann's parse_error::byte is 1-based and points at the last character read, which is often the whitespace
// after the bad token: this steps back to the token, so that the column points at it.
std::size_t json_syntax_error_offset(std::string_view text, std::size_t error_byte);

}  // namespace podid
