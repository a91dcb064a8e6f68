// The supervision core. The model is described at the top of tree.hpp.
#include "core/tree.hpp"

#include <cerrno>
#include <csignal>

namespace chip::core {

namespace {

bool is_up(State s) {
    return s == State::Starting || s == State::Running;
}

std::string seconds_text(Duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

}  // namespace

const char *state_name(State s) {
    switch (s) {
        case State::Starting:
            return "starting";
        case State::Running:
            return "running";
        case State::Stopping:
            return "stopping";
        case State::Exited:
            return "exited";
        case State::Failed:
            return "failed";
        case State::Stopped:
            return "stopped";
    }
    return "?";
}

const char *event_name(Event::Kind k) {
    switch (k) {
        case Event::Kind::Start:
            return "start";
        case Event::Kind::Ready:
            return "ready";
        case Event::Kind::Exit:
            return "exit";
        case Event::Kind::StartFailed:
            return "start-failed";
        case Event::Kind::Restart:
            return "restart";
        case Event::Kind::GiveUp:
            return "give-up";
        case Event::Kind::Stop:
            return "stop";
        case Event::Kind::Stopped:
            return "stopped";
        case Event::Kind::Kill:
            return "kill";
        case Event::Kind::Started:
            return "started";
    }
    return "?";
}

Tree::Tree(const SupervisorSpec &root, Effects &fx) : fx_(fx) {
    root_ = std::make_unique<Node>();
    root_->name = "/";
    root_->path = "/";
    root_->base = "/";
    root_->is_supervisor = true;
    root_->sup = &root;
    root_->id = 0;
    by_id_.push_back(root_.get());
    build(*root_, root);
}

void Tree::build(Node &node, const SupervisorSpec &spec) {
    node.intensity.emplace(spec.max_restarts, spec.period);
    for (const auto &c : spec.children) {
        if (!c.is_supervisor && c.worker.instances >= 2) {
            for (unsigned i = 0; i < c.worker.instances; ++i) add_child(node, c, i, true);
        } else {
            add_child(node, c, 0, false);
        }
    }
}

void Tree::add_child(Node &parent, const ChildSpec &spec, unsigned instance, bool instanced) {
    auto n = std::make_unique<Node>();
    n->base = spec.name;
    n->name = instanced ? spec.name + "." + std::to_string(instance) : spec.name;
    n->path = parent.parent ? parent.path + "/" + n->name : n->name;
    n->parent = &parent;
    n->index = parent.children.size();
    n->id = static_cast<std::uint32_t>(by_id_.size());
    n->instance = instance;
    by_id_.push_back(n.get());
    Node &ref = *n;
    parent.children.push_back(std::move(n));
    if (spec.is_supervisor) {
        ref.is_supervisor = true;
        ref.sup = &spec.supervisor;
        build(ref, spec.supervisor);
    } else {
        ref.worker = &spec.worker;
    }
}

// ---- events ----------------------------------------------------------------

void Tree::start(Time now) {
    begin_supervisor_start(*root_, now);
    drain(now);
}

void Tree::shutdown(Time now) {
    if (exited_) return;
    shutting_down_ = true;
    Node &r = *root_;
    if (is_up(r.state)) {
        r.held = true;
        begin_supervisor_stop(r, false, now);
    } else if (r.state != State::Stopping) {
        exited_ = true;
        fx_.exit(r.state == State::Failed ? 1 : 0);
        return;
    }
    drain(now);
}

void Tree::hurry(Time now) {
    if (!shutting_down_) shutdown(now);
    hurry_ = true;
    walk(*root_, [&](Node &n) {
        if (!n.is_supervisor && n.state == State::Stopping && n.pid && !n.killed) {
            emit(Event::Kind::Kill, n, now);
            fx_.kill_group(n.pid, SIGKILL);
            n.killed = true;
            clear_deadline(n);
        }
    });
    drain(now);
}

void Tree::on_exit(pid_t pid, ExitStatus status, Time now) {
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return;
    Node &w = *it->second;
    by_pid_.erase(it);
    w.pid = 0;
    w.last_exit = status;
    clear_deadline(w);
    Event e{Event::Kind::Exit, &w, pid, status, 0, {}};
    fx_.log(e);
    Node &sup = *w.parent;
    switch (w.state) {
        case State::Stopping:
            set_state(w, State::Stopped);
            emit(Event::Kind::Stopped, w, now);
            mark_dirty(sup);
            break;
        case State::Starting:
            set_state(w, State::Failed);
            emit(Event::Kind::StartFailed, w, now, 0,
                 w.timed_out
                     ? "did not become ready within " + seconds_text(w.worker->start_timeout)
                     : "exited before it was ready");
            child_down(sup, w, true, true, now);
            break;
        case State::Running:
            child_down(sup, w, status.signaled || status.value != 0, false, now);
            break;
        default:
            break;
    }
    drain(now);
}

void Tree::on_ready(std::uint32_t id, Time now) {
    Node *w = node_by_id(id);
    if (!w || w->is_supervisor || w->state != State::Starting || w->timed_out) return;
    set_state(*w, State::Running);
    w->manual_start = false;
    clear_deadline(*w);
    emit(Event::Kind::Ready, *w, now);
    mark_dirty(*w->parent);
    drain(now);
}

void Tree::on_time(Time now) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        Node &w = *deadlines_.begin()->second;
        deadlines_.erase(deadlines_.begin());
        w.deadline = Time{};
        if (!w.pid || w.killed) continue;
        if (w.state == State::Starting) {
            // start_timeout: the start failed; the failure is handled at its exit.
            w.timed_out = true;
        } else if (w.state != State::Stopping) {
            continue;
        }
        emit(Event::Kind::Kill, w, now, 0,
             w.timed_out ? "start_timeout passed" : "stop_timeout passed");
        fx_.kill_group(w.pid, SIGKILL);
        w.killed = true;
    }
    drain(now);
}

std::optional<Time> Tree::next_deadline() const {
    if (deadlines_.empty()) return std::nullopt;
    return deadlines_.begin()->first;
}

// ---- the supervisor step ---------------------------------------------------

void Tree::mark_dirty(Node &sup) {
    if (sup.queued) return;
    sup.queued = true;
    dirty_.push_back(&sup);
}

void Tree::drain(Time now) {
    if (draining_) return;
    draining_ = true;
    // FIFO: a child supervisor that finishes queues its parent behind it.
    for (std::size_t i = 0; i < dirty_.size(); ++i) {
        Node *s = dirty_[i];
        s->queued = false;
        advance(*s, now);
    }
    dirty_.clear();
    draining_ = false;
    check_pending();
}

void Tree::advance(Node &sup, Time now) {
    for (;;) {
        if (!is_up(sup.state) && sup.state != State::Stopping) return;
        // Stops first, highest index first, one at a time.
        if (sup.n_stopping > 0) return;
        if (!sup.stop_marks.empty()) {
            Node &stop = *sup.children[*sup.stop_marks.rbegin()];
            set_want_stop(stop, false);
            if (is_up(stop.state)) begin_stop(stop, now);
            continue;
        }
        if (sup.state == State::Stopping) {
            supervisor_finished_stopping(sup, now);
            return;
        }
        // Then starts, lowest index first, each ready before the next.
        if (sup.n_starting > 0) return;
        if (!sup.start_marks.empty()) {
            Node &start = *sup.children[*sup.start_marks.begin()];
            set_want_start(start, false);
            if (!start.held) begin_start(start, now);
            continue;
        }
        if (sup.state == State::Starting) {
            set_state(sup, State::Running);
            sup.manual_start = false;
            emit(Event::Kind::Started, sup, now);
            if (sup.parent) mark_dirty(*sup.parent);
        }
        return;
    }
}

void Tree::set_state(Node &n, State s) {
    if (n.parent) {
        Node &p = *n.parent;
        if (n.state == State::Starting) --p.n_starting;
        if (n.state == State::Stopping) --p.n_stopping;
        if (s == State::Starting) ++p.n_starting;
        if (s == State::Stopping) ++p.n_stopping;
    }
    n.state = s;
}

void Tree::set_want_stop(Node &n, bool v) {
    if (n.want_stop == v) return;
    n.want_stop = v;
    if (!n.parent) return;
    if (v)
        n.parent->stop_marks.insert(n.index);
    else
        n.parent->stop_marks.erase(n.index);
}

void Tree::set_want_start(Node &n, bool v) {
    if (n.want_start == v) return;
    n.want_start = v;
    if (!n.parent) return;
    if (v)
        n.parent->start_marks.insert(n.index);
    else
        n.parent->start_marks.erase(n.index);
}

void Tree::begin_start(Node &child, Time now) {
    if (child.is_supervisor) {
        begin_supervisor_start(child, now);
        return;
    }
    if (++child.starts > 1) ++child.restarts;
    child.timed_out = false;
    child.killed = false;
    child.since = now;
    auto pid = fx_.spawn(child);
    if (!pid) {
        set_state(child, State::Failed);
        emit(Event::Kind::StartFailed, child, now, 0, pid.error().message);
        child_down(*child.parent, child, true, true, now);
        return;
    }
    child.pid = *pid;
    by_pid_[child.pid] = &child;
    Event e{Event::Kind::Start, &child, child.pid, {}, 0, {}};
    fx_.log(e);
    if (child.worker->ready == ReadyMode::Started) {
        set_state(child, State::Running);
        child.manual_start = false;
    } else {
        set_state(child, State::Starting);
        set_deadline(child, now + child.worker->start_timeout);
    }
}

void Tree::begin_stop(Node &child, Time now) {
    if (child.is_supervisor) {
        begin_supervisor_stop(child, false, now);
        return;
    }
    if (!child.pid) {
        set_state(child, State::Stopped);
        return;
    }
    emit(Event::Kind::Stop, child, now);
    set_state(child, State::Stopping);
    clear_deadline(child);
    const WorkerSpec &w = *child.worker;
    if (hurry_ || w.stop_signal == SIGKILL || w.stop_timeout <= Duration::zero()) {
        fx_.kill_group(child.pid, SIGKILL);
        child.killed = true;
        return;
    }
    fx_.kill_group(child.pid, w.stop_signal);
    // A stopped (SIGSTOP) process would never act on the stop signal.
    if (w.stop_signal != SIGCONT) fx_.kill_group(child.pid, SIGCONT);
    set_deadline(child, now + w.stop_timeout);
}

void Tree::begin_supervisor_start(Node &sup, Time now) {
    if (++sup.starts > 1) ++sup.restarts;
    set_state(sup, State::Starting);
    sup.since = now;
    sup.fail_after_stop = false;
    sup.failing_start = false;
    sup.intensity->reset();
    for (auto &c : sup.children) {
        set_want_stop(*c, false);
        set_want_start(*c, !c->held);
        // The supervisor's own start: a child's failure fails it, even if a
        // user start of that child was cut short before.
        c->manual_start = false;
    }
    mark_dirty(sup);
}

void Tree::begin_supervisor_stop(Node &sup, bool failing, Time now) {
    if (!failing) emit(Event::Kind::Stop, sup, now);
    set_state(sup, State::Stopping);
    sup.fail_after_stop = failing;
    for (auto &c : sup.children) {
        set_want_start(*c, false);
        set_want_stop(*c, is_up(c->state));
    }
    mark_dirty(sup);
}

void Tree::supervisor_finished_stopping(Node &sup, Time now) {
    bool failed = sup.fail_after_stop;
    bool during_start = sup.failing_start;
    sup.fail_after_stop = false;
    sup.failing_start = false;
    set_state(sup, failed ? State::Failed : State::Stopped);
    if (!failed) emit(Event::Kind::Stopped, sup, now);
    if (!sup.parent) {
        if (failed || shutting_down_) {
            exited_ = true;
            fx_.exit(failed ? 1 : 0);
        } else if (sup.want_start) {
            // `start /` arrived while it was stopping: the root has no parent to
            // start it, so it starts itself.
            set_want_start(sup, false);
            begin_supervisor_start(sup, now);
        }
        return;
    }
    if (failed) {
        child_down(*sup.parent, sup, true, during_start, now);
    } else {
        mark_dirty(*sup.parent);
    }
}

void Tree::child_down(Node &sup, Node &child, bool abnormal, bool start_failure, Time now) {
    mark_dirty(sup);
    if (!is_up(sup.state)) {
        if (child.state != State::Failed) set_state(child, State::Stopped);
        return;
    }
    if (start_failure && child.manual_start) {
        // A start the user asked for: reported to the command, never retried.
        child.manual_start = false;
        set_state(child, State::Failed);
        return;
    }
    if (start_failure && sup.state == State::Starting) {
        set_state(child, State::Failed);
        sup.failing_start = true;
        emit(Event::Kind::StartFailed, sup, now, 0, "child " + child.name + " failed to start");
        begin_supervisor_stop(sup, true, now);
        return;
    }
    RestartType type = child.is_supervisor ? RestartType::Permanent : child.worker->restart;
    bool restart = type == RestartType::Permanent || (type == RestartType::Transient && abnormal);
    // A supervisor only comes down by failing (it gave up or its start failed).
    set_state(child, start_failure || child.is_supervisor ? State::Failed : State::Exited);
    if (child.held) {
        // The user is stopping it and it died before its turn: it is stopped.
        if (child.state == State::Exited) set_state(child, State::Stopped);
        return;
    }
    if (!restart) return;
    if (!sup.intensity->record(now)) {
        emit(Event::Kind::GiveUp, sup, now, sup.sup->max_restarts,
             "more than " + std::to_string(sup.sup->max_restarts) + " restarts within " +
                 seconds_text(sup.sup->period));
        begin_supervisor_stop(sup, true, now);
        return;
    }
    emit(Event::Kind::Restart, child, now, sup.intensity->count());
    apply_strategy(sup, child);
}

void Tree::apply_strategy(Node &sup, Node &child) {
    set_want_start(child, true);
    Strategy s = sup.sup->strategy;
    if (s == Strategy::OneForOne) return;
    for (auto &d : sup.children) {
        if (d.get() == &child || d->held) continue;
        if (s == Strategy::RestForOne && d->index < child.index) continue;
        // As in OTP, a temporary sibling is stopped with the others but never
        // restarted.
        bool temporary = !d->is_supervisor && d->worker->restart == RestartType::Temporary;
        if (is_up(d->state)) {
            set_want_stop(*d, true);
            set_want_start(*d, !temporary);
        } else if (d->state == State::Stopping) {
            set_want_start(*d, !temporary);
        }
    }
}

// ---- deadlines -------------------------------------------------------------

void Tree::set_deadline(Node &w, Time t) {
    clear_deadline(w);
    w.deadline = t;
    deadlines_.emplace(t, &w);
}

void Tree::clear_deadline(Node &w) {
    if (w.deadline == Time{}) return;
    deadlines_.erase({w.deadline, &w});
    w.deadline = Time{};
}

// ---- commands --------------------------------------------------------------

Result<std::vector<Node *>> Tree::resolve(std::string_view path) {
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (path.empty()) return std::vector<Node *>{root_.get()};
    Node *cur = root_.get();
    std::string_view rest = path;
    for (;;) {
        auto slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        bool last = slash == std::string_view::npos;
        Node *found = nullptr;
        for (auto &c : cur->children)
            if (c->name == seg) found = c.get();
        if (found && (last || found->is_supervisor)) {
            if (last) return std::vector<Node *>{found};
            cur = found;
            rest = rest.substr(slash + 1);
            continue;
        }
        if (last) {
            std::vector<Node *> group;
            for (auto &c : cur->children)
                if (!c->is_supervisor && c->base == seg && c->worker->instances >= 2)
                    group.push_back(c.get());
            if (!group.empty()) return group;
        }
        return make_error(ENOENT, "unknown path \"" + std::string(path) + "\"");
    }
}

Result<std::uint64_t> Tree::command(Command cmd, std::string_view path, Time now) {
    if (shutting_down_) return make_error(ECANCELED, "chipd is shutting down");
    auto nodes = resolve(path);
    if (!nodes) return nodes.error();
    std::vector<Node *> targets = *nodes;
    if (cmd == Command::Restart && targets.size() == 1 && targets[0] == root_.get()) {
        // Restarting "/" restarts every top-level child, in order.
        targets.clear();
        for (auto &c : root_->children) targets.push_back(c.get());
    }
    if (cmd != Command::Stop) {
        for (Node *n : targets) {
            if (n->parent && !is_up(n->parent->state))
                return make_error(EBUSY, "cannot start " + n->path + ": its supervisor " +
                                             n->parent->path + " is " +
                                             state_name(n->parent->state));
        }
    }
    std::uint64_t ticket = next_ticket_++;
    Pending p{ticket, cmd, {}};
    for (Node *n : targets) {
        p.nodes.emplace_back(n, n->starts);
        switch (cmd) {
            case Command::Stop:
                n->held = true;
                set_want_start(*n, false);
                n->manual_start = false;
                if (!n->parent) {
                    if (is_up(n->state)) begin_supervisor_stop(*n, false, now);
                } else if (is_up(n->state)) {
                    set_want_stop(*n, true);
                    mark_dirty(*n->parent);
                }
                break;
            case Command::Start:
                n->held = false;
                if (is_up(n->state) || n->state == State::Stopping) {
                    if (n->state == State::Stopping) {
                        n->manual_start = true;
                        set_want_start(*n, true);
                        if (n->parent) mark_dirty(*n->parent);
                    }
                    break;
                }
                n->manual_start = true;
                if (!n->parent) {
                    begin_supervisor_start(*n, now);
                } else {
                    set_want_start(*n, true);
                    mark_dirty(*n->parent);
                }
                break;
            case Command::Restart:
                n->held = false;
                n->manual_start = true;
                set_want_start(*n, true);
                if (is_up(n->state)) set_want_stop(*n, true);
                mark_dirty(*n->parent);
                break;
        }
    }
    pending_.push_back(std::move(p));
    drain(now);
    return ticket;
}

bool Tree::pending_done(const Pending &p, Result<void> &out) const {
    std::string failure;
    for (const auto &[n, starts0] : p.nodes) {
        bool restarted = n->starts > starts0;
        if (p.cmd == Command::Stop) {
            // Started again since (a later start): it did stop in between.
            if (restarted) continue;
            if (is_up(n->state) || n->state == State::Stopping || n->want_stop) return false;
            continue;
        }
        bool fresh = p.cmd == Command::Start || restarted;
        if (n->state == State::Running && fresh) continue;
        if (n->want_start || n->want_stop || n->state == State::Starting ||
            n->state == State::Stopping)
            return false;
        // Its supervisor went down for good meanwhile: nothing will start it.
        const Node *sup = n->parent;
        bool orphaned =
            sup && !is_up(sup->state) && sup->state != State::Stopping && !sup->want_start;
        if (p.cmd == Command::Restart && !restarted && !n->held && !orphaned) return false;
        if (n->state == State::Exited && n->last_exit && !n->last_exit->signaled &&
            n->last_exit->value == 0 && restarted)
            continue;  // a job that ran and finished
        if (failure.empty()) {
            failure = n->path +
                      (n->held    ? " was stopped before it was ready"
                       : orphaned ? " was not started: its supervisor " + sup->path + " is " +
                                        state_name(sup->state)
                                  : " failed to start (" + std::string(state_name(n->state)) + ")");
        }
    }
    out = failure.empty() ? Result<void>{} : Result<void>{make_error(EIO, failure)};
    return true;
}

void Tree::check_pending() {
    for (std::size_t i = 0; i < pending_.size();) {
        Result<void> r;
        if (pending_done(pending_[i], r)) {
            finished_.push_back({pending_[i].ticket, r});
            pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
            ++i;
        }
    }
}

std::vector<Tree::Finished> Tree::take_finished() {
    std::vector<Finished> out;
    out.swap(finished_);
    return out;
}

bool Tree::all_ready(const std::vector<Node *> &nodes) {
    for (const Node *n : nodes)
        if (!n->ready()) return false;
    return true;
}

Node *Tree::node_by_pid(pid_t pid) {
    auto it = by_pid_.find(pid);
    return it == by_pid_.end() ? nullptr : it->second;
}

void Tree::walk(Node &node, const std::function<void(Node &)> &fn) {
    fn(node);
    for (auto &c : node.children) walk(*c, fn);
}

Tree::Summary Tree::summary() const {
    Summary s;
    walk(*root_, [&](Node &n) {
        if (n.is_supervisor) return;
        switch (n.state) {
            case State::Running:
                ++s.running;
                break;
            case State::Starting:
                ++s.starting;
                break;
            case State::Stopping:
                ++s.stopping;
                break;
            case State::Exited:
                ++s.exited;
                break;
            case State::Failed:
                ++s.failed;
                break;
            case State::Stopped:
                ++s.stopped;
                break;
        }
    });
    return s;
}

void Tree::emit(Event::Kind k, const Node &n, Time, std::size_t count, std::string msg) {
    Event e{k, &n, n.pid, {}, count, std::move(msg)};
    fx_.log(e);
}

}  // namespace chip::core
