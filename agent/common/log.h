// Operator log lines on stderr: "podid: level=info msg=\"...\" key=value ...". One line per event,
// written whole (no interleaving between threads).
#pragma once

#include <string>
#include <string_view>

namespace podid {

enum class LogLevel { debug, info, warn, error };

void log_line(LogLevel level, std::string_view message, std::string_view fields = {});
inline void log_info(std::string_view m, std::string_view f = {}) { log_line(LogLevel::info, m, f); }
inline void log_warn(std::string_view m, std::string_view f = {}) { log_line(LogLevel::warn, m, f); }
inline void log_error(std::string_view m, std::string_view f = {}) { log_line(LogLevel::error, m, f); }

// key="value" with quotes and backslashes escaped.
std::string kv(std::string_view key, std::string_view value);

}  // namespace podid
