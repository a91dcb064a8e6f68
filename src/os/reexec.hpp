// The system calls of chipd's re-exec (README.md, "Upgrading chipd in
// place"): where its program is, asking a program which hand-off versions it
// reads, the memfd that carries the state, file descriptors kept across the
// exec (and every other one closed after it), the signal mask, and the exec.
// Nothing here knows what the state holds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::os {

// The program this process was started as: ARGV0 made absolute from the
// current folder when it holds a '/', else looked up in $PATH like execvp;
// /proc/self/exe when neither finds it. Not resolved through symlinks: a
// re-exec runs what the path names then.
std::string program_path(const char *argv0);

// What a short-lived program did (run_program).
struct RunOutcome {
    int spawn_error = 0;     // errno of a failed start (ENOENT, EACCES, ...); then nothing else
    bool timed_out = false;  // killed after the deadline
    bool exited = false;     // else killed by a signal
    int status = 0;          // exit code, or the signal
    std::string output;      // stdout and stderr together, at most LIMIT bytes
};
// Runs PATH with ARGS (argv[0] is PATH) as this user, stdin from /dev/null,
// and waits for it at most TIMEOUT (then SIGKILL). Blocks the caller.
RunOutcome run_program(const std::string &path, const std::vector<std::string> &args,
                       std::chrono::milliseconds timeout, std::size_t limit = 4096);

// A new memfd holding DATA, sealed against change, NOT close-on-exec.
Result<UniqueFd> memfd_holding(std::string_view data);
// Everything in FD from offset 0 (at most LIMIT bytes; E2BIG beyond).
Result<std::string> read_whole(int fd, std::size_t limit);

// Sets or clears FD's close-on-exec flag.
Result<void> set_cloexec(int fd, bool on);
// Whether FD is an open file descriptor.
bool fd_open(int fd);
// Closes every file descriptor from 3 up that is not in KEEP.
void close_fds_except(std::vector<int> keep);
// How many file descriptors this process has open.
std::size_t open_fd_count();

// Signal masks as bit sets: bit N-1 for signal N (1 to 64).
std::uint64_t signal_mask();
void set_signal_mask(std::uint64_t mask);
// Blocks every signal; returns the mask before.
std::uint64_t block_all_signals();

// execv(PATH, ARGV) with this process's environment. Returns only on failure,
// with its errno.
int exec_program(const std::string &path, const std::vector<std::string> &argv);

}  // namespace chip::os
