// Process system calls for chipd: spawning workers (fork/exec through a
// CLONE_VFORK child that reports which step failed), reaping and decoding wait
// statuses, signalling process groups, subreaping, pidfds, /proc ancestry and
// chipd's own ids. Nothing here knows the tree, nor words messages for people.
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
    int cgroup = -1;              // a cgroup's folder, open: the child starts in it
    // RLIMIT_NOFILE's soft limit for the worker (0: chipd's own): what chipd
    // was given, not the one it raised for itself.
    std::size_t fd_soft_limit = 0;
};

// The steps of spawn(), in the order the child takes them.
enum class SpawnStep {
    Clone,        // creating the process (in chipd)
    Cgroup,       // joining its cgroup
    Setsid,       // a new session and process group
    Dup,          // stdin, stdout, stderr
    SetGroups,    // supplementary groups
    SetGid,       // group
    SetUid,       // user
    DeathSignal,  // the parent-death signal (ESRCH: chipd died meanwhile)
    Chdir,        // the working directory
    Exec,         // execve of every candidate
};

// What spawn() did: the child's pid, or the step that failed and its errno.
struct SpawnResult {
    pid_t pid = 0;                      // > 0 once the child has exec'd
    SpawnStep step = SpawnStep::Clone;  // the failed step, when error != 0
    int error = 0;                      // errno of the failed step; 0 on success
    explicit operator bool() const { return error == 0; }
};

// Starts a process from PLAN as the leader of a new session and process group,
// in the cgroup PLAN.cgroup when given: born there (clone3's
// CLONE_INTO_CGROUP, on x86-64 from Linux 5.7), else moved there first thing
// by writing its cgroup.procs (which may wait for an RCU grace period, some
// milliseconds on a busy machine).
// Returns once the child has exec'd or failed (the failed child is already
// reaped). Not reentrant.
SpawnResult spawn(const SpawnPlan &plan);

// Whether a child that clone3 starts in the cgroup CGROUP (an open folder)
// lives: false when the kernel has no clone3 with CLONE_INTO_CGROUP, or kills
// such children (Linux 6.x does when chipd's cgroup and CGROUP have seen a
// different number of cgroup.kill writes). From then on spawn() starts
// children that way only if it was true; else it moves them by writing
// cgroup.procs. Called once, before any spawn.
bool probe_clone_into_cgroup(int cgroup);

// How a child ended, decoded from its wait status.
struct ChildExit {
    bool signaled = false;
    int value = 0;  // exit code, or the signal number when signaled
};
ChildExit decode_wait_status(int status);

// Reaps exited children (waitpid(-1, WNOHANG)) and calls FN(pid, how it ended)
// for each, until none is left or MAX were reaped. Returns true when it stopped
// at MAX (more may be waiting): FN may spawn children that exit at once, so an
// unbounded loop could never end.
bool reap_children(const std::function<void(pid_t, ChildExit)> &fn, std::size_t max);

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
// Takes PIDFD, handed over by an earlier chipd image across a re-exec, as a
// watch of PID: it must be a pidfd of PID (or of a process reaped since, which
// the kernel no longer names), and is marked close-on-exec again. 0, or -EBADF
// (not open), -EINVAL (not a pidfd, or one of another pid).
int pidfd_take(int pidfd, pid_t pid);

// The parent pid of PID from /proc/PID/stat; nullopt if PID does not exist.
std::optional<pid_t> parent_of(pid_t pid);
// The process group of PID (getpgid); nullopt if PID does not exist.
std::optional<pid_t> process_group_of(pid_t pid);
// Whether PID is ANCESTOR or one of its descendants: its process group is
// ANCESTOR (a worker leads its own), or ANCESTOR is found up its /proc
// ancestry.
bool descends_from(pid_t pid, pid_t ancestor);
// Real and effective uid of PID from /proc/PID/status.
std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid);

// The supplementary groups of user NAME with primary group GID.
std::vector<gid_t> groups_of_user(const std::string &name, gid_t gid);

// Raises RLIMIT_NOFILE's soft limit to the hard limit (and the hard limit to
// WANT when privileged). Returns the new soft limit.
std::size_t raise_fd_limit(std::size_t want);
// RLIMIT_NOFILE's soft limit now (1024 if it cannot be read).
std::size_t fd_soft_limit();

// The largest pid the kernel hands out: /proc/sys/kernel/pid_max, else
// kPidMaxLimit (the kernel's own ceiling on 64-bit systems).
inline constexpr pid_t kPidMaxLimit = 4194304;
pid_t pid_max();

}  // namespace chip::os
