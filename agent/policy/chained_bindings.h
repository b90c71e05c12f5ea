// How the binding sources combine: the static file first (an operator's explicit entry wins), then the Kubernetes
// bindings. Both the request path and `podidctl explain` ask this one object.
#pragma once

#include <string>

#include "policy/binding.h"

namespace podid {

class ChainedBindings : public BindingSource {
public:
    // The names complete `podidctl explain`'s step for the second source when the first one matched.
    ChainedBindings(const BindingSource& first, const BindingSource& second,
                    std::string first_name = "the bindings file", std::string second_name = "Kubernetes bindings")
        : first_(first), second_(second), first_name_(std::move(first_name)), second_name_(std::move(second_name)) {}
    Binding bindings_for(const Caller& caller) const override;
    bool ready() const override { return first_.ready() && second_.ready(); }
    BindingTrace trace(const Caller& caller) const override;

private:
    const BindingSource& first_;
    const BindingSource& second_;
    std::string first_name_;
    std::string second_name_;
};

// Without --bindings and outside Kubernetes nobody is bound: every token request gets IMDS's "Identity not found".
class NoBindings : public BindingSource {
public:
    Binding bindings_for(const Caller&) const override { return {}; }
    bool ready() const override { return true; }
    BindingTrace trace(const Caller&) const override {
        BindingTrace t;
        t.steps.emplace_back("no bindings source configured (--bindings or Kubernetes mode): nobody is bound");
        return t;
    }
};

}  // namespace podid
