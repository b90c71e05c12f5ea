// A listening unix stream socket at a path only root reaches: the admin socket and the hand-over socket.
#pragma once

#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace podid {

// Creates the socket's directory (0700) when missing, replaces a stale socket file left by a killed process (but
// refuses one a live process accepts on: EADDRINUSE), binds with the file mode 0600 from the start, listens.
// `what` names the socket in errors ("admin socket").
Result<Fd> bind_unix_listener(const std::string& path, const std::string& what);

// A stream socket connected to the unix socket at `path`. The error's code is connect's errno (ENOENT: no socket
// file; ECONNREFUSED: nobody accepts there) or ENAMETOOLONG.
Result<Fd> connect_unix(const std::string& path);

// True when a process accepts connections on the unix socket at `path`.
bool unix_socket_answers(const std::string& path);

}  // namespace podid
