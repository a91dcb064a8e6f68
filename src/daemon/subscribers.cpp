#include "daemon/subscribers.hpp"

#include <algorithm>

namespace chip::daemon {

void Subscribers::add(std::uint64_t conn, Filter filter) {
    remove(conn);
    bool all = std::find(filter.paths.begin(), filter.paths.end(), "/") != filter.paths.end();
    subs_.push_back(Sub{conn, std::move(filter), all});
}

void Subscribers::remove(std::uint64_t conn) {
    std::erase_if(subs_, [conn](const Sub &s) { return s.conn == conn; });
}

bool Subscribers::selects(const Sub &s, const core::Node &node) {
    // NODE or one of its supervisors is followed.
    for (const core::Node *n = &node; n; n = n->parent) {
        for (const auto &p : s.filter.paths)
            if (n->path == p) return true;
        if (!s.filter.pool.empty() && n->pooled() && n->base == s.filter.pool && n->parent &&
            n->parent->path == s.filter.pool_parent)
            return true;
    }
    return false;
}

std::vector<std::uint64_t> Subscribers::of(const core::Node *node) const {
    std::vector<std::uint64_t> out;
    for (const auto &s : subs_)
        if (s.all || (node && selects(s, *node))) out.push_back(s.conn);
    return out;
}

}  // namespace chip::daemon
