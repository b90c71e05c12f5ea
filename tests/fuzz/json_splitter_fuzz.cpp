// The watch-stream splitter (agent/kube/json_splitter). Reads fall anywhere in a stream, so the result must
// not depend on where: the input is fed once whole and once in pieces whose sizes come from the input, and
// both must give the same objects and the same verdict. Objects never exceed the limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "kube/json_splitter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2)
        return 0;
    const size_t limit = 1 + data[0] * 4;  // small limits reach the overflow path
    const uint8_t step_seed = data[1];
    std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

    podid::kube::JsonObjectSplitter whole(limit);
    std::vector<std::string> whole_out;
    const bool whole_ok = whole.feed(stream, whole_out);

    podid::kube::JsonObjectSplitter pieces(limit);
    std::vector<std::string> pieces_out;
    bool pieces_ok = true;
    size_t at = 0, round = 0;
    while (at < stream.size() && pieces_ok) {
        size_t n = 1 + (step_seed * 31 + round * 7) % 13;
        pieces_ok = pieces.feed(stream.substr(at, n), pieces_out);
        at += n;
        ++round;
    }
    PODID_FUZZ_CHECK(whole_ok == pieces_ok);
    PODID_FUZZ_CHECK(whole_out == pieces_out);
    for (const std::string& object : whole_out) {
        PODID_FUZZ_CHECK(object.size() <= limit);
        PODID_FUZZ_CHECK(!object.empty() && object.front() == '{');
    }
    return 0;
}
