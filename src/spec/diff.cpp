// The reload diff; the rules are in diff.hpp, the order of the plan in
// core/reload.hpp.
#include "spec/diff.hpp"

#include <algorithm>
#include <map>
#include <unordered_set>

namespace chip::spec {

namespace {

using core::Change;
using core::Node;
using core::Step;

bool same_output(const OutputSpec &a, const OutputSpec &b) {
    return a.mode == b.mode && a.file == b.file && a.max_bytes == b.max_bytes && a.keep == b.keep;
}

bool needs_restart(const core::WorkerSpec &a, const core::WorkerSpec &b) {
    return a.ready != b.ready || !same_start(*a.launch, *b.launch);
}

bool needs_update(const core::WorkerSpec &a, const core::WorkerSpec &b) {
    return a.restart != b.restart || a.start_timeout != b.start_timeout ||
           a.stop_signal != b.stop_signal || a.stop_timeout != b.stop_timeout ||
           a.launch->join != b.launch->join || a.backoff != b.backoff || a.start != b.start;
}

bool same_policy(const core::SupervisorSpec &a, const core::SupervisorSpec &b) {
    return a.strategy == b.strategy && a.on_give_up == b.on_give_up &&
           a.max_restarts == b.max_restarts && a.period == b.period && a.backoff == b.backoff &&
           a.children_backoff == b.children_backoff && a.start == b.start;
}

// A child of the running supervisor as the spec names it: a single worker, a
// supervisor, or a pool with its instances.
struct Entity {
    enum class Kind { Worker, Supervisor, Pool } kind;
    const Node *node = nullptr;           // Worker, Supervisor
    const Node::Pool *pool = nullptr;     // Pool
    std::vector<const Node *> instances;  // Pool, in order, not being removed
    bool dynamic = false;
};

Step step(Step::Action action, std::string path, std::uint64_t node) {
    Step s{};
    s.action = action;
    s.path = std::move(path);
    s.node = node;
    return s;
}

std::string path_of(const Node &sup, const std::string &name) {
    return sup.parent ? sup.path + "/" + name : name;
}

class Differ {
public:
    core::Plan plan;

    // Removals are sorted by their place in the tree: its nodes numbered in
    // start order (depth first).
    explicit Differ(const Node &root) {
        std::size_t i = 0;
        number(root, i);
    }

    void supervisor(const Node &sup, const core::SupervisorSpec &next) {
        // The running children, by name, in their present order.
        std::map<std::string, Entity> old;
        std::vector<std::string> old_order;
        for (const auto &c : sup.children) {
            if (c->removing) continue;
            if (c->pooled()) continue;
            Entity e{c->is_supervisor ? Entity::Kind::Supervisor : Entity::Kind::Worker,
                     c.get(),
                     nullptr,
                     {},
                     c->dynamic};
            old.emplace(c->name, e);
        }
        for (const auto &p : sup.pools) {
            Entity e{Entity::Kind::Pool, nullptr, &p, {}, p.dynamic};
            for (const auto &c : sup.children)
                if (c->pooled() && c->base == p.name && !c->removing)
                    e.instances.push_back(c.get());
            old.emplace(p.name, e);
        }
        std::vector<std::pair<std::uint64_t, std::string>> ranked;
        for (const auto &[name, e] : old)
            ranked.emplace_back(e.kind == Entity::Kind::Pool ? e.pool->rank : e.node->rank, name);
        std::sort(ranked.begin(), ranked.end());
        for (const auto &r : ranked) old_order.push_back(r.second);

        auto names = std::make_shared<std::vector<std::string>>();
        std::unordered_set<std::string> in_next;
        for (const auto &c : next.children) {
            names->push_back(c.name);
            in_next.insert(c.name);
        }

        // Gone from the spec (nodes added at run time stay).
        for (const auto &name : old_order) {
            const Entity &e = old.at(name);
            if (e.dynamic || in_next.count(name)) continue;
            remove(sup, name, e);
        }

        bool updated = !same_policy(*sup.sup, next);
        // The order of the children in both: a change of it is an update.
        std::vector<std::string> kept_old, kept_new;
        for (const auto &n : old_order)
            if (in_next.count(n)) kept_old.push_back(n);
        for (const auto &n : *names)
            if (old.count(n)) kept_new.push_back(n);
        bool reordered = kept_old != kept_new;
        if (updated || reordered) {
            if (updated) {
                Step s = step(Step::Action::UpdateSupervisor, sup.path, sup.id);
                s.supervisor = std::make_shared<const core::SupervisorSpec>(next);
                plan.updates.push_back(s);
            }
            if (reordered) {
                Step s = step(Step::Action::Reorder, sup.path, sup.id);
                s.names = names;
                plan.updates.push_back(s);
            }
            update_changes.push_back({sup.path, Change::Kind::Update});
        }

        for (const auto &c : next.children) {
            auto it = old.find(c.name);
            std::string path = path_of(sup, c.name);
            bool pool = !c.is_supervisor && c.worker->instances;
            if (it == old.end()) {
                add(sup, c, names);
                continue;
            }
            const Entity &e = it->second;
            Entity::Kind kind = c.is_supervisor ? Entity::Kind::Supervisor
                                : pool          ? Entity::Kind::Pool
                                                : Entity::Kind::Worker;
            if (e.kind != kind) {
                remove(sup, c.name, e);
                add(sup, c, names);
                continue;
            }
            switch (kind) {
                case Entity::Kind::Supervisor:
                    supervisor(*e.node, *c.supervisor);
                    break;
                case Entity::Kind::Worker:
                    worker(*e.node, c.worker);
                    break;
                case Entity::Kind::Pool:
                    pool_of(sup, e, c.name, c.worker);
                    break;
            }
        }
    }

    // Removals are listed in reverse start order (the latest and deepest
    // first); the rest in tree order.
    core::Plan finish() {
        std::stable_sort(removals_.begin(), removals_.end(),
                         [](const Removal &a, const Removal &b) { return a.place > b.place; });
        for (auto &r : removals_) {
            plan.removals.push_back(std::move(r.step));
            plan.changes.insert(plan.changes.end(), r.changes.rbegin(), r.changes.rend());
        }
        for (auto *list : {&update_changes, &restart_changes, &add_changes})
            plan.changes.insert(plan.changes.end(), list->begin(), list->end());
        return std::move(plan);
    }

private:
    struct Removal {
        std::size_t place;  // of its last node in start order
        Step step;
        std::vector<Change> changes;  // in start order
    };
    std::vector<Removal> removals_;
    std::map<std::uint64_t, std::size_t> place_;  // node id -> its number in start order
    std::vector<Change> update_changes, restart_changes, add_changes;

    void number(const Node &n, std::size_t &i) {
        place_[n.id] = i++;
        for (const auto &c : n.children) number(*c, i);
    }
    void removal(Step step, const std::vector<const Node *> &nodes) {
        Removal r{0, std::move(step), {}};
        for (const Node *n : nodes) {
            r.place = std::max(r.place, place_[n->id]);
            r.changes.push_back({n->path, Change::Kind::Remove});
        }
        removals_.push_back(std::move(r));
    }

    void remove(const Node &sup, const std::string &name, const Entity &e) {
        if (e.kind == Entity::Kind::Pool) {
            Step s = step(Step::Action::RemovePool, path_of(sup, name), sup.id);
            s.name = name;
            removal(std::move(s), e.instances);
            return;
        }
        removal(step(Step::Action::Remove, e.node->path, e.node->id), {e.node});
    }

    void add(const Node &sup, const core::ChildSpec &c,
             const std::shared_ptr<const std::vector<std::string>> &names) {
        Step s = step(Step::Action::Add, path_of(sup, c.name), sup.id);
        s.child = c;
        s.names = names;
        plan.additions.push_back(s);
        if (!c.is_supervisor && c.worker->instances) {
            for (unsigned k = 0; k < *c.worker->instances; ++k)
                add_changes.push_back({s.path + "." + std::to_string(k), Change::Kind::Add});
        } else {
            add_changes.push_back({s.path, Change::Kind::Add});
        }
    }

    void worker(const Node &n, const std::shared_ptr<const core::WorkerSpec> &next) {
        if (needs_restart(*n.worker, *next)) {
            Step s = step(Step::Action::RestartWorker, n.path, n.id);
            s.worker = next;
            plan.restarts.push_back(s);
            restart_changes.push_back({n.path, Change::Kind::Restart});
        } else if (needs_update(*n.worker, *next)) {
            Step s = step(Step::Action::UpdateWorker, n.path, n.id);
            s.worker = next;
            plan.updates.push_back(s);
            update_changes.push_back({n.path, Change::Kind::Update});
        }
    }

    void pool_of(const Node &sup, const Entity &e, const std::string &name,
                 const std::shared_ptr<const core::WorkerSpec> &next) {
        unsigned have = static_cast<unsigned>(e.instances.size());
        unsigned want = *next->instances;
        if (want < have) {
            Step s = step(Step::Action::Shrink, path_of(sup, name), sup.id);
            s.name = name;
            s.count = want;
            removal(std::move(s), {e.instances.begin() + want, e.instances.end()});
        }
        bool restart = needs_restart(*e.pool->def, *next);
        bool update = !restart && needs_update(*e.pool->def, *next);
        if (restart || update || want != have) {
            Step s = step(Step::Action::UpdatePool, path_of(sup, name), sup.id);
            s.name = name;
            s.worker = next;
            plan.updates.push_back(s);
        }
        // Instance by instance: a restart of a pool is rolling.
        for (unsigned k = 0; k < std::min(want, have); ++k) {
            const Node &i = *e.instances[k];
            if (restart || needs_restart(*i.worker, *next) || needs_update(*i.worker, *next))
                worker(i, next);
        }
        if (want > have) {
            Step s = step(Step::Action::Grow, path_of(sup, name), sup.id);
            s.name = name;
            s.count = want;
            plan.additions.push_back(s);
            for (unsigned k = have; k < want; ++k)
                add_changes.push_back(
                    {path_of(sup, name) + "." + std::to_string(k), Change::Kind::Add});
        }
    }
};

}  // namespace

bool same_start(const Launch &a, const Launch &b) {
    return a.command == b.command && a.env == b.env && a.cwd == b.cwd && a.user == b.user &&
           a.group == b.group && a.uid == b.uid && a.gid == b.gid && a.login == b.login &&
           same_output(a.out, b.out) && same_output(a.err, b.err);
}

core::Plan diff(const core::Node &root, const core::SupervisorSpec &next) {
    Differ d(root);
    d.supervisor(root, next);
    return d.finish();
}

RegistryChanges diff_registries(const std::vector<RegistrySpec> &old,
                                const std::vector<RegistrySpec> &next) {
    RegistryChanges out;
    for (const auto &n : next) {
        auto o = std::find_if(old.begin(), old.end(),
                              [&](const RegistrySpec &r) { return r.name == n.name; });
        if (o == old.end()) {
            out.added.push_back(n);
        } else if (o->max_groups != n.max_groups || o->max_members != n.max_members) {
            out.refused.push_back(
                "registry " + n.name +
                ": its capacities cannot change while chipd runs (max_groups " +
                std::to_string(o->max_groups) + " -> " + std::to_string(n.max_groups) +
                ", max_members " + std::to_string(o->max_members) + " -> " +
                std::to_string(n.max_members) + "); restart chipd to change them");
        }
    }
    for (const auto &o : old)
        if (std::none_of(next.begin(), next.end(),
                         [&](const RegistrySpec &r) { return r.name == o.name; }))
            out.removed.push_back(o.name);
    return out;
}

}  // namespace chip::spec
