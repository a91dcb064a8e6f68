// chipd's side of the cluster (README.md, "Cluster"): the shell around the
// pure session (cluster/session.hpp). It makes the session's calls over HTTP
// on the loop (uv/http.hpp), feeds their answers and a timer back, writes the
// cluster view of each registry to shared memory beside the local region,
// carries out the signal requests addressed to this node, and reports the
// session's warnings.
//
// Across a re-exec the views are handed over like the registries' regions
// (handoff_state, adopt_registry): same names, same entries until the new
// session's view replaces them.
//
// It decides nothing about etcd (the session does) and never blocks: etcd
// down or slow changes nothing for local supervision.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/session.hpp"
#include "common/result.hpp"
#include "handoff/state.hpp"
#include "os/fd.hpp"
#include "os/shm.hpp"
#include "registry/cluster_view.hpp"
#include "spec/spec.hpp"
#include "uv/http.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

class Cluster {
public:
    using Warn = std::function<void(const std::string &)>;
    // Signals the local members of GROUP of REGISTRY with SIG: the pids reached.
    using SignalLocal =
        std::function<std::vector<pid_t>(const std::string &, const std::string &, int)>;
    using Outcome = std::function<void(const cluster::SignalOutcome &)>;

    Cluster(uv::Loop &loop, const spec::ClusterSpec &spec, std::string socket_path, Warn warn,
            SignalLocal signal_local);
    ~Cluster();
    Cluster(const Cluster &) = delete;
    Cluster &operator=(const Cluster &) = delete;

    void start();
    // The cluster view of a registry: created beside its region (named after
    // REGISTRY_SHM, the registry's own shared-memory name) / removed.
    Result<void> add_registry(const spec::RegistrySpec &spec, const std::string &registry_shm,
                              pid_t writer);
    void remove_registry(std::string_view name);
    // The views for the next chipd image: registry, name and descriptor
    // (still owned here; the caller clears its close-on-exec flag).
    std::vector<handoff::ClusterView> handoff_state() const;
    // In the new process, instead of add_registry: takes over VIEW, the view
    // of the registry SPEC an earlier image handed over. Owns its descriptor
    // at once (closed if refused), checks it (os::map_shared) and adopts the
    // region as it stands (registry::ClusterView::adopt); its entries stay
    // until the session's view changes, then it is written like any view.
    // Its connected flag says this session's state from the next pump on.
    Result<void> adopt_registry(const spec::RegistrySpec &spec, const handoff::ClusterView &view);

    // A membership of this chipd began / ended.
    void joined(std::string_view registry, std::string_view group, pid_t pid,
                const std::string &path);
    void left(std::string_view registry, std::string_view group, pid_t pid);

    // Signals GROUP of REGISTRY on every node; DONE gets the outcome within TIMEOUT.
    void send_signal(const std::string &registry, const std::string &group, int sig,
                     std::chrono::milliseconds timeout, Outcome done);

    // What `chipctl cluster` shows.
    nlohmann::json status() const;

    // Clean shutdown: revokes the lease. False when done at once; else ON_CLOSED
    // is called once the revoke is answered or after at most a second.
    bool close(std::function<void()> on_closed);
    // Marks the views dead and removes them.
    void remove_views();

private:
    struct View {
        spec::RegistrySpec spec;
        std::string shm_name;
        os::UniqueFd fd;  // open read-write (close-on-exec) for a hand-off
        os::Mapping mapping;
        registry::ClusterView view;
        std::uint64_t written_gen = 0;  // the session's view generation it shows
    };
    void pump();
    void write_views();

    uv::Loop &loop_;
    std::string socket_path_;
    Warn warn_;
    SignalLocal signal_local_;
    cluster::Session session_;
    std::unique_ptr<uv::Http> http_;
    std::unique_ptr<uv::Timer> timer_;
    std::vector<std::unique_ptr<View>> views_;
    bool written_connected_ = false;
    std::map<std::uint64_t, Outcome> waiting_;  // signal tickets
    std::function<void()> on_closed_;
    bool pumping_ = false;
};

}  // namespace chip::daemon
