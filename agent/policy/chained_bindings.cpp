#include "policy/chained_bindings.h"

namespace podid {

Binding ChainedBindings::bindings_for(const Caller& caller) const {
    Binding b = first_.bindings_for(caller);
    return b.kind != BindingKind::none ? b : second_.bindings_for(caller);
}

}  // namespace podid
