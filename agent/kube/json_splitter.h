// Splits a watch body into its JSON objects. The API server writes one object per event, newline
// separated, but transfer chunks and reads fall anywhere: an object may arrive in pieces and one read
// may carry several. Depth counting (outside strings) finds object ends without parsing twice.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace podid::kube {

class JsonObjectSplitter {
public:
    explicit JsonObjectSplitter(std::size_t max_object_bytes) : max_(max_object_bytes) {}

    // Appends every object completed by `bytes` to `out`. False when the stream is not a sequence of
    // objects (bytes between objects other than whitespace) or an object exceeds the limit; the
    // splitter is then unusable.
    bool feed(std::string_view bytes, std::vector<std::string>& out);

    bool idle() const { return current_.empty(); }  // no object half-received

private:
    std::size_t max_;
    std::string current_;
    int depth_ = 0;
    bool in_string_ = false;
    bool escaped_ = false;
    bool broken_ = false;
};

}  // namespace podid::kube
