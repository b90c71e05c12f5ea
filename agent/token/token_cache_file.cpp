#include "token/token_cache_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/log.h"

namespace podid {

namespace asio = boost::asio;

namespace {
// Named, so that nothing here meets another file's anonymous-namespace names in a unity batch.
namespace cache_file {

using Json = nlohmann::json;

// A cache of a few thousand tokens is a few MB; anything much larger is not a file this agent wrote.
constexpr std::size_t kMaxFileBytes = 64u << 20;

Error sys_error(const std::string& what, int code = errno) {
    return make_error(what + ": " + std::strerror(code), code);
}

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

Json encode_key(const TokenKey& key) {
    Json out = {
        {"client_id", key.client_id},
        {"msi_res_id", key.msi_res_id},
        {"object_id", key.object_id},
        {"resource", key.resource},
    };
    if (key.entra) {
        const EntraRef& e = *key.entra;
        out["entra"] = {
            {"source", to_string(e.source)},
            {"tenant", e.tenant},
            {"pod_ns", e.pod_ns},
            {"pod_name", e.pod_name},
            {"pod_uid", e.pod_uid},
            {"service_account", e.service_account},
            {"assertion_lifetime_s", e.assertion_lifetime_s},
            {"secret_ns", e.secret_ns},
            {"secret_name", e.secret_name},
        };
    }
    return out;
}

Json encode_token(const Token& t) {
    return {
        {"access_token", t.access_token},     {"client_id", t.client_id},   {"resource", t.resource},
        {"token_type", t.token_type},         {"expires_on", t.expires_on}, {"not_before", t.not_before},
        {"ext_expires_in", t.ext_expires_in},
    };
}

// The whole document, one entry at a time: an entry whose strings are not UTF-8 is left out instead of being
// written altered (nlohmann refuses it in strict mode).
std::string encode(const std::vector<CachedToken>& tokens) {
    std::string text = "{\"version\":" + std::to_string(kTokenCacheFileVersion) + ",\"tokens\":[";
    bool first = true;
    for (const auto& item : tokens) {
        std::string entry;
        try {
            entry = Json{{"key", encode_key(item.key)}, {"token", encode_token(item.token)}}.dump();
        } catch (const Json::type_error&) {
            continue;
        }
        if (!first)
            text += ',';
        first = false;
        text += entry;
    }
    text += "]}\n";
    return text;
}

bool read_string(const Json& obj, const char* name, std::string& out) {
    auto it = obj.find(name);
    if (it == obj.end() || !it->is_string())
        return false;
    out = it->get<std::string>();
    return true;
}

bool read_int(const Json& obj, const char* name, int64_t& out) {
    auto it = obj.find(name);
    if (it == obj.end() || !it->is_number_integer())
        return false;
    out = it->get<int64_t>();
    return true;
}

std::optional<TokenSource> source_named(const std::string& name) {
    for (auto source :
         {TokenSource::node_imds, TokenSource::federated, TokenSource::client_secret, TokenSource::client_certificate})
        if (name == to_string(source))
            return source;
    return std::nullopt;
}

std::optional<EntraRef> decode_entra(const Json& j) {
    if (!j.is_object())
        return std::nullopt;
    EntraRef e;
    std::string source;
    if (!read_string(j, "source", source) || !read_string(j, "tenant", e.tenant) ||
        !read_string(j, "pod_ns", e.pod_ns) || !read_string(j, "pod_name", e.pod_name) ||
        !read_string(j, "pod_uid", e.pod_uid) || !read_string(j, "service_account", e.service_account) ||
        !read_int(j, "assertion_lifetime_s", e.assertion_lifetime_s) || !read_string(j, "secret_ns", e.secret_ns) ||
        !read_string(j, "secret_name", e.secret_name))
        return std::nullopt;
    auto parsed = source_named(source);
    if (!parsed)
        return std::nullopt;
    e.source = *parsed;
    return e;
}

std::optional<CachedToken> decode_entry(const Json& j) {
    if (!j.is_object())
        return std::nullopt;
    auto key = j.find("key");
    auto token = j.find("token");
    if (key == j.end() || token == j.end() || !key->is_object() || !token->is_object())
        return std::nullopt;
    CachedToken out;
    if (!read_string(*key, "client_id", out.key.client_id) || !read_string(*key, "msi_res_id", out.key.msi_res_id) ||
        !read_string(*key, "object_id", out.key.object_id) || !read_string(*key, "resource", out.key.resource) ||
        out.key.resource.empty())
        return std::nullopt;
    if (auto entra = key->find("entra"); entra != key->end()) {
        out.key.entra = decode_entra(*entra);
        if (!out.key.entra)
            return std::nullopt;
    }
    Token& t = out.token;
    if (!read_string(*token, "access_token", t.access_token) || t.access_token.empty() ||
        !read_string(*token, "client_id", t.client_id) || !read_string(*token, "resource", t.resource) ||
        !read_string(*token, "token_type", t.token_type) || !read_int(*token, "expires_on", t.expires_on) ||
        !read_int(*token, "not_before", t.not_before) || !read_int(*token, "ext_expires_in", t.ext_expires_in))
        return std::nullopt;
    return out;
}

Result<void> write_all(int fd, const std::string& text, const std::string& what) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return sys_error("cannot write " + what);
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<void> save(const std::string& path, const std::vector<CachedToken>& tokens) {
    const std::filesystem::path target(path);
    const std::string name = target.filename().string();
    if (name.empty() || name == "." || name == "..")
        return make_error("token cache file " + path + " does not name a file");
    std::string dir = target.parent_path().string();
    if (dir.empty())
        dir = ".";

    // Checked on the directory we then write into (through its fd), not on a path that could change meanwhile.
    Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid())
        return sys_error("cannot open the token cache directory " + dir);
    struct stat ds {};
    if (::fstat(dir_fd.get(), &ds) != 0)
        return sys_error("cannot stat the token cache directory " + dir);
    if (ds.st_uid != ::geteuid())
        return make_error("token cache directory " + dir + " is owned by uid " + std::to_string(ds.st_uid) +
                          ", not the agent's (" + std::to_string(::geteuid()) +
                          "): give the agent a directory of its own (chown it, mode 0700)");
    if ((ds.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return make_error("token cache directory " + dir + " is writable by group or others (mode " +
                          octal_mode(ds.st_mode) + "): chmod 0700 it");

    struct stat ts {};
    if (::fstatat(dir_fd.get(), name.c_str(), &ts, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(ts.st_mode))
            return make_error("token cache file " + path + " is a symlink: remove it");
        if (!S_ISREG(ts.st_mode))
            return make_error("token cache file " + path + " is not a regular file: remove it");
    } else if (errno != ENOENT) {
        return sys_error("cannot stat the token cache file " + path);
    }

    const std::string text = encode(tokens);

    // A fresh name each time: O_EXCL never opens a file someone else made, O_NOFOLLOW never follows a planted link.
    // The name need not be unguessable (O_EXCL is what makes it safe), only unlikely to exist.
    static std::atomic<uint32_t> sequence{0};
    const auto clock = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    std::string temp;
    Fd fd;
    for (int attempt = 0; attempt < 8 && !fd.valid(); ++attempt) {
        char suffix[48];
        std::snprintf(suffix, sizeof(suffix), ".%d.%08x.%u", static_cast<int>(::getpid()), clock, sequence++);
        temp = "." + name + ".tmp" + suffix;
        fd = Fd(::openat(dir_fd.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid() && errno != EEXIST)
            return sys_error("cannot create a temporary file in the token cache directory " + dir);
    }
    if (!fd.valid())
        return make_error("cannot create a temporary file in the token cache directory " + dir +
                          ": every name tried exists");

    auto fail = [&](Error error) -> Result<void> {
        ::unlinkat(dir_fd.get(), temp.c_str(), 0);
        return error;
    };
    // The umask may only have narrowed 0600; make it exactly that.
    if (::fchmod(fd.get(), 0600) != 0)
        return fail(sys_error("cannot chmod the temporary token cache file in " + dir));
    if (auto written = write_all(fd.get(), text, "the temporary token cache file in " + dir); !written)
        return fail(written.error());
    if (::fsync(fd.get()) != 0)  // nothing to do on tmpfs; on a disk it keeps a crash from leaving an empty file
        return fail(sys_error("cannot fsync the temporary token cache file in " + dir));
    if (::close(fd.release()) != 0)
        return fail(sys_error("cannot close the temporary token cache file in " + dir));
    if (::renameat(dir_fd.get(), temp.c_str(), dir_fd.get(), name.c_str()) != 0)
        return fail(sys_error("cannot rename the temporary token cache file over " + path));
    (void)::fsync(dir_fd.get());  // the rename itself, on a disk; best effort
    return {};
}

Result<LoadedTokenCache> load(const std::string& path, int64_t now_epoch_s) {
    // O_NONBLOCK: a FIFO planted in its place must not hang the start-up before fstat() says what it is.
    Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) {
        if (errno == ENOENT)
            return LoadedTokenCache{};
        if (errno == ELOOP)
            return make_error("token cache file " + path + " is a symlink: remove it", ELOOP);
        return sys_error("cannot open the token cache file " + path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return sys_error("cannot stat the token cache file " + path);
    if (!S_ISREG(st.st_mode))
        return make_error("token cache file " + path + " is not a regular file: remove it");
    if (st.st_uid != ::geteuid())
        return make_error("token cache file " + path + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not the agent's (" + std::to_string(::geteuid()) + "): remove it");
    if ((st.st_mode & 077) != 0)
        return make_error("token cache file " + path + " may be read or written by group or others (mode " +
                          octal_mode(st.st_mode) + "): remove it");
    if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes)
        return make_error("token cache file " + path + " is larger than " + std::to_string(kMaxFileBytes >> 20) +
                          " MiB: remove it");

    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return sys_error("cannot read the token cache file " + path);
        }
        if (n == 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxFileBytes)
            return make_error("token cache file " + path + " grew while being read: remove it");
    }

    // No exceptions: a parse error's message quotes the text around it, which may be a token.
    const Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object())
        return make_error("token cache file " + path + " is not a JSON object");
    auto version = doc.find("version");
    if (version == doc.end() || !version->is_number_integer())
        return make_error("token cache file " + path + " has no format version");
    if (version->get<int64_t>() != kTokenCacheFileVersion)
        return make_error("token cache file " + path + " has format version " +
                          std::to_string(version->get<int64_t>()) + "; this agent reads version " +
                          std::to_string(kTokenCacheFileVersion));
    auto list = doc.find("tokens");
    if (list == doc.end() || !list->is_array())
        return make_error("token cache file " + path + " has no token list");

    LoadedTokenCache out;
    for (const auto& item : *list) {
        auto entry = decode_entry(item);
        if (!entry)
            ++out.malformed;
        else if (entry->token.expires_on <= now_epoch_s)
            ++out.expired;
        else
            out.tokens.push_back(std::move(*entry));
    }
    return out;
}

}  // namespace cache_file
}  // namespace

Result<void> save_token_cache(const std::string& path, const std::vector<CachedToken>& tokens) {
    return cache_file::save(path, tokens);
}

Result<LoadedTokenCache> load_token_cache(const std::string& path, int64_t now_epoch_s) {
    return cache_file::load(path, now_epoch_s);
}

// --- TokenCachePersister ---

struct TokenCachePersister::State {
    State(asio::any_io_executor executor, std::string p, std::chrono::milliseconds d)
        : path(std::move(p)), debounce(d), timer(std::move(executor)) {}

    const std::string path;
    const std::chrono::milliseconds debounce;

    // Lock order: write_mu, then mu.
    std::mutex write_mu;   // one write at a time; guards `failing`
    bool failing = false;  // the last write failed (its streak was logged)

    std::mutex mu;  // guards what follows, the timer included
    asio::steady_timer timer;
    const CachingTokenProvider* cache = nullptr;
    bool due = false;    // a store since the last write began
    bool armed = false;  // the timer runs
    bool closed = false;

    std::atomic<uint64_t> writes{0};
    std::atomic<uint64_t> failures{0};
};

namespace {
namespace cache_file {

using PersisterState = TokenCachePersister::State;

Result<void> write_now(PersisterState& s, bool only_if_due) {
    std::lock_guard write_lock(s.write_mu);
    const CachingTokenProvider* cache = nullptr;
    {
        std::lock_guard lock(s.mu);
        if (s.closed || !s.cache || (only_if_due && !s.due))
            return {};
        s.due = false;  // a store from here on is written by the next write
        cache = s.cache;
    }
    auto saved = save_token_cache(s.path, cache->snapshot());
    if (saved) {
        ++s.writes;
        if (s.failing)
            log_info("token cache saved again", kv("path", s.path));
        s.failing = false;
    } else {
        ++s.failures;
        if (!s.failing)  // once per streak: a broken directory would otherwise log on every store
            log_warn("cannot save the token cache; a restarted agent fetches its tokens again",
                     kv("path", s.path) + kv("error", saved.error().message));
        s.failing = true;
    }
    return saved;
}

// Caller holds s->mu.
void arm_locked(const std::shared_ptr<PersisterState>& s) {
    if (!s->cache || s->closed || s->armed || !s->due)
        return;
    s->armed = true;
    s->timer.expires_after(s->debounce);
    s->timer.async_wait([weak = std::weak_ptr<PersisterState>(s)](const boost::system::error_code& ec) {
        auto state = weak.lock();
        if (!state)
            return;
        {
            std::lock_guard lock(state->mu);
            state->armed = false;
        }
        if (!ec)
            write_now(*state, /*only_if_due=*/true);
    });
}

}  // namespace cache_file
}  // namespace

TokenCachePersister::TokenCachePersister(asio::any_io_executor executor, std::string path,
                                         std::chrono::milliseconds debounce)
    : state_(std::make_shared<State>(std::move(executor), std::move(path), debounce)) {}

TokenCachePersister::~TokenCachePersister() {
    std::lock_guard write_lock(state_->write_mu);
    std::lock_guard lock(state_->mu);
    state_->closed = true;
    state_->cache = nullptr;
    state_->timer.cancel();
}

std::function<void()> TokenCachePersister::on_stored() const {
    return [weak = std::weak_ptr<State>(state_)] {
        if (auto s = weak.lock()) {
            std::lock_guard lock(s->mu);
            s->due = true;
            cache_file::arm_locked(s);
        }
    };
}

void TokenCachePersister::attach(const CachingTokenProvider& cache) {
    std::lock_guard lock(state_->mu);
    state_->cache = &cache;
    cache_file::arm_locked(state_);
}

Result<void> TokenCachePersister::flush() { return cache_file::write_now(*state_, /*only_if_due=*/false); }

const std::string& TokenCachePersister::path() const { return state_->path; }
uint64_t TokenCachePersister::writes() const { return state_->writes.load(); }
uint64_t TokenCachePersister::failures() const { return state_->failures.load(); }

}  // namespace podid
