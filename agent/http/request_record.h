// What the HTTP stage reports about every request it answered: the record the audit log and metrics read
// (observe/), and the interface they implement to receive it. The end of the request pipeline.
#pragma once

#include <cstdint>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "caller/caller.h"
#include "common/reason.h"

namespace podid {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// What the request is, for metrics and the audit log.
// Append only: metrics keep one histogram slot per kind, in this order.
enum class RequestKind { token, probe, host_token, instance_metadata, other_metadata, health, unknown, selfcheck };
const char* to_string(RequestKind kind);

struct AuditRecord {
    int64_t time_ms = 0;       // epoch milliseconds at the end of the request
    std::string listener;      // "node" | "loopback"
    std::string method, path;  // normalised path
    RequestKind kind = RequestKind::unknown;
    Caller caller;
    std::string requested_identity;  // what the client asked for ("client_id=...") or ""
    std::string granted_identity;    // identity served ("client_id=..."), "node" for passthrough, "" when denied
    std::string binding;             // BindingKind + explanation
    std::string binding_name;        // bindings file entry's name (standalone callers' metrics label), else ""
    std::string resource;
    std::string target_pod;  // /host/token: "namespace/name" the caller asked for
    Reason reason = Reason::deny_no_origin;
    unsigned status = 0;
    double latency_ms = 0;
    std::string cache;  // "hit" | "miss" | "shared" | ""
    int64_t token_expires_on = 0;
    std::string token_sha256;  // first 16 hex of SHA-256 of the access token
};

// Everything that happened in one request, for the audit log and metrics.
class RequestSink {
public:
    virtual ~RequestSink() = default;
    virtual void on_request_begin() {}  // a request was read; on_request follows when it is answered
    virtual void on_request(const AuditRecord& record) = 0;
    virtual void on_connection(int delta) {}
    // A connection was accepted `seconds` after its process called connect() (the kernel's record of the
    // connect time): the wait in the SYN and accept queues, which grows when the agent falls behind.
    virtual void on_accept_wait(double seconds) {}
};

}  // namespace podid
