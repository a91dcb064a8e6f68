// The supervision core. The model is described at the top of tree.hpp.
#include "core/tree.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <map>

#include "common/names.hpp"
#include "common/suggest.hpp"

namespace chip::core {

namespace {

// Sibling ranks are spread this far apart, so that a child inserted between two
// rarely needs the others renumbered.
constexpr std::uint64_t kRankStep = std::uint64_t{1} << 20;

bool is_up(State s) {
    return s == State::Starting || s == State::Running;
}

// The backoff that applies to N: its own, else its supervisor's default.
const Backoff *backoff_of(const Node &n) {
    const auto &own = n.is_supervisor ? n.sup->backoff : n.worker->backoff;
    if (own) return &*own;
    if (n.parent && n.parent->sup && n.parent->sup->children_backoff)
        return &*n.parent->sup->children_backoff;
    return nullptr;
}

// "exit status 1", "signal KILL".
std::string exit_text(const std::optional<ExitStatus> &e) {
    if (!e) return "no exit";
    return e->signaled ? "signal " + signal_name(e->value)
                       : "exit status " + std::to_string(e->value);
}

bool stays_failed(const Node &n) {
    return n.is_supervisor && n.sup->on_give_up == OnGiveUp::StayFailed;
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
        case State::Backoff:
            return "backoff";
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
        case Event::Kind::Backoff:
            return "backoff";
        case Event::Kind::Failed:
            return "failed";
    }
    return "?";
}

Tree::Tree(std::shared_ptr<const SupervisorSpec> root, Effects &fx) : fx_(fx) {
    root_ = std::make_unique<Node>();
    root_->name = "/";
    root_->path = "/";
    root_->base = "/";
    root_->is_supervisor = true;
    root_->sup = std::move(root);
    root_->id = next_id_++;
    by_id_[root_->id] = root_.get();
    build(*root_, *root_->sup);
}

void Tree::build(Node &node, const SupervisorSpec &spec) {
    node.intensity.emplace(spec.max_restarts, spec.period);
    for (std::size_t k = 0; k < spec.children.size(); ++k) {
        const ChildSpec &c = spec.children[k];
        std::uint64_t rank = (k + 1) * kRankStep;
        bool pool = !c.is_supervisor && c.worker->instances;
        if (pool) node.pools.push_back({c.name, c.worker, rank, false});
        for (unsigned i = 0; i < (pool ? *c.worker->instances : 1u); ++i) {
            node.children.push_back(make_node(node, c, i, pool, next_id_++));
            node.children.back()->index = node.children.size() - 1;
            node.children.back()->rank = rank;
        }
    }
}

std::unique_ptr<Node> Tree::make_node(Node &parent, const ChildSpec &spec, unsigned instance,
                                      bool instanced, std::uint64_t id) {
    auto n = std::make_unique<Node>();
    n->base = spec.name;
    n->name = instanced ? spec.name + "." + std::to_string(instance) : spec.name;
    n->path = parent.parent ? parent.path + "/" + n->name : n->name;
    n->parent = &parent;
    n->id = id;
    n->instance = instance;
    by_id_[id] = n.get();
    if (spec.is_supervisor) {
        n->is_supervisor = true;
        n->sup = spec.supervisor;
        build(*n, *spec.supervisor);
    } else {
        n->worker = spec.worker;
    }
    // "start": false: stopped as if by the user, until a user start.
    n->held = !(spec.is_supervisor ? spec.supervisor->start : spec.worker->start);
    return n;
}

void Tree::reindex(Node &sup) {
    sup.stop_marks.clear();
    sup.start_marks.clear();
    sup.n_starting = sup.n_stopping = sup.n_removing = sup.n_backoff = 0;
    for (std::size_t i = 0; i < sup.children.size(); ++i) {
        Node &c = *sup.children[i];
        c.index = i;
        if (c.want_stop) sup.stop_marks.insert(i);
        if (c.want_start) sup.start_marks.insert(i);
        sup.n_starting += c.state == State::Starting;
        sup.n_stopping += c.state == State::Stopping;
        sup.n_removing += c.removing;
        sup.n_backoff += c.state == State::Backoff;
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
        // A root that stays failed was kept running on purpose: its shutdown
        // is a clean one.
        fx_.exit(r.state == State::Failed && !stays_failed(r) ? 1 : 0);
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
            w.reason = w.timed_out
                           ? "did not become ready within " + seconds_text(w.worker->start_timeout)
                           : "exited before it was ready (" + exit_text(status) + ")";
            emit(Event::Kind::StartFailed, w, now, 0, w.reason);
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

void Tree::on_ready(std::uint64_t id, Time now) {
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
        if (w.state == State::Backoff) {
            // Its wait is over: it takes its turn to start.
            set_state(w, State::Exited);
            set_want_start(w, true);
            mark_dirty(*w.parent);
            continue;
        }
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

bool Tree::settled() const {
    return root_->state == State::Running ||
           (root_->state == State::Failed && stays_failed(*root_));
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
        if (!s) continue;  // removed from the tree meanwhile
        s->queued = false;
        advance(*s, now);
    }
    dirty_.clear();
    draining_ = false;
    check_pending();
}

void Tree::advance(Node &sup, Time now) {
    for (;;) {
        if (sup.n_removing > 0 && sup.n_stopping == 0) erase_removed(sup);
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
            // A group restart waits for the backoff of the child that caused it.
            if (sup.n_backoff > 0 && sup.sup->strategy != Strategy::OneForOne) return;
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
        if (n.state == State::Backoff) --p.n_backoff;
        if (s == State::Backoff) ++p.n_backoff;
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
    child.reason.clear();
    child.timed_out = false;
    child.killed = false;
    auto pid = fx_.spawn(child);
    // The spawns before this one in the same event took time: its uptime and
    // start_timeout count from now.
    now = fresh(now);
    child.since = now;
    if (!pid) {
        set_state(child, State::Failed);
        child.reason = pid.error().message;
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
    set_deadline(child, fresh(now) + w.stop_timeout);
}

void Tree::begin_supervisor_start(Node &sup, Time now) {
    if (++sup.starts > 1) ++sup.restarts;
    set_state(sup, State::Starting);
    sup.since = now;
    sup.reason.clear();
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
        cancel_backoff(*c, State::Stopped);
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
    if (failed && stays_failed(sup) && !shutting_down_) {
        // It stays failed: nothing escalates. Its parent carries on as after a
        // temporary child's exit (during its own start too: the next child
        // starts); on the root, chipd keeps running.
        emit(Event::Kind::Failed, sup, now, 0, "stays failed: " + sup.reason);
        sup.manual_start = false;
        if (sup.parent) mark_dirty(*sup.parent);
        return;
    }
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
        sup.reason = "child " + child.name + " failed to start" +
                     (child.reason.empty() ? "" : ": " + child.reason);
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
        std::string why = "more than " + std::to_string(sup.sup->max_restarts) +
                          " restarts within " + seconds_text(sup.sup->period);
        sup.reason = why + "; the last: " + child.name + " (" +
                     (child.reason.empty() ? exit_text(child.last_exit) : child.reason) + ")";
        emit(Event::Kind::GiveUp, sup, now, sup.sup->max_restarts, why);
        begin_supervisor_stop(sup, true, now);
        return;
    }
    emit(Event::Kind::Restart, child, now, sup.intensity->count());
    apply_strategy(sup, child, backoff_delay(child, now), now);
}

Duration Tree::backoff_delay(Node &child, Time now) {
    const Backoff *b = backoff_of(child);
    if (!b) return Duration::zero();
    if (now - child.since >= b->reset_after) child.backoffs = 0;
    ++child.backoffs;
    // In nanoseconds as doubles: a large k overflows to infinity, capped by max.
    double base = std::min(static_cast<double>(b->max.count()),
                           static_cast<double>(b->initial.count()) *
                               std::pow(b->factor, static_cast<double>(child.backoffs - 1)));
    double scale = 1.0 + b->jitter * (2.0 * fx_.random() - 1.0);
    return Duration(static_cast<Duration::rep>(std::llround(base * scale)));
}

void Tree::cancel_backoff(Node &child, State state) {
    if (child.state != State::Backoff) return;
    clear_deadline(child);
    set_state(child, state);
    if (child.parent) mark_dirty(*child.parent);
}

void Tree::apply_strategy(Node &sup, Node &child, Duration delay, Time now) {
    if (delay > Duration::zero()) {
        set_state(child, State::Backoff);
        set_deadline(child, fresh(now) + delay);
        Event e{Event::Kind::Backoff, &child, 0, {}, 0, {}, delay};
        fx_.log(e);
    } else {
        set_want_start(child, true);
    }
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

Time Tree::fresh(Time now) {
    return std::max(now, fx_.now());
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
        if (last && pool(*cur, seg)) return instances(*cur, seg);
        std::string msg = "unknown path \"" + std::string(path) + "\"";
        if (auto guess = suggest_path(path)) msg += "; did you mean \"" + *guess + "\"?";
        return make_error(ENOENT, msg);
    }
}

std::optional<std::string> Tree::suggest_path(std::string_view path) const {
    // Every path a command may name: nodes and pools, in start order.
    std::vector<std::string> paths;
    std::vector<std::string> names;  // the last name of each
    walk(*root_, [&](Node &n) {
        if (n.parent) {
            paths.push_back(n.path);
            names.push_back(n.name);
        }
        for (const auto &p : n.pools) {
            paths.push_back(n.parent ? n.path + "/" + p.name : p.name);
            names.push_back(p.name);
        }
    });
    // The name given without its supervisors ("nginx" for "web/nginx"), or a
    // near miss of a whole path, or of a name.
    std::string_view last = path.substr(path.rfind('/') + 1);
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == last && paths[i] != path) return paths[i];
    if (auto guess = closest(path, paths)) return guess;
    auto name = closest(last, names);
    if (!name) return std::nullopt;
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == *name) return paths[i];
    return std::nullopt;
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
    for (Node *n : targets)
        if (n->removing) return make_error(EBUSY, n->path + " is being removed");
    if (cmd != Command::Stop) {
        for (Node *n : targets) {
            if (n->parent && !is_up(n->parent->state))
                return make_error(EBUSY, "cannot start " + n->path + ": its supervisor " +
                                             n->parent->path + " is " +
                                             state_name(n->parent->state));
        }
    }
    std::uint64_t ticket = track(cmd == Command::Start  ? Op::Start
                                 : cmd == Command::Stop ? Op::Stop
                                                        : Op::Restart,
                                 targets);
    for (Node *n : targets) {
        switch (cmd) {
            case Command::Stop:
                n->held = true;
                cancel_backoff(*n, State::Stopped);
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
                cancel_backoff(*n, State::Exited);
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
                cancel_backoff(*n, State::Exited);
                n->manual_start = true;
                set_want_start(*n, true);
                if (is_up(n->state)) set_want_stop(*n, true);
                mark_dirty(*n->parent);
                break;
        }
    }
    drain(now);
    return ticket;
}

std::uint64_t Tree::track(Op op, const std::vector<Node *> &nodes,
                          const std::vector<Node *> &removals) {
    Pending p{next_ticket_++, op, {}, {}, {}};
    for (Node *n : nodes) {
        p.nodes.emplace_back(n->id, n->starts);
        p.paths.push_back(n->path);
    }
    for (Node *n : removals) p.removals.push_back(n->id);
    pending_.push_back(std::move(p));
    return pending_.back().ticket;
}

bool Tree::pending_done(const Pending &p, Result<void> &out) const {
    for (std::uint64_t id : p.removals)
        if (by_id_.count(id)) return false;
    std::string failure;
    for (std::size_t i = 0; i < p.nodes.size(); ++i) {
        auto [id, starts0] = p.nodes[i];
        auto it = by_id_.find(id);
        if (it == by_id_.end()) {
            // Gone from the tree meanwhile: a stop is done, a start is not.
            if (p.op != Op::Stop && failure.empty()) failure = p.paths[i] + " was removed";
            continue;
        }
        const Node *n = it->second;
        bool restarted = n->starts > starts0;
        if (p.op == Op::Stop) {
            // Started again since (a later start): it did stop in between.
            if (restarted) continue;
            if (is_up(n->state) || n->state == State::Stopping || n->want_stop) return false;
            continue;
        }
        bool fresh = p.op == Op::Start || p.op == Op::Scale || restarted;
        if (n->state == State::Running && fresh) continue;
        if (n->want_start || n->want_stop || n->state == State::Starting ||
            n->state == State::Stopping || n->state == State::Backoff)
            return false;
        // Its supervisor went down for good meanwhile: nothing will start it.
        const Node *sup = n->parent;
        bool orphaned =
            sup && !is_up(sup->state) && sup->state != State::Stopping && !sup->want_start;
        if (p.op != Op::Start && p.op != Op::Scale && !restarted && !n->held && !orphaned)
            return false;
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

Node *Tree::node_by_id(std::uint64_t id) {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
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
            case State::Backoff:
                ++s.backoff;
                break;
        }
    });
    return s;
}

// ---- changing the tree while it runs ---------------------------------------

Result<Tree::Added> Tree::add(Node &sup, std::size_t position, const ChildSpec &spec, Time now,
                              bool dynamic) {
    if (!sup.is_supervisor) return make_error(EINVAL, sup.path + " is not a supervisor");
    if (shutting_down_) return make_error(ECANCELED, "chipd is shutting down");
    if (sup.removing) return make_error(EINVAL, sup.path + " is being removed");
    if (spec.is_supervisor ? !spec.supervisor : !spec.worker)
        return make_error(EINVAL, "child " + spec.name + " has no definition");
    bool is_pool = !spec.is_supervisor && spec.worker->instances;
    unsigned count = is_pool ? *spec.worker->instances : 1u;
    // NAME, and NAME.k for a pool, against the siblings' names and pool names.
    auto taken = [&](const std::string &name) {
        for (const auto &c : sup.children)
            if (c->name == name) return true;
        return pool(sup, name) != nullptr;
    };
    if (taken(spec.name))
        return make_error(EEXIST,
                          "a child named " + spec.name + " already exists under " + sup.path);
    for (unsigned i = 0; is_pool && i < count; ++i) {
        std::string name = spec.name + "." + std::to_string(i);
        if (taken(name))
            return make_error(EEXIST,
                              "a child named " + name + " already exists under " + sup.path);
    }
    position = std::min(position, sup.children.size());
    std::uint64_t rank = rank_at(sup, position);
    if (is_pool) sup.pools.push_back({spec.name, spec.worker, rank, dynamic});
    std::vector<Node *> added;
    for (unsigned i = 0; i < count; ++i) {
        auto n = make_node(sup, spec, i, is_pool, next_id_++);
        n->rank = rank;
        n->dynamic = dynamic;
        added.push_back(n.get());
        sup.children.insert(sup.children.begin() + static_cast<std::ptrdiff_t>(position + i),
                            std::move(n));
    }
    reindex(sup);
    bool start = is_up(sup.state) && !shutting_down_;
    // Held ones ("start": false) stay stopped: the ticket does not wait for them.
    std::vector<Node *> starting;
    for (Node *n : added)
        if (start && !n->held) starting.push_back(n);
    std::uint64_t ticket = track(Op::Scale, starting);
    for (Node *n : starting) set_want_start(*n, true);
    if (!starting.empty()) mark_dirty(sup);
    drain(now);
    return Added{added, ticket};
}

std::uint64_t Tree::rank_at(Node &sup, std::size_t position) {
    auto before = [&]() -> std::uint64_t {
        return position == 0 ? 0 : sup.children[position - 1]->rank;
    };
    auto after = [&]() -> std::uint64_t {
        return position < sup.children.size() ? sup.children[position]->rank
                                              : before() + 2 * kRankStep;
    };
    if (after() - before() < 2) {
        // No room: spread every rank out again (pools without instances too).
        std::vector<std::uint64_t> ranks;
        for (const auto &c : sup.children) ranks.push_back(c->rank);
        for (const auto &p : sup.pools) ranks.push_back(p.rank);
        std::sort(ranks.begin(), ranks.end());
        ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
        auto spread = [&](std::uint64_t r) {
            auto i = std::lower_bound(ranks.begin(), ranks.end(), r) - ranks.begin();
            return (static_cast<std::uint64_t>(i) + 1) * kRankStep;
        };
        for (auto &c : sup.children) c->rank = spread(c->rank);
        for (auto &p : sup.pools) p.rank = spread(p.rank);
    }
    return before() + (after() - before()) / 2;
}

Node::Pool *Tree::pool(Node &sup, std::string_view name) {
    for (auto &p : sup.pools)
        if (p.name == name) return &p;
    return nullptr;
}

std::vector<Node *> Tree::instances(Node &sup, std::string_view name) {
    std::vector<Node *> out;
    for (auto &c : sup.children)
        if (c->pooled() && c->base == name) out.push_back(c.get());
    return out;
}

Result<std::uint64_t> Tree::scale(Node &sup, const std::string &name, unsigned count, Time now) {
    Node::Pool *p = sup.is_supervisor ? pool(sup, name) : nullptr;
    if (!p) return make_error(EINVAL, (sup.parent ? sup.path + "/" : "") + name + " is not a pool");
    if (shutting_down_) return make_error(ECANCELED, "chipd is shutting down");
    auto current = instances(sup, name);
    for (Node *n : current)
        if (n->removing)
            return make_error(EBUSY,
                              n->path + " is still being removed: try again when it is gone");
    std::vector<Node *> added, removed;
    if (count > current.size()) {
        for (unsigned i = static_cast<unsigned>(current.size()); i < count; ++i) {
            std::string n = name + "." + std::to_string(i);
            for (const auto &c : sup.children)
                if (c->name == n)
                    return make_error(EEXIST,
                                      "a child named " + n + " already exists under " + sup.path);
        }
        // A pool with "start": false grows held while none of its instances
        // was started by the user.
        bool held = !p->def->start && std::all_of(current.begin(), current.end(),
                                                  [](const Node *n) { return n->held; });
        // After the pool's last instance, or where the pool stands among its siblings.
        std::size_t position = 0;
        while (position < sup.children.size() && sup.children[position]->rank <= p->rank)
            ++position;
        ChildSpec spec{name, false, p->def, nullptr};
        for (unsigned i = static_cast<unsigned>(current.size()); i < count; ++i) {
            auto n = make_node(sup, spec, i, true, next_id_++);
            n->rank = p->rank;
            n->dynamic = p->dynamic;
            n->held = held;
            if (!held) added.push_back(n.get());
            sup.children.insert(sup.children.begin() + static_cast<std::ptrdiff_t>(position++),
                                std::move(n));
        }
        reindex(sup);
        if (is_up(sup.state)) {
            for (Node *n : added) set_want_start(*n, true);
        }
    } else {
        for (std::size_t i = current.size(); i-- > count;) {
            begin_remove(*current[i]);
            removed.push_back(current[i]);
        }
    }
    std::uint64_t ticket = track(Op::Scale, added, removed);
    mark_dirty(sup);
    drain(now);
    return ticket;
}

Result<std::uint64_t> Tree::remove_pool(Node &sup, const std::string &name, Time now) {
    if (!sup.is_supervisor || !pool(sup, name))
        return make_error(EINVAL, (sup.parent ? sup.path + "/" : "") + name + " is not a pool");
    auto current = instances(sup, name);
    for (std::size_t i = current.size(); i-- > 0;) begin_remove(*current[i]);
    sup.pools.erase(std::find_if(sup.pools.begin(), sup.pools.end(),
                                 [&](const Node::Pool &p) { return p.name == name; }));
    std::uint64_t ticket = track(Op::Remove, {}, current);
    mark_dirty(sup);
    drain(now);
    return ticket;
}

void Tree::reorder(Node &sup, const std::vector<std::string> &names) {
    // A child or pool named in NAMES gets its place there; the others follow in
    // their present order.
    std::map<std::string, std::uint64_t, std::less<>> rank;
    for (std::size_t i = 0; i < names.size(); ++i) rank.emplace(names[i], (i + 1) * kRankStep);
    std::vector<std::pair<std::uint64_t, std::string>> others;
    for (const auto &c : sup.children)
        if (!rank.count(c->base)) others.emplace_back(c->rank, c->base);
    for (const auto &p : sup.pools)
        if (!rank.count(p.name)) others.emplace_back(p.rank, p.name);
    std::stable_sort(others.begin(), others.end(),
                     [](const auto &a, const auto &b) { return a.first < b.first; });
    std::uint64_t next = (names.size() + 1) * kRankStep;
    for (const auto &o : others)
        if (rank.emplace(o.second, next).second) next += kRankStep;
    for (auto &c : sup.children) c->rank = rank[c->base];
    for (auto &p : sup.pools) p.rank = rank[p.name];
    std::stable_sort(sup.children.begin(), sup.children.end(),
                     [](const std::unique_ptr<Node> &a, const std::unique_ptr<Node> &b) {
                         return a->rank < b->rank ||
                                (a->rank == b->rank && a->instance < b->instance);
                     });
    reindex(sup);
}

Result<std::uint64_t> Tree::remove(Node &node, Time now) {
    if (!node.parent) return make_error(EINVAL, "the root cannot be removed");
    if (shutting_down_) return make_error(ECANCELED, "chipd is shutting down");
    Node &sup = *node.parent;
    begin_remove(node);
    std::uint64_t ticket = track(Op::Remove, {}, {&node});
    mark_dirty(sup);
    drain(now);
    return ticket;
}

void Tree::begin_remove(Node &node) {
    if (node.removing) return;
    node.removing = true;
    ++node.parent->n_removing;
    node.held = true;
    node.manual_start = false;
    cancel_backoff(node, State::Stopped);
    set_want_start(node, false);
    if (is_up(node.state)) set_want_stop(node, true);
}

Result<std::uint64_t> Tree::redefine(Node &node, std::shared_ptr<const WorkerSpec> worker,
                                     Redefine how, Time now) {
    if (node.is_supervisor || !worker)
        return make_error(EINVAL,
                          node.path + " is not a worker: it takes a supervisor's definition");
    auto old = std::exchange(node.worker, std::move(worker));
    if (how == Redefine::InPlace || !is_up(node.state) || node.held || shutting_down_) {
        fx_.redefined(node, old);
        std::uint64_t ticket = track(Op::Redefine, {});
        check_pending();
        return ticket;
    }
    // A restart of its own: no strategy, not counted; a failed start of it is
    // an ordinary one (counted, retried), as a crash would be.
    node.manual_start = false;
    set_want_stop(node, true);
    set_want_start(node, true);
    fx_.redefined(node, old);
    std::uint64_t ticket = track(Op::Redefine, {&node});
    mark_dirty(*node.parent);
    drain(now);
    return ticket;
}

Result<std::uint64_t> Tree::redefine(Node &node, std::shared_ptr<const SupervisorSpec> sup,
                                     Time now) {
    if (!node.is_supervisor || !sup)
        return make_error(EINVAL,
                          node.path + " is not a supervisor: it takes a worker's definition");
    node.intensity->set_limits(sup->max_restarts, sup->period);
    node.sup = std::move(sup);
    std::uint64_t ticket = track(Op::Redefine, {});
    // A lower intensity does not act on the history at once: the next restart
    // is measured against it.
    mark_dirty(node);
    drain(now);
    return ticket;
}

void Tree::erase_removed(Node &sup) {
    bool erased = false;
    for (std::size_t i = 0; i < sup.children.size();) {
        Node &c = *sup.children[i];
        if (c.removing && !is_up(c.state) && c.state != State::Stopping && !c.want_stop) {
            forget(c);
            sup.children.erase(sup.children.begin() + static_cast<std::ptrdiff_t>(i));
            erased = true;
        } else {
            ++i;
        }
    }
    if (erased) reindex(sup);
}

void Tree::forget(Node &node) {
    for (auto &c : node.children) forget(*c);
    clear_deadline(node);
    if (node.pid) by_pid_.erase(node.pid);
    by_id_.erase(node.id);
    if (node.queued)
        for (auto &d : dirty_)
            if (d == &node) d = nullptr;
    fx_.removed(node);
}

// ---- snapshot ----------------------------------------------------------------

Snapshot Tree::snapshot() const {
    Snapshot s;
    snap(*root_, s.root);
    s.next_id = next_id_;
    s.next_ticket = next_ticket_;
    s.shutting_down = shutting_down_;
    s.hurry = hurry_;
    s.exited = exited_;
    s.pending = pending_;
    s.finished = finished_;
    return s;
}

void Tree::snap(const Node &n, NodeSnapshot &o) {
    o.id = n.id;
    o.rank = n.rank;
    o.dynamic = n.dynamic;
    o.pools = n.pools;
    o.name = n.name;
    o.base = n.base;
    o.instance = n.instance;
    o.is_supervisor = n.is_supervisor;
    o.worker = n.worker;
    o.sup = n.sup;
    o.state = n.state;
    o.pid = n.pid;
    o.since = n.since;
    o.restarts = n.restarts;
    o.starts = n.starts;
    o.last_exit = n.last_exit;
    o.backoffs = n.backoffs;
    o.reason = n.reason;
    o.want_stop = n.want_stop;
    o.want_start = n.want_start;
    o.held = n.held;
    o.manual_start = n.manual_start;
    o.removing = n.removing;
    o.fail_after_stop = n.fail_after_stop;
    o.failing_start = n.failing_start;
    o.timed_out = n.timed_out;
    o.killed = n.killed;
    o.deadline = n.deadline;
    if (n.intensity) o.restart_history = n.intensity->history();
    o.children.resize(n.children.size());
    for (std::size_t i = 0; i < n.children.size(); ++i) snap(*n.children[i], o.children[i]);
}

Tree::Tree(const Snapshot &snap, Effects &fx) : fx_(fx) {
    root_ = std::make_unique<Node>();
    root_->path = "/";
    restore(*root_, snap.root);
    next_id_ = snap.next_id;
    next_ticket_ = snap.next_ticket;
    shutting_down_ = snap.shutting_down;
    hurry_ = snap.hurry;
    exited_ = snap.exited;
    pending_ = snap.pending;
    finished_ = snap.finished;
}

void Tree::restore(Node &n, const NodeSnapshot &s) {
    n.id = s.id;
    n.rank = s.rank;
    n.dynamic = s.dynamic;
    n.pools = s.pools;
    n.name = s.name;
    n.base = s.base;
    n.instance = s.instance;
    n.is_supervisor = s.is_supervisor;
    n.worker = s.worker;
    n.sup = s.sup;
    n.state = s.state;
    n.pid = s.pid;
    n.since = s.since;
    n.restarts = s.restarts;
    n.starts = s.starts;
    n.last_exit = s.last_exit;
    n.backoffs = s.backoffs;
    n.reason = s.reason;
    n.want_stop = s.want_stop;
    n.want_start = s.want_start;
    n.held = s.held;
    n.manual_start = s.manual_start;
    n.removing = s.removing;
    n.fail_after_stop = s.fail_after_stop;
    n.failing_start = s.failing_start;
    n.timed_out = s.timed_out;
    n.killed = s.killed;
    by_id_[n.id] = &n;
    if (n.pid) by_pid_[n.pid] = &n;
    if (s.deadline != Time{}) set_deadline(n, s.deadline);
    if (n.sup) {
        n.intensity.emplace(n.sup->max_restarts, n.sup->period);
        n.intensity->restore(s.restart_history);
    }
    for (const auto &cs : s.children) {
        auto c = std::make_unique<Node>();
        c->parent = &n;
        c->path = n.parent ? n.path + "/" + cs.name : cs.name;
        restore(*c, cs);
        n.children.push_back(std::move(c));
    }
    reindex(n);
}

void Tree::emit(Event::Kind k, const Node &n, Time, std::size_t count, std::string msg) {
    Event e{k, &n, n.pid, {}, count, std::move(msg)};
    fx_.log(e);
}

}  // namespace chip::core
