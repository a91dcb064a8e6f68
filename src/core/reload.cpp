// Carrying out a reload plan; the order of phases is described in reload.hpp.
#include "core/reload.hpp"

#include <algorithm>
#include <cerrno>

namespace chip::core {

const char *change_name(Change::Kind k) {
    switch (k) {
        case Change::Kind::Add:
            return "add";
        case Change::Kind::Remove:
            return "remove";
        case Change::Kind::Restart:
            return "restart";
        case Change::Kind::Update:
            return "update";
    }
    return "?";
}

void Reload::begin(Time now) {
    run(now);
}

bool Reload::on_finished(const Tree::Finished &f, Time now) {
    auto it = std::find(waiting_.begin(), waiting_.end(), f.ticket);
    if (it == waiting_.end()) return false;
    waiting_.erase(it);
    note(f.result);
    if (waiting_.empty()) run(now);
    return true;
}

void Reload::note(const Result<void> &r) {
    if (!r && result_) result_ = make_error(EIO, r.error().message);
}

// Advances through the phases until one waits for tickets, or all are issued.
void Reload::run(Time now) {
    while (waiting_.empty()) {
        switch (phase_) {
            case Phase::Removals:
                for (const Step &s : plan_.removals) issue(s, now);
                phase_ = Phase::Updates;
                break;
            case Phase::Updates:
                for (const Step &s : plan_.updates) issue(s, now);
                phase_ = Phase::Restarts;
                break;
            case Phase::Restarts:
                // One at a time: the next is stopped only once this one is up.
                if (next_restart_ < plan_.restarts.size())
                    issue(plan_.restarts[next_restart_++], now);
                else
                    phase_ = Phase::Additions;
                break;
            case Phase::Additions:
                for (const Step &s : plan_.additions) issue(s, now);
                phase_ = Phase::Done;
                break;
            case Phase::Done:
                return;
        }
    }
}

void Reload::issue(const Step &s, Time now) {
    using A = Step::Action;
    Node *n = tree_.node_by_id(s.node);
    if (!n) return;  // gone meanwhile (removed with its supervisor, or by the user)
    auto await_ticket = [&](const Result<std::uint64_t> &t) {
        if (t)
            waiting_.push_back(*t);
        else
            note(Result<void>{t.error()});
    };
    switch (s.action) {
        case A::Remove:
            await_ticket(tree_.remove(*n, now));
            break;
        case A::RemovePool:
            await_ticket(tree_.remove_pool(*n, s.name, now));
            break;
        case A::Shrink:
        case A::Grow:
            await_ticket(tree_.scale(*n, s.name, s.count, now));
            break;
        case A::UpdateWorker:
            (void)tree_.redefine(*n, s.worker, Redefine::InPlace, now);
            break;
        case A::UpdateSupervisor:
            (void)tree_.redefine(*n, s.supervisor, now);
            break;
        case A::UpdatePool:
            if (Node::Pool *p = Tree::pool(*n, s.name)) p->def = s.worker;
            break;
        case A::Reorder:
            tree_.reorder(*n, *s.names);
            break;
        case A::RestartWorker:
            await_ticket(tree_.redefine(*n, s.worker, Redefine::Restart, now));
            break;
        case A::Add: {
            // Its place: after every child that comes before it in the new order.
            auto &place = places_[s.names.get()];
            if (place.empty())
                for (std::size_t i = 0; i < s.names->size(); ++i) place.emplace((*s.names)[i], i);
            std::size_t index = place.at(s.child.name), position = 0;
            for (const auto &c : n->children)
                if (auto at = place.find(c->base); at != place.end() && at->second < index)
                    position = c->index + 1;
            auto added = tree_.add(*n, position, s.child, now);
            if (!added) {
                note(Result<void>{added.error()});
                break;
            }
            waiting_.push_back(added->ticket);
            break;
        }
    }
}

}  // namespace chip::core
