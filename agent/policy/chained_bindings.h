// How the binding sources combine: the static file first (an operator's explicit entry wins), then the Kubernetes
// bindings. Both the request path and `podidctl explain` ask this one object.
#pragma once

#include "policy/binding.h"

namespace podid {

class ChainedBindings : public BindingSource {
public:
    ChainedBindings(const BindingSource& first, const BindingSource& second) : first_(first), second_(second) {}
    Binding bindings_for(const Caller& caller) const override;
    bool ready() const override { return first_.ready() && second_.ready(); }

private:
    const BindingSource& first_;
    const BindingSource& second_;
};

// Without --bindings and outside Kubernetes nobody is bound: every token request gets IMDS's "Identity not found".
class NoBindings : public BindingSource {
public:
    Binding bindings_for(const Caller&) const override { return {}; }
    bool ready() const override { return true; }
};

}  // namespace podid
