#include "caller/kubelet_cgroup.h"

#include <string>
#include <vector>

namespace podid {
namespace {

enum class Driver { systemd, cgroupfs };

bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_hex(char c) { return is_hex_lower(c) || (c >= 'A' && c <= 'F'); }

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A pod UID in 8-4-4-4-12 hex form with `sep` between the groups (systemd unit names use '_' since '-' nests
// slices); returned with dashes, lower case.
std::optional<std::string> parse_uid(std::string_view text, char sep) {
    if (text.size() != 36)
        return std::nullopt;
    std::string uid(36, '-');
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool separator_pos = i == 8 || i == 13 || i == 18 || i == 23;
        char c = text[i];
        if (separator_pos) {
            if (c != sep)
                return std::nullopt;
            continue;
        }
        if (!is_hex(c))
            return std::nullopt;
        uid[i] = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return uid;
}

// Runtimes write container ids as 64 lower-case hex digits; anything else (conmon, truncated ids) is not one.
bool is_container_id(std::string_view id) {
    if (id.size() != 64)
        return false;
    for (char c : id)
        if (!is_hex_lower(c))
            return false;
    return true;
}

struct RuntimePrefix {
    std::string_view prefix;
    std::string_view runtime;
};
constexpr RuntimePrefix kRuntimes[] = {
    {"cri-containerd-", "containerd"},
    {"crio-", "crio"},
    {"docker-", "docker"},
};

// "<runtime>-<id>" (systemd driver, with ".scope"; CRI-O on cgroupfs, without) or a bare id (cgroupfs).
bool parse_container(std::string_view seg, Driver driver, PodRef& ref) {
    if (driver == Driver::systemd) {
        if (!ends_with(seg, ".scope"))
            return false;
        seg.remove_suffix(6);
    }
    // CRI-O's monitor process gets "crio-conmon-<id>.scope" next to the container: it is not pod code.
    if (starts_with(seg, "crio-conmon-"))
        return false;
    for (const auto& r : kRuntimes) {
        if (starts_with(seg, r.prefix) && is_container_id(seg.substr(r.prefix.size()))) {
            ref.runtime = std::string(r.runtime);
            ref.container_id = std::string(seg.substr(r.prefix.size()));
            return true;
        }
    }
    if (driver == Driver::cgroupfs && is_container_id(seg)) {
        ref.runtime.clear();
        ref.container_id = std::string(seg);
        return true;
    }
    return false;
}

// Parses the segments below the kubepods cgroup.
std::optional<PodRef> parse_below_kubepods(const std::vector<std::string_view>& segs, std::size_t i, Driver driver) {
    if (i >= segs.size())
        return std::nullopt;
    PodRef ref;
    ref.qos = "guaranteed";
    std::string_view pod_prefix;
    std::string_view pod_suffix;
    char uid_sep = '-';
    if (driver == Driver::systemd) {
        pod_prefix = "kubepods-pod";
        pod_suffix = ".slice";
        uid_sep = '_';
        if (segs[i] == "kubepods-burstable.slice") {
            ref.qos = "burstable";
            pod_prefix = "kubepods-burstable-pod";
            ++i;
        } else if (segs[i] == "kubepods-besteffort.slice") {
            ref.qos = "besteffort";
            pod_prefix = "kubepods-besteffort-pod";
            ++i;
        }
    } else {
        pod_prefix = "pod";
        pod_suffix = "";
        uid_sep = '-';
        if (segs[i] == "burstable" || segs[i] == "besteffort") {
            ref.qos = std::string(segs[i]);
            ++i;
        }
    }
    if (i >= segs.size())
        return std::nullopt;
    std::string_view pod = segs[i];
    if (!starts_with(pod, pod_prefix) || !ends_with(pod, pod_suffix) ||
        pod.size() < pod_prefix.size() + pod_suffix.size())
        return std::nullopt;
    auto uid = parse_uid(pod.substr(pod_prefix.size(), pod.size() - pod_prefix.size() - pod_suffix.size()), uid_sep);
    if (!uid)
        return std::nullopt;
    ref.uid = std::move(*uid);
    ++i;
    if (i == segs.size())
        return ref;  // the pod-level cgroup
    if (!parse_container(segs[i], driver, ref))
        return std::nullopt;
    // Deeper segments are the container's own delegated cgroups: still that container.
    return ref;
}

// Splits "/a/b/c" into its segments; nullopt for relative paths and empty interior segments ("//"), which the
// kernel never reports. One trailing '/' is tolerated.
std::optional<std::vector<std::string_view>> split_path(std::string_view path) {
    if (path.empty() || path.front() != '/')
        return std::nullopt;
    if (path.size() > 1 && path.back() == '/')
        path.remove_suffix(1);
    std::vector<std::string_view> segs;
    if (path == "/")
        return segs;
    std::size_t pos = 1;
    while (pos <= path.size()) {
        std::size_t end = path.find('/', pos);
        if (end == std::string_view::npos)
            end = path.size();
        if (end == pos)
            return std::nullopt;
        segs.push_back(path.substr(pos, end - pos));
        pos = end + 1;
    }
    return segs;
}

}  // namespace

std::optional<PodRef> parse_kubelet_cgroup(std::string_view path) {
    auto segs = split_path(path);
    if (!segs)
        return std::nullopt;
    for (std::size_t i = 0; i < segs->size(); ++i) {
        // The first kubepods segment decides: one deeper down lives inside some container's subtree.
        if ((*segs)[i] == "kubepods.slice")
            return parse_below_kubepods(*segs, i + 1, Driver::systemd);
        if ((*segs)[i] == "kubepods")
            return parse_below_kubepods(*segs, i + 1, Driver::cgroupfs);
    }
    return std::nullopt;
}

std::optional<PodRef> parse_kubelet_cgroup(std::string_view path, std::string_view kubepods_root) {
    auto root = split_path(kubepods_root.empty() ? std::string_view("/") : kubepods_root);
    auto segs = split_path(path);
    if (!root || !segs || segs->size() <= root->size())
        return std::nullopt;
    for (std::size_t i = 0; i < root->size(); ++i)
        if ((*segs)[i] != (*root)[i])
            return std::nullopt;
    std::size_t below = root->size();
    Driver driver;
    if (!root->empty() && root->back() == "kubepods.slice") {
        driver = Driver::systemd;
    } else if (!root->empty() && root->back() == "kubepods") {
        driver = Driver::cgroupfs;
    } else {
        // The root has another name (a cgroup namespace rooted at kubepods shows it as "/"): the children tell.
        driver = starts_with((*segs)[below], "kubepods-") ? Driver::systemd : Driver::cgroupfs;
    }
    return parse_below_kubepods(*segs, below, driver);
}

}  // namespace podid
