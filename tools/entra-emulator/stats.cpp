#include "stats.h"

namespace podid::entra_emulator {

nlohmann::json to_json(const StatsSnapshot& stats) {
    return {{"token_calls", stats.token_calls},
            {"by_client_id", stats.by_client_id},
            {"by_outcome", stats.by_outcome},
            {"by_credential", stats.by_credential},
            {"issuer_fetches", stats.issuer_fetches}};
}

void Stats::record_token_call(const std::string& client_id, const std::string& credential, const std::string& outcome) {
    std::lock_guard lock(mu_);
    ++s_.token_calls;
    ++s_.by_client_id[client_id];
    ++s_.by_credential[credential];
    ++s_.by_outcome[outcome];
}

void Stats::record_issuer_fetch() {
    std::lock_guard lock(mu_);
    ++s_.issuer_fetches;
}

StatsSnapshot Stats::snapshot() const {
    std::lock_guard lock(mu_);
    return s_;
}

void Stats::reset() {
    std::lock_guard lock(mu_);
    s_ = StatsSnapshot{};
}

}  // namespace podid::entra_emulator
