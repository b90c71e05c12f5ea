#include "observe/audit_metrics.h"

namespace podid {

std::vector<prometheus::MetricFamily> AuditMetrics::Collect() const {
    prometheus::MetricFamily f;
    f.name = "podid_audit_lines_dropped_total";
    f.help =
        "Audit log lines dropped because the audit log's queue was full (the disk did not keep up) or a "
        "write failed.";
    f.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric m;
    m.counter.value = static_cast<double>(log_.dropped_lines());
    f.metric.push_back(std::move(m));
    return {std::move(f)};
}

}  // namespace podid
