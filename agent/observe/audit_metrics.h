// The audit log's own health for Prometheus: lines it had to drop because the disk did not keep up.
// Register with Metrics::add_collectable(); it reads AuditLog::dropped_lines() at scrape time.
#pragma once

#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "observe/audit.h"

namespace podid {

class AuditMetrics : public prometheus::Collectable {
public:
    explicit AuditMetrics(const AuditLog& log) : log_(log) {}
    std::vector<prometheus::MetricFamily> Collect() const override;  // podid_audit_lines_dropped_total

private:
    const AuditLog& log_;
};

}  // namespace podid
