#include "policy/static_bindings.h"

#include <mutex>
#include <optional>
#include <utility>

#include "common/file_watcher.h"
#include "policy/static_bindings_file.h"

namespace podid {

struct StaticBindings::State {
    std::string path;
    ErrorLog on_error;

    mutable std::mutex mu;  // guards table
    std::shared_ptr<const BindingTable> table;

    std::mutex load_mu;              // one load at a time (SIGHUP and the watcher may race); guards stamp
    std::optional<FileStamp> stamp;  // of the last file read, good or bad

    Result<void> load_file() {
        std::lock_guard load_lock(load_mu);
        stamp = file_stamp(path);
        auto parsed = read_bindings_file(path);
        if (!parsed)
            return parsed.error();
        std::lock_guard lock(mu);
        table = std::move(*parsed);
        return {};
    }

    Result<void> reload() {
        auto r = load_file();
        if (!r && on_error)
            on_error(r.error().message);
        return r;
    }

    // For the watcher: reload only when the file is not the one read last.
    void reload_if_changed() {
        std::optional<FileStamp> now = file_stamp(path);
        {
            std::lock_guard load_lock(load_mu);
            if (now == stamp)
                return;
        }
        reload();
    }
};

StaticBindings::StaticBindings(std::string path, ErrorLog on_reload_error) : state_(std::make_shared<State>()) {
    state_->path = std::move(path);
    state_->on_error = std::move(on_reload_error);
}

StaticBindings::~StaticBindings() = default;

Result<void> StaticBindings::load() { return state_->load_file(); }

Result<void> StaticBindings::reload() { return state_->reload(); }

void StaticBindings::watch(boost::asio::io_context& io, std::chrono::milliseconds poll_interval) {
    // Held weakly, so that either this object or the io_context may go first.
    watch_file(io, state_->path, poll_interval, [weak = std::weak_ptr<State>(state_)] {
        auto state = weak.lock();
        if (!state)
            return false;
        state->reload_if_changed();
        return true;
    });
}

std::shared_ptr<const BindingTable> StaticBindings::table() const {
    std::lock_guard lock(state_->mu);
    return state_->table;
}

const std::string& StaticBindings::path() const { return state_->path; }

bool StaticBindings::ready() const { return table() != nullptr; }

BindingTrace StaticBindings::trace(const Caller& caller) const {
    BindingTrace t;
    if (caller.cgroup_path.empty()) {
        t.steps.push_back("bindings file " + path() + ": not consulted (no cgroup of this pod on the node)");
        return t;
    }
    t.binding = bindings_for(caller);
    if (t.binding.kind != BindingKind::none) {
        t.steps.push_back("bindings file " + path() + ": " + t.binding.explanation + " matches " + caller.cgroup_path);
        t.decided_by = "bindings_file";
    } else {
        t.steps.push_back("bindings file " + path() + ": no entry matches " + caller.cgroup_path);
    }
    return t;
}

Binding StaticBindings::bindings_for(const Caller& caller) const {
    auto t = table();
    if (!t || caller.cgroup_path.empty())
        return Binding{};
    return t->match(caller.cgroup_path);
}

}  // namespace podid
