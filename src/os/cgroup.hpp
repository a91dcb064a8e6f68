// cgroup v2, for containing workers (README.md, "Containment"): where the
// cgroup2 hierarchy is mounted and which cgroup chipd is in, making and
// removing cgroups, killing everything one holds (cgroup.kill, or SIGKILL pid
// by pid on kernels before 5.14), its processes, whether it is populated and
// the CPU time it used. Cgroups are named relative to an open folder (openat),
// so that a folder checked once is not looked up again by path.
//
// It decides nothing: which cgroups exist, what they are named and when they
// are killed belong to the daemon. It enables no controller.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::os {

// The cgroup2 mount that holds the cgroup PATH (a path in the hierarchy, as
// /proc/PID/cgroup writes it), read from the text of /proc/self/mountinfo:
// the folder PATH is, on this system ("/sys/fs/cgroup/unified/a/b" for "/a/b"
// on a hybrid layout). nullopt without such a mount. Pure.
std::optional<std::string> cgroup2_folder(std::string_view mountinfo, std::string_view path);
// The cgroup v2 path ("0::PATH") in the text of /proc/PID/cgroup; nullopt
// without one (a cgroup v1 only system). Pure.
std::optional<std::string> cgroup2_path(std::string_view proc_cgroup);

// Where chipd's own cgroup is.
struct CgroupPlace {
    std::string path;    // in the hierarchy: "/system.slice/chipd.service"
    std::string folder;  // on this system: "/sys/fs/cgroup/system.slice/chipd.service"
};
// From /proc/self/cgroup and /proc/self/mountinfo. The error's message says
// why there is none ("no cgroup2 mount in /proc/self/mountinfo").
Result<CgroupPlace> own_cgroup();

// Opens the cgroup folder PATH (absolute), close-on-exec, never through a
// symlink at its end.
Result<UniqueFd> open_cgroup(const std::string &path);
// Whether this process may move processes into DIR's child cgroups: it can
// open DIR's cgroup.procs for writing (a migration needs that of the common
// ancestor). The error names the file and the cause.
Result<void> check_cgroup_writable(int dir, const std::string &path);
// mkdirat(DIR, NAME): true when made, false when it existed already (a
// folder). The error's message is "NAME: <strerror>".
Result<bool> make_cgroup(int dir, const std::string &name);
// rmdir of DIR/NAME: 0, or -errno (-EBUSY while populated, -ENOENT when gone).
int remove_cgroup(int dir, const std::string &name);
// The cgroup folder DIR/NAME opened, for a child to start in
// (SpawnPlan::cgroup). The error's message is "NAME: <strerror>".
Result<UniqueFd> open_cgroup_at(int dir, const std::string &name);
// The cgroups directly inside DIR/NAME ("" for DIR itself).
std::vector<std::string> cgroup_children(int dir, const std::string &name);

// SIGKILL to every process in DIR/NAME and the cgroups inside it: "1" to its
// cgroup.kill, or without one (before Linux 5.14) kill_each(). Returns 0 or
// -errno; a cgroup that is gone is not an error. A cgroup killed this way
// is not fit to start processes in any more (see kill_each): for one that
// is removed next.
int kill_cgroup(int dir, const std::string &name);
// SIGKILL to every process in DIR/NAME and the cgroups inside it, pid by pid:
// kill(2) on each pid cgroup.procs lists, again until a pass finds none it
// has not killed yet (a killed process cannot fork; one forked before its
// parent was killed is listed by the next pass). Returns how many were
// killed. For cgroups processes start in again: after a write to cgroup.kill,
// Linux (6.x at least) kills every child that clone3 starts in that cgroup
// (CLONE_INTO_CGROUP).
std::size_t kill_each(int dir, const std::string &name);
// The pids in DIR/NAME (and in the cgroups inside it when RECURSIVE).
std::vector<pid_t> cgroup_pids(int dir, const std::string &name, bool recursive);
// Whether DIR/NAME or a cgroup inside it holds a process (cgroup.events);
// nullopt when it cannot be read.
std::optional<bool> cgroup_populated(int dir, const std::string &name);
// Blocks until DIR/NAME is no longer populated (true) or TIMEOUT has passed
// (false), woken by cgroup.events changes. For chipd's start and exit only.
bool wait_cgroup_empty(int dir, const std::string &name, std::chrono::milliseconds timeout);
// usage_usec of DIR/NAME's cpu.stat: CPU time used by all its processes,
// living and dead, in microseconds; nullopt when it cannot be read.
std::optional<std::uint64_t> cgroup_cpu_usec(int dir, const std::string &name);

}  // namespace chip::os
