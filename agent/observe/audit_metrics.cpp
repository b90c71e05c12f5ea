#include "observe/audit_metrics.h"

#include "observe/metric_family.h"

namespace podid {

std::vector<prometheus::MetricFamily> AuditMetrics::Collect() const {
    auto f = metric_family("podid_audit_lines_dropped_total",
                           "Audit log lines dropped because the audit log's queue was full (the disk did not keep "
                           "up) or a write failed.",
                           prometheus::MetricType::Counter);
    add_sample(f, {}, static_cast<double>(log_.dropped_lines()));
    return {std::move(f)};
}

}  // namespace podid
