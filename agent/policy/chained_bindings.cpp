#include "policy/chained_bindings.h"

namespace podid {

Binding ChainedBindings::bindings_for(const Caller& caller) const {
    Binding b = first_.bindings_for(caller);
    return b.kind != BindingKind::none ? b : second_.bindings_for(caller);
}

BindingTrace ChainedBindings::trace(const Caller& caller) const {
    BindingTrace t = first_.trace(caller);
    if (t.binding.kind != BindingKind::none) {
        t.steps.push_back(second_name_ + ": not consulted (" + first_name_ + " is consulted first and matched)");
        return t;
    }
    BindingTrace second = second_.trace(caller);
    for (auto& step : second.steps)
        t.steps.push_back(std::move(step));
    t.binding = std::move(second.binding);
    t.decided_by = std::move(second.decided_by);
    t.unsupported = std::move(second.unsupported);
    return t;
}

}  // namespace podid
