// Newline-terminated messages with file descriptors attached (SCM_RIGHTS), over a connected unix stream socket.
// The agent hand-over uses it to give the next agent its listening sockets: the sockets themselves, with their
// accept queues, not their addresses (binding the address again would need the old listener gone first).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace podid {

// At most this many descriptors travel with one message.
inline constexpr std::size_t kMaxPassedFds = 16;

// Sends `line` (a '\n' is appended) with `fds` attached to its first byte. The caller keeps its descriptors:
// the receiver gets its own, referring to the same open files.
Result<void> send_line_with_fds(int socket, std::string_view line, const std::vector<int>& fds);

struct ReceivedLine {
    std::string line;  // without the '\n'
    std::vector<Fd> fds;
};

// Reads one line (up to `max_bytes`) and every descriptor attached to it, waiting at most `timeout` for it.
// An orderly close before a whole line is an error (ECONNRESET); descriptors beyond kMaxPassedFds are an error
// (the kernel truncates them: MSG_CTRUNC).
Result<ReceivedLine> receive_line_with_fds(int socket, std::chrono::milliseconds timeout,
                                           std::size_t max_bytes = 64 * 1024);

}  // namespace podid
