// How chipd starts a worker's process (core::Effects::spawn): the spawn plan
// (PATH candidates, argv, the environment: the spec's env on top of chipd's
// minus its private variables, user, group and supplementary groups), the
// pipes that capture its output, and the per-node slot: CHIP_PATH,
// CHIP_INSTANCE and, for `ready: notify`, its own NOTIFY_SOCKET, whose READY=1
// datagrams are handed on (README.md, "Supervision, as chipd does it"), and
// whose CHIP_EXPORT_ lines it keeps as the node's exports, given to the workers
// spawned later under its later siblings (README.md, "Hand-off between
// siblings"). Only datagrams from the worker's own processes count.
//
// What a definition needs at every spawn is computed once and cached by the
// spec::Launch it pins (instances share it); an entry no definition holds any
// more is dropped. It decides nothing: when to spawn, what READY=1 means and
// registry joins belong to the core and the daemon.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "core/tree.hpp"
#include "handoff/state.hpp"
#include "daemon/cgroups.hpp"
#include "daemon/output.hpp"
#include "os/fd.hpp"
#include "os/process.hpp"
#include "spec/spec.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

// The sentence of a failed spawn, as start-failed lines tell it: "cannot
// execute /x: No such file or directory", "cannot change to its folder /srv:
// Permission denied".
std::string spawn_failure(const os::SpawnResult &r, const spec::Launch &launch);

// The environment a worker of LAUNCH starts with, before chipd's per-node
// variables: BASE (chipd's own, its private variables already left out) minus
// the names set here; for a worker with a user, that user's HOME, USER,
// LOGNAME and SHELL from its passwd entry (as su and systemd set them; a user
// without an entry gets none of the four); then the spec's env, in its order,
// which wins over both. OWNED receives the "NAME=VALUE" strings made here, ENV
// pointers into BASE and OWNED (OWNED must not change while ENV is used).
void worker_environment(const std::vector<const char *> &base, const spec::Launch &launch,
                        std::vector<std::string> &owned, std::vector<const char *> &env);

class Launcher {
public:
    using Warn = std::function<void(const std::string &)>;
    using OnReady = std::function<void(std::uint64_t id)>;
    using Exports = std::vector<std::pair<std::string, std::string>>;

    // SOCKET_PATH is chipd's control socket: workers get it as CHIP_SOCKET, and
    // notify sockets live beside it. ON_READY(id) is called for every READY=1
    // that node ID's worker sends. Workers start in their CGROUPS.
    Launcher(uv::Loop &loop, std::string socket_path, Cgroups &cgroups, Warn warn,
             OnReady on_ready);
    ~Launcher();
    Launcher(const Launcher &) = delete;
    Launcher &operator=(const Launcher &) = delete;

    // Starts NODE's process: its pid once exec succeeded, or why not.
    Result<pid_t> spawn(const core::Node &node, Time now);
    // Node ID's notify socket has served (READY=1 taken, or its process is
    // gone). Safe from its own callback: freed after this loop turn.
    void close_notify(std::uint64_t id);
    // Node ID's process exited: its notify socket closes and its exports are
    // withdrawn.
    void exited(std::uint64_t id);
    // Node ID's exports (NAME, VALUE) in the order first sent; null when none.
    const Exports *exports_of(std::uint64_t id) const;
    // Node ID left the tree: its slot goes.
    void forget(std::uint64_t id);
    // LAUNCH was let go by a node (removed, or pointed at a new definition):
    // if no node holds it any more at the end of the turn, its cache entry
    // goes, and the log files only it wrote to.
    void release(const spec::Launch *launch);
    // The end of a loop turn: frees what was closed during it.
    void after_turn();
    // chipd's exit: what is left in the pipes is written, notify sockets removed.
    void finish();
    // The hand-off (README.md, "Upgrading chipd in place"): its sinks, output
    // pipes and slots into OUT, as they are (nothing is read or closed).
    void handoff_state(handoff::State &out) const;
    // Takes over what IN names (its fds become this launcher's) for the nodes
    // of TREE, before anything is spawned.
    void adopt(const handoff::State &in, core::Tree &tree, Time now);
    // Workers get LIMIT as their soft fd limit (chipd raises its own).
    void set_worker_fd_limit(std::size_t limit) { worker_fd_limit_ = limit; }
    // Inherited output as JSON objects (--log-format json), for workers
    // spawned from now on.
    void inherit_as_json() {
        inherit_out_ = std::make_shared<InheritSink>(1, true, "stdout");
        inherit_err_ = std::make_shared<InheritSink>(2, true, "stderr");
    }

private:
    // What a definition needs at every spawn.
    struct Cached {
        std::shared_ptr<const spec::Launch> launch;  // keeps its address unique while cached
        std::vector<std::string> candidates;
        std::vector<const char *> candidate_ptrs;
        std::vector<char *> argv;
        std::vector<std::string> env_owned;  // "K=V" from the spec
        std::vector<const char *> env;       // base environment with the spec's on top
        std::vector<gid_t> groups;
        std::shared_ptr<FileSink> out_file, err_file;
    };
    // Per worker node, by id.
    struct Slot {
        std::string env_path;      // "CHIP_PATH=..."
        std::string env_instance;  // "CHIP_INSTANCE=..."
        std::string notify_path;   // its NOTIFY_SOCKET, ready: notify only
        std::string env_notify;
        os::UniqueFd notify_fd;
        std::unique_ptr<uv::Poll> notify_poll;  // destroyed before notify_fd is closed
        const core::Node *node = nullptr;  // set at spawn; the tree keeps it while the slot lives
        pid_t pid = 0;                     // of the last spawn
        Exports exports;                   // CHIP_EXPORT_ lines taken since that spawn
        bool warned_stranger = false, warned_oversized = false;  // once per spawn
        // Its own log files, when its definition's paths hold {name} or
        // {instance} (a pool's worker each): held while the node lives.
        std::shared_ptr<FileSink> out_file, err_file;
    };
    struct Closed {
        os::UniqueFd fd;
        std::unique_ptr<uv::Poll> poll;
    };

    Cached &cached(const std::shared_ptr<const spec::Launch> &launch);
    std::shared_ptr<FileSink> sink_for(const spec::OutputSpec &o);
    // HELD, pointed at NODE's own file for O (a per-worker file): kept, or
    // replaced when the definition changed the file.
    std::shared_ptr<FileSink> own_sink(std::shared_ptr<FileSink> &held, const spec::OutputSpec &o,
                                       const core::Node &node);
    void drop_unused_sinks(const std::vector<std::string> &files);
    void open_notify(Slot &slot, std::uint64_t id);
    void close_notify(Slot &slot);
    void on_notify(std::uint64_t id);
    void take_exports(std::uint64_t id, Slot &slot, Exports exports);
    void withdraw_exports(std::uint64_t id, Slot &slot);
    // What the exporters before NODE hand it, later ones winning, minus the
    // names LAUNCH's env sets and chipd's own: into scratch_merged_ and, as
    // "NAME=VALUE", scratch_exports_. False when nothing.
    bool collect_exports(const core::Node &node, const spec::Launch &launch);
    void capture(os::UniqueFd fd, std::shared_ptr<Sink> sink, const std::string &prefix,
                 std::string_view partial = {});
    void poll_notify(Slot &slot, std::uint64_t id);
    void sweep();

    uv::Loop &loop_;
    std::string socket_path_;
    Cgroups &cgroups_;
    std::string notify_dir_;
    std::string env_socket_;  // "CHIP_SOCKET=..."
    Warn warn_;
    OnReady on_ready_;
    std::vector<const char *> base_env_;
    os::UniqueFd dev_null_;
    std::shared_ptr<Sink> inherit_out_, inherit_err_;
    std::size_t worker_fd_limit_ = 0;
    std::unordered_map<const spec::Launch *, std::unique_ptr<Cached>> cache_;
    std::unordered_map<std::string, std::shared_ptr<FileSink>> file_sinks_;  // by log file path
    std::unordered_map<std::uint64_t, Slot> slots_;
    std::vector<Closed> closed_;  // notify sockets closed during this turn
    std::list<std::unique_ptr<OutputPipe>> pipes_;
    std::vector<std::unique_ptr<OutputPipe>> dead_pipes_;
    std::vector<char *> scratch_env_;
    std::unordered_set<std::uint64_t> exporters_;  // slots with exports: empty, no walk at spawn
    std::vector<char> notify_buf_;
    Exports scratch_merged_;
    std::vector<std::string> scratch_exports_;    // "NAME=VALUE" of the current spawn
    std::vector<const spec::Launch *> released_;  // to look at in sweep()
};

}  // namespace chip::daemon
