#include "proc_usage.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace podid::bench {

ProcUsage read_proc_usage(pid_t pid) {
    ProcUsage u;
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream status(dir + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0)
            u.rss_mib = std::atof(line.c_str() + 6) / 1024;  // kB
        else if (line.rfind("VmHWM:", 0) == 0)
            u.hwm_mib = std::atof(line.c_str() + 6) / 1024;
    }
    std::ifstream stat(dir + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // The command field may hold spaces and parentheses: fields are counted from the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos)
        return u;
    std::istringstream fields(text.substr(close + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i) {  // field 3 is the state
        if (i == 14)
            utime = std::stoull(f);
        if (i == 15) {
            stime = std::stoull(f);
            break;
        }
    }
    u.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    u.ok = u.rss_mib > 0;
    return u;
}

}  // namespace podid::bench
