#include "policy/host_token_policy.h"

#include <algorithm>

namespace podid {
namespace {

constexpr std::string_view kHost = "host";
constexpr std::string_view kNone = "none";

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Kubernetes' own rules, so a name that cannot exist is reported instead of silently matching nothing.
// Namespaces are DNS-1123 labels.
bool valid_namespace(std::string_view s) {
    if (s.empty() || s.size() > 63 || !lower_alnum(s.front()) || !lower_alnum(s.back())) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) { return lower_alnum(c) || c == '-'; });
}

// Service account names are DNS-1123 subdomains.
bool valid_service_account(std::string_view s) {
    if (s.empty() || s.size() > 253 || !lower_alnum(s.front()) || !lower_alnum(s.back())) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) { return lower_alnum(c) || c == '-' || c == '.'; });
}

Error entry_error(size_t index, std::string_view entry, const std::string& why) {
    return make_error("--host-token-callers entry " + std::to_string(index) + " \"" + std::string(entry) +
                      "\": " + why);
}

}  // namespace

Result<HostTokenPolicy> HostTokenPolicy::parse(std::string_view spec) {
    if (trim(spec).empty()) {
        return make_error(
            "--host-token-callers is empty: name namespaces, namespace/serviceaccount pairs, "
            "\"host\", or \"none\" to refuse /host/token to everyone");
    }
    HostTokenPolicy policy;
    bool none = false;
    size_t count = 0;
    size_t start = 0;
    while (start <= spec.size()) {
        size_t comma = spec.find(',', start);
        size_t end = comma == std::string_view::npos ? spec.size() : comma;
        std::string_view entry = trim(spec.substr(start, end - start));
        start = end + 1;  // past the end after the last entry, which ends the loop
        ++count;
        if (entry.empty()) {
            return entry_error(count, entry, "is empty (a stray comma?)");
        }
        if (entry == kNone) {
            none = true;
            continue;
        }
        if (entry == kHost) {
            policy.host_ = true;
            continue;
        }
        if (entry.find('*') != std::string_view::npos) {
            return entry_error(count, entry, "wildcards are not accepted; name each namespace");
        }
        Rule rule;
        size_t slash = entry.find('/');
        std::string_view ns = entry.substr(0, slash);
        if (slash != std::string_view::npos) {
            std::string_view sa = entry.substr(slash + 1);
            if (sa.find('/') != std::string_view::npos) {
                return entry_error(count, entry, "expected namespace or namespace/serviceaccount");
            }
            if (!valid_service_account(sa)) {
                return entry_error(count, entry,
                                   "\"" + std::string(sa) +
                                       "\" is not a valid service account name (lower-case letters, digits, '-' "
                                       "and '.', starting and ending with a letter or digit)");
            }
            rule.service_account = std::string(sa);
        }
        if (!valid_namespace(ns)) {
            return entry_error(count, entry,
                               "\"" + std::string(ns) +
                                   "\" is not a valid namespace name (at most 63 lower-case letters, digits and "
                                   "'-', starting and ending with a letter or digit)");
        }
        rule.ns = std::string(ns);
        // A repeated entry means the same thing twice: harmless, kept once.
        if (std::find(policy.rules_.begin(), policy.rules_.end(), rule) == policy.rules_.end()) {
            policy.rules_.push_back(std::move(rule));
        }
    }
    if (none && count > 1) {
        return make_error(
            "--host-token-callers: \"none\" refuses every caller and cannot be combined with other "
            "entries");
    }
    return policy;
}

bool HostTokenPolicy::allows(const Caller& caller) const {
    // Without the kernel's record of who connected there is nobody to authorise.
    if (!caller.origin) {
        return false;
    }
    if (caller.pod) {
        const std::string& sa = caller.pod->service_account.empty() ? "default" : caller.pod->service_account;
        return std::any_of(rules_.begin(), rules_.end(), [&](const Rule& rule) {
            return rule.ns == caller.pod->ns && (rule.service_account.empty() || rule.service_account == sa);
        });
    }
    // A node process is one whose cgroup we know and which is not shaped like a kubelet pod's.
    return host_ && !caller.pod_ref && !caller.cgroup_path.empty();
}

std::string HostTokenPolicy::to_string() const {
    std::string out;
    for (const Rule& rule : rules_) {
        out += (out.empty() ? "" : ",") + rule.ns + (rule.service_account.empty() ? "" : "/" + rule.service_account);
    }
    if (host_) {
        out += (out.empty() ? "" : ",") + std::string(kHost);
    }
    return out.empty() ? std::string(kNone) : out;
}

}  // namespace podid
