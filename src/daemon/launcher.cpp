#include "daemon/launcher.hpp"

#include <signal.h>

#include <cstdlib>
#include <cstring>

#include "common/names.hpp"
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

}  // namespace

std::string spawn_failure(const os::SpawnResult &r, const spec::Launch &launch) {
    std::string what;
    switch (r.step) {
        case os::SpawnStep::Clone:
            return std::strerror(r.error);
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

Launcher::Launcher(uv::Loop &loop, std::string socket_path, Warn warn, OnReady on_ready)
    : loop_(loop),
      socket_path_(std::move(socket_path)),
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

Launcher::Cached &Launcher::cached(const std::shared_ptr<const spec::Launch> &launch, Time now) {
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
        std::size_t start = 0;
        while (start <= path.size()) {
            auto colon = path.find(':', start);
            std::string dir =
                path.substr(start, colon == std::string::npos ? colon : colon - start);
            // An empty element is the current folder (POSIX).
            c.candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + cmd0);
            if (colon == std::string::npos) break;
            start = colon + 1;
        }
    }
    for (auto &s : c.candidates) c.candidate_ptrs.push_back(s.c_str());
    for (const auto &a : w.command) c.argv.push_back(const_cast<char *>(a.c_str()));
    c.argv.push_back(nullptr);
    // chipd's variables minus those the spec sets, then the spec's in its order.
    for (const auto &[k, v] : w.env) c.env_owned.push_back(k + "=" + v);
    for (const char *kv : base_env_) {
        const char *eq = std::strchr(kv, '=');
        std::size_t klen = eq ? static_cast<std::size_t>(eq - kv) : std::strlen(kv);
        bool overridden = false;
        for (const auto &[k, v] : w.env)
            if (k.size() == klen && std::strncmp(kv, k.c_str(), klen) == 0) overridden = true;
        if (!overridden) c.env.push_back(kv);
    }
    for (const auto &kv : c.env_owned) c.env.push_back(kv.c_str());
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
    auto sink_for = [&](const spec::OutputSpec &o) {
        auto &sink = file_sinks_[o.file];
        if (!sink) sink = std::make_shared<FileSink>(o, warn_, now);
        return sink;
    };
    if (w.out.mode == spec::OutputSpec::Mode::File) c.out_file = sink_for(w.out);
    if (w.err.mode == spec::OutputSpec::Mode::File) c.err_file = sink_for(w.err);
    return c;
}

Result<pid_t> Launcher::spawn(const core::Node &node, Time now) {
    const spec::Launch &w = *node.worker->launch;
    Cached &c = cached(node.worker->launch, now);
    Slot &slot = slots_[node.id];
    if (slot.env_path.empty()) {
        slot.env_path = "CHIP_PATH=" + node.path;
        slot.env_instance = "CHIP_INSTANCE=" + std::to_string(node.instance);
    }

    // The cached environment plus this node's variables, in a vector reused
    // from spawn to spawn: a restart allocates nothing here.
    scratch_env_.assign(c.env.size(), nullptr);
    for (std::size_t i = 0; i < c.env.size(); ++i) scratch_env_[i] = const_cast<char *>(c.env[i]);
    scratch_env_.push_back(const_cast<char *>(env_socket_.c_str()));
    scratch_env_.push_back(const_cast<char *>(slot.env_path.c_str()));
    scratch_env_.push_back(const_cast<char *>(slot.env_instance.c_str()));
    if (node.worker->ready == core::ReadyMode::Notify) {
        open_notify(slot, node.id);
        if (!slot.env_notify.empty())
            scratch_env_.push_back(const_cast<char *>(slot.env_notify.c_str()));
    }
    scratch_env_.push_back(nullptr);

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
        out_sink = w.out.mode == Mode::File ? c.out_file : inherit_out_;
        fd_out = out_w.get();
    }
    if (w.err.mode != Mode::Null) {
        if (w.err.mode == Mode::File && c.err_file == c.out_file && out_w) {
            fd_err = out_w.get();  // one file for both: one pipe keeps their order
        } else {
            if (auto r = os::make_pipe(err_r, err_w); !r) {
                close_notify(slot);
                return r.error();
            }
            err_sink = w.err.mode == Mode::File ? c.err_file : inherit_err_;
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
    // If chipd dies, its workers go too (README.md, "Orphans").
    plan.parent_death_signal = SIGTERM;
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
    return spawned.pid;
}

void Launcher::capture(os::UniqueFd fd, std::shared_ptr<Sink> sink, const std::string &prefix) {
    pipes_.push_back(nullptr);
    auto it = std::prev(pipes_.end());
    *it = std::make_unique<OutputPipe>(loop_, std::move(fd), std::move(sink), prefix,
                                       [this, it](OutputPipe *) {
                                           // Freed after this turn, not inside its own callback.
                                           dead_pipes_.push_back(std::move(*it));
                                           pipes_.erase(it);
                                       });
}

void Launcher::open_notify(Slot &slot, std::uint64_t id) {
    close_notify(slot);
    if (auto r = os::make_parent_dirs(notify_dir_ + "/x"); !r) {
        warn_(r.error().message);
        return;
    }
    slot.notify_path = notify_dir_ + "/" + std::to_string(id);
    auto fd = os::bind_datagram(slot.notify_path);
    if (!fd) {
        // A path too long for sockaddr_un: an abstract socket has no file.
        slot.notify_path =
            "@" + registry_shm_prefix(socket_path_).substr(1) + "notify-" + std::to_string(id);
        fd = os::bind_datagram(slot.notify_path);
    }
    if (!fd) {
        warn_("cannot create a notify socket: " + fd.error().message);
        slot.notify_path.clear();
        return;
    }
    slot.notify_fd = std::move(*fd);
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
    char buf[4096];
    for (;;) {
        // Looked up afresh: ON_READY may have closed it.
        auto slot = slots_.find(id);
        if (slot == slots_.end() || !slot->second.notify_fd) return;
        ssize_t n = os::recv_datagram(slot->second.notify_fd.get(), buf, sizeof buf - 1);
        if (n <= 0) return;
        // sd_notify: newline-separated assignments; READY=1 is all chipd needs.
        std::string_view msg(buf, static_cast<std::size_t>(n));
        bool ready = false;
        std::size_t pos = 0;
        while (pos <= msg.size()) {
            auto nl = msg.find('\n', pos);
            if (msg.substr(pos, nl == std::string_view::npos ? nl : nl - pos) == "READY=1")
                ready = true;
            if (nl == std::string_view::npos) break;
            pos = nl + 1;
        }
        if (ready) on_ready_(id);
    }
}

void Launcher::forget(std::uint64_t id) {
    if (auto s = slots_.find(id); s != slots_.end()) {
        close_notify(s->second);
        slots_.erase(s);
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
    for (const auto &f : files)
        if (auto s = file_sinks_.find(f); s != file_sinks_.end() && s->second.use_count() == 1)
            file_sinks_.erase(s);
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
