// One GET to the agent's admin socket (HTTP/1.1 over a unix socket, Connection: close).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podid::ctl {

struct AdminReply {
    int status = 0;
    nlohmann::json body;  // the agent always answers JSON; errors carry "error" and "error_description"
};

// Errors: the socket is missing or refuses (agent down), the peer is not an agent, a 10 s timeout.
Result<AdminReply> admin_get(const std::string& socket_path, const std::string& target);

// Splits a raw HTTP/1.x response into status and JSON body (exposed for tests).
Result<AdminReply> parse_admin_reply(const std::string& raw);

}  // namespace podid::ctl
