// Bindings from a file (--bindings FILE) as a BindingSource: the table in force, its loads and reloads, and the
// watcher that reloads it when the file changes. The file's format and its validation are in
// policy/static_bindings_file.h, the pattern syntax in policy/cgroup_glob.h, matching in policy/binding_table.h.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "policy/binding.h"
#include "policy/binding_table.h"

namespace podid {

class StaticBindings : public BindingSource {
public:
    // Called with one sentence when reload() rejects a file (the previous table stays in force).
    using ErrorLog = std::function<void(const std::string& message)>;

    explicit StaticBindings(std::string path, ErrorLog on_reload_error = {});
    ~StaticBindings() override;
    StaticBindings(const StaticBindings&) = delete;
    StaticBindings& operator=(const StaticBindings&) = delete;

    // Reads and parses the file; on success the new table takes effect. On failure nothing changes (ready() stays
    // false if nothing was loaded before) and the error is returned, not logged.
    Result<void> load();

    // Like load(), for a file that changed (SIGHUP, the watcher): a bad file keeps the previous table in force and
    // is reported through the ErrorLog as well as returned.
    Result<void> reload();

    // Reloads when the file changes (common/file_watcher.h: inotify on its directory plus a stat() poll every
    // `poll_interval`). A reload happens only when the file's device, inode, size or mtime changed since the last
    // read. Handlers run on `io`; this object may be destroyed before or after `io` (the handlers then stop).
    void watch(boost::asio::io_context& io, std::chrono::milliseconds poll_interval = std::chrono::seconds(5));

    Binding bindings_for(const Caller& caller) const override;
    bool ready() const override;
    // Consulted only for a caller whose cgroup is known (a pod with no cgroup on this node matches no entry).
    BindingTrace trace(const Caller& caller) const override;

    // The table in force (null before the first successful load).
    std::shared_ptr<const BindingTable> table() const;
    const std::string& path() const;

private:
    // Shared with the watcher's handlers, which hold it weakly.
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace podid
