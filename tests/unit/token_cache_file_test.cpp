// The token cache file (save_token_cache / load_token_cache) and TokenCachePersister, in a scratch directory: what is
// written, what is refused, and when the persister writes. No privileges needed; the ownership rows use a chown when
// run as root and a directory of root's otherwise.
#include "token/token_cache_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "temp_dir.h"
#include "token/token_cache.h"

namespace podid {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int64_t kNow = 1'700'000'000;  // epoch seconds

TokenKey imds_key(const std::string& client_id, const std::string& resource = "https://vault.azure.net") {
    return TokenKey{client_id, "", "", resource};
}

TokenKey federated_key() {
    TokenKey key{"a1111111-1111-4111-8111-111111111111", "", "", "https://storage.azure.com"};
    EntraRef e;
    e.source = TokenSource::federated;
    e.tenant = "contoso.onmicrosoft.com";
    e.pod_ns = "shop";
    e.pod_name = "web-0";
    e.pod_uid = "6f1c2a7e-0000-4000-8000-000000000001";
    e.service_account = "web";
    e.assertion_lifetime_s = 7200;
    key.entra = e;
    return key;
}

TokenKey secret_key() {
    TokenKey key{"b2222222-2222-4222-8222-222222222222", "", "", "https://management.azure.com"};
    EntraRef e;
    e.source = TokenSource::client_secret;
    e.tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    e.secret_ns = "shop";
    e.secret_name = "sp-secret";
    key.entra = e;
    return key;
}

CachedToken make_token(TokenKey key, const std::string& value, int64_t expires_on) {
    CachedToken out{std::move(key), Token{}};
    out.token.access_token = value;
    out.token.client_id = out.key.client_id.empty() ? "11111111-0000-4000-8000-000000000000" : out.key.client_id;
    out.token.resource = out.key.resource;
    out.token.token_type = "Bearer";
    out.token.expires_on = expires_on;
    out.token.not_before = expires_on - 3600;
    out.token.ext_expires_in = 3599;
    return out;
}

void expect_same(const CachedToken& got, const CachedToken& want) {
    EXPECT_EQ(got.key, want.key) << got.key.to_string() << " vs " << want.key.to_string();
    EXPECT_EQ(got.token.access_token, want.token.access_token);
    EXPECT_EQ(got.token.client_id, want.token.client_id);
    EXPECT_EQ(got.token.resource, want.token.resource);
    EXPECT_EQ(got.token.token_type, want.token.token_type);
    EXPECT_EQ(got.token.expires_on, want.token.expires_on);
    EXPECT_EQ(got.token.not_before, want.token.not_before);
    EXPECT_EQ(got.token.ext_expires_in, want.token.ext_expires_in);
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& path, const std::string& text, mode_t mode = 0600) {
    {
        std::ofstream out(path, std::ios::trunc);
        out << text;
    }
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// A 0700 directory of our own, as the agent's /run/podid is.
struct CacheDir {
    test::TempDir tmp{"podid-token-cache"};
    fs::path dir = tmp.path / "podid";
    fs::path file = dir / "token-cache.json";
    CacheDir() {
        fs::create_directory(dir);
        ::chmod(dir.c_str(), 0700);
    }
};

TEST(TokenCacheFile, RoundTripKeepsEveryKeyAndTokenField) {
    CacheDir d;
    const std::vector<CachedToken> tokens = {
        make_token(imds_key("c0ffee00-0000-4000-8000-000000000001"), "eyJ0eXAiOiJKV1QifQ.imds.sig", kNow + 3000),
        make_token(TokenKey{"",
                            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"
                            "userAssignedIdentities/app",
                            "", "https://vault.azure.net"},
                   "by-resource-id", kNow + 2000),
        make_token(TokenKey{"", "", "0b7e0000-0000-4000-8000-00000000000a", "https://vault.azure.net"}, "by-object-id",
                   kNow + 2000),
        make_token(federated_key(), "federated \"quoted\" \\ token", kNow + 1000),
        make_token(secret_key(), "service-principal", kNow + 500),
    };
    ASSERT_TRUE(save_token_cache(d.file.string(), tokens));

    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->expired, 0u);
    EXPECT_EQ(loaded->malformed, 0u);
    ASSERT_EQ(loaded->tokens.size(), tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        SCOPED_TRACE(i);
        expect_same(loaded->tokens[i], tokens[i]);
    }
    ASSERT_TRUE(loaded->tokens[3].key.entra);
    EXPECT_EQ(loaded->tokens[3].key.entra->assertion_lifetime_s, 7200);
    EXPECT_EQ(loaded->tokens[4].key.entra->source, TokenSource::client_secret);

    // The file names its format version.
    auto doc = read_text(d.file);
    EXPECT_EQ(doc.rfind("{\"version\":" + std::to_string(kTokenCacheFileVersion) + ",", 0), 0u) << doc.substr(0, 40);
}

TEST(TokenCacheFile, SavedFileIsMode0600WhateverTheUmaskAndNoTemporaryFileStays) {
    CacheDir d;
    write_file(d.file, "old contents", 0644);  // an older, wider file is replaced, not reused
    const mode_t old_umask = ::umask(0);
    auto saved = save_token_cache(d.file.string(), {make_token(imds_key("a"), "t", kNow + 600)});
    ::umask(old_umask);
    ASSERT_TRUE(saved) << saved.error().message;
    EXPECT_EQ(mode_of(d.file), 0600u);
    struct stat st {};
    ASSERT_EQ(::stat(d.file.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ::geteuid());
    EXPECT_EQ(names_in(d.dir), std::vector<std::string>{"token-cache.json"});

    // A second save replaces the file whole.
    ASSERT_TRUE(save_token_cache(d.file.string(), {}));
    EXPECT_EQ(mode_of(d.file), 0600u);
    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded);
    EXPECT_TRUE(loaded->tokens.empty());
    EXPECT_EQ(names_in(d.dir), std::vector<std::string>{"token-cache.json"});
}

TEST(TokenCacheFile, MissingFileIsAnEmptyCache) {
    CacheDir d;
    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_TRUE(loaded->tokens.empty());
    EXPECT_EQ(loaded->expired + loaded->malformed, 0u);
}

// Entries are judged one by one: an expired or malformed one is skipped and counted, the rest are kept.
TEST(TokenCacheFile, ExpiredAndMalformedEntriesAreSkippedAndCounted) {
    CacheDir d;
    ASSERT_TRUE(save_token_cache(d.file.string(), {
                                                      make_token(imds_key("good"), "good", kNow + 600),
                                                      make_token(imds_key("expired"), "expired", kNow - 1),
                                                      make_token(imds_key("expires-now"), "now", kNow),
                                                      make_token(federated_key(), "good-federated", kNow + 600),
                                                  }));
    auto doc = nlohmann::json::parse(read_text(d.file));
    ASSERT_EQ(doc["tokens"].size(), 4u);
    auto good = doc["tokens"][0];
    auto spoil = [&](const std::function<void(nlohmann::json&)>& change) {
        auto entry = good;
        change(entry);
        doc["tokens"].push_back(entry);
    };
    spoil([](auto& e) { e["token"].erase("access_token"); });
    spoil([](auto& e) { e["token"]["access_token"] = ""; });
    spoil([](auto& e) { e["token"]["expires_on"] = std::to_string(kNow + 600); });  // a string, not a number
    spoil([](auto& e) { e["key"].erase("resource"); });
    spoil([](auto& e) { e["key"]["client_id"] = 7; });
    spoil([](auto& e) { e["key"]["entra"] = {{"source", "federated"}}; });  // fields missing
    spoil([&](auto& e) {
        e["key"]["entra"] = doc["tokens"][3]["key"]["entra"];
        e["key"]["entra"]["source"] = "carrier_pigeon";
    });
    spoil([](auto& e) { e = "not an entry"; });
    spoil([](auto& e) { e.erase("token"); });
    write_file(d.file, doc.dump());

    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->expired, 2u);
    EXPECT_EQ(loaded->malformed, 9u);
    ASSERT_EQ(loaded->tokens.size(), 2u);
    EXPECT_EQ(loaded->tokens[0].token.access_token, "good");
    EXPECT_EQ(loaded->tokens[1].token.access_token, "good-federated");
    EXPECT_EQ(loaded->tokens[1].key, federated_key());
}

// What makes load refuse the whole file. The error says why and never quotes the contents (they may be tokens).
TEST(TokenCacheFile, LoadRefusesWhatItCannotTrust) {
    const std::string secret = "eyJzZWNyZXQiOiJ0b2tlbiJ9";
    struct Row {
        std::string name;
        std::function<void(const CacheDir&)> make;
        std::string error_mentions;
    };
    const std::string valid = "{\"version\":" + std::to_string(kTokenCacheFileVersion) + ",\"tokens\":[]}";
    const std::vector<Row> rows = {
        {"another format version", [&](const CacheDir& d) { write_file(d.file, R"({"version":2,"tokens":[]})"); },
         "format version 2"},
        {"no version", [&](const CacheDir& d) { write_file(d.file, R"({"tokens":[]})"); }, "no format version"},
        {"a string version", [&](const CacheDir& d) { write_file(d.file, R"({"version":"1","tokens":[]})"); },
         "no format version"},
        {"not JSON", [&](const CacheDir& d) { write_file(d.file, "{\"version\":1,\"tokens\":[\"" + secret); },
         "not a JSON object"},
        {"a JSON array", [&](const CacheDir& d) { write_file(d.file, "[]"); }, "not a JSON object"},
        {"no token list", [&](const CacheDir& d) { write_file(d.file, R"({"version":1,"tokens":{}})"); },
         "no token list"},
        {"group-readable", [&](const CacheDir& d) { write_file(d.file, valid, 0640); }, "mode 0640"},
        {"world-writable", [&](const CacheDir& d) { write_file(d.file, valid, 0602); }, "mode 0602"},
        {"a symlink to a good file",
         [&](const CacheDir& d) {
             write_file(d.dir / "elsewhere.json", valid);
             fs::create_symlink(d.dir / "elsewhere.json", d.file);
         },
         "symlink"},
        {"a directory", [&](const CacheDir& d) { fs::create_directory(d.file); }, "not a regular file"},
        {"a FIFO", [&](const CacheDir& d) { ASSERT_EQ(::mkfifo(d.file.c_str(), 0600), 0); }, "not a regular file"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        CacheDir d;
        row.make(d);
        auto loaded = load_token_cache(d.file.string(), kNow);
        ASSERT_FALSE(loaded);
        EXPECT_NE(loaded.error().message.find(row.error_mentions), std::string::npos) << loaded.error().message;
        EXPECT_NE(loaded.error().message.find(d.file.string()), std::string::npos) << loaded.error().message;
        EXPECT_EQ(loaded.error().message.find(secret), std::string::npos) << loaded.error().message;
    }
}

TEST(TokenCacheFile, LoadRefusesAFileOfAnotherUser) {
    CacheDir d;
    std::string path;
    if (::geteuid() == 0) {
        write_file(d.file, R"({"version":1,"tokens":[]})");
        ASSERT_EQ(::chown(d.file.c_str(), 65534, 65534), 0);
        path = d.file.string();
    } else {
        path = "/etc/passwd";  // root's, and we are not root
    }
    auto loaded = load_token_cache(path, kNow);
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.error().message.find("owned by uid"), std::string::npos) << loaded.error().message;
}

// Where save refuses to write, and leaves what is there alone. Each error names the fix.
TEST(TokenCacheFile, SaveRefusesUnsafePlaces) {
    const std::vector<CachedToken> tokens = {make_token(imds_key("a"), "secret-token-value", kNow + 600)};
    struct Row {
        std::string name;
        std::function<void(const CacheDir&)> make;
        std::string error_mentions;
    };
    const std::vector<Row> rows = {
        {"target is a symlink",
         [](const CacheDir& d) {
             write_file(d.dir / "victim", "untouched");
             fs::create_symlink(d.dir / "victim", d.file);
         },
         "is a symlink: remove it"},
        {"dangling symlink", [](const CacheDir& d) { fs::create_symlink(d.dir / "nowhere", d.file); },
         "is a symlink: remove it"},
        {"group-writable directory", [](const CacheDir& d) { ::chmod(d.dir.c_str(), 0770); },
         "writable by group or others (mode 0770): chmod 0700"},
        {"world-writable sticky directory (like /tmp)", [](const CacheDir& d) { ::chmod(d.dir.c_str(), 01777); },
         "writable by group or others (mode 1777)"},
        {"target is a directory", [](const CacheDir& d) { fs::create_directory(d.file); }, "not a regular file"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        CacheDir d;
        row.make(d);
        const auto before = names_in(d.dir);
        auto saved = save_token_cache(d.file.string(), tokens);
        ASSERT_FALSE(saved);
        EXPECT_NE(saved.error().message.find(row.error_mentions), std::string::npos) << saved.error().message;
        EXPECT_EQ(names_in(d.dir), before) << "nothing written, no temporary file left";
        if (fs::exists(d.dir / "victim")) {
            EXPECT_EQ(read_text(d.dir / "victim"), "untouched");
        }
    }
}

TEST(TokenCacheFile, SaveRefusesADirectoryOfAnotherUser) {
    CacheDir d;
    fs::path file;
    if (::geteuid() == 0) {
        ASSERT_EQ(::chown(d.dir.c_str(), 65534, 65534), 0);
        file = d.file;
    } else {
        file = "/token-cache.json";  // "/" is root's, and we are not root
    }
    auto saved = save_token_cache(file.string(), {make_token(imds_key("a"), "t", kNow + 600)});
    ASSERT_FALSE(saved);
    EXPECT_NE(saved.error().message.find("owned by uid"), std::string::npos) << saved.error().message;
    EXPECT_FALSE(fs::exists(file));
}

// A token that is not UTF-8 cannot be written unchanged as JSON: it is left out (fetched anew after a restart), and
// the others are saved.
TEST(TokenCacheFile, TokensThatAreNotUtf8AreLeftOut) {
    CacheDir d;
    ASSERT_TRUE(save_token_cache(d.file.string(), {
                                                      make_token(imds_key("a"), "bad \xff\xfe bytes", kNow + 600),
                                                      make_token(imds_key("b"), "fine", kNow + 600),
                                                  }));
    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded);
    ASSERT_EQ(loaded->tokens.size(), 1u);
    EXPECT_EQ(loaded->tokens[0].token.access_token, "fine");
}

// --- TokenCachePersister, with a real cache in front of a fake upstream ---

struct CountingUpstream : TokenUpstream {
    std::atomic<int> calls{0};
    std::atomic<int64_t>* now_ms;
    explicit CountingUpstream(std::atomic<int64_t>* clock) : now_ms(clock) {}
    asio::awaitable<UpstreamResult> fetch(const TokenKey& key) override {
        const int call = calls++;
        UpstreamResult r;
        r.status = 200;
        r.token = Token{};
        r.token->access_token = "tok-" + std::to_string(call) + "-" + key.client_id;
        r.token->client_id = key.client_id;
        r.token->resource = key.resource;
        r.token->expires_on = now_ms->load() / 1000 + 3600;
        co_return r;
    }
};

// One agent: its cache, its persister wired as the agent wires them, and an io_context the test drives.
struct Agent {
    Agent(const fs::path& file, std::chrono::milliseconds debounce)
        : persister(ioc.get_executor(), file.string(), debounce) {
        upstream = std::make_shared<CountingUpstream>(&now_ms);
        TokenCacheOptions options;
        options.now_ms = [this] { return now_ms.load(); };
        options.jitter_seed = 7;
        options.on_stored = persister.on_stored();
        cache = std::make_unique<CachingTokenProvider>(ioc.get_executor(), upstream, options);
        persister.attach(*cache);
    }

    void run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
        const auto give_up = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < give_up) {
            ioc.run_for(2ms);
            if (ioc.stopped())
                ioc.restart();
        }
    }
    void run_for(std::chrono::milliseconds d) {
        run_until([] { return false; }, d);
    }

    // Starts one get() per key at once and runs until all are answered.
    std::vector<TokenOutcome> get_all(const std::vector<TokenKey>& keys) {
        auto out = std::make_shared<std::vector<TokenOutcome>>();
        auto mu = std::make_shared<std::mutex>();
        for (const auto& key : keys)
            asio::co_spawn(
                ioc,
                [this, key, out, mu]() -> asio::awaitable<void> {
                    auto outcome = co_await cache->get(key, false);
                    std::lock_guard lock(*mu);
                    out->push_back(std::move(outcome));
                },
                asio::detached);
        run_until([&] {
            std::lock_guard lock(*mu);
            return out->size() == keys.size();
        });
        std::lock_guard lock(*mu);
        return *out;
    }

    asio::io_context ioc;  // first: destroyed last
    std::atomic<int64_t> now_ms{kNow * 1000};
    std::shared_ptr<CountingUpstream> upstream;
    std::unique_ptr<CachingTokenProvider> cache;  // made after the persister, destroyed after it too
    TokenCachePersister persister;
};

std::vector<TokenKey> keys(int n) {
    std::vector<TokenKey> out;
    for (int i = 0; i < n; ++i)
        out.push_back(imds_key("id-" + std::to_string(i)));
    return out;
}

TEST(TokenCachePersister, ABurstOfStoresIsWrittenOnceAfterTheDebounce) {
    CacheDir d;
    Agent agent(d.file, 300ms);
    const auto started = std::chrono::steady_clock::now();
    auto answers = agent.get_all(keys(12));
    ASSERT_EQ(answers.size(), 12u);
    ASSERT_EQ(agent.upstream->calls.load(), 12);
    if (std::chrono::steady_clock::now() - started < 250ms) {  // a slow machine may already be past the debounce
        EXPECT_EQ(agent.persister.writes(), 0u) << "written before the debounce";
        EXPECT_FALSE(fs::exists(d.file));
    }

    agent.run_until([&] { return agent.persister.writes() > 0; });
    EXPECT_EQ(agent.persister.writes(), 1u);
    agent.run_for(700ms);  // more than two debounces: nothing else was stored, nothing else is written
    EXPECT_EQ(agent.persister.writes(), 1u);
    EXPECT_EQ(agent.persister.failures(), 0u);
    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->tokens.size(), 12u);

    // The next store is written again, once.
    agent.get_all({imds_key("late")});
    agent.run_until([&] { return agent.persister.writes() == 2; });
    agent.run_for(400ms);
    EXPECT_EQ(agent.persister.writes(), 2u);
    EXPECT_EQ(load_token_cache(d.file.string(), kNow)->tokens.size(), 13u);
}

TEST(TokenCachePersister, FlushWritesAtOnceAndTheDebouncedWriteThenHasNothingToDo) {
    CacheDir d;
    Agent agent(d.file, 10s);  // the timer never fires during this test
    agent.get_all(keys(3));
    EXPECT_EQ(agent.persister.writes(), 0u);

    auto flushed = agent.persister.flush();
    ASSERT_TRUE(flushed) << flushed.error().message;
    EXPECT_EQ(agent.persister.writes(), 1u);
    EXPECT_EQ(mode_of(d.file), 0600u);
    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->tokens.size(), 3u);

    ASSERT_TRUE(agent.persister.flush());  // flush always writes: the shutdown and hand-over path
    EXPECT_EQ(agent.persister.writes(), 2u);
}

TEST(TokenCachePersister, FlushWithNothingPendingSkipsTheTimer) {
    CacheDir d;
    Agent agent(d.file, 100ms);
    agent.get_all(keys(2));
    ASSERT_TRUE(agent.persister.flush());
    EXPECT_EQ(agent.persister.writes(), 1u);
    agent.run_for(400ms);  // the debounce armed by the stores finds them written already
    EXPECT_EQ(agent.persister.writes(), 1u);
}

TEST(TokenCachePersister, ForgottenPodsAreWrittenOut) {
    CacheDir d;
    Agent agent(d.file, 50ms);
    agent.get_all({imds_key("a"), federated_key()});
    agent.run_until([&] { return agent.persister.writes() == 1; });
    ASSERT_EQ(load_token_cache(d.file.string(), kNow)->tokens.size(), 2u);

    EXPECT_EQ(agent.cache->forget([](const TokenKey& k) { return k.entra.has_value(); }), 1u);
    agent.run_until([&] { return agent.persister.writes() == 2; });
    auto loaded = load_token_cache(d.file.string(), kNow);
    ASSERT_TRUE(loaded);
    ASSERT_EQ(loaded->tokens.size(), 1u);
    EXPECT_EQ(loaded->tokens[0].key, imds_key("a"));
}

TEST(TokenCachePersister, FailuresAreCountedAndTheNextGoodWriteRecovers) {
    CacheDir d;
    Agent agent(d.file, 10s);
    agent.get_all(keys(1));
    ::chmod(d.dir.c_str(), 0775);
    EXPECT_FALSE(agent.persister.flush());
    EXPECT_FALSE(agent.persister.flush());
    EXPECT_EQ(agent.persister.failures(), 2u);
    EXPECT_EQ(agent.persister.writes(), 0u);
    EXPECT_FALSE(fs::exists(d.file));

    ::chmod(d.dir.c_str(), 0700);
    EXPECT_TRUE(agent.persister.flush());
    EXPECT_EQ(agent.persister.writes(), 1u);
    EXPECT_EQ(agent.persister.failures(), 2u);
}

TEST(TokenCachePersister, TheHookOutlivesThePersister) {
    CacheDir d;
    std::function<void()> hook;
    {
        asio::io_context ioc;
        TokenCachePersister persister(ioc.get_executor(), d.file.string(), 1ms);
        hook = persister.on_stored();
        hook();  // not attached yet: remembered, not written
        ioc.run_for(20ms);
        EXPECT_EQ(persister.writes(), 0u);
    }
    hook();  // the persister is gone: nothing happens
    EXPECT_FALSE(fs::exists(d.file));
}

// The whole point: a restarted agent seeded from the file serves every still-valid token without an upstream call.
TEST(TokenCachePersister, ARestartedAgentServesTheSavedTokensWithoutUpstreamCalls) {
    CacheDir d;
    std::vector<TokenKey> all = keys(5);
    all.push_back(federated_key());
    all.push_back(secret_key());
    std::vector<std::string> served_before;
    {
        Agent old_agent(d.file, 1s);
        for (const auto& o : old_agent.get_all(all))
            served_before.push_back(o.token ? o.token->access_token : "<none>");
        ASSERT_TRUE(old_agent.persister.flush());  // at SIGTERM
    }

    Agent new_agent(d.file, 1s);
    new_agent.now_ms += 120'000;  // two minutes later
    auto loaded = load_token_cache(d.file.string(), new_agent.now_ms.load() / 1000);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(new_agent.cache->seed(std::move(loaded->tokens)), all.size());
    std::vector<std::string> served_after;
    for (const auto& o : new_agent.get_all(all)) {
        EXPECT_TRUE(o.cache_hit);
        served_after.push_back(o.token ? o.token->access_token : "<none>");
    }
    EXPECT_EQ(new_agent.upstream->calls.load(), 0);
    std::sort(served_before.begin(), served_before.end());
    std::sort(served_after.begin(), served_after.end());
    EXPECT_EQ(served_after, served_before);
}

}  // namespace
}  // namespace podid
