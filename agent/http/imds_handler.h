// The IMDS surface as pure functions: a request, who is calling and what they are bound to go in;
// either a finished response or a plan for the session (fetch a token, forward upstream) comes out.
// No sockets, clocks or globals in here: sessions (agent/http/session.cpp) do the I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "caller/caller.h"
#include "common/reason.h"
#include "http/request_record.h"
#include "http/request_target.h"
#include "policy/binding.h"
#include "token/token.h"

namespace podid {

// Whether the caller of a /host/token request may name another pod (the binding stage's answer).
enum class HostTokenAccess {
    not_served,  // no /host/token authority (standalone mode)
    refused,     // no kernel origin, or not among --host-token-callers
    allowed,
};

struct HandlerOptions {
    bool block_instance_metadata = false;  // --block-instance-metadata
    bool loopback_listener = false;        // request arrived on 127.0.0.1 (only there /host/token lives)
    HostTokenAccess host_token_access = HostTokenAccess::not_served;
};

// Answer now (errors, probes, blocked paths).
struct Reply {
    HttpResponse response;
    Reason reason;
};

// Fetch a token for `key` (as identity `identity`), then call render_token().
struct FetchToken {
    TokenKey key;
    Identity identity;  // the bound identity chosen (empty for node identity passthrough)
    bool bypass_cache = false;
    bool host_token_shape = false;  // answer in /host/token's {"token":{...},"clientid":...} shape
    Reason reason;                  // why it is allowed (bound, node identity, ...)
};

// Forward the request unchanged to the node's IMDS (non-identity metadata paths, NMI behaviour).
struct Forward {
    Reason reason;
};

using Plan = std::variant<Reply, FetchToken, Forward>;

struct Classified {
    RequestKind kind = RequestKind::unknown;
    std::string path;                // normalised path
    std::string resource;            // decoded resource, if any
    std::string requested_identity;  // "client_id=..." / "msi_res_id=..." / "object_id=..." or ""
    // The parsed query of token, probe and host_token requests, kept so plan_request does not parse it again;
    // empty for other kinds (plan_request then parses it itself if it needs it).
    std::optional<Result<ImdsQuery>> query;
};

// Looks at method, target and headers only.
Classified classify(const HttpRequest& req);

// What the session must look up before plan_request can decide: the caller (always, except for the agent's own
// self-check, which carries its answer in the kernel's origin record), whether that lookup may wait for the pod
// directory (identity requests, never probes), and whose binding the decision needs.
enum class BindingNeeded { none, caller, named_pod };
struct Lookups {
    bool resolve_caller = true;
    bool may_wait = false;
    BindingNeeded binding = BindingNeeded::none;
};
Lookups lookups_for(const HttpRequest& req, const Classified& what, bool loopback_listener);

// The decision for an IMDS token request (or any other path) from `caller` bound as `binding` (the caller's own, or
// for /host/token the named pod's). `binding` is ignored for paths that need no identity.
Plan plan_request(const HttpRequest& req, const Classified& what, const Caller& caller, const Binding& binding,
                  const HandlerOptions& options);

// Turn the token outcome into the client's response; `now` is epoch seconds (expires_in is
// recomputed at serve time).
HttpResponse render_token(const HttpRequest& req, const FetchToken& plan, const TokenOutcome& outcome, int64_t now);

// IMDS-shaped JSON error response.
HttpResponse imds_error(const HttpRequest& req, unsigned status, const std::string& error,
                        const std::string& description);

}  // namespace podid
