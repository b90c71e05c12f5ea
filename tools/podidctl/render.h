// Human-readable output of podidctl: kubectl-style tables and short key/value blocks, from the same JSON that
// `-o json` prints (so the two never disagree).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid::ctl {

// Columns padded to the widest cell, two spaces apart; the last column is not padded.
std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// `status`: agent = the agent's /v1/status body, or {"error": "..."} when it could not be reached; pins = read_pins().
std::string render_status(const nlohmann::json& agent, const nlohmann::json& pins);
std::string render_pods(const nlohmann::json& body);  // the agent's /v1/pods body
std::string render_explain(const nlohmann::json& explain);
std::string render_conns(const nlohmann::json& body);  // the agent's /v1/conns body

// "3m12s", "2h5m", "12s"
std::string format_duration(int64_t seconds);

}  // namespace podid::ctl
