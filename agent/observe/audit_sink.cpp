#include "observe/audit_sink.h"

namespace podid {

bool audited(const AuditRecord& r) {
    return r.kind == RequestKind::token || r.kind == RequestKind::host_token || is_denial(r.reason);
}

}  // namespace podid
