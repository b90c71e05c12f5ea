// Who may call /host/token, the NMI endpoint through which the Secrets Store CSI driver's Azure provider asks for
// *another* pod's token (headers podns/podname). NMI answered anyone on 127.0.0.1, so any node process or
// hostNetwork pod could read every pod's tokens; podid answers only the callers named by --host-token-callers.
//
// Flag value: comma-separated entries, spaces around entries ignored:
//   <namespace>                   any pod in that namespace            e.g. kube-system (the default)
//   <namespace>/<serviceaccount>  pods running as that service account, e.g.
//                                 kube-system/csi-secrets-store-provider-azure
//   host                          node processes: a known cgroup that is not a kubelet pod cgroup
//   none                          nobody (only on its own): /host/token is refused to every caller
// Because "host" is reserved, a namespace literally named "host" can only be named with a service account
// ("host/<serviceaccount>").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "caller/caller.h"
#include "common/result.h"

namespace podid {

inline constexpr std::string_view kDefaultHostTokenCallers = "kube-system";

class HostTokenPolicy {
public:
    struct Rule {
        std::string ns;
        std::string service_account;  // empty: any service account of the namespace
        bool operator==(const Rule&) const = default;
    };

    // Allows nobody.
    HostTokenPolicy() = default;

    // Parses a --host-token-callers value. Errors name the entry (1-based) and say what is wrong; never throws.
    static Result<HostTokenPolicy> parse(std::string_view spec);

    // True when `caller` has a kernel origin record and either its pod is known and matches a rule (a pod's empty
    // service account counts as "default"), or it is a node process and the policy contains "host". A pod-shaped
    // cgroup whose pod is not known yet is denied even with "host": it is a pod, just not a nameable one.
    bool allows(const Caller& caller) const;

    const std::vector<Rule>& rules() const { return rules_; }
    bool allows_host() const { return host_; }

    // Canonical flag value ("none" when nobody), for the startup log.
    std::string to_string() const;

private:
    std::vector<Rule> rules_;
    bool host_ = false;
};

}  // namespace podid
