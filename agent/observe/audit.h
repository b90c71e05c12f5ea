// The audit log: one JSON line per token request, for security teams.
// Never contains a token: only a short SHA-256 prefix of it. Reopened on SIGHUP (log rotation).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "caller/caller.h"
#include "common/result.h"
#include "observe/reason.h"

namespace podid {

struct AuditRecord {
    int64_t time_ms = 0;            // epoch milliseconds at the end of the request
    std::string listener;           // "node" | "loopback"
    std::string method, path;       // normalised path
    std::string kind;               // RequestKind name
    Caller caller;
    std::string requested_identity; // what the client asked for ("client_id=...") or ""
    std::string granted_identity;   // identity served ("client_id=..."), "node" for passthrough, "" when denied
    std::string binding;            // BindingKind + explanation
    std::string resource;
    std::string target_pod;         // /host/token: "namespace/name" the caller asked for
    Reason reason = Reason::deny_no_origin;
    unsigned status = 0;
    double latency_ms = 0;
    std::string cache;              // "hit" | "miss" | "shared" | ""
    int64_t token_expires_on = 0;
    std::string token_sha256;       // first 16 hex of SHA-256 of the access token
};

std::string to_json_line(const AuditRecord& record);

class AuditLog {
public:
    // path "-" = stdout, "" = disabled.
    static Result<std::unique_ptr<AuditLog>> open(const std::string& path);
    ~AuditLog();
    void write(const AuditRecord& record);
    Result<void> reopen();  // SIGHUP: after logrotate moved the file
    const std::string& path() const { return path_; }

private:
    AuditLog() = default;
    std::mutex mu_;
    std::string path_;
    FILE* file_ = nullptr;
};

}  // namespace podid
