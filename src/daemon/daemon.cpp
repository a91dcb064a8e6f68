#include "daemon/daemon.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "common/names.hpp"
#include "daemon/events.hpp"
#include "os/clock.hpp"
#include "os/process.hpp"

namespace chip::daemon {

using nlohmann::json;

namespace {

json exit_json(const std::optional<core::ExitStatus> &s) {
    if (!s) return nullptr;
    if (s->signaled) return json{{"signal", signal_name(s->value)}};
    return json{{"code", s->value}};
}

json error_json(int code, const std::string &message) {
    return json{{"ok", false}, {"error", message}, {"errno", errno_name(code)}};
}

json ok_json() {
    return json{{"ok", true}};
}

}  // namespace

struct Daemon::Client {
    std::uint64_t id = 0;
    os::PeerCred peer;
    bool last = false;  // no later request of this connection is read
};

Daemon::Daemon(spec::Spec spec, Options opts) : spec_(std::move(spec)), opts_(std::move(opts)) {}

Daemon::~Daemon() {
    // Handles must go before the loop; the loop's destructor frees them.
    control_.reset();
    launcher_.reset();
    procs_.reset();
    sig_chld_.reset();
    sig_term_.reset();
    sig_int_.reset();
    sig_hup_.reset();
    timer_.reset();
    waiter_timer_.reset();
    systemd_.reset();
    check_.reset();
}

core::Time Daemon::now() const {
    return os::monotonic_now();
}

// ---- set-up ------------------------------------------------------------------

void Daemon::setup() {
    os::raise_fd_limit(1 << 20);
    os::become_subreaper();
    os::ignore_sigpipe();

    // --socket, else the spec's, else the default. $CHIP_SOCKET is the clients'
    // variable: a chipd run as a worker of another chipd must not take its socket.
    socket_path_ = !opts_.socket.empty() ? opts_.socket
                   : spec_.socket        ? *spec_.socket
                                         : default_socket_path();
    // Absolute: workers get it as CHIP_SOCKET and run in other folders.
    socket_path_ = std::filesystem::absolute(socket_path_).lexically_normal().string();
    style_.journal = std::getenv("JOURNAL_STREAM") != nullptr;
    style_.json = opts_.json_log;

    auto lfd = os::listen_unix(socket_path_, 0660);
    if (!lfd) throw std::runtime_error(lfd.error().message);
    control_ =
        std::make_unique<Control>(loop_, std::move(*lfd), static_cast<RequestHandler &>(*this),
                                  [this](const std::string &m) { warn(m); });

    procs_ = std::make_unique<SystemProcesses>(
        loop_, [this](pid_t pid) { registries_->member_died(pid); });
    registries_ = std::make_unique<Registries>(
        *procs_, [this](pid_t pid) { return tree_->node_by_pid(pid) != nullptr; },
        [this](const std::string &m) { warn(m); });
    for (const auto &rs : spec_.registries) {
        if (auto r = registries_->create_shared(rs, registry_shm_name(socket_path_, rs.name),
                                                os::own_pid());
            !r)
            throw std::runtime_error(r.error().message);
    }

    launcher_ = std::make_unique<Launcher>(
        loop_, socket_path_, [this](const std::string &m) { warn(m); },
        [this](std::uint64_t id) { on_ready(id); });

    tree_ = std::make_unique<core::Tree>(spec_.root, *this);

    sig_chld_ = std::make_unique<uv::Signal>(loop_, SIGCHLD, [this] { on_sigchld(); });
    sig_term_ = std::make_unique<uv::Signal>(loop_, SIGTERM, [this] { on_term_signal(SIGTERM); });
    sig_int_ = std::make_unique<uv::Signal>(loop_, SIGINT, [this] { on_term_signal(SIGINT); });
    // SIGHUP is not forwarded: most programs die of it, and a tree-wide HUP
    // would turn into restarts. `chipctl signal HUP PATH` sends it on purpose.
    sig_hup_ = std::make_unique<uv::Signal>(loop_, SIGHUP, [this] {
        warn(
            "SIGHUP ignored (chipd has no configuration to reload; restart it to change the "
            "spec, or use chipctl signal HUP PATH to signal workers)");
    });
    // Timer callbacks run before the loop polls, and the check handle only after
    // it: they settle their own consequences, or the loop could block with no
    // timer armed (a deadline that fired a little early, a wait that timed out).
    timer_ = std::make_unique<uv::Timer>(loop_, [this] {
        armed_.reset();
        tree_->on_time(now());
        after_events();
    });
    waiter_timer_ = std::make_unique<uv::Timer>(loop_, [this] { after_events(); });
    Systemd::Env env;
    for (auto [name, value] : {std::pair{"NOTIFY_SOCKET", &env.notify_socket},
                               {"WATCHDOG_USEC", &env.watchdog_usec},
                               {"WATCHDOG_PID", &env.watchdog_pid}})
        if (const char *v = std::getenv(name)) *value = v;
    systemd_ = std::make_unique<Systemd>(
        loop_, std::move(env), os::own_pid(), [this] { return tree_->summary(); },
        [this](const std::string &m) { warn(m); });
    check_ = std::make_unique<uv::Check>(loop_, [this] { after_events(); });
}

int Daemon::run() {
    setup();
    tree_->start(now());
    after_events();
    if (!exiting_) loop_.run();
    cleanup();
    return exit_code_;
}

void Daemon::cleanup() {
    systemd_->stopping();
    launcher_->finish();
    registries_->close();
    control_->stop_listening();
    os::remove_path(socket_path_);
}

// ---- the loop's turn ---------------------------------------------------------

void Daemon::after_events() {
    launcher_->after_turn();
    procs_->after_turn();
    control_->after_turn();
    // Finished commands and satisfied waits get their responses.
    for (auto &f : tree_->take_finished()) {
        auto it = tickets_.find(f.ticket);
        if (it == tickets_.end()) continue;
        std::uint64_t client = it->second;
        tickets_.erase(it);
        finish_request(client, f.result
                                   ? ok_json()
                                   : error_json(f.result.error().code, f.result.error().message));
    }
    auto t = static_cast<std::uint64_t>(now().count());
    std::optional<std::uint64_t> next_wait;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (core::Tree::all_ready(it->nodes)) {
            finish_request(it->client, ok_json());
            it = waiters_.erase(it);
        } else if (it->deadline_ns && *it->deadline_ns <= t) {
            finish_request(it->client, error_json(ETIMEDOUT, "timed out waiting for readiness"));
            it = waiters_.erase(it);
        } else {
            if (it->deadline_ns && (!next_wait || *it->deadline_ns < *next_wait))
                next_wait = it->deadline_ns;
            ++it;
        }
    }
    if (next_wait) waiter_timer_->start((*next_wait - t + 999999) / 1000000);
    arm_timer();
    // The root is running only once every child of the tree has started and
    // is ready (README.md, "Supervision, as chipd does it"), so READY=1 means
    // the whole tree is up.
    systemd_->after_turn(tree_->root().state == core::State::Running, now());
    if (exiting_) loop_.stop();
}

void Daemon::arm_timer() {
    auto next = tree_->next_deadline();
    if (next == armed_) return;
    armed_ = next;
    if (!next) {
        timer_->stop();
        return;
    }
    auto delta = *next - now();
    auto ms = delta.count() <= 0 ? 0 : (delta.count() + 999999) / 1000000;
    timer_->start(static_cast<std::uint64_t>(ms));
}

void Daemon::on_sigchld() {
    os::reap_children([&](pid_t pid, os::ChildExit how) {
        registries_->member_died(pid);
        // Its notify socket goes with the process, before the core may spawn
        // the replacement (which gets a new one) in on_exit.
        if (core::Node *n = tree_->node_by_pid(pid)) launcher_->close_notify(n->id);
        tree_->on_exit(pid, core::ExitStatus{how.signaled, how.value}, now());
    });
}

void Daemon::on_term_signal(int sig) {
    ++term_signals_;
    if (term_signals_ == 1 && !tree_->shutting_down()) {
        log(core::Event{core::Event::Kind::Stop,
                        &tree_->root(),
                        0,
                        {},
                        0,
                        "SIG" + signal_name(sig) + " received: shutting down"});
        systemd_->stopping();
        tree_->shutdown(now());
    } else {
        log(core::Event{core::Event::Kind::Kill,
                        &tree_->root(),
                        0,
                        {},
                        0,
                        "SIG" + signal_name(sig) + " again: killing what is left"});
        tree_->hurry(now());
    }
}

void Daemon::removed(const core::Node &node) {
    launcher_->forget(node.id);
}

void Daemon::exit(int code) {
    exiting_ = true;
    exit_code_ = code;
}

void Daemon::warn(const std::string &msg) {
    write_log(format_warning(msg, os::wall_now(), style_));
}

void Daemon::write_log(const std::string &line) {
    // Blocking, like worker output that is inherited: chipd's stderr is a
    // terminal, the journal or a container runtime, which all read promptly.
    (void)os::write_all(2, line.data(), line.size());
}

// ---- core effects ------------------------------------------------------------

Result<pid_t> Daemon::spawn(const core::Node &node) {
    auto spawned = launcher_->spawn(node, now());
    if (!spawned) return spawned;
    pid_t p = *spawned;
    // Declared groups: joined the moment the worker exists.
    registries_->join_declared(*node.worker->launch, node.path, p);
    return p;
}

void Daemon::on_ready(std::uint64_t id) {
    tree_->on_ready(id, now());
    // Taken (or no longer awaited): the notify socket has served.
    const core::Node *n = tree_->node_by_id(id);
    if (!n || n->state != core::State::Starting) launcher_->close_notify(id);
}

void Daemon::kill_group(pid_t pgid, int sig) {
    os::kill_group(pgid, sig);
}

void Daemon::log(const core::Event &e) {
    // An event is written to the log, and it may change systemd's STATUS=.
    write_log(format_event(e, os::wall_now(), style_));
    systemd_->on_event(e, now());
}

// ---- registry ------------------------------------------------------------------

Registry *Daemon::find_registry(const json &req, std::string &err, std::string &code) {
    auto it = req.find("registry");
    const auto &all = registries_->all();
    if (it == req.end() || it->is_null()) {
        if (all.size() == 1) return all[0].get();
        code = "EINVAL";
        err = all.empty() ? "the spec declares no registry"
                          : "several registries: name one with \"registry\"";
        return nullptr;
    }
    if (!it->is_string()) {
        code = "EINVAL";
        err = "\"registry\" must be a string";
        return nullptr;
    }
    if (Registry *r = registries_->find(it->get<std::string>())) return r;
    code = "ENOENT";
    err = "unknown registry \"" + it->get<std::string>() + "\"";
    return nullptr;
}

// ---- control socket ------------------------------------------------------------

RequestHandler::Reply Daemon::on_request(std::uint64_t conn, const os::PeerCred &peer,
                                         std::string_view line) {
    json req = json::parse(line, nullptr, false);
    std::optional<json> resp;
    Client c{conn, peer};
    if (req.is_discarded()) {
        resp = error_json(EPROTO, "malformed request: not a JSON object");
    } else if (!req.is_object() || !req.contains("op") || !req["op"].is_string()) {
        resp = error_json(EPROTO, "malformed request: expected an object with a string \"op\"");
    } else {
        try {
            resp = handle(c, req);
        } catch (const std::exception &e) {
            resp = error_json(EINVAL, std::string("bad request: ") + e.what());
        }
    }
    if (!resp) return {};
    return {resp->dump(-1, ' ', false, json::error_handler_t::replace), c.last};
}

std::string Daemon::on_oversized() {
    return error_json(EMSGSIZE, "request over 64 KiB").dump();
}

void Daemon::on_closed(std::uint64_t id) {
    waiters_.remove_if([id](const Waiter &w) { return w.client == id; });
    for (auto t = tickets_.begin(); t != tickets_.end();)
        t = t->second == id ? tickets_.erase(t) : std::next(t);
}

void Daemon::finish_request(std::uint64_t client, const json &resp) {
    control_->respond(client, resp.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::optional<json> Daemon::handle(Client &c, const json &req) {
    const std::string op = req["op"].get<std::string>();
    if (op == "status") return op_status(req);
    if (op == "start") return op_command(c, core::Command::Start, req);
    if (op == "stop") return op_command(c, core::Command::Stop, req);
    if (op == "restart") return op_command(c, core::Command::Restart, req);
    if (op == "signal") return op_signal(req);
    if (op == "wait") return op_wait(c, req);
    if (op == "join") return op_join(c, req, true);
    if (op == "leave") return op_join(c, req, false);
    if (op == "members") return op_members(req, false);
    if (op == "groups") return op_members(req, true);
    if (op == "logs") return op_logs(req);
    if (op == "registries") {
        json list = json::array();
        for (auto &r : registries_->all())
            list.push_back({{"name", r->spec.name},
                            {"shm", "/dev/shm" + r->shm_name},
                            {"max_groups", r->spec.max_groups},
                            {"max_members", r->spec.max_members}});
        return json{{"ok", true}, {"registries", list}};
    }
    if (op == "shutdown") {
        if (!tree_->shutting_down()) {
            log(core::Event{
                core::Event::Kind::Stop, &tree_->root(), 0, {}, 0, "shutdown requested"});
            systemd_->stopping();
            tree_->shutdown(now());
        }
        c.last = true;  // no more requests from this client
        return ok_json();
    }
    return error_json(EOPNOTSUPP, "unknown operation \"" + op + "\"");
}

static std::string path_of(const json &req) {
    auto it = req.find("path");
    if (it == req.end() || it->is_null()) return "/";
    if (!it->is_string()) throw std::invalid_argument("\"path\" must be a string");
    return it->get<std::string>();
}

json Daemon::node_json(const core::Node &n, core::Time t) const {
    bool live = n.state == core::State::Running || n.state == core::State::Starting ||
                n.state == core::State::Stopping;
    json j{{"path", n.path},
           {"kind", n.is_supervisor ? "supervisor" : "worker"},
           {"state", core::state_name(n.state)},
           {"pid", n.pid ? json(n.pid) : json(nullptr)},
           {"restarts", n.restarts},
           {"uptime_s",
            live ? json(std::chrono::duration_cast<std::chrono::milliseconds>(t - n.since).count() /
                        1000.0)
                 : json(nullptr)},
           {"last_exit", exit_json(n.last_exit)}};
    return j;
}

json Daemon::op_status(const json &req) {
    auto nodes = tree_->resolve(path_of(req));
    if (!nodes) return error_json(nodes.error().code, nodes.error().message);
    json list = json::array();
    core::Time t = now();
    for (core::Node *n : *nodes)
        core::Tree::walk(*n, [&](core::Node &x) { list.push_back(node_json(x, t)); });
    return json{{"ok", true}, {"nodes", list}};
}

std::optional<json> Daemon::op_command(Client &c, core::Command cmd, const json &req) {
    auto ticket = tree_->command(cmd, path_of(req), now());
    if (!ticket) return error_json(ticket.error().code, ticket.error().message);
    tickets_[*ticket] = c.id;
    (void)c;
    return std::nullopt;  // after_events() answers once take_finished() has it
}

static std::optional<int> signal_of(const json &req) {
    auto it = req.find("signal");
    if (it == req.end()) return std::nullopt;
    if (it->is_number_integer()) {
        int n = it->get<int>();
        if (n >= 1 && n <= 64) return n;
        return std::nullopt;
    }
    if (it->is_string()) return parse_signal(it->get<std::string>());
    return std::nullopt;
}

json Daemon::op_signal(const json &req) {
    auto sig = signal_of(req);
    if (!sig) return error_json(EINVAL, "expected \"signal\": a signal name or number");
    json pids = json::array();
    if (req.contains("group")) {
        if (!req["group"].is_string() || !valid_group_name(req["group"].get<std::string>()))
            return error_json(EINVAL, "invalid group name");
        std::string err, code;
        Registry *r = find_registry(req, err, code);
        if (!r) return error_json(code == "ENOENT" ? ENOENT : EINVAL, err);
        for (pid_t p : r->table.members(req["group"].get<std::string>()))
            if (os::kill_pid(p, *sig) == 0) pids.push_back(p);
        return json{{"ok", true}, {"pids", pids}};
    }
    auto nodes = tree_->resolve(path_of(req));
    if (!nodes) return error_json(nodes.error().code, nodes.error().message);
    for (core::Node *n : *nodes)
        core::Tree::walk(*n, [&](core::Node &x) {
            if (!x.is_supervisor && x.pid && os::kill_pid(x.pid, *sig) == 0) pids.push_back(x.pid);
        });
    if (pids.empty()) return error_json(ESRCH, "no running worker at " + path_of(req));
    return json{{"ok", true}, {"pids", pids}};
}

std::optional<json> Daemon::op_wait(Client &c, const json &req) {
    auto nodes = tree_->resolve(path_of(req));
    if (!nodes) return error_json(nodes.error().code, nodes.error().message);
    if (core::Tree::all_ready(*nodes)) return ok_json();
    Waiter w{c.id, *nodes, std::nullopt};
    if (auto it = req.find("timeout"); it != req.end() && !it->is_null()) {
        if (!it->is_number() || it->get<double>() < 0)
            return error_json(EINVAL, "\"timeout\" must be a number of seconds >= 0");
        w.deadline_ns = static_cast<std::uint64_t>(now().count()) +
                        static_cast<std::uint64_t>(it->get<double>() * 1e9);
    }
    waiters_.push_back(std::move(w));
    return std::nullopt;
}

json Daemon::op_join(Client &c, const json &req, bool join) {
    auto g = req.find("group");
    if (g == req.end() || !g->is_string() || !valid_group_name(g->get<std::string>()))
        return error_json(EINVAL, "invalid group name (expected [A-Za-z0-9_.:-]{1,64})");
    std::string err, code;
    Registry *r = find_registry(req, err, code);
    if (!r) return error_json(code == "ENOENT" ? ENOENT : EINVAL, err);
    pid_t pid = c.peer.pid;
    if (auto p = req.find("pid"); p != req.end() && !p->is_null()) {
        if (!p->is_number_integer() || p->get<long long>() <= 0 || p->get<long long>() > 0x3fffffff)
            return error_json(EINVAL, "\"pid\" must be a positive integer");
        pid = static_cast<pid_t>(p->get<long long>());
    }
    auto done = join ? registries_->join(*r, g->get<std::string>(), pid, c.peer)
                     : registries_->leave(*r, g->get<std::string>(), pid, c.peer);
    if (!done) return error_json(done.error().code, done.error().message);
    return ok_json();
}

json Daemon::op_members(const json &req, bool groups) {
    std::string err, code;
    Registry *r = find_registry(req, err, code);
    if (!r) return error_json(code == "ENOENT" ? ENOENT : EINVAL, err);
    if (groups) {
        json obj = json::object();
        for (const auto &[name, count] : r->table.groups()) obj[name] = count;
        return json{{"ok", true}, {"groups", obj}};
    }
    auto g = req.find("group");
    if (g == req.end() || !g->is_string() || !valid_group_name(g->get<std::string>()))
        return error_json(EINVAL, "invalid group name (expected [A-Za-z0-9_.:-]{1,64})");
    json pids = json::array();
    for (pid_t p : r->table.members(g->get<std::string>())) pids.push_back(p);
    return json{{"ok", true}, {"pids", pids}};
}

json Daemon::op_logs(const json &req) {
    auto nodes = tree_->resolve(path_of(req));
    if (!nodes) return error_json(nodes.error().code, nodes.error().message);
    if (nodes->size() != 1 || (*nodes)[0]->is_supervisor)
        return error_json(EINVAL, path_of(req) + " is not a single worker");
    const spec::Launch &w = *(*nodes)[0]->worker->launch;
    using Mode = spec::OutputSpec::Mode;
    return json{{"ok", true},
                {"stdout", w.out.mode == Mode::File ? json(w.out.file) : json(nullptr)},
                {"stderr", w.err.mode == Mode::File ? json(w.err.file) : json(nullptr)}};
}

}  // namespace chip::daemon
