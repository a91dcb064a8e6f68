// The control protocol's operations (README.md, "Protocol"): one dispatch
// table from op name to handler, and the handlers. A handler takes a parsed
// request with the peer's credentials and the time, and returns the response,
// or "deferred": start, stop, restart and wait are answered later by settle(),
// once the core has finished the command or the wait is over.
//
// No socket here (control.hpp carries the lines), no system call: signals and
// the shutdown go through RequestEffects, joins through Registries, so unit
// tests drive every op with a core::Tree, fakes and registries in heap memory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/reload.hpp"
#include "core/tree.hpp"
#include "daemon/registries.hpp"
#include "daemon/subscribers.hpp"
#include "spec/spec.hpp"
#include "os/process.hpp"
#include "os/socket.hpp"

namespace chip::daemon {

// What handlers do to the world beyond the tree and the registries.
class RequestEffects {
public:
    virtual ~RequestEffects() = default;
    // kill(PID, SIG): 0 or -errno.
    virtual int kill(pid_t pid, int sig) = 0;
    // A shutdown was asked for (once): chipd logs it, tells systemd and stops the tree.
    virtual void shutdown() = 0;

    // ---- reloads (README.md, "A live tree") ----
    // The spec at PATH (empty: chipd's own spec file), loaded and checked
    // whole: the spec, or every error line (as chipd --check prints them).
    struct Loaded {
        std::optional<spec::Spec> spec;
        std::vector<std::string> errors;
    };
    virtual Loaded load_spec(const std::string &path) = 0;
    // What of NEXT cannot change while chipd runs (the socket, a registry's
    // capacities): one reason each; none when it may be applied.
    virtual std::vector<std::string> refused(const spec::Spec &next) = 0;
    // A reload to NEXT making CHANGES begins (registries NEXT adds are created
    // now, so that added workers may join them) / is over (registries it drops
    // are removed; NEXT is chipd's spec from now on).
    virtual void reload_begins(const spec::Spec &next,
                               const std::vector<core::Change> &changes) = 0;
    virtual void reload_ends(const Result<void> &result, spec::Spec next) = 0;
    // The folder relative paths of an added child are taken from, when the
    // request names none: the spec's.
    virtual std::string spec_dir() = 0;
    // What worker ID exported (README.md, "Hand-off between siblings"), for
    // status; null when nothing.
    virtual const std::vector<std::pair<std::string, std::string>> *exports_of(std::uint64_t id) {
        (void)id;
        return nullptr;
    }
    // The largest pid the kernel hands out (kernel.pid_max): a "pid" above it
    // in a request is refused.
    virtual pid_t pid_max() { return os::kPidMaxLimit; }
    // Worker ID's cgroup (as /proc/PID/cgroup writes it) and the CPU seconds
    // its processes used since its last spawn (README.md, "Containment"), for
    // status; nullopt when it has none (no cgroups).
    struct CgroupUsage {
        std::string path;
        std::optional<double> cpu_s;
    };
    virtual std::optional<CgroupUsage> cgroup_of(std::uint64_t id) {
        (void)id;
        return std::nullopt;
    }
    // The processes of worker ID whose main process is PID (which comes
    // first): its cgroup's, else its process group's; with ALL false, only
    // what is cheap to find (the cgroup's, else PID alone).
    virtual std::vector<pid_t> processes_of(std::uint64_t id, pid_t pid, bool all) {
        (void)id;
        (void)all;
        return pid ? std::vector<pid_t>{pid} : std::vector<pid_t>{};
    }
    // The wall-clock time of the monotonic time T ("2024-05-01T12:00:00.123Z").
    virtual std::string wall_time_of(core::Time t) {
        (void)t;
        return {};
    }
    // ---- upgrading in place (README.md, "Upgrading chipd in place") ----
    // Connection CONN asks chipd to execute its program again: nullopt when
    // that begins (the new chipd answers CONN), else why not (EBUSY).
    virtual std::optional<Error> reexec(std::uint64_t conn) {
        (void)conn;
        return make_error(EOPNOTSUPP, "this chipd cannot re-execute itself");
    }
    // ---- the cluster (README.md, "Cluster") ----
    // What `chipctl cluster` shows; nullopt when the spec has no "cluster".
    virtual std::optional<nlohmann::json> cluster_status() { return std::nullopt; }
    // Signals GROUP of REGISTRY on every host with SIG, answering CONN's
    // deferred request within TIMEOUT (cluster_signal_answer). False when the
    // spec has no "cluster" (nothing sent).
    virtual bool cluster_signal(std::uint64_t conn, const std::string &registry,
                                const std::string &group, int sig,
                                std::chrono::milliseconds timeout) {
        (void)conn, (void)registry, (void)group, (void)sig, (void)timeout;
        return false;
    }
};

class Requests {
public:
    using json = nlohmann::json;

    struct Reply {
        std::optional<json> body;  // none: deferred, answered by settle()
        bool last = false;         // no later request of this connection is read
    };
    struct Answer {
        std::uint64_t conn;
        json body;
    };

    Requests(core::Tree &tree, Registries &registries, RequestEffects &fx);
    Requests(const Requests &) = delete;
    Requests &operator=(const Requests &) = delete;

    // A request line (without its newline) of connection CONN.
    Reply handle_line(std::uint64_t conn, const os::PeerCred &peer, std::string_view line,
                      core::Time now);
    // A request already parsed.
    Reply handle(std::uint64_t conn, const os::PeerCred &peer, const json &req, core::Time now);
    // The answers due at NOW: finished commands, waits that are satisfied, over
    // or can no longer be (a node removed). Each is handed out once.
    std::vector<Answer> settle(core::Time now);
    // The earliest timeout of a wait, for a timer.
    std::optional<core::Time> next_deadline() const;
    // Connection CONN is gone: its deferred request is dropped.
    void forget(std::uint64_t conn);
    // A reload of chipd's own spec file with nobody to answer (SIGHUP): the
    // error response when it cannot begin.
    std::optional<json> reload_self(core::Time now);
    bool reloading() const { return reload_ != nullptr; }
    // The connections that asked for the event stream (op "events").
    const Subscribers &subscribers() const { return subscribers_; }

    // The answer to a cluster-wide signal: the pids signalled per node that
    // answered, and the nodes that did not; ERROR (non-empty): nothing was sent.
    static json cluster_signal_answer(const std::map<std::string, std::vector<pid_t>> &signalled,
                                      const std::vector<std::string> &silent,
                                      const std::string &error);
    // The answer to a request line over 64 KiB.
    static json oversized();
    // The answers to a reexec: the new chipd's, and the old one's failure.
    static json reexec_done(const std::string &version);
    static json failed(const Error &e);
    // RESP as one line of the protocol (bytes that are not UTF-8 replaced).
    static std::string text(const json &resp);

private:
    struct Call {
        std::uint64_t conn;
        const os::PeerCred &peer;
        const json &req;
        core::Time now;
    };
    using Handler = Reply (Requests::*)(const Call &);
    struct Op {
        std::string_view name;
        Handler handler;
    };
    static const Op kOps[];

    // A wait in progress. Nodes are named by id: one may be removed meanwhile.
    struct Waiter {
        std::uint64_t conn;
        std::vector<std::uint64_t> ids;
        std::vector<std::string> paths;  // for messages
        std::optional<core::Time> deadline;
    };

    Reply status(const Call &c);
    Reply start(const Call &c);
    Reply stop(const Call &c);
    Reply restart(const Call &c);
    Reply signal(const Call &c);
    Reply wait(const Call &c);
    Reply join(const Call &c);
    Reply leave(const Call &c);
    Reply members(const Call &c);
    Reply groups(const Call &c);
    Reply logs(const Call &c);
    Reply registries(const Call &c);
    Reply shutdown(const Call &c);
    Reply reload(const Call &c);
    Reply scale(const Call &c);
    Reply add(const Call &c);
    Reply remove(const Call &c);
    Reply events(const Call &c);
    Reply cluster(const Call &c);
    Reply reexec(const Call &c);

    Reply command(const Call &c, core::Command cmd);
    // Begins a reload to the spec at PATH for connection CONN (none: SIGHUP).
    Reply begin_reload(std::optional<std::uint64_t> conn, const std::string &path, bool dry_run,
                       core::Time now);
    // Answers TICKET's connection once it finishes, with CHANGES in the answer.
    Reply deferred(const Call &c, std::uint64_t ticket, std::vector<core::Change> changes);
    Reply join_or_leave(const Call &c, bool join);
    // The registry a request names, or the error response.
    Registry *registry_of(const json &req, std::optional<json> &error);
    // Whether W is over: its answer, or nullopt while it goes on.
    std::optional<json> wait_outcome(const Waiter &w, core::Time now);

    core::Tree &tree_;
    Registries &registries_;
    RequestEffects &fx_;
    struct Ticket {
        std::uint64_t conn;
        std::optional<std::vector<core::Change>> changes;  // answered with them
    };
    std::unordered_map<std::uint64_t, Ticket> tickets_;  // by the core's ticket
    std::list<Waiter> waiters_;
    // The reload under way, the connection that asked for it, and its spec.
    std::unique_ptr<core::Reload> reload_;
    std::optional<std::uint64_t> reload_conn_;
    std::optional<spec::Spec> reload_spec_;
    Subscribers subscribers_;
};

}  // namespace chip::daemon
