// What reached the token endpoint: how many calls, for which client id, with which credential and outcome
// ("success", "AADSTS7000215", "fault_429", ...), and how often the emulator fetched an issuer's metadata
// (to see the JWKS cache work). Tests read a snapshot in-process or GET /stats on the admin port.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace podid::entra_emulator {

struct StatsSnapshot {
    uint64_t token_calls = 0;
    std::map<std::string, uint64_t> by_client_id;   // as sent, whatever the outcome ("" when absent)
    std::map<std::string, uint64_t> by_outcome;     // "success", "AADSTSnnn" or "fault_<status>"
    std::map<std::string, uint64_t> by_credential;  // "secret", "certificate", "federated", "none"
    uint64_t issuer_fetches = 0;                    // HTTPS GETs of issuer discovery documents and JWKS

    uint64_t outcome(const std::string& key) const {
        auto it = by_outcome.find(key);
        return it == by_outcome.end() ? 0 : it->second;
    }
    uint64_t client(const std::string& key) const {
        auto it = by_client_id.find(key);
        return it == by_client_id.end() ? 0 : it->second;
    }
};

nlohmann::json to_json(const StatsSnapshot& stats);

class Stats {
public:
    void record_token_call(const std::string& client_id, const std::string& credential, const std::string& outcome);
    void record_issuer_fetch();
    StatsSnapshot snapshot() const;
    void reset();

private:
    mutable std::mutex mu_;
    StatsSnapshot s_;
};

}  // namespace podid::entra_emulator
