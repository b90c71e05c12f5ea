// The token cache on disk: what a restarted agent serves from instead of asking IMDS for every identity at once (IMDS
// throttles a burst: 20 requests/s, 5 concurrent per VM).
//
// The file holds access tokens in clear. What keeps them from pods:
//  - it belongs in a root-owned 0700 directory on a tmpfs, the host's /run (e.g. /run/podid), which is never in a
//    volume pods can mount; tmpfs also means the tokens never reach a disk and are gone at reboot;
//  - the file is written 0600 by the agent (root): created with O_CREAT|O_EXCL|O_NOFOLLOW under a temporary name
//    in the same directory and renamed over the target, so no reader ever sees it half written or with wider modes;
//  - save refuses a directory that is not owned by the agent's uid or that group or others may write (where another
//    user could swap the file or plant a symlink), and a target that is a symlink; load refuses a file that is not
//    the agent's own or that group or others may read or write.
// Nothing here logs a token or quotes the file's contents in an error.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/result.h"
#include "token/token_cache.h"

namespace podid {

// The file format's version; a file with another one is refused whole (the agent starts with an empty cache).
inline constexpr int kTokenCacheFileVersion = 1;

// Writes `tokens` to `path` atomically (see above). JSON:
//   {"version":1,"tokens":[{"key":{"client_id":..,"msi_res_id":..,"object_id":..,"resource":..,
//                                  "entra":{"source":"federated",..}},       (only for Entra keys)
//                           "token":{"access_token":..,"client_id":..,"resource":..,"token_type":..,
//                                    "expires_on":..,"not_before":..,"ext_expires_in":..}}, ...]}
// A token whose text is not valid UTF-8 is left out (it cannot be written as JSON unchanged): it is fetched anew
// after a restart.
Result<void> save_token_cache(const std::string& path, const std::vector<CachedToken>& tokens);

struct LoadedTokenCache {
    std::vector<CachedToken> tokens;  // not expired at `now`; seed() drops those inside its safety margin
    std::size_t expired = 0;          // entries skipped: expired at `now`
    std::size_t malformed = 0;        // entries skipped: a field missing or of the wrong type
};

// Reads what save_token_cache() wrote. A missing file is an empty cache, not an error. An error (the caller logs it
// and starts with an empty cache): the file is not a regular file of the agent's uid, group or others may read or
// write it, it is a symlink, it is not JSON, or it has another format version.
Result<LoadedTokenCache> load_token_cache(const std::string& path, int64_t now_epoch_s);

// Keeps the file up to date with a cache: after the cache stores a token it writes the cache's snapshot() within
// `debounce`, once for a whole burst of stores, on `executor` (never on a request's path). Made before the cache,
// because the cache takes on_stored() in its options:
//
//   TokenCachePersister persister(executor, "/run/podid/token-cache.json");
//   options.on_stored = persister.on_stored();
//   CachingTokenProvider cache(executor, upstream, options);
//   cache.seed(...load_token_cache(...)...);
//   persister.attach(cache);
//   ...
//   persister.flush();  // at shutdown and before handing over to another agent
class TokenCachePersister {
public:
    TokenCachePersister(boost::asio::any_io_executor executor, std::string path,
                        std::chrono::milliseconds debounce = std::chrono::seconds(1));
    // Does not write: call flush() first to keep the latest tokens. Waits for a write under way.
    ~TokenCachePersister();
    TokenCachePersister(const TokenCachePersister&) = delete;
    TokenCachePersister& operator=(const TokenCachePersister&) = delete;

    // For TokenCacheOptions::on_stored: schedules a write. Callable from any thread, also after this object is gone
    // (it then does nothing).
    std::function<void()> on_stored() const;
    // The cache to write; it must outlive this object. Stores notified before are written after the debounce.
    void attach(const CachingTokenProvider& cache);
    // Writes the cache's snapshot now, on the calling thread (a no-op success before attach()).
    Result<void> flush();

    const std::string& path() const;
    uint64_t writes() const;    // successful writes
    uint64_t failures() const;  // failed writes; the first of each streak is logged

    struct State;  // shared with the hook and the timer, which may outlive this object

private:
    std::shared_ptr<State> state_;
};

}  // namespace podid
