#include "stats.h"

namespace podid::emulator {

void Stats::connection_opened() {
    std::lock_guard lock(mu_);
    ++connections_;
}

int Stats::token_started() {
    std::lock_guard lock(mu_);
    int before = in_flight_++;
    if (in_flight_ > max_concurrent_) max_concurrent_ = in_flight_;
    return before;
}

void Stats::token_finished() {
    std::lock_guard lock(mu_);
    if (in_flight_ > 0) --in_flight_;
}

void Stats::record(RequestRecord rec, bool is_token) {
    std::lock_guard lock(mu_);
    if (is_token) {
        ++token_requests_;
        if (!rec.client_id.empty()) ++by_client_id_[rec.client_id];
        if (!rec.resource.empty()) ++by_resource_[rec.resource];
        ++by_status_[std::to_string(rec.status)];
    }
    records_.push_back(std::move(rec));
    if (records_.size() > kMaxRecords) records_.pop_front();
}

nlohmann::json Stats::to_json() const {
    std::lock_guard lock(mu_);
    nlohmann::json requests = nlohmann::json::array();
    for (const auto& r : records_) {
        requests.push_back({{"path", r.path},
                            {"query", r.query},
                            {"peer", r.peer},
                            {"status", r.status},
                            {"client_id", r.client_id},
                            {"resource", r.resource}});
    }
    return {{"token_requests", token_requests_},
            {"by_client_id", by_client_id_},
            {"by_resource", by_resource_},
            {"by_status", by_status_},
            {"connections", connections_},
            {"in_flight", in_flight_},
            {"max_concurrent", max_concurrent_},
            {"requests", std::move(requests)}};
}

void Stats::reset() {
    std::lock_guard lock(mu_);
    token_requests_ = 0;
    connections_ = 0;
    max_concurrent_ = in_flight_;
    by_client_id_.clear();
    by_resource_.clear();
    by_status_.clear();
    records_.clear();
}

}  // namespace podid::emulator
