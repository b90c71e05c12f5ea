// The audit log: one JSON line per token request, for security teams.
// Never contains a token: only a short SHA-256 prefix of it. Reopened on SIGHUP (log rotation).
// Written in batches by its own thread, so a request costs the I/O thread a few hundred bytes of formatting.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "http/request_record.h"

namespace podid {

std::string to_json_line(const AuditRecord& record);
// Same, appended to `out` (the writer reuses one buffer per thread).
void append_json_line(std::string& out, const AuditRecord& record);

struct AuditLogOptions {
    // Off the I/O threads, one write(2) per batch. A line that comes after a quiet spell is written at once; when
    // more lines follow within `quiet` of a write, they are gathered for the rest of `flush_interval`. A SIGKILL
    // loses at most the lines of the last interval.
    std::chrono::milliseconds flush_interval{50};
    std::chrono::milliseconds quiet{1};
    size_t flush_bytes = 64 * 1024;              // write without waiting out the interval
    size_t max_pending_bytes = 4 * 1024 * 1024;  // beyond this the disk is not keeping up: drop and count
};

class AuditLog {
public:
    // path "-" = stdout, "" = disabled.
    static Result<std::unique_ptr<AuditLog>> open(const std::string& path, AuditLogOptions options = {});
    ~AuditLog();  // writes everything still queued
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Queues the line; never waits for the disk. When the queue is full the line is dropped and counted.
    void write(const AuditRecord& record);
    Result<void> reopen();  // SIGHUP: after logrotate moved the file (queued lines go to the old file first)
    void flush();           // writes everything queued before it returns (drain, exit)
    // podid_audit_lines_dropped_total (observe/audit_metrics.h)
    uint64_t dropped_lines() const { return dropped_.load(std::memory_order_relaxed); }
    const std::string& path() const { return path_; }

private:
    AuditLog(std::string path, AuditLogOptions options) : path_(std::move(path)), options_(options) {}
    void run_writer();
    void write_queued();  // takes file_mu_ then mu_: one batch, in queue order
    void write_out(const std::string& batch);

    const std::string path_;
    const AuditLogOptions options_;
    std::mutex file_mu_;  // guards fd_; held across taking a batch and writing it, so batches keep their order
    int fd_ = -1;
    std::mutex mu_;  // guards pending_, writer_idle_, stopping_, flush_wanted_
    std::condition_variable wake_;
    std::string pending_;
    bool writer_idle_ = false;
    bool stopping_ = false;
    bool flush_wanted_ = false;
    std::atomic<uint64_t> dropped_{0};
    uint64_t dropped_reported_ = 0;                             // guarded by file_mu_
    std::chrono::steady_clock::time_point drop_reported_at_{};  // guarded by file_mu_
    std::thread writer_;
};

}  // namespace podid
