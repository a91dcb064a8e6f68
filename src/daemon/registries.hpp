// The registries chipd serves (README.md, "The registry"): one region per
// registry of the spec (shared memory in chipd, any byte span in tests),
// formatted at start and flagged dead and unlinked at a clean exit; the index
// file beside the socket that tells readers the regions' random names; the
// groups a worker declares, joined the moment it is spawned; join and leave
// with the permission rule of README.md, "Protocol"; the removal of a member
// that dies, found through SIGCHLD for workers and a pidfd for the others.
//
// Across a re-exec (README.md, "Upgrading chipd in place") the regions are
// handed over as they are: the old image hands their descriptors, the new one
// adopts them; readers see the same names and members and never a dead flag.
//
// It does not parse requests (requests.hpp does) nor know the tree: whether a
// pid is a worker's is asked of a callback, and the machine (/proc, pidfds)
// of a Processes, which tests fake.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "handoff/state.hpp"
#include "os/fd.hpp"
#include "os/private_folder.hpp"
#include "os/shm.hpp"
#include "os/socket.hpp"
#include "registry/table.hpp"
#include "spec/spec.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

// What the registries ask of the machine.
class Processes {
public:
    virtual ~Processes() = default;
    // chipd's real uid.
    virtual uid_t own_uid() const = 0;
    // PID's parent, nullopt when PID does not exist.
    virtual std::optional<pid_t> parent_of(pid_t pid) const = 0;
    // PID's real and effective uid, nullopt when PID does not exist.
    virtual std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid) const = 0;
    // Watches PID (not a worker) until it dies, then reports it to the
    // registries (Registries::member_died). False when it has already exited.
    virtual bool watch(pid_t pid) = 0;
    // Stops watching PID (it died, or left every group); unknown pids are fine.
    virtual void unwatch(pid_t pid) = 0;
};

struct Registry {
    spec::RegistrySpec spec;
    std::string shm_name;  // "/chip-<random>-<name>"; empty over memory of the caller
    os::UniqueFd fd;       // the shared memory, open read-write (close-on-exec) for a hand-off
    os::Mapping mapping;   // the shared memory, when shm_name is set
    registry::Table table;
};

// A membership change, for the event stream (README.md, "chipctl events").
struct Membership {
    bool joined;  // else left
    std::string_view registry;
    std::string_view group;
    pid_t pid;
};

class Registries {
public:
    using IsWorker = std::function<bool(pid_t)>;
    using Warn = std::function<void(const std::string &)>;
    // WANTED says whether anyone follows changes (else CHANGED is not called
    // and a death's groups are not even looked up).
    struct Observer {
        std::function<bool()> wanted;
        std::function<void(const Membership &)> changed;
    };
    Registries(Processes &procs, IsWorker is_worker, Warn warn);
    // Every membership change from now on goes to OBSERVER (beside those
    // observing already: the event stream, the cluster): joins and leaves
    // that change something (a join of a member, a leave of a non-member are
    // not changes), declared ones, and one leave per group of a member that dies.
    void observe(Observer observer) { observers_.push_back(std::move(observer)); }
    Registries(const Registries &) = delete;
    Registries &operator=(const Registries &) = delete;

    // From now on the shared-memory names are published in FOLDER (the
    // socket's, which the caller keeps open), in the index file beside the
    // socket, at each change. With CLEAR_STALE, first the regions a killed
    // predecessor listed there are flagged dead and removed (those owned by
    // chipd's uid only); without (after a re-exec) the index lists our own
    // regions, to be adopted, and is left as it is.
    void publish_in(const os::SocketFolder &folder, bool clear_stale = true);
    // A registry in a new shared-memory object of a fresh random name
    // (O_EXCL), formatted with WRITER as its writer's pid, and published.
    Result<void> create_shared(const spec::RegistrySpec &spec, pid_t writer);
    // A registry over REGION (8-byte aligned, Table::region_size bytes), which
    // the caller keeps alive.
    Result<void> add(const spec::RegistrySpec &spec, std::span<std::byte> region, pid_t writer);

    // The shared registries for the next chipd image: spec, name and the
    // descriptor (still owned here; the caller clears its close-on-exec flag).
    std::vector<handoff::Registry> handoff_state() const;
    // Takes over the registries REGS an earlier image handed over, in the new
    // process: owns each descriptor at once (closed if it is refused), checks
    // it (os::map_shared: our object of the size the capacities need, still
    // under its name), maps it and adopts its region as it stands
    // (registry::Table::adopt: members and groups kept). All or nothing; it
    // writes nothing that readers see, not even the index file. EINVAL, EBADF,
    // EPERM, ESTALE... naming the registry and the cause.
    Result<void> adopt(const std::vector<handoff::Registry> &regs);

    const std::vector<std::unique_ptr<Registry>> &all() const { return list_; }
    Registry *find(std::string_view name);

    // The permission rule: PEER may act on PID when it is root, runs as
    // chipd's user or as PID's user (else EPERM; ESRCH for no such process),
    // and PID must be a worker or descend from one (else EPERM).
    Result<void> check_allowed(const os::PeerCred &peer, pid_t pid);
    // PID joins GROUP of R (idempotent) / leaves it (also when not a member),
    // after check_allowed.
    Result<void> join(Registry &r, std::string_view group, pid_t pid, const os::PeerCred &peer);
    Result<void> leave(Registry &r, std::string_view group, pid_t pid, const os::PeerCred &peer);

    // The groups LAUNCH declares, joined by PID, the worker at PATH just
    // spawned; a failure is a warning (the worker runs all the same).
    void join_declared(const spec::Launch &launch, const std::string &path, pid_t pid);
    // The worker PID at PATH, running, is redefined from OLD to NEW launch
    // fields: it leaves the groups only OLD declares and joins those only NEW does.
    void rejoin(const spec::Launch &old, const spec::Launch &next, const std::string &path,
                pid_t pid);
    // PID died: it leaves every group at once.
    void member_died(pid_t pid);
    // The registry NAME goes (a reload dropped it): readers are told the region
    // is dead, and its shared-memory object is removed.
    void remove(std::string_view name);

    // chipd's clean exit: readers are told the regions are dead, and the
    // shared-memory objects and the index file are removed.
    void close();

private:
    // Writes the index file (when publishing).
    Result<void> publish();
    const os::SocketFolder *folder_ = nullptr;
    Result<void> format(Registry &r, std::span<std::byte> region, pid_t writer);
    bool observed() const {
        for (const auto &o : observers_)
            if (o.wanted && o.wanted()) return true;
        return false;
    }
    void notify(const Membership &m) {
        for (const auto &o : observers_)
            if (o.wanted && o.wanted()) o.changed(m);
    }
    // Joins / leaves through R's table, telling the observer of a change.
    int join_in(Registry &r, std::string_view group, pid_t pid);
    int leave_in(Registry &r, std::string_view group, pid_t pid);
    std::vector<Observer> observers_;

    Processes &procs_;
    IsWorker is_worker_;
    Warn warn_;
    std::vector<std::unique_ptr<Registry>> list_;
};

// The machine's Processes: /proc, and pidfds watched on chipd's loop.
class SystemProcesses final : public Processes {
public:
    // DIED(pid) is called when a watched process exits.
    SystemProcesses(uv::Loop &loop, std::function<void(pid_t)> died);
    ~SystemProcesses() override;

    uid_t own_uid() const override;
    std::optional<pid_t> parent_of(pid_t pid) const override;
    std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid) const override;
    bool watch(pid_t pid) override;
    void unwatch(pid_t pid) override;
    // The end of a loop turn: frees the watches that ended during it.
    void after_turn();

    // The watches for the next chipd image: pid and pidfd (still owned here;
    // the caller clears its close-on-exec flag).
    std::vector<handoff::Watch> handoff_state() const;
    // In the new process: takes over WATCHES an earlier image handed over,
    // owning each pidfd at once and polling it like watch(). A process that
    // exited meanwhile (during the exec) is reported to DIED from the loop's
    // next turn; so is one whose pidfd is not a pidfd of its pid (it cannot be
    // watched: its memberships are dropped rather than kept unwatched). DIED
    // is never called from adopt itself.
    void adopt(const std::vector<handoff::Watch> &watches);

private:
    struct Watch {
        os::UniqueFd pidfd;
        std::unique_ptr<uv::Poll> poll;  // destroyed before pidfd is closed
    };
    // Polls W's pidfd, reporting PID's death.
    void poll(pid_t pid, Watch &w);
    uv::Loop &loop_;
    std::function<void(pid_t)> died_;
    std::unordered_map<pid_t, std::unique_ptr<Watch>> watches_;
    std::vector<std::unique_ptr<Watch>> ended_;
    // Adopted watches that could not be polled, reported dead by unwatchable_.
    std::vector<pid_t> unwatchable_pids_;
    std::unique_ptr<uv::Timer> unwatchable_;
};

}  // namespace chip::daemon
