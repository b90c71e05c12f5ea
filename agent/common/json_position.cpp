#include "common/json_position.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid {
namespace {

class JsonPositionScanner {
public:
    JsonPositionScanner(std::string_view text, std::size_t max_depth) : t_(text), max_depth_(max_depth) {}

    JsonPositions run() {
        skip_ws();
        value("");
        while (pos_ < t_.size() && !stack_.empty()) {
            skip_ws();
            if (pos_ >= t_.size())
                break;
            char c = t_[pos_];
            if (c == ',') {
                ++pos_;
                continue;
            }
            if (c == '}' || c == ']') {
                stack_.pop_back();
                ++pos_;
                continue;
            }
            Frame& top = stack_.back();
            if (top.object) {
                std::size_t key_pos = pos_;
                std::string key = string_token();
                skip_ws();
                if (pos_ < t_.size() && t_[pos_] == ':')
                    ++pos_;
                skip_ws();
                std::string child = top.pointer + "/" + json_pointer_escape(key);
                if (!top.keys.insert(key).second && !out_.duplicate)
                    out_.duplicate.emplace(child, key_pos);
                out_.offsets.emplace(child, key_pos);
                value(child);
            } else {
                std::string child = top.pointer + "/" + std::to_string(top.index++);
                out_.offsets.emplace(child, pos_);
                value(child);
            }
        }
        return std::move(out_);
    }

private:
    struct Frame {
        bool object;
        std::string pointer;
        std::size_t index = 0;
        std::set<std::string> keys;
    };

    void skip_ws() {
        while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
            ++pos_;
    }

    // At a '"': returns the decoded string and moves past it.
    std::string string_token() {
        std::size_t start = ++pos_;
        bool escaped = false;
        while (pos_ < t_.size() && t_[pos_] != '"') {
            if (t_[pos_] == '\\') {
                escaped = true;
                ++pos_;
            }
            ++pos_;
        }
        std::string_view raw = t_.substr(start, std::min(pos_, t_.size()) - start);
        ++pos_;
        if (!escaped)
            return std::string(raw);
        try {
            return nlohmann::json::parse("\"" + std::string(raw) + "\"").get<std::string>();
        } catch (const nlohmann::json::exception&) {
            return std::string(raw);
        }
    }

    // A whole nested value, counting brackets (strings may hold brackets).
    void skip_container() {
        int depth = 0;
        while (pos_ < t_.size()) {
            char c = t_[pos_];
            if (c == '"') {
                string_token();
                continue;
            }
            ++pos_;
            if (c == '{' || c == '[')
                ++depth;
            if ((c == '}' || c == ']') && --depth == 0)
                return;
        }
    }

    void value(const std::string& pointer) {
        if (pos_ >= t_.size())
            return;
        char c = t_[pos_];
        if (c == '{' || c == '[') {
            if (stack_.size() >= max_depth_) {
                skip_container();
                return;
            }
            stack_.push_back(Frame{c == '{', pointer, 0, {}});
            ++pos_;
        } else if (c == '"') {
            string_token();
        } else {
            while (pos_ < t_.size() && std::strchr(",]} \t\r\n", t_[pos_]) == nullptr)
                ++pos_;
        }
    }

    std::string_view t_;
    std::size_t max_depth_;
    std::size_t pos_ = 0;
    std::vector<Frame> stack_;
    JsonPositions out_;
};

}  // namespace

std::size_t JsonPositions::offset_of(const std::string& pointer) const {
    auto it = offsets.find(pointer);
    return it == offsets.end() ? 0 : it->second;
}

JsonPositions locate_json_values(std::string_view text, std::size_t max_depth) {
    return JsonPositionScanner(text, max_depth).run();
}

std::string json_pointer_escape(std::string_view key) {
    std::string out;
    for (char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

TextPosition text_position(std::string_view text, std::size_t offset) {
    TextPosition at;
    offset = std::min(offset, text.size());
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++at.line;
            at.column = 1;
        } else {
            ++at.column;
        }
    }
    return at;
}

std::size_t json_syntax_error_offset(std::string_view text, std::size_t error_byte) {
    std::size_t offset = error_byte > 0 ? error_byte - 1 : 0;
    offset = std::min(offset, text.size());
    while (offset > 0 && (offset >= text.size() || std::isspace(static_cast<unsigned char>(text[offset]))))
        --offset;
    return offset;
}

}  // namespace podid
