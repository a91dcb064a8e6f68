// How many file descriptors chipd needs for a spec, estimated from the spec
// alone (README.md, "File descriptors"), for `chipd --check` and the warning
// at start. Each worker holds in chipd the read end of a pipe per captured
// stream (`inherit` or a file; stdout and stderr to the same file share one)
// and, for `ready: notify`, its notify socket; each log file is open once,
// whoever writes to it; chipd itself needs a few dozen more. What clients add
// at run time (connections, pidfds of joined processes) is not counted.
#pragma once

#include <cstddef>
#include <string>

#include "spec/spec.hpp"

namespace chip::daemon {

struct FdEstimate {
    std::size_t workers = 0;    // pool instances counted
    std::size_t pipes = 0;      // read ends of output pipes
    std::size_t notify = 0;     // notify sockets
    std::size_t log_files = 0;  // distinct log files
    std::size_t total = 0;      // all of it, chipd's own included
};

// chipd's own descriptors: the loop, signals, the control socket and its
// spare, /dev/null, registries, a spawn's passing pipes.
inline constexpr std::size_t kChipdOwnFds = 64;

// The RLIMIT_NOFILE chipd asks for at start (os::raise_fd_limit): the soft
// limit goes up to the hard one, and the hard one up to this when privileged.
inline constexpr std::size_t kFdLimitWanted = std::size_t{1} << 20;

FdEstimate estimate_fds(const spec::Spec &spec);

// The warning (without "chipd: warning: ") when ESTIMATE does not fit LIMIT
// (RLIMIT_NOFILE), naming the spec FILE; empty when it fits.
std::string fd_warning(const std::string &file, const FdEstimate &estimate, std::size_t limit);

}  // namespace chip::daemon
