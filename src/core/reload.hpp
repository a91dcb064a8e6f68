// Changing a running tree to match a new definition, step by step: the plan
// (what to change, in the order the README promises: removals, updates,
// restarts, additions) and its executor. The plan is made elsewhere (by
// comparing specs, src/spec/diff.hpp); here it is only carried out, through the
// Tree's own operations (remove, redefine, add, scale), never by starting or
// stopping a process directly.
//
// Removals are issued together and waited for; updates take effect at once;
// restarts go one at a time, each waited for until the worker is up again (so
// a pool restarts rolling, N-1 instances serving throughout); additions are
// issued together and waited for until they are up. A step whose node is gone
// meanwhile is skipped; a start that fails is the tree's business as any
// failed start, and makes the reload's result EIO.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "core/spec.hpp"
#include "core/tree.hpp"

namespace chip::core {

struct Step {
    enum class Action {
        Remove,            // node: stop and remove (a subtree in reverse order)
        RemovePool,        // sup + name: every instance, then the pool
        Shrink,            // sup + name: scale the pool down to count
        UpdateWorker,      // node: worker, in place
        UpdateSupervisor,  // node: supervisor, in place (strategy, intensity)
        UpdatePool,        // sup + name: the pool's definition for new instances
        Reorder,           // node: its children in the order of names
        RestartWorker,     // node: worker, stopped and started again with it
        Add,               // sup: child, placed by names (the new order) and its index there
        Grow,              // sup + name: scale the pool up to count
    };
    Action action;
    std::string path;        // what the change list shows ("web/api.2")
    std::uint64_t node = 0;  // the node acted on (node actions) or its supervisor
    std::string name;        // pool name
    unsigned count = 0;      // Shrink, Grow
    std::shared_ptr<const WorkerSpec> worker;
    std::shared_ptr<const SupervisorSpec> supervisor;
    ChildSpec child;  // Add
    // Reorder, Add: the children's names in the new order (shared by the steps
    // of one supervisor).
    std::shared_ptr<const std::vector<std::string>> names;
};

// One line of the change list: what happened to PATH.
struct Change {
    enum class Kind { Add, Remove, Restart, Update };
    std::string path;
    Kind kind;
    bool operator==(const Change &) const = default;
};
const char *change_name(Change::Kind k);

struct Plan {
    std::vector<Step> removals, updates, restarts, additions;
    std::vector<Change> changes;  // in the order they are applied
    bool empty() const { return changes.empty(); }
};

class Reload {
public:
    Reload(Tree &tree, Plan plan) : tree_(tree), plan_(std::move(plan)) {}

    // Begins: the removals, or the first phase that has steps.
    void begin(Time now);
    // A ticket of the tree finished: true when it was one of this reload's
    // (then it is consumed here and may start the next phase).
    bool on_finished(const Tree::Finished &f, Time now);
    bool done() const { return phase_ == Phase::Done && waiting_.empty(); }
    // Once done: ok, or EIO naming what failed.
    const Result<void> &result() const { return result_; }
    const std::vector<Change> &changes() const { return plan_.changes; }

private:
    enum class Phase { Removals, Updates, Restarts, Additions, Done };
    void run(Time now);
    void issue(const Step &s, Time now);
    void note(const Result<void> &r);

    Tree &tree_;
    Plan plan_;
    Phase phase_ = Phase::Removals;
    std::size_t next_restart_ = 0;
    std::vector<std::uint64_t> waiting_;  // tickets of the phase under way
    Result<void> result_;
    // For Add: each new order's names by their place in it.
    std::unordered_map<const std::vector<std::string> *,
                       std::unordered_map<std::string, std::size_t>>
        places_;
};

}  // namespace chip::core
