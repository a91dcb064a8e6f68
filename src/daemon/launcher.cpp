#include "daemon/launcher.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <tuple>

#include "common/names.hpp"
#include "common/search_path.hpp"
#include "daemon/notify_message.hpp"
#include "os/process.hpp"
#include "os/self.hpp"
#include "os/socket.hpp"

extern char **environ;

namespace chip::daemon {

namespace {

// Variables chipd sets per worker, or that describe chipd's own place under
// systemd and must not leak into workers.
bool private_var(const char *kv) {
    static const char *const kNames[] = {
        "NOTIFY_SOCKET=", "JOURNAL_STREAM=", "CHIP_SOCKET=",    "CHIP_PATH=",    "CHIP_INSTANCE=",
        "LISTEN_PID=",    "LISTEN_FDS=",     "LISTEN_FDNAMES=", "WATCHDOG_PID=", "WATCHDOG_USEC="};
    for (const char *n : kNames)
        if (std::strncmp(kv, n, std::strlen(n)) == 0) return true;
    return false;
}

// The name of "NAME=VALUE" is NAME.
bool has_name(const char *kv, const std::string &name) {
    return std::strncmp(kv, name.c_str(), name.size()) == 0 && kv[name.size()] == '=';
}

}  // namespace

void worker_environment(const std::vector<const char *> &base, const spec::Launch &launch,
                        std::vector<std::string> &owned, std::vector<const char *> &env) {
    static const char *const kLogin[] = {"HOME", "USER", "LOGNAME", "SHELL"};
    auto spec_sets = [&](std::string_view name) {
        for (const auto &[k, v] : launch.env)
            if (k == name) return true;
        return false;
    };
    owned.clear();
    env.clear();
    bool as_user = launch.uid.has_value();
    if (as_user && launch.login) {
        const spec::Login &l = *launch.login;
        const std::string *values[] = {&l.home, &l.name, &l.name, &l.shell};
        for (std::size_t i = 0; i < 4; ++i)
            if (!spec_sets(kLogin[i])) owned.push_back(std::string(kLogin[i]) + "=" + *values[i]);
    }
    for (const auto &[k, v] : launch.env) owned.push_back(k + "=" + v);
    for (const char *kv : base) {
        const char *eq = std::strchr(kv, '=');
        std::string_view name(kv, eq ? static_cast<std::size_t>(eq - kv) : std::strlen(kv));
        bool replaced = spec_sets(name);
        // chipd's own login variables are not the worker's user's.
        for (const char *l : kLogin) replaced = replaced || (as_user && name == l);
        if (!replaced) env.push_back(kv);
    }
    for (const auto &kv : owned) env.push_back(kv.c_str());
}

std::string spawn_failure(const os::SpawnResult &r, const spec::Launch &launch) {
    std::string what;
    switch (r.step) {
        case os::SpawnStep::Clone:
            return std::strerror(r.error);
        case os::SpawnStep::Cgroup:
            what = "cannot join its cgroup";
            break;
        case os::SpawnStep::Setsid:
            what = "setsid";
            break;
        case os::SpawnStep::Dup:
            what = "cannot set up stdin/stdout/stderr";
            break;
        case os::SpawnStep::SetGroups:
        case os::SpawnStep::SetGid:
        case os::SpawnStep::SetUid:
            what = "cannot switch user or group";
            break;
        case os::SpawnStep::DeathSignal:
            what = "cannot set the parent-death signal";
            break;
        case os::SpawnStep::Chdir:
            what = "cannot change to its folder " + launch.cwd;
            break;
        case os::SpawnStep::Exec:
            what = "cannot execute " + launch.command[0];
            break;
    }
    return what + ": " + std::strerror(r.error);
}

Launcher::Launcher(uv::Loop &loop, std::string socket_path, Cgroups &cgroups, Warn warn,
                   OnReady on_ready)
    : loop_(loop),
      socket_path_(std::move(socket_path)),
      cgroups_(cgroups),
      notify_dir_(socket_path_ + ".notify"),
      env_socket_("CHIP_SOCKET=" + socket_path_),
      warn_(std::move(warn)),
      on_ready_(std::move(on_ready)),
      dev_null_(os::open_dev_null()),
      inherit_out_(std::make_shared<InheritSink>(1)),
      inherit_err_(std::make_shared<InheritSink>(2)) {
    for (char **e = environ; *e; ++e)
        if (!private_var(*e)) base_env_.push_back(*e);
}

Launcher::~Launcher() {
    // Polls before the fds they watch.
    for (auto &[id, s] : slots_) s.notify_poll.reset();
}

Launcher::Cached &Launcher::cached(const std::shared_ptr<const spec::Launch> &launch) {
    auto &entry = cache_[launch.get()];
    if (entry) return *entry;
    entry = std::make_unique<Cached>();
    Cached &c = *entry;
    c.launch = launch;
    const spec::Launch &w = *launch;
    // A name without '/' is looked up like execvp would in the worker: in
    // the spec's PATH when it sets one, else chipd's. Candidates are made
    // now, so the child only tries execve on each.
    const std::string &cmd0 = w.command[0];
    if (cmd0.find('/') != std::string::npos) {
        c.candidates.push_back(cmd0);
    } else {
        std::string path;
        for (const auto &[k, v] : w.env)
            if (k == "PATH") path = v;
        if (path.empty()) {
            const char *p = std::getenv("PATH");
            path = p && *p ? p : "/usr/local/bin:/usr/bin:/bin";
        }
        c.candidates = search_candidates(path, cmd0);
    }
    for (auto &s : c.candidates) c.candidate_ptrs.push_back(s.c_str());
    for (const auto &a : w.command) c.argv.push_back(const_cast<char *>(a.c_str()));
    c.argv.push_back(nullptr);
    worker_environment(base_env_, w, c.env_owned, c.env);
    // A user brings its supplementary groups; a group alone drops chipd's.
    if (w.uid || w.gid) {
        gid_t gid = w.gid.value_or(os::real_gid());
        if (w.user)
            c.groups = os::groups_of_user(*w.user, gid);
        else
            c.groups = {gid};
    }
    // One sink per log file, whoever writes to it (both streams of a worker,
    // several workers): a file is rotated by one owner, its lines never torn.
    // Per-worker files ({name}, {instance}) are each node's (spawn).
    using Mode = spec::OutputSpec::Mode;
    if (w.out.mode == Mode::File && !spec::per_worker_file(w.out)) c.out_file = sink_for(w.out);
    if (w.err.mode == Mode::File && !spec::per_worker_file(w.err)) c.err_file = sink_for(w.err);
    return c;
}

// One sink per log file, whoever writes to it (both streams of a worker,
// several workers): a file is rotated by one owner, its lines never torn.
std::shared_ptr<FileSink> Launcher::sink_for(const spec::OutputSpec &o) {
    auto &sink = file_sinks_[o.file];
    if (!sink) sink = std::make_shared<FileSink>(o, warn_);
    return sink;
}

std::shared_ptr<FileSink> Launcher::own_sink(std::shared_ptr<FileSink> &held,
                                             const spec::OutputSpec &o, const core::Node &node) {
    spec::OutputSpec mine = o;
    mine.file = spec::log_file_of(o, node.base, node.instance);
    if (held && held->path() == mine.file) return held;
    std::string old = held ? held->path() : std::string();
    held = sink_for(mine);
    if (!old.empty()) drop_unused_sinks({old});
    return held;
}

// Drops the sinks of FILES that nothing writes to any more.
void Launcher::drop_unused_sinks(const std::vector<std::string> &files) {
    for (const auto &f : files)
        if (auto s = file_sinks_.find(f); s != file_sinks_.end() && s->second.use_count() == 1)
            file_sinks_.erase(s);
}

Result<pid_t> Launcher::spawn(const core::Node &node, Time now) {
    const spec::Launch &w = *node.worker->launch;
    Cached &c = cached(node.worker->launch);
    Slot &slot = slots_[node.id];
    // The files it writes: its definition's, or its own ({name}, {instance}).
    std::shared_ptr<FileSink> out_file = c.out_file, err_file = c.err_file;
    if (spec::per_worker_file(w.out)) out_file = own_sink(slot.out_file, w.out, node);
    if (spec::per_worker_file(w.err)) err_file = own_sink(slot.err_file, w.err, node);
    // A log file chipd refuses (a symlink, a folder others can write to) is a
    // failed start, like a command that cannot be executed (README.md, "Log
    // files").
    for (FileSink *f : {out_file.get(), err_file.get()})
        if (f)
            if (auto r = f->open_for_start(now); !r) return r.error();
    if (slot.env_path.empty()) {
        slot.env_path = "CHIP_PATH=" + node.path;
        slot.env_instance = "CHIP_INSTANCE=" + std::to_string(node.instance);
    }
    // Spawned anew: what it exported goes until it sends it again.
    if (!slot.exports.empty()) withdraw_exports(node.id, slot);
    slot.node = &node;
    slot.warned_stranger = slot.warned_oversized = false;

    // The cached environment plus this node's variables, in a vector reused
    // from spawn to spawn: a restart allocates nothing here (nor looks for
    // exporters while no node has exports).
    if (exporters_.empty() || !collect_exports(node, w)) {
        scratch_env_.assign(c.env.size(), nullptr);
        for (std::size_t i = 0; i < c.env.size(); ++i)
            scratch_env_[i] = const_cast<char *>(c.env[i]);
    } else {
        // An export replaces chipd's variable of that name; the spec's were
        // left out of the exports.
        scratch_env_.clear();
        for (const char *kv : c.env) {
            bool replaced = false;
            for (const auto &[k, v] : scratch_merged_) replaced = replaced || has_name(kv, k);
            if (!replaced) scratch_env_.push_back(const_cast<char *>(kv));
        }
        for (const auto &kv : scratch_exports_)
            scratch_env_.push_back(const_cast<char *>(kv.c_str()));
    }
    scratch_env_.push_back(const_cast<char *>(env_socket_.c_str()));
    scratch_env_.push_back(const_cast<char *>(slot.env_path.c_str()));
    scratch_env_.push_back(const_cast<char *>(slot.env_instance.c_str()));
    if (node.worker->ready == core::ReadyMode::Notify) {
        open_notify(slot, node.id);
        if (!slot.env_notify.empty())
            scratch_env_.push_back(const_cast<char *>(slot.env_notify.c_str()));
    }
    scratch_env_.push_back(nullptr);

    // Its own cgroup (README.md, "Containment"), where the child starts.
    auto cgroup = cgroups_.prepare(node.id, node.path);
    if (!cgroup) {
        close_notify(slot);
        return cgroup.error();
    }

    // Output: a pipe per captured stream; chipd keeps only the read ends (the
    // write ends close when this returns), so a pipe ends with the last
    // process of the worker that holds it.
    os::UniqueFd out_r, out_w, err_r, err_w;
    std::shared_ptr<Sink> out_sink, err_sink;
    int fd_out = dev_null_.get(), fd_err = dev_null_.get();
    using Mode = spec::OutputSpec::Mode;
    if (w.out.mode != Mode::Null) {
        if (auto r = os::make_pipe(out_r, out_w); !r) {
            close_notify(slot);
            return r.error();
        }
        out_sink = w.out.mode == Mode::File ? std::shared_ptr<Sink>(out_file) : inherit_out_;
        fd_out = out_w.get();
    }
    if (w.err.mode != Mode::Null) {
        if (w.err.mode == Mode::File && err_file == out_file && out_w) {
            fd_err = out_w.get();  // one file for both: one pipe keeps their order
        } else {
            if (auto r = os::make_pipe(err_r, err_w); !r) {
                close_notify(slot);
                return r.error();
            }
            err_sink = w.err.mode == Mode::File ? std::shared_ptr<Sink>(err_file) : inherit_err_;
            fd_err = err_w.get();
        }
    }

    os::SpawnPlan plan;
    plan.candidates = c.candidate_ptrs.data();
    plan.candidate_count = c.candidate_ptrs.size();
    plan.argv = c.argv.data();
    plan.envp = scratch_env_.data();
    plan.cwd = w.cwd.empty() ? nullptr : w.cwd.c_str();
    plan.fd_stdin = dev_null_.get();
    plan.fd_stdout = fd_out;
    plan.fd_stderr = fd_err;
    // If chipd dies, its workers get SIGTERM (README.md, "Orphans"; what
    // outlives it: "Containment").
    plan.parent_death_signal = SIGTERM;
    plan.fd_soft_limit = worker_fd_limit_;
    plan.cgroup = cgroup->get();
    if (w.uid || w.gid) {
        plan.set_ids = true;
        plan.uid = w.uid.value_or(os::real_uid());
        plan.gid = w.gid.value_or(os::real_gid());
        plan.groups = c.groups.data();
        plan.group_count = c.groups.size();
    }
    auto spawned = os::spawn(plan);
    if (!spawned) {
        close_notify(slot);
        return make_error(spawned.error, spawn_failure(spawned, w));
    }
    if (out_r) capture(std::move(out_r), out_sink, node.path);
    if (err_r) capture(std::move(err_r), err_sink, node.path);
    slot.pid = spawned.pid;
    return spawned.pid;
}

bool Launcher::collect_exports(const core::Node &node, const spec::Launch &launch) {
    // NODE and its ancestors, NODE first: an exporter counts when it is an
    // earlier sibling of one of them.
    std::vector<const core::Node *> chain;
    for (const core::Node *n = &node; n->parent; n = n->parent) chain.push_back(n);
    // (level from the root, index among siblings, exports): applied in that
    // order, so that a later exporter wins.
    std::vector<std::tuple<std::size_t, std::size_t, const Exports *>> found;
    for (std::uint64_t id : exporters_) {
        auto s = slots_.find(id);
        if (s == slots_.end() || !s->second.node) continue;
        const core::Node *e = s->second.node;
        for (std::size_t i = 0; i < chain.size(); ++i) {
            if (chain[i]->parent != e->parent) continue;
            if (e->index < chain[i]->index)
                found.emplace_back(chain.size() - i, e->index, &s->second.exports);
            break;
        }
    }
    scratch_merged_.clear();
    scratch_exports_.clear();
    if (found.empty()) return false;
    std::sort(found.begin(), found.end());
    for (const auto &[level, index, exports] : found) {
        for (const auto &kv : *exports) {
            const std::string &k = kv.first, &v = kv.second;
            // The worker's own env wins; chipd's per-worker variables are not
            // anybody else's to set.
            bool own = private_var((k + "=").c_str());
            for (const auto &[sk, sv] : launch.env) own = own || sk == k;
            if (own) continue;
            auto m = std::find_if(scratch_merged_.begin(), scratch_merged_.end(),
                                  [&](const auto &p) { return p.first == k; });
            if (m == scratch_merged_.end())
                scratch_merged_.emplace_back(k, v);
            else
                m->second = v;
        }
    }
    for (const auto &[k, v] : scratch_merged_) scratch_exports_.push_back(k + "=" + v);
    return !scratch_merged_.empty();
}

void Launcher::capture(os::UniqueFd fd, std::shared_ptr<Sink> sink, const std::string &prefix,
                       std::string_view partial) {
    pipes_.push_back(nullptr);
    auto it = std::prev(pipes_.end());
    *it = std::make_unique<OutputPipe>(
        loop_, std::move(fd), std::move(sink), prefix,
        [this, it](OutputPipe *) {
            // Freed after this turn, not inside its own callback.
            dead_pipes_.push_back(std::move(*it));
            pipes_.erase(it);
        },
        partial);
}

void Launcher::open_notify(Slot &slot, std::uint64_t id) {
    close_notify(slot);
    if (auto r = os::make_parent_dirs(notify_dir_ + "/x"); !r) {
        warn_(r.error().message);
        return;
    }
    slot.notify_path = notify_dir_ + "/" + std::to_string(id);
    // With SO_PASSCRED: the sender of each datagram is checked (on_notify).
    auto fd = os::bind_datagram(slot.notify_path, true);
    if (!fd) {
        // A path too long for sockaddr_un: an abstract socket has no file.
        slot.notify_path = "@" + socket_hash_prefix(socket_path_) + "notify-" + std::to_string(id);
        fd = os::bind_datagram(slot.notify_path, true);
    }
    if (!fd) {
        warn_("cannot create a notify socket: " + fd.error().message);
        slot.notify_path.clear();
        return;
    }
    slot.notify_fd = std::move(*fd);
    poll_notify(slot, id);
}

void Launcher::poll_notify(Slot &slot, std::uint64_t id) {
    slot.env_notify = "NOTIFY_SOCKET=" + slot.notify_path;
    slot.notify_poll =
        std::make_unique<uv::Poll>(loop_, slot.notify_fd.get(), [this, id](int) { on_notify(id); });
    slot.notify_poll->start(uv::Poll::Readable);
}

void Launcher::close_notify(std::uint64_t id) {
    if (auto s = slots_.find(id); s != slots_.end()) close_notify(s->second);
}

void Launcher::close_notify(Slot &slot) {
    // Possibly from its own callback (READY=1): freed after this loop turn.
    if (slot.notify_poll) {
        slot.notify_poll->stop();
        closed_.push_back({std::move(slot.notify_fd), std::move(slot.notify_poll)});
    }
    slot.notify_fd.reset();
    if (!slot.notify_path.empty() && slot.notify_path[0] != '@') os::remove_path(slot.notify_path);
    slot.notify_path.clear();
    slot.env_notify.clear();
}

void Launcher::on_notify(std::uint64_t id) {
    if (notify_buf_.empty()) notify_buf_.resize(kNotifyMaxDatagram);
    for (;;) {
        // Looked up afresh: ON_READY may have closed it.
        auto it = slots_.find(id);
        if (it == slots_.end() || !it->second.notify_fd) return;
        Slot &slot = it->second;
        auto d =
            os::recv_datagram_cred(slot.notify_fd.get(), notify_buf_.data(), notify_buf_.size());
        if (!d.got) return;
        const std::string &where = slot.node ? slot.node->path : slot.notify_path;
        // Like systemd's NotifyAccess=all: the worker's process or one of its
        // descendants, nobody else (the socket file is writable by all).
        if (!os::descends_from(d.pid, slot.pid)) {
            if (!slot.warned_stranger)
                warn_(where + ": notify datagram from pid " + std::to_string(d.pid) +
                      ", not one of its processes, ignored (said once per start)");
            slot.warned_stranger = true;
            continue;
        }
        if (d.truncated) {
            if (!slot.warned_oversized)
                warn_(where + ": notify datagram over " + std::to_string(kNotifyMaxDatagram) +
                      " bytes ignored (said once per start)");
            slot.warned_oversized = true;
            continue;
        }
        auto msg = parse_notify(std::string_view(notify_buf_.data(), d.size));
        for (const auto &w : msg.warnings) warn_(where + ": " + w);
        // Before READY=1 is handed on: the siblings it lets start get them.
        if (!msg.exports.empty()) take_exports(id, slot, std::move(msg.exports));
        if (msg.ready) on_ready_(id);
    }
}

void Launcher::take_exports(std::uint64_t id, Slot &slot, Exports exports) {
    for (auto &kv : exports) {
        std::string &k = kv.first, &v = kv.second;
        auto m = std::find_if(slot.exports.begin(), slot.exports.end(),
                              [&](const auto &p) { return p.first == k; });
        if (m == slot.exports.end())
            slot.exports.emplace_back(std::move(k), std::move(v));
        else
            m->second = std::move(v);
    }
    exporters_.insert(id);
}

void Launcher::withdraw_exports(std::uint64_t id, Slot &slot) {
    slot.exports.clear();
    exporters_.erase(id);
}

void Launcher::exited(std::uint64_t id) {
    if (auto s = slots_.find(id); s != slots_.end()) {
        close_notify(s->second);
        if (!s->second.exports.empty()) withdraw_exports(id, s->second);
    }
}

const Launcher::Exports *Launcher::exports_of(std::uint64_t id) const {
    auto s = slots_.find(id);
    return s == slots_.end() || s->second.exports.empty() ? nullptr : &s->second.exports;
}

void Launcher::forget(std::uint64_t id) {
    if (auto s = slots_.find(id); s != slots_.end()) {
        close_notify(s->second);
        exporters_.erase(id);
        std::vector<std::string> files;
        for (const auto &f : {s->second.out_file, s->second.err_file})
            if (f) files.push_back(f->path());
        slots_.erase(s);
        drop_unused_sinks(files);
    }
}

void Launcher::release(const spec::Launch *launch) {
    if (cache_.count(launch)) released_.push_back(launch);
}

void Launcher::after_turn() {
    closed_.clear();
    dead_pipes_.clear();
    if (!released_.empty()) sweep();
}

// Only the definitions let go of during the turn are looked at: a sweep of the
// whole cache per removal would make removing N of N workers quadratic.
void Launcher::sweep() {
    std::vector<std::string> files;
    for (const spec::Launch *l : released_) {
        auto it = cache_.find(l);
        // The cache alone holds the definition: no node can be spawned with it.
        if (it == cache_.end() || it->second->launch.use_count() > 1) continue;
        for (const auto *o : {&l->out, &l->err})
            if (o->mode == spec::OutputSpec::Mode::File) files.push_back(o->file);
        cache_.erase(it);
    }
    released_.clear();
    // Log files that neither a definition nor a pipe writes to any more.
    drop_unused_sinks(files);
}

// ---- the hand-off -------------------------------------------------------------

void Launcher::handoff_state(handoff::State &out) const {
    // Every file sink once, by path; pipes and slots name them by index.
    std::unordered_map<const Sink *, std::uint32_t> index;
    auto sink_index = [&](const Sink *s) -> std::optional<std::uint32_t> {
        if (!s) return std::nullopt;
        if (auto i = index.find(s); i != index.end()) return i->second;
        handoff::Sink h;
        if (s == inherit_out_.get()) {
            h.kind = handoff::Sink::Kind::Stdout;
        } else if (s == inherit_err_.get()) {
            h.kind = handoff::Sink::Kind::Stderr;
        } else if (auto *f = dynamic_cast<const FileSink *>(s)) {
            h.kind = handoff::Sink::Kind::File;
            h.file = f->spec();
        } else {
            return std::nullopt;
        }
        auto i = static_cast<std::uint32_t>(out.sinks.size());
        out.sinks.push_back(std::move(h));
        index.emplace(s, i);
        return i;
    };
    for (const auto &[path, sink] : file_sinks_)
        if (auto i = sink_index(sink.get())) out.shared_sinks.push_back(*i);
    for (const auto &p : pipes_) {
        auto i = sink_index(p->sink());
        if (!i) continue;
        out.pipes.push_back(handoff::Pipe{p->fd(), p->prefix(), p->partial(), *i});
    }
    for (const auto &[id, s] : slots_) {
        handoff::Slot h;
        h.id = id;
        h.pid = s.pid;
        h.notify_fd = s.notify_fd ? s.notify_fd.get() : -1;
        h.notify_path = s.notify_fd ? s.notify_path : std::string();
        h.exports = s.exports;
        h.warned_stranger = s.warned_stranger;
        h.warned_oversized = s.warned_oversized;
        h.out_file = sink_index(s.out_file.get());
        h.err_file = sink_index(s.err_file.get());
        out.slots.push_back(std::move(h));
    }
}

void Launcher::adopt(const handoff::State &in, core::Tree &tree, Time now) {
    std::vector<std::shared_ptr<Sink>> sinks;
    for (const auto &h : in.sinks) {
        switch (h.kind) {
            case handoff::Sink::Kind::Stdout:
                sinks.push_back(inherit_out_);
                break;
            case handoff::Sink::Kind::Stderr:
                sinks.push_back(inherit_err_);
                break;
            case handoff::Sink::Kind::File: {
                auto f = sink_for(h.file);
                // Opened now, appending after what the last chipd wrote.
                if (auto r = f->open_for_start(now); !r) warn_(r.error().message);
                sinks.push_back(std::move(f));
                break;
            }
        }
    }
    auto file_at = [&](std::optional<std::uint32_t> i) -> std::shared_ptr<FileSink> {
        if (!i) return nullptr;
        return std::dynamic_pointer_cast<FileSink>(sinks[*i]);
    };
    for (const auto &p : in.pipes) capture(os::UniqueFd(p.fd), sinks[p.sink], p.prefix, p.partial);
    for (const auto &h : in.slots) {
        Slot &slot = slots_[h.id];
        slot.node = tree.node_by_id(h.id);
        slot.pid = h.pid;
        slot.exports = h.exports;
        if (!slot.exports.empty()) exporters_.insert(h.id);
        slot.warned_stranger = h.warned_stranger;
        slot.warned_oversized = h.warned_oversized;
        slot.out_file = file_at(h.out_file);
        slot.err_file = file_at(h.err_file);
        if (h.notify_fd >= 0) {
            slot.notify_fd = os::UniqueFd(h.notify_fd);
            slot.notify_path = h.notify_path;
            poll_notify(slot, h.id);
        }
    }
}

void Launcher::finish() {
    // What workers wrote just before the tree finished may still sit in the
    // pipes (their SIGCHLD can be handled before their last output).
    for (auto &p : pipes_) p->drain();
    for (auto &[id, s] : slots_) close_notify(s);
    closed_.clear();
    os::remove_path(notify_dir_, true);
}

}  // namespace chip::daemon
