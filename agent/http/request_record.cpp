#include "http/request_record.h"

namespace podid {

const char* to_string(RequestKind kind) {
    switch (kind) {
    case RequestKind::token: return "token";
    case RequestKind::probe: return "probe";
    case RequestKind::host_token: return "host_token";
    case RequestKind::instance_metadata: return "instance_metadata";
    case RequestKind::other_metadata: return "other_metadata";
    case RequestKind::health: return "health";
    case RequestKind::unknown: return "unknown";
    case RequestKind::selfcheck: return "selfcheck";
    }
    return "unknown";
}

}  // namespace podid
