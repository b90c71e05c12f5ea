// What reached the emulator: counters tests assert on (how many token requests podid really sent, for which
// identity, how many at once) and the last requests with their peer address (which process called).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace podid::emulator {

struct RequestRecord {
    std::string path;
    std::string query;
    std::string peer;  // "ip:port" of the connection
    unsigned status = 0;  // 0: connection reset without a response
    std::string client_id;
    std::string resource;
};

class Stats {
public:
    static constexpr size_t kMaxRecords = 1000;

    void connection_opened();
    // Bracket a token request: returns how many were in flight before this one.
    int token_started();
    void token_finished();
    void record(RequestRecord rec, bool is_token);

    // {"token_requests","by_client_id","by_resource","by_status","connections","in_flight","max_concurrent",
    //  "requests":[...]}. by_client_id/by_resource count token requests whatever their outcome.
    nlohmann::json to_json() const;
    // Zeroes counters and forgets records; requests still in flight stay counted in in_flight.
    void reset();

private:
    mutable std::mutex mu_;
    uint64_t token_requests_ = 0;
    uint64_t connections_ = 0;
    int in_flight_ = 0;
    int max_concurrent_ = 0;
    std::map<std::string, uint64_t> by_client_id_, by_resource_, by_status_;
    std::deque<RequestRecord> records_;
};

}  // namespace podid::emulator
