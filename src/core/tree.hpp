// The supervision core: the OTP rules of chip, as a pure state machine.
//
// It receives events (a worker was reaped, a worker said READY=1, time passed,
// a user command) with the current time, and acts on the world only through the
// narrow Effects interface (spawn, signal a process group, log, exit, and the
// time again when it sets a deadline). It never includes libuv, makes no system
// call and reads no clock, so unit tests drive every rule with a fake clock and
// fake processes. It does not know about the
// registry, output capture or sockets: the daemon does that around spawn/reap.
//
// The model
// ---------
// The tree is built from the spec: supervisors and workers (a worker with
// instances N >= 2 becomes N sibling workers NAME.0 .. NAME.N-1), and changed
// while it runs with add, remove and redefine.
//
// Node states (what `chipctl status` shows):
//   starting  spawned, not ready yet (worker: READY=1 pending; supervisor: its
//             children are being started in order)
//   running   ready
//   stopping  stop_signal sent, waiting for the exit (supervisor: its children are
//             being stopped in reverse order)
//   exited    exited and not restarted (transient after a normal exit, temporary),
//             or exited and waiting for its restart turn
//   backoff   exited, and its restart waits for its backoff delay
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
// with status 1. A supervisor with on_give_up stay_failed stays failed instead,
// with its reason: its parent goes on as if a temporary child had exited (no
// restart, no escalation, during its parent's start too), and on the root
// chipd keeps running with the tree failed; a user start tries it again. A restart applies the
// strategy:
//   one_for_one   the child alone
//   one_for_all   stop every other started child (reverse), then start all (order)
//   rest_for_one  stop the started children after it (reverse), then start it and
//                 them (order)
// Children that exited for good or that the user stopped are left alone; a
// temporary sibling is stopped but not restarted (OTP).
//
// Backoff: a child with a backoff (its own, else its supervisor's default for
// its children) waits before its restart, in state backoff with a deadline:
// the k-th consecutive restart waits min(max, initial * factor^(k-1)) times a
// random factor in [1 - jitter, 1 + jitter] (Effects::random); k starts again
// at 1 for a child that stayed up reset_after. The restart is counted in the
// intensity when it is decided, at the exit. With one_for_one only that child
// waits; with one_for_all and rest_for_one the stops happen at once and no
// child of that supervisor is started while one of them is in backoff. A user
// start or restart of it starts it at once, a stop cancels the wait (stopped),
// and so does a stop of its supervisor (shutdown).
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
// A node whose definition says start = false is made held, as if the user had
// stopped it before it ever started (the tree's start, add, scale); a new
// instance of such a pool is held while every instance is. Redefining a node
// never changes whether it is held.
//
// A tree that changes while it runs: every node has an id that is never reused;
// marks and counters are kept per position and rebuilt when a child is inserted
// or removed, so both can happen anywhere at any time. A node shares its
// definition and can be pointed at a new one (redefine): in place, or with a
// restart of that node alone. A removed node is held, stopped like any other
// (a subtree in reverse order), and erased by its parent's advance() once down.
// Commands in flight name nodes by id, so one removed meanwhile is reported,
// never dangling. snapshot() writes the whole state as a value, and the Tree
// constructor that takes one continues exactly there.
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

enum class State { Starting, Running, Stopping, Exited, Failed, Stopped, Backoff };
const char *state_name(State s);

// How a process ended, decoded from its wait status by the daemon.
struct ExitStatus {
    bool signaled = false;
    int value = 0;  // exit code, or signal number when signaled
    bool operator==(const ExitStatus &) const = default;
};

struct Node {
    // Identity. ID is never reused while chipd runs: the daemon keys its
    // per-node state (notify socket, environment) by it, and a node inserted or
    // removed elsewhere never changes it.
    std::string name;  // "session.3"
    std::string path;  // "sessions/session.3"; "/" for the root
    std::string base;  // the spec name ("session"), for instance groups
    Node *parent = nullptr;
    std::size_t index = 0;   // among its siblings, kept by the Tree on inserts and removals
    std::uint64_t rank = 0;  // its siblings are ordered by (rank, instance); a pool's share one
    std::uint64_t id = 0;
    bool dynamic = false;  // added at run time, not from a spec
    bool is_supervisor = false;
    std::shared_ptr<const WorkerSpec> worker;  // workers only
    unsigned instance = 0;
    std::shared_ptr<const SupervisorSpec> sup;  // supervisors only
    std::vector<std::unique_ptr<Node>> children;
    // Supervisors: the pools among the children, with 0 instances or more.
    struct Pool {
        std::string name;
        std::shared_ptr<const WorkerSpec> def;
        std::uint64_t rank = 0;
        bool dynamic = false;
        bool operator==(const Pool &) const = default;
    };
    std::vector<Pool> pools;

    // What status shows.
    State state = State::Stopped;
    pid_t pid = 0;  // workers, while a process exists
    Time since{};   // when the current process (or start) began
    std::uint64_t restarts = 0;
    std::optional<ExitStatus> last_exit;
    unsigned backoffs = 0;  // consecutive backoff restarts (k of the last delay)
    std::string reason;     // why it is failed (state failed), else empty

    // Marks read by the parent's advance().
    bool want_stop = false;
    bool want_start = false;
    bool held = false;          // stopped by the user: not started until `start`
    bool manual_start = false;  // started by the user: a failed start is final
    bool removing = false;      // stopped, then gone from the tree
    std::uint64_t starts = 0;   // how many times it was started

    // Supervisors: which children are marked or in transition, kept by the
    // Tree's setters so that a step costs O(log children), not a scan.
    std::set<std::size_t> stop_marks;   // indices of children with want_stop
    std::set<std::size_t> start_marks;  // indices of children with want_start
    std::size_t n_starting = 0;         // children in State::Starting
    std::size_t n_stopping = 0;         // children in State::Stopping
    std::size_t n_removing = 0;         // children with `removing`
    std::size_t n_backoff = 0;          // children in State::Backoff
    std::optional<Intensity> intensity;
    bool fail_after_stop = false;  // stopping because it gave up / its start failed
    bool failing_start = false;    // ... and it was during its own start
    bool queued = false;           // in the dirty queue

    // Workers: start_timeout or stop_timeout; any node: the end of its backoff
    // wait (State::Backoff). 0 when none.
    Time deadline{};
    // Workers.
    bool timed_out = false;  // start_timeout passed; killed, exit pending
    bool killed = false;     // SIGKILL sent

    bool ready() const { return state == State::Running; }
    // An instance of a pool (named base.instance).
    bool pooled() const { return !is_supervisor && worker->instances.has_value(); }
};

// The whole state of a Tree as a value: written by Tree::snapshot(), read back
// by the Tree constructor that takes one, exact on a round trip. Definitions
// are shared, not copied: turning them into bytes is the spec's business.
struct NodeSnapshot {
    std::uint64_t id = 0, rank = 0;
    bool dynamic = false;
    std::vector<Node::Pool> pools;
    std::string name, base;
    unsigned instance = 0;
    bool is_supervisor = false;
    std::shared_ptr<const WorkerSpec> worker;
    std::shared_ptr<const SupervisorSpec> sup;
    State state = State::Stopped;
    pid_t pid = 0;
    Time since{};
    std::uint64_t restarts = 0, starts = 0;
    std::optional<ExitStatus> last_exit;
    unsigned backoffs = 0;
    std::string reason;
    bool want_stop = false, want_start = false, held = false, manual_start = false,
         removing = false, fail_after_stop = false, failing_start = false, timed_out = false,
         killed = false;
    Time deadline{};
    std::vector<Time> restart_history;  // supervisors: the intensity's record
    std::vector<NodeSnapshot> children;
    bool operator==(const NodeSnapshot &) const = default;
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
        Backoff,      // a child's restart waits (delay)
        Failed,       // a supervisor with on_give_up stay_failed stays failed (reason)
    };
    Kind kind;
    const Node *node = nullptr;
    pid_t pid = 0;
    ExitStatus status{};
    std::size_t count = 0;
    std::string message;
    Duration delay{};  // Backoff
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
    // The root has stopped or failed (and does not stay failed): chipd exits
    // with CODE.
    virtual void exit(int code) = 0;
    // A number uniform in [0, 1), for the backoff's jitter; asked only when a
    // restart has a backoff.
    virtual double random() { return 0.5; }
    // The time now, asked each time a deadline is set (start_timeout after a
    // spawn, stop_timeout after the stop signal, the end of a backoff): one
    // event may spawn thousands of workers, and a deadline measured from the
    // event's time would already be past when set. Time{} (the default): no
    // clock; the event's time serves.
    virtual Time now() { return Time{}; }
    // NODE leaves the tree (removed, after it stopped); called for each node of
    // a removed subtree, deepest first, just before it is destroyed.
    virtual void removed(const Node &node) { (void)node; }
    // The worker NODE was pointed at a new definition; OLD is the one it had.
    // Its process, if any, goes on, unless NODE is marked want_stop (it is
    // restarted with the new one).
    virtual void redefined(const Node &node, const std::shared_ptr<const WorkerSpec> &old) {
        (void)node;
        (void)old;
    }
};

enum class Command { Start, Stop, Restart };

// How a node's new definition takes effect (Tree::redefine).
enum class Redefine {
    InPlace,  // from its next decision on; its process is untouched
    Restart,  // stopped and started again with it: no strategy, not counted
};

struct Snapshot;

class Tree {
public:
    Tree(std::shared_ptr<const SupervisorSpec> root, Effects &fx);
    // A tree in the state SNAP describes (see snapshot()). Nothing is acted on:
    // the processes, deadlines and commands it names are taken as they are.
    Tree(const Snapshot &snap, Effects &fx);
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
    // True once the whole tree is up, or the root gave up and stays failed:
    // nothing more is coming of the initial start.
    bool settled() const;

    // A process was reaped. Pids that are not workers' are ignored (orphans).
    void on_exit(pid_t pid, ExitStatus status, Time now);
    // The worker with node id ID sent READY=1 (ignored unless it is starting).
    void on_ready(std::uint64_t id, Time now);
    // Handles every deadline at or before NOW.
    void on_time(Time now);
    // The earliest pending deadline, if any: the daemon arms one timer for it.
    std::optional<Time> next_deadline() const;

    // Nodes named by PATH: "/" the root, "a/b", or an instance group's base name.
    // ENOENT for an unknown path, with "did you mean" the closest one.
    Result<std::vector<Node *>> resolve(std::string_view path);

    // A user command on the nodes of PATH. Returns a ticket; the outcome appears
    // in take_finished() once the command is complete.
    Result<std::uint64_t> command(Command cmd, std::string_view path, Time now);
    struct Finished {
        std::uint64_t ticket;
        Result<void> result;
        bool operator==(const Finished &) const = default;
    };
    std::vector<Finished> take_finished();

    // ---- changing the tree while it runs ----
    // Adds SPEC as children of SUP at POSITION among them (a pool gives one node
    // per instance, and none for 0), started in order if SUP is up (unless held
    // by start = false), else left stopped; DYNAMIC marks them as not from a spec. EEXIST for a
    // name in use among SUP's children and pools, EINVAL when SUP is not a supervisor, ECANCELED
    // during shutdown (for remove too). The ticket finishes once they are up (ok) or failed to
    // start for good (EIO); at once when SUP is not up.
    struct Added {
        std::vector<Node *> nodes;
        std::uint64_t ticket;
    };
    Result<Added> add(Node &sup, std::size_t position, const ChildSpec &spec, Time now,
                      bool dynamic = false);
    // Sets the pool NAME of SUP to COUNT instances: new ones are started in
    // order, surplus ones removed highest first. The ticket finishes when it is
    // done. EINVAL when SUP has no such pool, EBUSY while it is shrinking.
    Result<std::uint64_t> scale(Node &sup, const std::string &name, unsigned count, Time now);
    // Removes the pool NAME of SUP: its instances as remove() does, then the pool.
    Result<std::uint64_t> remove_pool(Node &sup, const std::string &name, Time now);
    // The pool NAME of SUP, or null.
    static Node::Pool *pool(Node &sup, std::string_view name);
    // The instances of pool NAME of SUP (including ones being removed), in order.
    static std::vector<Node *> instances(Node &sup, std::string_view name);
    // Orders SUP's children (and pools) as NAMES says; names not in it keep
    // their order after those that are. Start and stop order follow from now on.
    void reorder(Node &sup, const std::vector<std::string> &names);
    // Stops NODE (a subtree in reverse order) and then removes it from the tree.
    // Returns a ticket that finishes once it is gone. EINVAL for the root.
    Result<std::uint64_t> remove(Node &node, Time now);
    // Points NODE at a new definition of its kind (a worker's for a worker, a
    // supervisor's for a supervisor; EINVAL otherwise). A supervisor's new
    // strategy and intensity apply from now on and keep its restart history;
    // its children are changed with add/remove/redefine, not by this. With
    // Redefine::Restart a running worker is stopped and started again (no
    // strategy, not counted); the ticket finishes when it is up again (at once
    // for InPlace or a worker that is not up).
    Result<std::uint64_t> redefine(Node &node, std::shared_ptr<const WorkerSpec> worker,
                                   Redefine how, Time now);
    Result<std::uint64_t> redefine(Node &node, std::shared_ptr<const SupervisorSpec> sup, Time now);

    // The whole state as a value; Tree(snapshot(), fx) continues exactly here.
    Snapshot snapshot() const;

    // True when every node of NODES is ready.
    static bool all_ready(const std::vector<Node *> &nodes);

    Node &root() { return *root_; }
    const Node &root() const { return *root_; }
    Node *node_by_id(std::uint64_t id);
    Node *node_by_pid(pid_t pid);
    std::size_t node_count() const { return by_id_.size(); }
    // Every node, depth first in start order, from NODE.
    static void walk(Node &node, const std::function<void(Node &)> &fn);
    // Counts for a one-line summary.
    struct Summary {
        std::size_t running = 0, starting = 0, stopping = 0, exited = 0, failed = 0, stopped = 0,
                    backoff = 0;
    };
    Summary summary() const;

private:
    enum class Op { Start, Stop, Restart, Remove, Redefine, Scale };
    // A command in flight. Nodes are named by id: one may be removed meanwhile.
    struct Pending {
        std::uint64_t ticket;
        Op op;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> nodes;  // id, starts at issue
        std::vector<std::string> paths;                              // for messages
        std::vector<std::uint64_t> removals;                         // ids that must be gone
        bool operator==(const Pending &) const = default;
    };
    friend struct Snapshot;

    // The path an unknown PATH most likely meant, if one is close.
    std::optional<std::string> suggest_path(std::string_view path) const;
    std::unique_ptr<Node> make_node(Node &parent, const ChildSpec &spec, unsigned instance,
                                    bool instanced, std::uint64_t id);
    // A rank for a new child at POSITION among SUP's children (ranks spread out
    // first when there is no room between its neighbours).
    static std::uint64_t rank_at(Node &sup, std::size_t position);
    // Marks NODE for removal (held, stopped, then erased by its parent).
    void begin_remove(Node &node);
    void build(Node &node, const SupervisorSpec &spec);
    void restore(Node &node, const NodeSnapshot &s);
    static void snap(const Node &node, NodeSnapshot &out);
    // Renumbers SUP's children and rebuilds its marks (after an insert or removal).
    static void reindex(Node &sup);
    // Removes SUP's children that are marked removing and are down.
    void erase_removed(Node &sup);
    void forget(Node &node);

    void mark_dirty(Node &sup);
    void drain(Time now);
    void advance(Node &sup, Time now);
    void begin_start(Node &child, Time now);
    void begin_stop(Node &child, Time now);
    void begin_supervisor_start(Node &sup, Time now);
    void begin_supervisor_stop(Node &sup, bool failing, Time now);
    void child_down(Node &sup, Node &child, bool abnormal, bool start_failure, Time now);
    // Marks the restart of CHILD and, by SUP's strategy, of its siblings; with
    // DELAY > 0 CHILD waits in State::Backoff until now + DELAY instead.
    void apply_strategy(Node &sup, Node &child, Duration delay, Time now);
    // The delay of CHILD's next restart at NOW (0 without a backoff).
    Duration backoff_delay(Node &child, Time now);
    // Ends CHILD's backoff wait: it becomes STATE.
    void cancel_backoff(Node &child, State state);
    void supervisor_finished_stopping(Node &sup, Time now);
    // The only writers of Node::state, want_stop and want_start: they keep the
    // parent's marks and counters in step.
    static void set_state(Node &n, State s);
    static void set_want_stop(Node &n, bool v);
    static void set_want_start(Node &n, bool v);
    void set_deadline(Node &w, Time t);
    void clear_deadline(Node &w);
    // The time now: NOW, the event's, or later when the world says so
    // (Effects::now): what deadlines are measured from.
    Time fresh(Time now);
    std::uint64_t track(Op op, const std::vector<Node *> &nodes,
                        const std::vector<Node *> &removals = {});
    void check_pending();
    bool pending_done(const Pending &p, Result<void> &out) const;
    void emit(Event::Kind k, const Node &n, Time now, std::size_t count = 0, std::string msg = {});

    Effects &fx_;
    std::unique_ptr<Node> root_;
    std::unordered_map<std::uint64_t, Node *> by_id_;
    std::unordered_map<pid_t, Node *> by_pid_;
    std::set<std::pair<Time, Node *>> deadlines_;
    std::vector<Node *> dirty_;
    bool draining_ = false;
    bool shutting_down_ = false;
    bool hurry_ = false;
    bool exited_ = false;
    std::uint64_t next_id_ = 0;
    std::uint64_t next_ticket_ = 1;
    std::vector<Pending> pending_;
    std::vector<Finished> finished_;
};

struct Snapshot {
    NodeSnapshot root;
    std::uint64_t next_id = 0, next_ticket = 1;
    bool shutting_down = false, hurry = false, exited = false;
    std::vector<Tree::Pending> pending;
    std::vector<Tree::Finished> finished;
    bool operator==(const Snapshot &) const = default;
};

}  // namespace chip::core
