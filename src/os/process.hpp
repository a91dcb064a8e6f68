// Process system calls for chipd: spawning workers (fork/exec through a
// CLONE_VFORK child that reports exec failures), reaping, signalling process
// groups, subreaping, pidfds and /proc ancestry. Nothing here knows the tree.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace chip::os {

// Everything a child needs between clone and exec, prepared by the parent so
// that the child makes only async-signal-safe calls.
struct SpawnPlan {
    const char *const *candidates = nullptr;  // paths to execve in turn (PATH search)
    std::size_t candidate_count = 0;
    char *const *argv = nullptr;  // NULL-terminated
    char *const *envp = nullptr;  // NULL-terminated
    const char *cwd = nullptr;    // chdir there (nullptr: stay)
    int fd_stdin = -1;            // dup2'ed to 0, 1, 2 in the child
    int fd_stdout = -1;
    int fd_stderr = -1;
    bool set_ids = false;  // setgroups/setgid/setuid
    uid_t uid = 0;
    gid_t gid = 0;
    const gid_t *groups = nullptr;
    std::size_t group_count = 0;
    int parent_death_signal = 0;  // PR_SET_PDEATHSIG
};

// Starts a process from PLAN as the leader of a new session and process group.
// Returns once the child has exec'd (its pid) or failed (the errno of chdir,
// setuid, execve, ...; the failed child is already reaped). Not reentrant.
Result<pid_t> spawn(const SpawnPlan &plan);

// Reaps every exited child (waitpid(-1, WNOHANG) until nothing is left) and
// calls FN(pid, wait_status) for each.
void reap_children(const std::function<void(pid_t, int)> &fn);

// kill(-PGID, SIG); a group that no longer exists is not an error.
void kill_group(pid_t pgid, int sig);
// kill(PID, SIG); returns 0 or -errno.
int kill_pid(pid_t pid, int sig);

// Makes chipd a child subreaper (orphans below it are reparented to it).
void become_subreaper();

// pidfd_open(2); -errno on failure.
int pidfd_open(pid_t pid);
// True while the process behind PIDFD has not exited.
bool pidfd_alive(int pidfd);

// The parent pid of PID from /proc/PID/stat; nullopt if PID does not exist.
std::optional<pid_t> parent_of(pid_t pid);
// Real and effective uid of PID from /proc/PID/status.
std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid);

// The supplementary groups of user NAME with primary group GID.
std::vector<gid_t> groups_of_user(const std::string &name, gid_t gid);

// Raises RLIMIT_NOFILE's soft limit to the hard limit (and the hard limit to
// WANT when privileged). Returns the new soft limit.
std::size_t raise_fd_limit(std::size_t want);

}  // namespace chip::os
