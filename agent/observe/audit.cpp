#include "observe/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/json_writer.h"
#include "common/log.h"

namespace podid {

namespace {

// While lines are being dropped, the operator hears about it at most this often.
constexpr std::chrono::seconds kDropReportEvery{10};

// Enough for the line when nothing needs escaping (keys, numbers and punctuation take under 512 bytes), so that the
// writer grows `out` once.
size_t line_size_hint(const AuditRecord& r) {
    size_t n = 512 + r.listener.size() + r.method.size() + r.path.size() + r.caller.cgroup_path.size() +
               r.requested_identity.size() + r.granted_identity.size() + r.binding.size() + r.resource.size() +
               r.target_pod.size() + r.cache.size() + r.token_sha256.size();
    if (r.caller.origin)
        n += r.caller.origin->comm.size() + r.caller.origin->orig_dst.size();
    if (r.caller.pod_ref)
        n += r.caller.pod_ref->uid.size() + r.caller.pod_ref->container_id.size();
    if (r.caller.pod)
        n += r.caller.pod->ns.size() + r.caller.pod->name.size() + r.caller.pod->service_account.size();
    return n;
}

}  // namespace

void append_json_line(std::string& out, const AuditRecord& r) {
    JsonObjectWriter j(out, line_size_hint(r));
    j.field("time_ms", r.time_ms)
        .field("decision", is_denial(r.reason) ? "deny" : "allow")
        .field("reason", to_string(r.reason))
        .field("status", uint64_t{r.status})
        .field("kind", to_string(r.kind))
        .field("method", r.method)
        .field("path", r.path)
        .field("listener", r.listener);
    JsonObjectWriter caller = j.object("caller");
    if (r.caller.origin) {
        caller.field("cgroup_id", r.caller.origin->cgroup_id)
            .field("pid", r.caller.origin->pid)
            .field("comm", r.caller.origin->comm)
            .field("orig_dst", r.caller.origin->orig_dst);
    } else {
        caller.null_field("origin");
    }
    caller.field("cgroup", r.caller.cgroup_path);
    if (r.caller.pod_ref)
        caller.field("pod_uid", r.caller.pod_ref->uid).field("container_id", r.caller.pod_ref->container_id);
    if (r.caller.pod) {
        caller.field("namespace", r.caller.pod->ns)
            .field("pod", r.caller.pod->name)
            .field("service_account", r.caller.pod->service_account)
            .field("host_network", r.caller.pod->host_network);
    }
    caller.end();
    if (!r.target_pod.empty())
        j.field("target_pod", r.target_pod);
    j.field("requested_identity", r.requested_identity)
        .field("granted_identity", r.granted_identity)
        .field("binding", r.binding)
        .field("resource", r.resource)
        .field("latency_ms", r.latency_ms);
    if (!r.cache.empty())
        j.field("cache", r.cache);
    if (!r.token_sha256.empty())
        j.field("token_sha256", r.token_sha256).field("token_expires_on", r.token_expires_on);
    j.end();
    out.push_back('\n');
}

std::string to_json_line(const AuditRecord& record) {
    std::string out;
    append_json_line(out, record);
    return out;
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, AuditLogOptions options) {
    std::unique_ptr<AuditLog> log(new AuditLog(path, options));
    if (path.empty())
        return log;
    if (auto r = log->reopen(); !r)
        return r.error();
    log->writer_ = std::thread([raw = log.get()] { raw->run_writer(); });
    return log;
}

AuditLog::~AuditLog() {
    if (writer_.joinable()) {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        wake_.notify_one();
        writer_.join();  // the writer empties the queue before it returns
    }
    write_queued();
    if (fd_ >= 0 && fd_ != STDOUT_FILENO)
        ::close(fd_);
}

Result<void> AuditLog::reopen() {
    if (path_.empty())
        return {};
    std::lock_guard file_lock(file_mu_);
    if (path_ == "-") {
        fd_ = STDOUT_FILENO;
        return {};
    }
    // What was queued before the signal belongs to the file being rotated away.
    std::string batch;
    {
        std::lock_guard lock(mu_);
        batch.swap(pending_);
    }
    if (fd_ >= 0)
        write_out(batch);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        int err = errno;
        return make_error("cannot open audit log " + path_ + ": " + std::strerror(err), err);
    }
    if (fd_ >= 0 && fd_ != STDOUT_FILENO)
        ::close(fd_);
    fd_ = fd;
    return {};
}

void AuditLog::write(const AuditRecord& record) {
    if (path_.empty())
        return;
    // Formatting happens here, outside the lock, into a buffer each I/O thread keeps.
    thread_local std::string line;
    line.clear();
    append_json_line(line, record);
    bool wake = false;
    {
        std::lock_guard lock(mu_);
        if (pending_.size() + line.size() > options_.max_pending_bytes) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        const bool was_below = pending_.size() < options_.flush_bytes;
        pending_.append(line);
        // One wake-up per batch: when the writer sleeps with nothing queued, or when a batch just filled.
        wake = writer_idle_ || (was_below && pending_.size() >= options_.flush_bytes);
        writer_idle_ = false;
    }
    if (wake)
        wake_.notify_one();
}

void AuditLog::flush() {
    if (path_.empty())
        return;
    write_queued();
}

void AuditLog::run_writer() {
    std::unique_lock lock(mu_);
    for (;;) {
        writer_idle_ = pending_.empty() && !stopping_;
        wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        writer_idle_ = false;
        const bool stop = stopping_;
        lock.unlock();
        write_queued();
        lock.lock();
        if (stop && pending_.empty())
            return;
        // Lines that come one at a time (a quiet node, a test reading the file after each request) are written as
        // they come; a steady stream is gathered for the interval, so that it costs one write(2) per interval.
        const auto due = [&] { return stopping_ || pending_.size() >= options_.flush_bytes; };
        wake_.wait_for(lock, options_.quiet, due);
        if (!pending_.empty() && options_.flush_interval > options_.quiet)
            wake_.wait_for(lock, options_.flush_interval - options_.quiet, due);
    }
}

void AuditLog::write_queued() {
    thread_local std::string batch;
    std::lock_guard file_lock(file_mu_);
    {
        std::lock_guard lock(mu_);
        if (pending_.empty())
            return;
        batch.swap(pending_);
    }
    write_out(batch);
    // Give back what a burst grew, but keep a batch's worth for the next one.
    if (batch.capacity() > 4 * options_.flush_bytes)
        std::string().swap(batch);
    batch.clear();

    const uint64_t dropped = dropped_.load(std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (dropped != dropped_reported_ && now - drop_reported_at_ >= kDropReportEvery) {
        log_warn("the audit log cannot keep up: lines were dropped", kv("dropped_total", std::to_string(dropped)) +
                                                                         kv("path", path_) +
                                                                         kv("see", "podid_audit_lines_dropped_total"));
        dropped_reported_ = dropped;
        drop_reported_at_ = now;
    }
}

// Caller holds file_mu_.
void AuditLog::write_out(const std::string& batch) {
    size_t done = 0;
    while (done < batch.size()) {
        ssize_t n = ::write(fd_, batch.data() + done, batch.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = errno;
            // The lines not written are lost: count them with the dropped ones.
            const auto lost = std::count(batch.begin() + static_cast<std::ptrdiff_t>(done), batch.end(), '\n');
            dropped_.fetch_add(static_cast<uint64_t>(lost), std::memory_order_relaxed);
            log_error("cannot write the audit log", kv("path", path_) + kv("reason", std::strerror(err)));
            return;
        }
        done += static_cast<size_t>(n);
    }
}

}  // namespace podid
