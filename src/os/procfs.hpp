// What /proc says about a process, for status: its memory, CPU time, name,
// and the processes of a process group. Each read is one small file; a
// process that is gone gives nullopt (or is left out).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chip::os {

// Resident memory of PID in bytes (/proc/PID/statm).
std::optional<std::uint64_t> process_rss_bytes(pid_t pid);
// User plus system CPU time of PID in seconds (/proc/PID/stat).
std::optional<double> process_cpu_seconds(pid_t pid);
// PID's command line as it shows it now (/proc/PID/cmdline, arguments joined
// by spaces), at most LIMIT bytes; its name (/proc/PID/comm) when that is empty.
std::string process_command(pid_t pid, std::size_t limit = 200);
// The processes of process group PGID, in pid order (a scan of /proc).
std::vector<pid_t> process_group_members(pid_t pgid);

}  // namespace chip::os
