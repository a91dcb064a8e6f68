// Containment (README.md, "Containment"): each worker runs in its own cgroup
// v2, so that nothing it starts outlives it, as with systemd's
// KillMode=control-group. The layout, under chipd's own cgroup:
//
//   <chipd's cgroup>/chip-<hash of the socket path>/<escaped node path>
//
// The folder is this chipd's (the socket decides who that is: listen_unix has
// refused a live chipd on it), so what is in it at start was left by a
// predecessor that was killed: it is killed and removed before anything
// starts. A worker's cgroup is made at its first spawn and kept while its node
// is in the tree (a restart reuses it); what is left in it is killed when its
// main process exits, and it is removed when the node leaves the tree (once
// empty: retried from a timer, never waiting in the loop) and at chipd's exit.
//
// When cgroups cannot be written (no cgroup2 mount, a read-only hierarchy, a
// cgroup not delegated to chipd's user) or --no-cgroups, it is off: every call
// does nothing and workers are contained by their process groups only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/result.hpp"
#include "handoff/state.hpp"
#include "os/fd.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

// The cgroup name of the node at PATH: '/' becomes ':' (node names have
// none), and a name that could be taken for a cgroup's own file ("cgroup.*",
// "cpu.*", ...) or starts with '_' or '.' gets a '_' in front, as systemd
// escapes unit names. A name too long for one folder is cut and ends with a
// hash of the whole path.
std::string cgroup_name(const std::string &path);

class Cgroups {
public:
    using Warn = std::function<void(const std::string &)>;

    // Containment for the chipd of SOCKET_PATH (which it owns already):
    // finds chipd's cgroup, kills and removes what a predecessor left in its
    // folder (said through WARN), and makes the folder. ENABLED false
    // (--no-cgroups) leaves it off. Blocks at most a few seconds, before the
    // loop runs.
    // ADOPT: the cgroups a chipd of the same pid handed over (README.md,
    // "Upgrading chipd in place"): its folder and workers' cgroups are taken
    // as they are, nothing is killed.
    Cgroups(uv::Loop &loop, const std::string &socket_path, bool enabled, Warn warn,
            const handoff::Cgroups *adopt = nullptr);
    ~Cgroups();
    Cgroups(const Cgroups &) = delete;
    Cgroups &operator=(const Cgroups &) = delete;

    bool on() const { return static_cast<bool>(folder_); }
    // Why it is off ("--no-cgroups", "/sys/fs/cgroup/x: Read-only file system").
    const std::string &why_off() const { return why_off_; }

    // Before node ID (at PATH) is spawned: its cgroup, open for the child to
    // start in (os::SpawnPlan::cgroup); an empty fd when off.
    Result<os::UniqueFd> prepare(std::uint64_t id, const std::string &path);
    // Node ID's main process exited: SIGKILL to whatever is left in its cgroup.
    void exited(std::uint64_t id);
    // SIG to node ID's cgroup: SIGKILL to all of it (cgroup.kill); any other
    // signal to each of its processes outside the process group PGID (which
    // got it already).
    void signal(std::uint64_t id, pid_t pgid, int sig);
    // Node ID's cgroup, as /proc/PID/cgroup writes it, and the CPU seconds
    // its processes used since its last spawn; nullopt when it has none.
    struct Usage {
        std::string path;
        std::optional<double> cpu_s;
    };
    std::optional<Usage> usage(std::uint64_t id) const;
    // The processes in node ID's cgroup; nullopt when it has none.
    std::optional<std::vector<pid_t>> pids(std::uint64_t id) const;
    // Node ID left the tree: its cgroup is killed and removed once empty.
    void forget(std::uint64_t id);
    // What a new chipd of the same pid needs to take over (see the constructor).
    handoff::Cgroups handoff_state() const;
    // A hand-off that could not be taken over: the workers' cgroups are left
    // as they are, nothing killed (finish() does nothing after this).
    void abandon() {
        retry_.reset();
        groups_.clear();
        removals_.clear();
        folder_.reset();
        parent_.reset();
    }
    // chipd's exit: every cgroup killed and removed, waiting a little for
    // them to empty, then chipd's folder.
    void finish();

private:
    struct Group {
        std::string name;
        std::uint64_t base_usec = 0;  // cpu.stat's usage_usec at the last spawn
    };
    void off(std::string why);
    // Kills what is in chipd's folder (a predecessor's), then removes the
    // cgroups in it.
    void clear_leftovers();
    // rmdir of the cgroups still to remove; true when none is left.
    bool retry_removals();
    // Removes NAME and every cgroup inside it, deepest first: 0 or -errno.
    int remove_tree(const std::string &name, int depth = 0);

    Warn warn_;
    std::string why_off_;
    std::string path_;         // chipd's folder in the hierarchy: "/chip-<hash>"
    std::string folder_name_;  // "chip-<hash>"
    os::UniqueFd parent_;      // chipd's own cgroup
    os::UniqueFd folder_;      // chipd's folder in it
    std::unordered_map<std::uint64_t, Group> groups_;
    std::unordered_set<std::string> removals_;  // names of cgroups to remove once empty
    std::unique_ptr<uv::Timer> retry_;
    unsigned retries_ = 0;
};

}  // namespace chip::daemon
