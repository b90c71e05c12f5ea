// Runs the agent: datapath, token service, server, signals. Returns the process exit code.
#pragma once

#include "app/options.h"

namespace podid {

int run_agent(const AgentOptions& options);

}  // namespace podid
