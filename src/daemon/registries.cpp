#include "daemon/registries.hpp"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <set>

#include "common/names.hpp"
#include "os/process.hpp"
#include "os/self.hpp"
#include "registry/index.hpp"

namespace chip::daemon {

Registries::Registries(Processes &procs, IsWorker is_worker, Warn warn)
    : procs_(procs), is_worker_(std::move(is_worker)), warn_(std::move(warn)) {}

Result<void> Registries::format(Registry &r, std::span<std::byte> region, pid_t writer) {
    const auto &s = r.spec;
    if (int rc = r.table.init(region, s.name, s.max_groups, s.max_members, writer); rc < 0)
        return make_error(
            -rc, "registry " + s.name + ": cannot format shared memory: " + std::strerror(-rc));
    return {};
}

void Registries::publish_in(const os::SocketFolder &folder, bool clear_stale) {
    folder_ = &folder;
    if (!clear_stale) return;
    const std::string index = registry_index_name(folder.socket_name);
    // Only an index chipd's user wrote, and only the regions it owns: a
    // stranger cannot have chipd remove anything of theirs.
    auto old = os::read_trusted_file(folder, index, procs_.own_uid(), registry::kMaxIndexSize);
    if (!old) return;
    if (old->owner != procs_.own_uid()) return;
    auto entries = registry::parse_index(old->text);
    if (!entries) return;
    // A registry's cluster view is named after it (common/names.hpp).
    for (const auto &e : *entries) {
        os::remove_stale_shm(e.shm_name, procs_.own_uid());
        os::remove_stale_shm(cluster_shm_name(e.shm_name), procs_.own_uid());
    }
}

Result<void> Registries::publish() {
    if (!folder_) return {};
    std::vector<registry::IndexEntry> entries;
    for (const auto &r : list_)
        if (!r->shm_name.empty()) entries.push_back({r->spec.name, r->shm_name});
    const std::string index = registry_index_name(folder_->socket_name);
    if (auto w = os::publish_file(*folder_, index, registry::format_index(entries)); !w)
        return make_error(w.error().code, "cannot publish the registries: " + w.error().message);
    return {};
}

Result<void> Registries::create_shared(const spec::RegistrySpec &spec, pid_t writer) {
    // Sized for its capacities once: a full registry refuses joins (ENOSPC)
    // rather than growing under its readers.
    auto r = std::make_unique<Registry>();
    r->spec = spec;
    const std::size_t size = registry::Table::region_size(spec.max_groups, spec.max_members);
    // A fresh random name each time; a taken one (EEXIST: 128 random bits
    // make it someone's deliberate copy of a published name) is never shared.
    Result<os::SharedMemory> m = make_error(EEXIST, "");
    for (int attempt = 0; attempt < 4 && !m && m.error().code == EEXIST; ++attempt) {
        auto token = os::random_hex(kShmTokenLen / 2);
        if (!token)
            return make_error(token.error().code,
                              "registry " + spec.name + ": " + token.error().message);
        r->shm_name = registry_shm_name(*token, spec.name);
        m = os::create_shm(r->shm_name, size);
    }
    if (!m) return make_error(m.error().code, "registry " + spec.name + ": " + m.error().message);
    r->fd = std::move(m->fd);
    r->mapping = std::move(m->mapping);
    if (auto f = format(*r, r->mapping.bytes(), writer); !f) {
        (void)os::unlink_shm(r->shm_name);
        return f;
    }
    list_.push_back(std::move(r));
    return publish();
}

Result<void> Registries::add(const spec::RegistrySpec &spec, std::span<std::byte> region,
                             pid_t writer) {
    auto r = std::make_unique<Registry>();
    r->spec = spec;
    if (auto f = format(*r, region, writer); !f) return f;
    list_.push_back(std::move(r));
    return {};
}

std::vector<handoff::Registry> Registries::handoff_state() const {
    std::vector<handoff::Registry> out;
    for (const auto &r : list_)
        if (r->fd) out.push_back({r->spec, r->shm_name, r->fd.get()});
    return out;
}

Result<void> Registries::adopt(const std::vector<handoff::Registry> &regs) {
    // Every descriptor is owned at once, so that none stays open unowned
    // whatever is refused (a number named twice is owned once).
    std::vector<os::UniqueFd> fds(regs.size());
    for (std::size_t i = 0; i < regs.size(); ++i) {
        bool seen = false;
        for (std::size_t j = 0; j < i; ++j) seen = seen || regs[j].fd == regs[i].fd;
        if (!seen && regs[i].fd >= 0) fds[i].reset(regs[i].fd);
    }
    std::vector<std::unique_ptr<Registry>> adopted;
    for (std::size_t i = 0; i < regs.size(); ++i) {
        const auto &h = regs[i];
        auto fail = [&](int code, const std::string &why) {
            return make_error(
                code, "registry " + h.spec.name + ": cannot take over " + h.shm_name + ": " + why);
        };
        bool twice = find(h.spec.name) != nullptr;
        for (const auto &r : adopted) twice = twice || r->spec.name == h.spec.name;
        if (twice) return fail(EINVAL, "registry " + h.spec.name + " is there already");
        if (!registry::valid_shm_name(h.shm_name, h.spec.name))
            return fail(EINVAL, "not a shared-memory name of this registry");
        if (!fds[i])
            return fail(EBADF, "descriptor " + std::to_string(h.fd) + " named twice or none");
        const std::size_t size =
            registry::Table::region_size(h.spec.max_groups, h.spec.max_members);
        if (size == 0) return fail(EINVAL, "bad capacities");
        auto m = os::map_shared(fds[i].get(), h.shm_name, size, procs_.own_uid());
        if (!m)
            return make_error(m.error().code, "registry " + h.spec.name + ": " + m.error().message);
        auto r = std::make_unique<Registry>();
        r->spec = h.spec;
        r->shm_name = h.shm_name;
        r->fd = std::move(fds[i]);
        r->mapping = std::move(*m);
        std::string why;
        if (r->table.adopt(r->mapping.bytes(), &why) < 0) return fail(EINVAL, why);
        if (r->table.name() != h.spec.name || r->table.max_groups() != h.spec.max_groups ||
            r->table.max_members() != h.spec.max_members)
            return fail(EINVAL, "the region is registry " + std::string(r->table.name()) +
                                    " with max_groups " + std::to_string(r->table.max_groups()) +
                                    " and max_members " + std::to_string(r->table.max_members()));
        adopted.push_back(std::move(r));
    }
    for (auto &r : adopted) list_.push_back(std::move(r));
    return {};
}

int Registries::join_in(Registry &r, std::string_view group, pid_t pid) {
    if (!observed()) return r.table.join(group, pid);
    bool before = false;
    for (pid_t p : r.table.members(group)) before = before || p == pid;
    int rc = r.table.join(group, pid);
    if (rc == 0 && !before) notify({true, r.spec.name, group, pid});
    return rc;
}

int Registries::leave_in(Registry &r, std::string_view group, pid_t pid) {
    if (!observed()) return r.table.leave(group, pid);
    bool before = false;
    for (pid_t p : r.table.members(group)) before = before || p == pid;
    int rc = r.table.leave(group, pid);
    if (rc == 0 && before) notify({false, r.spec.name, group, pid});
    return rc;
}

Registry *Registries::find(std::string_view name) {
    for (auto &r : list_)
        if (r->spec.name == name) return r.get();
    return nullptr;
}

Result<void> Registries::check_allowed(const os::PeerCred &peer, pid_t pid) {
    auto no_process = [pid] { return make_error(ESRCH, "no process " + std::to_string(pid)); };
    // The common cases cost no /proc read: a worker itself (alive: chipd has
    // not reaped it), asked for by root, chipd's user or the worker itself.
    bool trusted = peer.uid == 0 || peer.uid == procs_.own_uid() || peer.pid == pid;
    if (!trusted) {
        auto uids = procs_.uids_of(pid);
        if (!uids) return no_process();
        if (peer.uid != uids->first && peer.uid != uids->second)
            return make_error(EPERM, "uid " + std::to_string(peer.uid) + " may not act on pid " +
                                         std::to_string(pid) + " (runs as uid " +
                                         std::to_string(uids->first) + ")");
    }
    // Inside the tree: a worker, or a descendant of one.
    pid_t p = pid;
    for (int depth = 0; depth < 4096 && p > 1; ++depth) {
        if (is_worker_(p)) return {};
        auto parent = procs_.parent_of(p);
        if (!parent) {
            if (p == pid) return no_process();
            break;
        }
        p = *parent;
    }
    return make_error(EPERM, "pid " + std::to_string(pid) +
                                 " is not a worker of this chipd nor a descendant of one");
}

Result<void> Registries::join(Registry &r, std::string_view group, pid_t pid,
                              const os::PeerCred &peer) {
    if (auto ok = check_allowed(peer, pid); !ok) return ok;
    // Watched before it joins: a process that has already exited (a zombie)
    // is refused rather than joined and dropped at once. A worker's exit
    // comes through SIGCHLD.
    if (!is_worker_(pid) && !procs_.watch(pid))
        return make_error(ESRCH, "pid " + std::to_string(pid) + " has exited");
    if (int rc = join_in(r, group, pid); rc < 0)
        return make_error(-rc, rc == -ENOSPC ? "registry " + r.spec.name + " is full"
                                             : std::string(std::strerror(-rc)));
    return {};
}

Result<void> Registries::leave(Registry &r, std::string_view group, pid_t pid,
                               const os::PeerCred &peer) {
    if (auto ok = check_allowed(peer, pid); !ok) return ok;
    if (int rc = leave_in(r, group, pid); rc < 0) return make_error(-rc, std::strerror(-rc));
    return {};
}

void Registries::join_declared(const spec::Launch &launch, const std::string &path, pid_t pid) {
    for (const auto &[name, groups] : launch.join) {
        Registry *r = find(name);
        if (!r) continue;
        // One change for readers: the worker appears in all its groups at once.
        r->table.begin();
        for (const auto &g : groups) {
            if (int rc = join_in(*r, g, pid); rc < 0)
                warn_("cannot join " + path + " (pid " + std::to_string(pid) + ") to " + name +
                      "/" + g + ": " + std::strerror(-rc));
        }
        r->table.commit();
    }
}

void Registries::rejoin(const spec::Launch &old, const spec::Launch &next, const std::string &path,
                        pid_t pid) {
    auto groups_of = [](const spec::Launch &l, const std::string &registry) {
        for (const auto &[name, groups] : l.join)
            if (name == registry) return groups;
        return std::vector<std::string>{};
    };
    for (auto &r : list_) {
        auto before = groups_of(old, r->spec.name), after = groups_of(next, r->spec.name);
        if (before == after) continue;
        r->table.begin();
        for (const auto &g : before)
            if (std::find(after.begin(), after.end(), g) == after.end()) leave_in(*r, g, pid);
        for (const auto &g : after)
            if (std::find(before.begin(), before.end(), g) == before.end())
                if (int rc = join_in(*r, g, pid); rc < 0)
                    warn_("cannot join " + path + " (pid " + std::to_string(pid) + ") to " +
                          r->spec.name + "/" + g + ": " + std::strerror(-rc));
        r->table.commit();
    }
}

void Registries::remove(std::string_view name) {
    for (auto it = list_.begin(); it != list_.end(); ++it) {
        if ((*it)->spec.name != name) continue;
        (*it)->table.mark_dead();
        if (!(*it)->shm_name.empty()) (void)os::unlink_shm((*it)->shm_name);
        list_.erase(it);
        if (auto p = publish(); !p) warn_(p.error().message);
        return;
    }
}

void Registries::member_died(pid_t pid) {
    bool observed = this->observed();
    for (auto &r : list_) {
        // Its groups are looked up only for someone who follows them.
        std::vector<std::string> groups;
        if (observed) groups = r->table.groups_of(pid);
        r->table.remove_pid(pid);
        for (const auto &g : groups) notify({false, r->spec.name, g, pid});
    }
    procs_.unwatch(pid);
}

void Registries::close() {
    // Marked dead before the unlink: a reader that keeps its mapping learns
    // to look for a new chipd's region.
    for (auto &r : list_) {
        r->table.mark_dead();
        if (!r->shm_name.empty()) (void)os::unlink_shm(r->shm_name);
    }
    if (folder_) os::remove_in(*folder_, registry_index_name(folder_->socket_name));
}

// ---- the machine ---------------------------------------------------------------

SystemProcesses::SystemProcesses(uv::Loop &loop, std::function<void(pid_t)> died)
    : loop_(loop), died_(std::move(died)) {}

SystemProcesses::~SystemProcesses() = default;

uid_t SystemProcesses::own_uid() const {
    return os::real_uid();
}

std::optional<pid_t> SystemProcesses::parent_of(pid_t pid) const {
    return os::parent_of(pid);
}

std::optional<std::pair<uid_t, uid_t>> SystemProcesses::uids_of(pid_t pid) const {
    return os::uids_of(pid);
}

bool SystemProcesses::watch(pid_t pid) {
    if (auto it = watches_.find(pid); it != watches_.end()) {
        if (os::pidfd_alive(it->second->pidfd.get())) return true;
        // The watched process died and the pid was reused before its pidfd
        // event was handled: settle the old one first.
        died_(pid);
        unwatch(pid);
    }
    // A pidfd, not the pid: it cannot be fooled by the pid's reuse.
    int fd = os::pidfd_open(pid);
    if (fd < 0) return false;
    auto w = std::make_unique<Watch>();
    w->pidfd = os::UniqueFd(fd);
    if (!os::pidfd_alive(fd)) return false;
    poll(pid, *w);
    watches_[pid] = std::move(w);
    return true;
}

void SystemProcesses::poll(pid_t pid, Watch &w) {
    w.poll = std::make_unique<uv::Poll>(loop_, w.pidfd.get(), [this, pid](int) { died_(pid); });
    w.poll->start(uv::Poll::Readable);
}

std::vector<handoff::Watch> SystemProcesses::handoff_state() const {
    std::vector<handoff::Watch> out;
    for (const auto &[pid, w] : watches_) out.push_back({pid, w->pidfd.get()});
    return out;
}

void SystemProcesses::adopt(const std::vector<handoff::Watch> &watches) {
    std::set<int> owned;  // a number named twice is owned (and closed) once
    for (const auto &[pid, w] : watches_) owned.insert(w->pidfd.get());
    for (const auto &h : watches) {
        auto w = std::make_unique<Watch>();
        // Owned at once: refused or not, the descriptor is not left open.
        if (h.pidfd >= 0 && owned.insert(h.pidfd).second) w->pidfd.reset(h.pidfd);
        if (h.pid <= 0 || watches_.count(h.pid)) continue;
        if (w->pidfd && os::pidfd_take(w->pidfd.get(), h.pid) == 0) {
            // A pidfd whose process has exited is readable at once: its
            // death comes at the loop's next turn, like any other.
            poll(h.pid, *w);
            watches_[h.pid] = std::move(w);
        } else {
            unwatchable_pids_.push_back(h.pid);
        }
    }
    if (unwatchable_pids_.empty()) return;
    if (!unwatchable_)
        unwatchable_ = std::make_unique<uv::Timer>(loop_, [this] {
            for (pid_t pid : std::exchange(unwatchable_pids_, {}))
                if (!watches_.count(pid)) died_(pid);
        });
    unwatchable_->start(0);
}

void SystemProcesses::unwatch(pid_t pid) {
    auto it = watches_.find(pid);
    if (it == watches_.end()) return;
    // Possibly called from the watch's own callback: freed after this turn.
    it->second->poll->stop();
    ended_.push_back(std::move(it->second));
    watches_.erase(it);
}

void SystemProcesses::after_turn() {
    ended_.clear();
}

}  // namespace chip::daemon
