#include "kube/json_splitter.h"

namespace podid::kube {

bool JsonObjectSplitter::feed(std::string_view bytes, std::vector<std::string>& out) {
    if (broken_)
        return false;
    for (char c : bytes) {
        if (depth_ == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                continue;
            if (c != '{') {
                broken_ = true;
                return false;
            }
        }
        current_ += c;
        // Checked before an object can be handed out: one of exactly max_ + 1 bytes is refused too.
        if (current_.size() > max_) {
            broken_ = true;
            return false;
        }
        if (in_string_) {
            if (escaped_)
                escaped_ = false;
            else if (c == '\\')
                escaped_ = true;
            else if (c == '"')
                in_string_ = false;
        } else if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if (c == '}' || c == ']') {
            if (--depth_ == 0) {
                out.push_back(std::move(current_));
                current_.clear();
            }
        }
    }
    return true;
}

}  // namespace podid::kube
