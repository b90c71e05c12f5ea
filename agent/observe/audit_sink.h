// Which requests the audit log records: every identity request (token, /host/token), and any other request only
// when it was denied.
#pragma once

#include "http/request_record.h"
#include "observe/audit.h"

namespace podid {

bool audited(const AuditRecord& record);

class AuditSink : public RequestSink {
public:
    explicit AuditSink(AuditLog& log) : log_(log) {}
    void on_request(const AuditRecord& record) override {
        if (audited(record))
            log_.write(record);
    }

private:
    AuditLog& log_;
};

}  // namespace podid
