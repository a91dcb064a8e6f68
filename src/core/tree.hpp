// The supervision core: the OTP rules of chip, as a pure state machine.
//
// It receives events (a worker was reaped, a worker said READY=1, time passed,
// a user command) with the current time, and acts on the world only through the
// narrow Effects interface (spawn, signal a process group, log, exit). It never
// includes libuv, makes no system call and reads no clock, so unit tests drive
// every rule with a fake clock and fake processes. It does not know about the
// registry, output capture or sockets: the daemon does that around spawn/reap.
//
// The model
// ---------
// The tree is built from the spec: supervisors and workers (a worker with
// instances N >= 2 becomes N sibling workers NAME.0 .. NAME.N-1).
//
// Node states (what `chipctl status` shows):
//   starting  spawned, not ready yet (worker: READY=1 pending; supervisor: its
//             children are being started in order)
//   running   ready
//   stopping  stop_signal sent, waiting for the exit (supervisor: its children are
//             being stopped in reverse order)
//   exited    exited and not restarted (transient after a normal exit, temporary),
//             or exited and waiting for its restart turn
//   failed    its start failed, or (supervisor) it gave up
//   stopped   stopped by chipd or the user, not running
//
// A supervisor drives its children with marks, never with a stored plan:
// want_stop (stop it) and want_start (start it). Its advance() loop, run after
// every event, does one step at a time: first the highest-index child marked
// want_stop is stopped (reverse order), waiting for each to finish; then, with no
// stop pending and no child starting, the lowest-index child marked want_start is
// started (start order) and waited for until ready. Strategies only set marks, so
// a second failure during a restart merges into the work still to do.
//
// Exit of a running child (abnormal = any exit but status 0, or any signal):
// permanent -> restart; transient -> restart only if abnormal; temporary -> never
// (state exited). A restart is counted in the supervisor's Intensity; the one
// that exceeds max_restarts within period makes the supervisor give up: it stops
// every child (reverse order), becomes failed, and is a failing child of its
// parent (supervisors are permanent children). The root failing exits chipd
// with status 1. A restart applies the strategy:
//   one_for_one   the child alone
//   one_for_all   stop every other started child (reverse), then start all (order)
//   rest_for_one  stop the started children after it (reverse), then start it and
//                 them (order)
// Children that exited for good or that the user stopped are left alone; a
// temporary sibling is stopped but not restarted (OTP).
//
// Start: during a supervisor's own start, a child that fails to start (spawn
// error, exit before ready, start_timeout) fails the supervisor's start: it stops
// the children already started (reverse) and fails to its parent. Once started,
// a child's failed start counts as a restart like an abnormal exit (OTP retries).
//
// User commands: stop holds a node stopped until start; start starts it; restart
// is a stop then a start of that node alone: no strategy, not counted. A failed
// start of a node started by the user leaves it failed (no retry) and fails the
// command. shutdown stops the root; hurry sends SIGKILL to everything stopping.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "core/intensity.hpp"
#include "core/spec.hpp"

namespace chip::core {

enum class State { Starting, Running, Stopping, Exited, Failed, Stopped };
const char *state_name(State s);

// How a process ended, decoded from its wait status by the daemon.
struct ExitStatus {
    bool signaled = false;
    int value = 0;  // exit code, or signal number when signaled
    bool operator==(const ExitStatus &) const = default;
};

struct Node {
    // Identity.
    std::string name;  // "session.3"
    std::string path;  // "sessions/session.3"; "/" for the root
    std::string base;  // the spec name ("session"), for instance groups
    Node *parent = nullptr;
    std::size_t index = 0;  // among its siblings
    std::uint32_t id = 0;   // dense, unique: the daemon's per-node slot
    bool is_supervisor = false;
    const WorkerSpec *worker = nullptr;  // workers only
    unsigned instance = 0;
    const SupervisorSpec *sup = nullptr;  // supervisors only
    std::vector<std::unique_ptr<Node>> children;

    // What status shows.
    State state = State::Stopped;
    pid_t pid = 0;  // workers, while a process exists
    Time since{};   // when the current process (or start) began
    std::uint64_t restarts = 0;
    std::optional<ExitStatus> last_exit;

    // Marks read by the parent's advance().
    bool want_stop = false;
    bool want_start = false;
    bool held = false;          // stopped by the user: not started until `start`
    bool manual_start = false;  // started by the user: a failed start is final
    std::uint64_t starts = 0;   // how many times it was started

    // Supervisors: which children are marked or in transition, kept by the
    // Tree's setters so that a step costs O(log children), not a scan.
    std::set<std::size_t> stop_marks;   // indices of children with want_stop
    std::set<std::size_t> start_marks;  // indices of children with want_start
    std::size_t n_starting = 0;         // children in State::Starting
    std::size_t n_stopping = 0;         // children in State::Stopping
    std::optional<Intensity> intensity;
    bool fail_after_stop = false;  // stopping because it gave up / its start failed
    bool failing_start = false;    // ... and it was during its own start
    bool queued = false;           // in the dirty queue

    // Workers.
    Time deadline{};         // start_timeout or stop_timeout; 0 when none
    bool timed_out = false;  // start_timeout passed; killed, exit pending
    bool killed = false;     // SIGKILL sent

    bool ready() const { return state == State::Running; }
};

// One line of chipd's event log.
struct Event {
    enum class Kind {
        Start,        // a worker was spawned (pid)
        Ready,        // a notify worker said READY=1
        Exit,         // a worker exited (status)
        StartFailed,  // a child failed to start (message)
        Restart,      // a child is restarted (count within the period)
        GiveUp,       // a supervisor exceeded its intensity (count)
        Stop,         // a node is being stopped
        Stopped,      // a node finished stopping
        Kill,         // stop_timeout passed (or hurry): SIGKILL
        Started,      // a supervisor finished starting its children
    };
    Kind kind;
    const Node *node = nullptr;
    pid_t pid = 0;
    ExitStatus status{};
    std::size_t count = 0;
    std::string message;
};
const char *event_name(Event::Kind k);

// What the core asks of the world. The daemon implements it with fork/exec and
// kill(2); unit tests with a fake that records calls.
class Effects {
public:
    virtual ~Effects() = default;
    // Starts the worker's process as the leader of its own process group and
    // returns its pid once exec succeeded, or the errno of the failure.
    virtual Result<pid_t> spawn(const Node &worker) = 0;
    // Sends SIG to the process group PGID.
    virtual void kill_group(pid_t pgid, int sig) = 0;
    virtual void log(const Event &e) = 0;
    // The root has stopped or failed: chipd exits with CODE.
    virtual void exit(int code) = 0;
};

enum class Command { Start, Stop, Restart };

class Tree {
public:
    Tree(const SupervisorSpec &root, Effects &fx);
    Tree(const Tree &) = delete;
    Tree &operator=(const Tree &) = delete;

    // Starts the whole tree.
    void start(Time now);
    // Stops everything in reverse order, then exit(0) (exit(1) if the root had
    // failed before). Idempotent.
    void shutdown(Time now);
    // During shutdown: SIGKILL to every stopping worker now, and to every worker
    // stopped from now on, without waiting for stop_timeout.
    void hurry(Time now);
    bool shutting_down() const { return shutting_down_; }

    // A process was reaped. Pids that are not workers' are ignored (orphans).
    void on_exit(pid_t pid, ExitStatus status, Time now);
    // The worker with node id ID sent READY=1 (ignored unless it is starting).
    void on_ready(std::uint32_t id, Time now);
    // Handles every deadline at or before NOW.
    void on_time(Time now);
    // The earliest pending deadline, if any: the daemon arms one timer for it.
    std::optional<Time> next_deadline() const;

    // Nodes named by PATH: "/" the root, "a/b", or an instance group's base name.
    Result<std::vector<Node *>> resolve(std::string_view path);

    // A user command on the nodes of PATH. Returns a ticket; the outcome appears
    // in take_finished() once the command is complete.
    Result<std::uint64_t> command(Command cmd, std::string_view path, Time now);
    struct Finished {
        std::uint64_t ticket;
        Result<void> result;
    };
    std::vector<Finished> take_finished();

    // True when every node of NODES is ready.
    static bool all_ready(const std::vector<Node *> &nodes);

    Node &root() { return *root_; }
    const Node &root() const { return *root_; }
    Node *node_by_id(std::uint32_t id) { return id < by_id_.size() ? by_id_[id] : nullptr; }
    Node *node_by_pid(pid_t pid);
    std::size_t node_count() const { return by_id_.size(); }
    // Every node, depth first in start order, from NODE.
    static void walk(Node &node, const std::function<void(Node &)> &fn);
    // Counts for a one-line summary.
    struct Summary {
        std::size_t running = 0, starting = 0, stopping = 0, exited = 0, failed = 0, stopped = 0;
    };
    Summary summary() const;

private:
    struct Pending {
        std::uint64_t ticket;
        Command cmd;
        std::vector<std::pair<Node *, std::uint64_t>> nodes;  // node, starts at issue
    };

    void build(Node &node, const SupervisorSpec &spec);
    void add_child(Node &parent, const ChildSpec &spec, unsigned instance, bool instanced);

    void mark_dirty(Node &sup);
    void drain(Time now);
    void advance(Node &sup, Time now);
    // Returns true when the child is already settled (ready or failed) after it.
    void begin_start(Node &child, Time now);
    void begin_stop(Node &child, Time now);
    void begin_supervisor_start(Node &sup, Time now);
    void begin_supervisor_stop(Node &sup, bool failing, Time now);
    void child_down(Node &sup, Node &child, bool abnormal, bool start_failure, Time now);
    void apply_strategy(Node &sup, Node &child);
    void supervisor_finished_stopping(Node &sup, Time now);
    // The only writers of Node::state, want_stop and want_start: they keep the
    // parent's marks and counters in step.
    static void set_state(Node &n, State s);
    static void set_want_stop(Node &n, bool v);
    static void set_want_start(Node &n, bool v);
    void set_deadline(Node &w, Time t);
    void clear_deadline(Node &w);
    void check_pending();
    bool pending_done(const Pending &p, Result<void> &out) const;
    void emit(Event::Kind k, const Node &n, Time now, std::size_t count = 0, std::string msg = {});

    Effects &fx_;
    std::unique_ptr<Node> root_;
    std::vector<Node *> by_id_;
    std::unordered_map<pid_t, Node *> by_pid_;
    std::set<std::pair<Time, Node *>> deadlines_;
    std::vector<Node *> dirty_;
    bool draining_ = false;
    bool shutting_down_ = false;
    bool hurry_ = false;
    bool exited_ = false;
    std::uint64_t next_ticket_ = 1;
    std::vector<Pending> pending_;
    std::vector<Finished> finished_;
};

}  // namespace chip::core
