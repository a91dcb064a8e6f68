#include "daemon/cgroups.hpp"

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/names.hpp"
#include "os/cgroup.hpp"
#include "os/process.hpp"

namespace chip::daemon {

namespace {

using std::chrono::milliseconds;

// How long chipd waits for killed processes to leave their cgroups at its
// start (a predecessor's) and at its exit. SIGKILL ends a process at once,
// unless it is stuck in the kernel (D state): then chipd goes on.
constexpr milliseconds kEmptyWait{5000};
// Removal of a forgotten node's cgroup: tried again every 100 ms, 100 times.
constexpr std::uint64_t kRetryMs = 100;
constexpr unsigned kRetries = 100;
// A cgroup name is one folder name (at most 255 bytes).
constexpr std::size_t kMaxName = 200;

// The first words of the files the kernel puts in every cgroup: cgroup.*,
// and those of controllers.
bool kernel_prefix(std::string_view word) {
    static const char *const kWords[] = {"cgroup", "cpu",  "cpuset",  "io",  "memory", "pids",
                                         "rdma",   "misc", "hugetlb", "irq", "dmem"};
    for (const char *w : kWords)
        if (word == w) return true;
    return false;
}

std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace

std::string cgroup_name(const std::string &path) {
    std::string name = path;
    for (char &c : name)
        if (c == '/') c = ':';
    auto dot = name.find('.');
    bool escape =
        name.empty() || name[0] == '_' || name[0] == '.' ||
        (dot != std::string::npos && kernel_prefix(std::string_view(name).substr(0, dot)));
    if (escape) name.insert(0, "_");
    if (name.size() > kMaxName) {
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(path)));
        name = name.substr(0, kMaxName - 17) + "~" + hex;
    }
    return name;
}

Cgroups::Cgroups(uv::Loop &loop, const std::string &socket_path, bool enabled, Warn warn,
                 const handoff::Cgroups *adopt)
    : warn_(std::move(warn)) {
    if (!enabled) {
        off("--no-cgroups");
        return;
    }
    // Workers that run outside cgroups stay so: a worker's processes are
    // never moved.
    if (adopt && !adopt->on) {
        off("off before the reexec");
        return;
    }
    auto place = os::own_cgroup();
    if (!place) {
        off(place.error().message);
        return;
    }
    auto parent = os::open_cgroup(place->folder);
    if (!parent) {
        off(parent.error().message);
        return;
    }
    // Moving a worker from chipd's cgroup into one below it needs write access
    // to chipd's cgroup.procs (their common ancestor): root, or delegated.
    if (auto w = os::check_cgroup_writable(parent->get(), place->folder); !w) {
        off(w.error().message);
        return;
    }
    // "chip-<hash>": the socket's hash, as in its notify sockets' names.
    std::string prefix = socket_hash_prefix(socket_path);
    folder_name_ = prefix.substr(0, prefix.size() - 1);
    path_ = (place->path == "/" ? "" : place->path) + "/" + folder_name_;
    if (auto made = os::make_cgroup(parent->get(), folder_name_); !made) {
        off(place->folder + "/" + made.error().message);
        return;
    }
    auto folder = os::open_cgroup(place->folder + "/" + folder_name_);
    if (!folder) {
        off(folder.error().message);
        return;
    }
    parent_ = std::move(*parent);
    folder_ = std::move(*folder);
    retry_ = std::make_unique<uv::Timer>(loop, [this] {
        if (retry_removals()) {
            retries_ = 0;
        } else if (++retries_ < kRetries) {
            retry_->start(kRetryMs);
        } else {
            retries_ = 0;
            for (const auto &name : removals_)
                warn_("cgroups: " + path_ + "/" + name +
                      " is still populated; it is removed at chipd's exit");
            removals_.clear();
        }
    });
    if (adopt) {
        for (const auto &g : adopt->groups) groups_[g.id] = Group{g.name, g.base_usec};
        removals_.insert(adopt->removals.begin(), adopt->removals.end());
        if (!removals_.empty()) retry_->start(kRetryMs);
    } else {
        clear_leftovers();
    }
    // Whether workers can be born in their cgroups, tried in a cgroup no node
    // can have ('=' is not in node names).
    if (os::make_cgroup(folder_.get(), "=probe")) {
        if (auto probe = os::open_cgroup_at(folder_.get(), "=probe"))
            os::probe_clone_into_cgroup(probe->get());
        os::remove_cgroup(folder_.get(), "=probe");
    }
}

handoff::Cgroups Cgroups::handoff_state() const {
    handoff::Cgroups out;
    out.on = on();
    for (const auto &[id, g] : groups_) out.groups.push_back({id, g.name, g.base_usec});
    out.removals.assign(removals_.begin(), removals_.end());
    return out;
}

Cgroups::~Cgroups() {
    finish();
}

void Cgroups::off(std::string why) {
    why_off_ = std::move(why);
}

void Cgroups::clear_leftovers() {
    auto pids = os::cgroup_pids(folder_.get(), "", true);
    auto children = os::cgroup_children(folder_.get(), "");
    if (pids.empty() && children.empty()) return;
    // The socket was free: whoever made these is gone, and so must be what
    // it left, before this tree starts.
    os::kill_cgroup(folder_.get(), "");
    bool empty = os::wait_cgroup_empty(folder_.get(), "", kEmptyWait);
    if (!pids.empty())
        warn_("cgroups: killed " + std::to_string(pids.size()) + " process" +
              (pids.size() == 1 ? "" : "es") + " left in " + path_ +
              " by a previous chipd on this socket");
    if (!empty)
        warn_("cgroups: " + path_ + " is still populated after " +
              std::to_string(kEmptyWait.count() / 1000) + " s; going on");
    for (const auto &child : children) remove_tree(child);
}

int Cgroups::remove_tree(const std::string &name, int depth) {
    // A worker may have made cgroups of its own inside its cgroup.
    if (depth < 32)
        for (const auto &child : os::cgroup_children(folder_.get(), name))
            remove_tree(name + "/" + child, depth + 1);
    return os::remove_cgroup(folder_.get(), name);
}

Result<os::UniqueFd> Cgroups::prepare(std::uint64_t id, const std::string &path) {
    if (!on()) return os::UniqueFd{};
    auto [it, fresh] = groups_.try_emplace(id);
    Group &g = it->second;
    if (fresh) g.name = cgroup_name(path);
    // Made at the first spawn, or again when it went behind chipd's back.
    auto fd = fresh ? Result<os::UniqueFd>(make_error(ENOENT, ""))
                    : os::open_cgroup_at(folder_.get(), g.name);
    if (!fd && fd.error().code == ENOENT) {
        removals_.erase(g.name);  // a removed node's, at the same path: reused
        auto made = os::make_cgroup(folder_.get(), g.name);
        if (!made) {
            groups_.erase(it);
            return make_error(made.error().code,
                              "cannot make its cgroup " + path_ + "/" + made.error().message);
        }
        g.base_usec = 0;
        if (!*made) g.base_usec = os::cgroup_cpu_usec(folder_.get(), g.name).value_or(0);
        fd = os::open_cgroup_at(folder_.get(), g.name);
    } else if (fd) {
        // A restart: its CPU time counts from now.
        g.base_usec = os::cgroup_cpu_usec(folder_.get(), g.name).value_or(0);
    }
    if (!fd)
        return make_error(fd.error().code,
                          "cannot join its cgroup " + path_ + "/" + fd.error().message);
    return fd;
}

void Cgroups::exited(std::uint64_t id) {
    if (!on()) return;
    auto it = groups_.find(id);
    if (it == groups_.end()) return;
    // KillMode=control-group: nothing outlives the worker's main process.
    // Usually nothing is left: one read tells.
    const std::string &name = it->second.name;
    if (os::cgroup_populated(folder_.get(), name).value_or(true))
        os::kill_each(folder_.get(), name);
}

void Cgroups::signal(std::uint64_t id, pid_t pgid, int sig) {
    if (!on()) return;
    auto it = groups_.find(id);
    if (it == groups_.end()) return;
    const std::string &name = it->second.name;
    // Never cgroup.kill: the worker's next process starts in this cgroup.
    if (sig == SIGKILL) {
        os::kill_each(folder_.get(), name);
        return;
    }
    // Once each: a process counting signals (a nested chipd: a second
    // SIGTERM hurries it) must not get the group's twice.
    for (pid_t pid : os::cgroup_pids(folder_.get(), name, true))
        if (os::process_group_of(pid) != pgid) os::kill_pid(pid, sig);
}

std::optional<Cgroups::Usage> Cgroups::usage(std::uint64_t id) const {
    if (!on()) return std::nullopt;
    auto it = groups_.find(id);
    if (it == groups_.end()) return std::nullopt;
    Usage u{path_ + "/" + it->second.name, std::nullopt};
    if (auto usec = os::cgroup_cpu_usec(folder_.get(), it->second.name))
        u.cpu_s =
            static_cast<double>(*usec >= it->second.base_usec ? *usec - it->second.base_usec : 0) /
            1e6;
    return u;
}

std::optional<std::vector<pid_t>> Cgroups::pids(std::uint64_t id) const {
    if (!on()) return std::nullopt;
    auto it = groups_.find(id);
    if (it == groups_.end()) return std::nullopt;
    return os::cgroup_pids(folder_.get(), it->second.name, true);
}

void Cgroups::forget(std::uint64_t id) {
    if (!on()) return;
    auto it = groups_.find(id);
    if (it == groups_.end()) return;
    std::string name = std::move(it->second.name);
    groups_.erase(it);
    // Pid by pid: a node added at the same path meanwhile takes it back.
    os::kill_each(folder_.get(), name);
    // Killed processes take a moment to leave: removed from the timer then.
    if (remove_tree(name) == -EBUSY) {
        removals_.insert(name);
        if (retries_ == 0) retry_->start(kRetryMs);
    }
}

bool Cgroups::retry_removals() {
    for (auto it = removals_.begin(); it != removals_.end();) {
        int rc = remove_tree(*it);
        if (rc == 0 || rc == -ENOENT)
            it = removals_.erase(it);
        else
            ++it;
    }
    return removals_.empty();
}

void Cgroups::finish() {
    if (!on()) return;
    retry_.reset();
    // The tree has stopped; whatever is left is killed, all of it at once.
    auto children = os::cgroup_children(folder_.get(), "");
    if (!children.empty() || os::cgroup_populated(folder_.get(), "").value_or(false)) {
        os::kill_cgroup(folder_.get(), "");
        if (!os::wait_cgroup_empty(folder_.get(), "", kEmptyWait))
            warn_("cgroups: " + path_ + " is still populated after " +
                  std::to_string(kEmptyWait.count() / 1000) + " s");
    }
    for (const auto &child : children) remove_tree(child);
    groups_.clear();
    removals_.clear();
    folder_.reset();
    if (int rc = os::remove_cgroup(parent_.get(), folder_name_); rc < 0 && rc != -ENOENT)
        warn_("cgroups: cannot remove " + path_ + ": " + std::strerror(-rc) +
              "; the next chipd on this socket clears it");
    parent_.reset();
}

}  // namespace chip::daemon
