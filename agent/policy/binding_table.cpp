#include "policy/binding_table.h"

#include "policy/cgroup_glob.h"

namespace podid {

int BindingTable::first_match(std::string_view cgroup_path) const {
    auto segs = split_cgroup_path(cgroup_path);
    if (!segs)
        return kNoEntry;
    for (std::size_t i = 0; i < entries_.size(); ++i)
        if (glob_matches_segments_or_ancestor(entries_[i].segments, *segs))
            return static_cast<int>(i);
    return kNoEntry;
}

Binding BindingTable::match(std::string_view cgroup_path) const {
    // Bounded: paths of removed pods would otherwise accumulate; starting over costs one glob match per pod.
    constexpr std::size_t kMemoLimit = 16384;
    int index = kNoEntry;
    {
        std::lock_guard lock(memo_mu_);
        auto it = memo_.find(cgroup_path);
        if (it != memo_.end()) {
            index = it->second;
        } else {
            index = first_match(cgroup_path);
            if (memo_.size() >= kMemoLimit)
                memo_.clear();
            memo_.emplace(std::string(cgroup_path), index);
        }
    }
    Binding binding;
    if (index == kNoEntry)
        return binding;
    const Entry& entry = entries_[static_cast<std::size_t>(index)];
    binding.kind = BindingKind::static_file;
    binding.identities = entry.identities;
    binding.explanation = "bindings entry " + std::to_string(index + 1) + " (" + entry.glob + ")";
    binding.name = entry.name;
    return binding;
}

}  // namespace podid
