// The event stream's subscribers (README.md, "chipctl events"): which control
// connections follow events, and of which part of the tree. Each follows the
// whole tree ("/"), a node and its subtree, or a pool (its instances, also
// those a later scale adds).
//
// Pure bookkeeping: no socket (control.hpp sends the lines), no formatting
// (events.hpp words them once for all subscribers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tree.hpp"

namespace chip::daemon {

class Subscribers {
public:
    struct Filter {
        std::vector<std::string> paths;  // nodes followed with their subtrees; "/": all
        std::string pool_parent;         // a pool: its supervisor's path ...
        std::string pool;                // ... and its name; empty: no pool
    };

    // CONN follows what FILTER selects (replacing what it followed).
    void add(std::uint64_t conn, Filter filter);
    // CONN is gone.
    void remove(std::uint64_t conn);
    bool empty() const { return subs_.empty(); }
    std::size_t size() const { return subs_.size(); }

    // The connections an event of NODE goes to; NODE null (an event of no
    // node of the tree: a reload, a registry change of a pid that is not a
    // worker): those following the whole tree.
    std::vector<std::uint64_t> of(const core::Node *node) const;

private:
    struct Sub {
        std::uint64_t conn;
        Filter filter;
        bool all;
    };
    static bool selects(const Sub &s, const core::Node &node);
    std::vector<Sub> subs_;
};

}  // namespace chip::daemon
