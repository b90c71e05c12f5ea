#include "observe/audit.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

namespace podid {

std::string to_json_line(const AuditRecord& r) {
    nlohmann::ordered_json j;
    j["time_ms"] = r.time_ms;
    j["decision"] = is_denial(r.reason) ? "deny" : "allow";
    j["reason"] = to_string(r.reason);
    j["status"] = r.status;
    j["kind"] = r.kind;
    j["method"] = r.method;
    j["path"] = r.path;
    j["listener"] = r.listener;
    nlohmann::ordered_json caller;
    if (r.caller.origin) {
        caller["cgroup_id"] = r.caller.origin->cgroup_id;
        caller["pid"] = r.caller.origin->pid;
        caller["comm"] = r.caller.origin->comm;
        caller["orig_dst"] = r.caller.origin->orig_dst;
    } else {
        caller["origin"] = nullptr;
    }
    caller["cgroup"] = r.caller.cgroup_path;
    if (r.caller.pod_ref) {
        caller["pod_uid"] = r.caller.pod_ref->uid;
        caller["container_id"] = r.caller.pod_ref->container_id;
    }
    if (r.caller.pod) {
        caller["namespace"] = r.caller.pod->ns;
        caller["pod"] = r.caller.pod->name;
        caller["service_account"] = r.caller.pod->service_account;
        caller["host_network"] = r.caller.pod->host_network;
    }
    j["caller"] = caller;
    if (!r.target_pod.empty())
        j["target_pod"] = r.target_pod;
    j["requested_identity"] = r.requested_identity;
    j["granted_identity"] = r.granted_identity;
    j["binding"] = r.binding;
    j["resource"] = r.resource;
    j["latency_ms"] = r.latency_ms;
    if (!r.cache.empty())
        j["cache"] = r.cache;
    if (!r.token_sha256.empty()) {
        j["token_sha256"] = r.token_sha256;
        j["token_expires_on"] = r.token_expires_on;
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path) {
    std::unique_ptr<AuditLog> log(new AuditLog());
    log->path_ = path;
    if (auto r = log->reopen(); !r)
        return r.error();
    return log;
}

AuditLog::~AuditLog() {
    if (file_ && file_ != stdout)
        std::fclose(file_);
}

Result<void> AuditLog::reopen() {
    std::lock_guard lock(mu_);
    if (path_.empty())
        return {};
    if (path_ == "-") {
        file_ = stdout;
        return {};
    }
    FILE* f = std::fopen(path_.c_str(), "ae");
    if (!f) {
        int err = errno;
        return make_error("cannot open audit log " + path_ + ": " + std::strerror(err), err);
    }
    if (file_ && file_ != stdout)
        std::fclose(file_);
    file_ = f;
    return {};
}

void AuditLog::write(const AuditRecord& record) {
    std::string line = to_json_line(record);
    std::lock_guard lock(mu_);
    if (!file_)
        return;
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fflush(file_);
}

}  // namespace podid
