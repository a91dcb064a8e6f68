#include "daemon/daemon.hpp"

#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "common/names.hpp"
#include "daemon/fd_budget.hpp"
#include "os/clock.hpp"
#include "os/procfs.hpp"
#include "os/reexec.hpp"
#include "handoff/codec.hpp"
#include "os/file.hpp"
#include "os/private_folder.hpp"
#include "os/process.hpp"
#include "os/self.hpp"
#include "os/socket.hpp"
#include "spec/diff.hpp"
#include "spec/loader.hpp"

namespace chip::daemon {

namespace {

// Milliseconds from NOW until T, rounded up: a libuv timer never fires early.
std::uint64_t ms_until(core::Time t, core::Time now) {
    auto delta = (t - now).count();
    return delta <= 0 ? 0 : static_cast<std::uint64_t>((delta + 999999) / 1000000);
}

}  // namespace

Daemon::Daemon(spec::Spec spec, Options opts) : spec_(std::move(spec)), opts_(std::move(opts)) {}

Daemon::Daemon(handoff::State handoff, Options opts)
    : spec_(handoff.spec),
      opts_(std::move(opts)),
      handoff_(std::make_unique<handoff::State>(std::move(handoff))) {}

Daemon::~Daemon() {
    // Connections first: closing one tells the request handlers.
    control_.reset();
}

// Read afresh at every call: the core asks each time it sets a deadline.
core::Time Daemon::now() {
    return os::monotonic_now();
}

// ---- set-up ------------------------------------------------------------------

void Daemon::setup() {
    // A hand-off's fd limit is the first chipd's: this one was started with
    // the raised one.
    worker_fd_limit_ =
        handoff_ ? static_cast<std::size_t>(handoff_->worker_fd_limit) : os::fd_soft_limit();
    std::size_t fd_limit = os::raise_fd_limit(kFdLimitWanted);
    pid_max_ = os::pid_max();
    os::become_subreaper();
    os::ignore_sigpipe();

    // --socket, else the spec's, else the default. $CHIP_SOCKET is the clients'
    // variable: a chipd run as a worker of another chipd must not take its socket.
    // After a hand-off: the one the last chipd had.
    if (handoff_) {
        socket_path_ = handoff_->socket_path;
    } else {
        socket_path_ = !opts_.socket.empty() ? opts_.socket
                       : spec_.socket        ? *spec_.socket
                                             : default_socket_path(os::real_uid());
        // Absolute: workers get it as CHIP_SOCKET and run in other folders.
        std::filesystem::path socket(socket_path_);
        if (socket.is_relative()) socket = std::filesystem::path(os::current_dir()) / socket;
        socket_path_ = socket.lexically_normal().string();
    }
    style_.journal = std::getenv("JOURNAL_STREAM") != nullptr;
    style_.json = opts_.json_log;
    if (!opts_.log_file.empty()) {
        spec::OutputSpec o;
        o.mode = spec::OutputSpec::Mode::File;
        std::filesystem::path file(opts_.log_file);
        if (file.is_relative()) file = std::filesystem::path(os::current_dir()) / file;
        o.file = file.lexically_normal().string();
        o.max_bytes = opts_.log_max_bytes;
        o.keep = opts_.log_keep;
        // Its own troubles go to stderr only, never back into itself; one
        // while it is being opened means it cannot be: chipd does not start.
        auto warn_stderr = [this](const std::string &m) {
            if (log_file_opening_) throw std::runtime_error("--log-file: " + m);
            std::string line = format_warning("--log-file: " + m, os::wall_now(), style_);
            (void)os::write_all(2, line.data(), line.size());
        };
        log_file_ = std::make_unique<FileSink>(o, warn_stderr);
        log_file_opening_ = true;
        auto opened = log_file_->open_for_start(now());
        log_file_opening_ = false;
        if (!opened) throw std::runtime_error("--log-file: " + opened.error().message);
    }
    std::optional<os::UniqueFd> listen_fd;
    setup_socket(fd_limit, listen_fd);
    setup_registries();
    // After the socket is ours: what a predecessor on it left is killed now
    // (not what a chipd of this pid handed over).
    auto warn = [this](const std::string &m) { this->warn(m); };
    cgroups_ = std::make_unique<Cgroups>(loop_, socket_path_, opts_.cgroups, warn,
                                         handoff_ ? &handoff_->cgroups : nullptr);
    if (!cgroups_->on() && !handoff_)
        warn("cgroups: " +
             (opts_.cgroups ? "not writable (" + cgroups_->why_off() + ")"
                            : std::string("off (--no-cgroups)")) +
             "; using process groups");
    launcher_ = std::make_unique<Launcher>(loop_, socket_path_, *cgroups_, warn,
                                           [this](std::uint64_t id) { on_ready(id); });
    if (style_.json) launcher_->inherit_as_json();
    launcher_->set_worker_fd_limit(worker_fd_limit_);
    Systemd::Env env;
    for (auto [name, value] : {std::pair{"NOTIFY_SOCKET", &env.notify_socket},
                               {"WATCHDOG_USEC", &env.watchdog_usec},
                               {"WATCHDOG_PID", &env.watchdog_pid}})
        if (const char *v = std::getenv(name)) *value = v;
    systemd_ = std::make_unique<Systemd>(
        loop_, std::move(env), os::self_pid(), [this] { return tree_->summary(); }, warn);
    if (handoff_) {
        tree_ = std::make_unique<core::Tree>(handoff_->tree, *this);
        launcher_->adopt(*handoff_, *tree_, now());
        if (handoff_->systemd) systemd_->adopt(*handoff_->systemd);
    } else {
        tree_ = std::make_unique<core::Tree>(spec_.root, *this);
    }
    requests_ =
        std::make_unique<Requests>(*tree_, *registries_, static_cast<RequestEffects &>(*this));
    control_ = std::make_unique<Control>(loop_, std::move(*listen_fd),
                                         static_cast<RequestHandler &>(*this), warn);

    sig_chld_ = std::make_unique<uv::Signal>(loop_, SIGCHLD, [this] { on_sigchld(); });
    sig_term_ = std::make_unique<uv::Signal>(loop_, SIGTERM, [this] { on_term_signal(SIGTERM); });
    sig_int_ = std::make_unique<uv::Signal>(loop_, SIGINT, [this] { on_term_signal(SIGINT); });
    // SIGHUP rereads the spec file (it is not forwarded to workers: `chipctl
    // signal HUP PATH` does that on purpose).
    sig_hup_ = std::make_unique<uv::Signal>(loop_, SIGHUP, [this] { on_hangup(); });
    // Timer callbacks run before the loop polls, and the check handle only after
    // it: they settle their own consequences, or the loop could block with no
    // timer armed (a deadline that fired a little early, a wait that timed out).
    timer_ = std::make_unique<uv::Timer>(loop_, [this] {
        armed_.reset();
        tree_->on_time(now());
        after_events();
    });
    waiter_timer_ = std::make_unique<uv::Timer>(loop_, [this] { after_events(); });
    check_ = std::make_unique<uv::Check>(loop_, [this] { after_events(); });
    reap_timer_ = std::make_unique<uv::Timer>(loop_, [this] {
        reaped_this_turn_ = false;
        on_sigchld();
        after_events();
    });
}

void Daemon::setup_socket(std::size_t fd_limit, std::optional<os::UniqueFd> &listen_fd) {
    // The folder first: a runtime folder someone else made or replaced is
    // refused before anything is created in it (README.md, "Paths").
    auto folder = os::prepare_socket_folder(socket_path_, os::real_uid());
    if (!folder) throw std::runtime_error(folder.error().message);
    socket_folder_ = std::move(*folder);
    if (handoff_) {
        // Listening already, and still linked in place.
        listen_fd.emplace(handoff_->listen_fd);
        return;
    }
    const auto &access = spec_.socket_access;
    if (access.gid && socket_folder_.kind == SocketFolderKind::Private)
        throw std::runtime_error("the socket's group " + *access.group + " cannot reach " +
                                 socket_path_ + ": its folder " + socket_folder_.path +
                                 " is private to its user (mode 0700); give \"socket\" a "
                                 "\"path\" in a folder the group may enter");
    if (auto w = fd_warning(spec_.file, estimate_fds(spec_), fd_limit); !w.empty()) warn(w);
    auto fd = os::listen_unix(socket_folder_, access.mode, access.gid);
    if (!fd) throw std::runtime_error(fd.error().message);
    listen_fd.emplace(std::move(*fd));
}

void Daemon::setup_registries() {
    auto warn = [this](const std::string &m) { this->warn(m); };
    procs_ = std::make_unique<SystemProcesses>(
        loop_, [this](pid_t pid) { registries_->member_died(pid); });
    registries_ = std::make_unique<Registries>(
        *procs_, [this](pid_t pid) { return tree_->node_by_pid(pid) != nullptr; }, warn);
    if (handoff_) {
        // The regions and the index file are this pid's: taken as they are.
        registries_->publish_in(socket_folder_, false);
        if (auto r = registries_->adopt(handoff_->registries); !r)
            throw std::runtime_error(r.error().message);
        procs_->adopt(handoff_->watches);
    } else {
        registries_->publish_in(socket_folder_);
        for (const auto &rs : spec_.registries) {
            auto r = registries_->create_shared(rs, os::self_pid());
            if (!r) throw std::runtime_error(r.error().message);
        }
    }
    if (spec_.cluster) {
        cluster_ = std::make_unique<Cluster>(
            loop_, *spec_.cluster, socket_path_, warn,
            [this](const std::string &registry, const std::string &group, int sig) {
                std::vector<pid_t> pids;
                if (Registry *r = registries_->find(registry))
                    for (pid_t p : r->table.members(group))
                        if (os::kill_pid(p, sig) == 0) pids.push_back(p);
                return pids;
            });
        for (const auto &rs : spec_.registries) {
            const handoff::ClusterView *view = nullptr;
            if (handoff_)
                for (const auto &v : handoff_->cluster_views)
                    if (v.registry == rs.name) view = &v;
            auto r = view ? cluster_->adopt_registry(rs, *view)
                          : cluster_->add_registry(rs, registries_->find(rs.name)->shm_name,
                                                   os::self_pid());
            if (!r) throw std::runtime_error(r.error().message);
        }
        registries_->observe(
            {[] { return true; },
             [this](const Membership &m) {
                 const core::Node *n = spawning_ ? spawning_ : tree_->node_by_pid(m.pid);
                 if (m.joined)
                     cluster_->joined(m.registry, m.group, m.pid, n ? n->path : "");
                 else
                     cluster_->left(m.registry, m.group, m.pid);
             }});
    }
    registries_->observe({[this] { return streaming(); },
                          [this](const Membership &m) {
                              // A worker just spawned is not yet known by its pid.
                              const core::Node *n =
                                  spawning_ ? spawning_ : tree_->node_by_pid(m.pid);
                              publish(n, format_membership(m.joined, m.registry, m.group, m.pid,
                                                           n ? n->path : "", os::wall_now()));
                          }});
}

int Daemon::run() {
    try {
        setup();
    } catch (...) {
        // A hand-off that cannot be taken over touches no worker.
        if (handoff_ && cgroups_) cgroups_->abandon();
        throw;
    }
    if (handoff_) {
        took_over();
    } else {
        if (cluster_) cluster_->start();
        tree_->start(now());
    }
    after_events();
    if (!exiting_) loop_.run();
    // The lease is revoked before chipd goes: its members leave every view
    // at once instead of after lease_ttl.
    if (cluster_ && cluster_->close([this] { loop_.stop(); })) {
        closing_cluster_ = true;
        loop_.run();
    }
    // The way out is taken: one more SIGTERM (a user pressing on) waits,
    // blocked, and goes with the process, instead of killing it halfway
    // through its cleanup once the loop's handlers are gone.
    std::uint64_t term = 0;
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) term |= std::uint64_t{1} << (sig - 1);
    os::set_signal_mask(os::signal_mask() | term);
    cleanup();
    return exit_code_;
}

void Daemon::cleanup() {
    control_->flush();
    systemd_->stopping();
    launcher_->finish();
    cgroups_->finish();
    if (cluster_) cluster_->remove_views();
    registries_->close();
    control_->stop_listening();
    os::remove_in(socket_folder_, socket_folder_.socket_name);
}

// ---- the loop's turn ---------------------------------------------------------

void Daemon::after_events() {
    reaped_this_turn_ = false;
    // Handles closed from their own callbacks during the turn.
    launcher_->after_turn();
    procs_->after_turn();
    control_->after_turn();
    answer_requests();
    arm_timers();
    // The root is running only once every child of the tree has started and
    // is ready (README.md, "Supervision, as chipd does it"), so READY=1 means
    // the whole tree is up.
    systemd_->after_turn(tree_->settled(), now());
    // The turn's events to their subscribers, the last ones before an exit too.
    control_->flush();
    if (exiting_ && !closing_cluster_) loop_.stop();
    // At rest, the turn's answers sent: the next chipd takes over from here.
    if (reexec_conn_ && !exiting_) {
        std::uint64_t conn = *reexec_conn_;
        reexec_conn_.reset();
        // A shutdown or a reload begun later in the same turn wins.
        Error why = tree_->shutting_down() ? make_error(ECANCELED, "chipd is shutting down")
                    : requests_->reloading()
                        ? make_error(EBUSY, "a reload is under way; reexec once it is over")
                        : execute_again(conn);
        if (why.code == EIO) warn("reexec: " + why.message + "; chipd goes on as it was");
        control_->respond(conn, Requests::text(Requests::failed(why)));
        control_->flush();
    }
}

void Daemon::answer_requests() {
    // An answer lets its connection's next request in, which may be over at
    // once (a start of what runs already): again until nothing is due.
    for (;;) {
        auto answers = requests_->settle(now());
        if (answers.empty()) break;
        for (const auto &a : answers) control_->respond(a.conn, Requests::text(a.body));
    }
}

void Daemon::arm_timers() {
    if (auto next = requests_->next_deadline()) waiter_timer_->start(ms_until(*next, now()));
    auto next = tree_->next_deadline();
    if (next == armed_) return;
    armed_ = next;
    if (next)
        timer_->start(ms_until(*next, now()));
    else
        timer_->stop();
}

void Daemon::on_sigchld() {
    // One bounded batch per loop turn: workers that exit as soon as they are
    // respawned would otherwise keep chipd reaping for ever (each spawn's
    // SIGCHLD queues another signal callback in the same turn), and it would
    // answer nothing. The rest is reaped in the next turn, after I/O.
    if (reaped_this_turn_) {
        reap_timer_->start(1);
        return;
    }
    reaped_this_turn_ = true;
    bool more = os::reap_children(
        [&](pid_t pid, os::ChildExit how) {
            registries_->member_died(pid);
            // Its notify socket and its exports go with the process, before the
            // core may spawn the replacement (which gets a new socket) in on_exit.
            // What it left in its cgroup is killed before a replacement starts.
            if (core::Node *n = tree_->node_by_pid(pid)) {
                launcher_->exited(n->id);
                cgroups_->exited(n->id);
            }
            tree_->on_exit(pid, core::ExitStatus{how.signaled, how.value}, now());
        },
        kReapBatch);
    // 1 ms, not 0: libuv 1.44 runs a 0 ms timer started from a timer callback
    // again in the same turn, before any I/O.
    if (more) reap_timer_->start(1);
}

void Daemon::on_term_signal(int sig) {
    std::string name = "SIG" + signal_name(sig);
    switch (term_signals_.on_signal(now(), tree_->shutting_down())) {
        case TermSignals::Action::Begin:
            begin_shutdown(name + " received: shutting down");
            return;
        case TermSignals::Action::Ignore:
            warn(name + " again within 1 s of the first: the same request, ignored");
            return;
        case TermSignals::Action::Hurry:
            log(core::Event{core::Event::Kind::Kill,
                            &tree_->root(),
                            0,
                            {},
                            0,
                            name + " again: killing what is left"});
            tree_->hurry(now());
            return;
    }
}

void Daemon::on_hangup() {
    auto refused = requests_->reload_self(now());
    if (!refused) return;
    // Nobody to answer: the reasons go to the log.
    std::string why = (*refused)["error"].get<std::string>();
    warn("SIGHUP: not reloaded: " + why);
    if (auto errors = refused->find("errors"); errors != refused->end())
        for (const auto &e : *errors) warn("  " + e.get<std::string>());
}

void Daemon::begin_shutdown(const std::string &why) {
    log(core::Event{core::Event::Kind::Stop, &tree_->root(), 0, {}, 0, why});
    systemd_->stopping();
    tree_->shutdown(now());
}

void Daemon::on_ready(std::uint64_t id) {
    tree_->on_ready(id, now());
    // Taken (or no longer awaited): the notify socket has served.
    const core::Node *n = tree_->node_by_id(id);
    if (!n || n->state != core::State::Starting) launcher_->close_notify(id);
}

void Daemon::warn(const std::string &msg) {
    auto when = os::wall_now();
    write_log([&](LogStyle style) { return format_warning(msg, when, style); });
}

std::string Daemon::write_log(const std::function<std::string(LogStyle)> &format) {
    std::string line = format(style_);
    // Blocking, like inherited worker output: chipd's stderr is a terminal,
    // the journal or a container runtime, which all read promptly.
    (void)os::write_all(2, line.data(), line.size());
    if (log_file_) {
        if (style_.journal) {
            std::string plain = format(LogStyle{style_.json, false});
            log_file_->write_lines({}, plain.data(), plain.size(), now());
        } else {
            log_file_->write_lines({}, line.data(), line.size(), now());
        }
    }
    return line;
}

// ---- reexec ----------------------------------------------------------------------

std::optional<Error> Daemon::reexec(std::uint64_t conn) {
    if (reexec_conn_) return make_error(EBUSY, "a reexec is under way");
    reexec_conn_ = conn;
    return std::nullopt;
}

namespace {

// The hand-off versions PROGRAM reads (`PROGRAM --handoff-versions`), or why
// not known.
Result<std::vector<std::uint32_t>> versions_read_by(const std::string &program) {
    if (auto x = os::executable_file(program); !x)
        return make_error(EIO, "cannot execute " + program + ": " + x.error().message);
    auto run = os::run_program(program, {"--handoff-versions"}, std::chrono::seconds(10));
    auto said = [&] {
        std::string out = run.output;
        while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
        if (out.size() > 200) out = out.substr(0, 200) + "...";
        return out.empty() ? std::string() : ": " + out;
    };
    if (run.spawn_error)
        return make_error(EIO, "cannot execute " + program + ": " + std::strerror(run.spawn_error));
    if (run.timed_out)
        return make_error(EIO, program + " --handoff-versions did not answer within 10 s");
    if (!run.exited || run.status != 0)
        return make_error(EIO, program + " --handoff-versions " +
                                   (run.exited ? "exited " + std::to_string(run.status)
                                               : "was killed by SIG" + signal_name(run.status)) +
                                   said() + " (not a chipd that can take over?)");
    std::vector<std::uint32_t> out;
    std::string word;
    auto take = [&]() -> bool {
        if (word.empty()) return true;
        if (word.size() > 9 || word.find_first_not_of("0123456789") != std::string::npos)
            return false;
        out.push_back(static_cast<std::uint32_t>(std::stoul(word)));
        word.clear();
        return true;
    };
    for (char ch : run.output) {
        if (ch == ' ' || ch == '\n' || ch == '\t') {
            if (!take()) break;
        } else {
            word += ch;
        }
    }
    if (!take() || out.empty())
        return make_error(EIO, program + " --handoff-versions said no version" + said());
    return out;
}

}  // namespace

Error Daemon::execute_again(std::uint64_t conn) {
    const std::string &program = opts_.program;
    auto versions = versions_read_by(program);
    if (!versions) return versions.error();
    // The newest version both know.
    std::uint32_t version = 0;
    for (std::uint32_t v : *versions)
        if (handoff::accepts(v) && v > version) version = v;
    if (!version) {
        std::string said;
        for (std::uint32_t v : *versions) said += (said.empty() ? "" : " ") + std::to_string(v);
        return make_error(EIO, program + " reads hand-off versions " + said +
                                   "; this chipd writes " +
                                   std::to_string(handoff::kOldestVersion) + " to " +
                                   std::to_string(handoff::kVersion));
    }
    handoff::State state = handoff_state(conn);
    auto memfd = os::memfd_holding(handoff::encode(state, version));
    if (!memfd) return make_error(EIO, "cannot write the hand-off: " + memfd.error().message);

    auto when = os::wall_now();
    write_log([&](LogStyle style) { return format_reexec_begin(program, version, when, style); });
    // The event streams' last line: they are closed by the exec.
    if (streaming())
        publish(nullptr, format_reexec_begin(program, version, when, LogStyle{true, false}));
    control_->flush();
    std::vector<int> fds = state.fds();
    for (int fd : fds)
        if (auto r = os::set_cloexec(fd, false); !r) {
            for (int f : fds) (void)os::set_cloexec(f, true);
            return make_error(EIO, "cannot keep fds open across the exec: " + r.error().message);
        }
    std::vector<std::string> argv{program};
    argv.insert(argv.end(), opts_.args.begin(), opts_.args.end());
    argv.push_back("--handoff");
    argv.push_back(std::to_string(memfd->get()));
    // Signals wait, pending, until the next chipd listens for them; the
    // handlers go with the exec, what is ignored stays so (SIGPIPE, as a
    // fresh chipd has it).
    std::uint64_t mask = os::block_all_signals();
    int err = os::exec_program(program, argv);
    os::set_signal_mask(mask);
    for (int f : fds) (void)os::set_cloexec(f, true);
    return make_error(EIO, "cannot execute " + program + ": " + std::strerror(err));
}

handoff::State Daemon::handoff_state(std::uint64_t conn) const {
    handoff::State s;
    s.pid = os::self_pid();
    s.version = CHIP_VERSION;
    s.worker_fd_limit = worker_fd_limit_;
    s.signal_mask = opts_.signal_mask;
    s.socket_path = socket_path_;
    s.listen_fd = control_->listen_fd();
    s.requester_fd = control_->fd_of(conn);
    s.spec = spec_;
    s.tree = tree_->snapshot();
    launcher_->handoff_state(s);
    s.registries = registries_->handoff_state();
    s.watches = procs_->handoff_state();
    s.cgroups = cgroups_->handoff_state();
    if (cluster_) s.cluster_views = cluster_->handoff_state();
    s.systemd = systemd_->handoff_state();
    return s;
}

void Daemon::took_over() {
    std::uint32_t version = opts_.handoff_version;
    if (cluster_) {
        cluster_->start();
        // The new session puts every membership again.
        for (const auto &r : registries_->all())
            for (const auto &[group, count] : r->table.groups())
                for (pid_t pid : r->table.members(group)) {
                    const core::Node *n = tree_->node_by_pid(pid);
                    cluster_->joined(r->spec.name, group, pid, n ? n->path : "");
                }
    }
    // Handlers are in place: what was blocked across the exec comes now.
    os::set_signal_mask(handoff_->signal_mask);
    // Workers that exited during the exec.
    on_sigchld();
    std::size_t workers = 0;
    core::Tree::walk(tree_->root(), [&](core::Node &n) {
        if (n.worker && n.pid) ++workers;
    });
    write_log([&](LogStyle style) {
        return format_reexec_done(CHIP_VERSION, workers, version, os::wall_now(), style);
    });
    if (handoff_->requester_fd >= 0) {
        std::uint64_t conn = control_->adopt(os::UniqueFd(handoff_->requester_fd));
        control_->respond(conn, Requests::text(Requests::reexec_done(CHIP_VERSION)));
    }
    handoff_.reset();
}

// ---- core::Effects -----------------------------------------------------------

Result<pid_t> Daemon::spawn(const core::Node &node) {
    auto pid = launcher_->spawn(node, now());
    // Declared groups: joined the moment the worker exists.
    if (pid) {
        spawning_ = &node;
        registries_->join_declared(*node.worker->launch, node.path, *pid);
        spawning_ = nullptr;
    }
    return pid;
}

void Daemon::kill_group(pid_t pgid, int sig) {
    os::kill_group(pgid, sig);
    // The processes of its cgroup that left the group get it too (and a
    // SIGKILL kills all of it).
    if (cgroups_->on())
        if (const core::Node *n = tree_->node_by_pid(pgid)) cgroups_->signal(n->id, pgid, sig);
}

void Daemon::log(const core::Event &e) {
    // Written to the log, streamed, and counted for systemd's STATUS=.
    auto when = os::wall_now();
    std::string line = write_log([&](LogStyle style) { return format_event(e, when, style); });
    if (streaming()) {
        // The log's own line when it is the stream's JSON, else JSON once for all.
        bool same = style_.json && !style_.journal;
        publish(e.node, same ? line : format_event(e, when, LogStyle{true, false}));
    }
    systemd_->on_event(e, now());
}

double Daemon::random() {
    return std::uniform_real_distribution<double>(0.0, 1.0)(random_);
}

bool Daemon::streaming() const {
    return requests_ && !requests_->subscribers().empty();
}

void Daemon::publish(const core::Node *node, std::string_view line) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    for (std::uint64_t conn : requests_->subscribers().of(node)) control_->push(conn, line);
}

void Daemon::exit(int code) {
    exiting_ = true;
    exit_code_ = code;
}

void Daemon::removed(const core::Node &node) {
    launcher_->forget(node.id);
    cgroups_->forget(node.id);
    if (node.worker) launcher_->release(node.worker->launch.get());
}

void Daemon::redefined(const core::Node &node, const std::shared_ptr<const core::WorkerSpec> &old) {
    if (old) launcher_->release(old->launch.get());
    // Its process goes on (unless it is being stopped for a restart with the
    // new definition): only the groups it declares change.
    if (node.pid && !node.want_stop && old && old->launch && node.worker->launch)
        registries_->rejoin(*old->launch, *node.worker->launch, node.path, node.pid);
}

// ---- requests ----------------------------------------------------------------

RequestHandler::Reply Daemon::on_request(std::uint64_t conn, const os::PeerCred &peer,
                                         std::string_view line) {
    auto reply = requests_->handle_line(conn, peer, line, now());
    if (!reply.body) return {std::nullopt, reply.last};
    return {Requests::text(*reply.body), reply.last};
}

std::string Daemon::on_oversized() {
    return Requests::text(Requests::oversized());
}

void Daemon::on_closed(std::uint64_t conn) {
    requests_->forget(conn);
}

int Daemon::kill(pid_t pid, int sig) {
    return os::kill_pid(pid, sig);
}

void Daemon::shutdown() {
    begin_shutdown("shutdown requested");
}

// ---- reloads -----------------------------------------------------------------

RequestEffects::Loaded Daemon::load_spec(const std::string &path) {
    try {
        return {spec::load_file(path.empty() ? spec_.file : path), {}};
    } catch (const spec::SpecError &e) {
        return {std::nullopt, e.errors()};
    }
}

std::vector<std::string> Daemon::refused(const spec::Spec &next) {
    std::vector<std::string> why = spec::diff_registries(spec_.registries, next.registries).refused;
    if (next.socket != spec_.socket)
        why.push_back("the control socket cannot change while chipd runs (" +
                      spec_.socket.value_or("default") + " -> " + next.socket.value_or("default") +
                      "); restart chipd to change it");
    else if (next.socket_access != spec_.socket_access)
        why.push_back(
            "the control socket's group and mode cannot change while chipd runs; restart chipd "
            "to change them");
    if (next.cluster != spec_.cluster)
        why.push_back(
            "the cluster settings cannot change while chipd runs; restart chipd to "
            "change them");
    return why;
}

void Daemon::reload_begins(const spec::Spec &next, const std::vector<core::Change> &changes) {
    systemd_->reloading(now());
    auto when = os::wall_now();
    write_log([&](LogStyle style) { return format_reload(next.file, changes, when, style); });
    if (streaming())
        publish(nullptr, format_reload(next.file, changes, when, LogStyle{true, false}));
    // Added registries exist before the workers that join them start.
    for (const auto &rs : spec::diff_registries(spec_.registries, next.registries).added)
        if (auto r = registries_->create_shared(rs, os::self_pid()); !r)
            warn("reload: registry " + rs.name + ": " + r.error().message);
        else if (cluster_)
            if (auto c = cluster_->add_registry(rs, registries_->find(rs.name)->shm_name,
                                                os::self_pid());
                !c)
                warn("reload: registry " + rs.name + ": " + c.error().message);
}

void Daemon::reload_ends(const Result<void> &result, spec::Spec next) {
    // Dropped registries go once the nodes changed (their members are gone).
    for (const auto &name : spec::diff_registries(spec_.registries, next.registries).removed) {
        registries_->remove(name);
        if (cluster_) cluster_->remove_registry(name);
    }
    auto when = os::wall_now();
    write_log([&](LogStyle style) { return format_reload_end(result, when, style); });
    if (streaming()) publish(nullptr, format_reload_end(result, when, LogStyle{true, false}));
    spec_ = std::move(next);
    systemd_->reloaded();
}

std::string Daemon::spec_dir() {
    return spec_.dir;
}

const std::vector<std::pair<std::string, std::string>> *Daemon::exports_of(std::uint64_t id) {
    return launcher_->exports_of(id);
}

std::vector<pid_t> Daemon::processes_of(std::uint64_t id, pid_t pid, bool all) {
    std::vector<pid_t> out{pid};
    std::vector<pid_t> more;
    if (auto in_cgroup = cgroups_->pids(id))
        more = std::move(*in_cgroup);
    else if (all)
        more = os::process_group_members(pid);
    for (pid_t p : more)
        if (p != pid) out.push_back(p);
    return out;
}

std::string Daemon::wall_time_of(core::Time t) {
    auto ago = std::chrono::duration_cast<std::chrono::system_clock::duration>(now() - t);
    return timestamp(os::wall_now() - ago);
}

std::optional<RequestEffects::CgroupUsage> Daemon::cgroup_of(std::uint64_t id) {
    auto u = cgroups_->usage(id);
    if (!u) return std::nullopt;
    return CgroupUsage{std::move(u->path), u->cpu_s};
}

}  // namespace chip::daemon

namespace chip::daemon {

// ---- the cluster -------------------------------------------------------------

std::optional<nlohmann::json> Daemon::cluster_status() {
    if (!cluster_) return std::nullopt;
    return cluster_->status();
}

bool Daemon::cluster_signal(std::uint64_t conn, const std::string &registry,
                            const std::string &group, int sig, std::chrono::milliseconds timeout) {
    if (!cluster_) return false;
    cluster_->send_signal(registry, group, sig, timeout, [this, conn](const auto &o) {
        control_->respond(
            conn, Requests::text(Requests::cluster_signal_answer(o.signalled, o.silent, o.error)));
    });
    return true;
}

}  // namespace chip::daemon
