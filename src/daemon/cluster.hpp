// chipd's side of the cluster (README.md, "Cluster"): the shell around the
// pure session (cluster/session.hpp). It makes the session's calls over HTTP
// on the loop (uv/http.hpp), feeds their answers and a timer back, writes the
// cluster view of each registry to shared memory beside the local region,
// carries out the signal requests addressed to this node, and reports the
// session's warnings.
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
        os::Mapping mapping;
        registry::ClusterView view;
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
    std::uint64_t written_gen_ = 0;
    bool written_connected_ = false;
    std::map<std::uint64_t, Outcome> waiting_;  // signal tickets
    std::function<void()> on_closed_;
    bool pumping_ = false;
};

}  // namespace chip::daemon
