#include "daemon/cluster.hpp"

#include <cstdio>
#include <utility>

#include "common/names.hpp"
#include "os/clock.hpp"
#include "os/self.hpp"
#include "registry/index.hpp"

namespace chip::daemon {

namespace {

cluster::Config config_of(const spec::ClusterSpec &s) {
    return cluster::Config{s.etcd, s.name, s.node, s.lease_ttl};
}

uv::Http::Tls tls_of(const spec::ClusterSpec &s) {
    if (!s.tls) return {};
    return uv::Http::Tls{s.tls->ca, s.tls->cert, s.tls->key};
}

cluster::Time now() {
    return os::monotonic_now();
}

}  // namespace

Cluster::Cluster(uv::Loop &loop, const spec::ClusterSpec &spec, std::string socket_path, Warn warn,
                 SignalLocal signal_local)
    : loop_(loop),
      socket_path_(std::move(socket_path)),
      warn_(std::move(warn)),
      signal_local_(std::move(signal_local)),
      session_(config_of(spec)) {
    http_ = std::make_unique<uv::Http>(
        loop_, tls_of(spec),
        [this](std::uint64_t id, std::string_view chunk) {
            session_.on_stream(id, chunk, now());
            pump();
        },
        [this](std::uint64_t id, bool ok, std::string body, std::string error) {
            session_.on_reply(id, ok, body, error, now());
            pump();
        });
    timer_ = std::make_unique<uv::Timer>(loop_, [this] {
        session_.on_time(now());
        pump();
    });
}

Cluster::~Cluster() {
    http_.reset();
}

void Cluster::start() {
    session_.start(now());
    pump();
}

Result<void> Cluster::add_registry(const spec::RegistrySpec &spec, const std::string &registry_shm,
                                   pid_t writer) {
    auto v = std::make_unique<View>();
    v->spec = spec;
    v->shm_name = cluster_shm_name(registry_shm);
    std::size_t size = registry::ClusterView::region_size(spec.max_members);
    auto m = os::create_shm(v->shm_name, size);
    if (!m)
        return make_error(m.error().code, "cluster view " + spec.name + ": " + m.error().message);
    v->fd = std::move(m->fd);
    v->mapping = std::move(m->mapping);
    if (v->view.init(v->mapping.bytes(), spec.name, spec.max_members, writer) != 0) {
        (void)os::unlink_shm(v->shm_name);
        return make_error(EINVAL, "cluster view " + spec.name + ": bad capacity");
    }
    v->view.set_connected(written_connected_);
    views_.push_back(std::move(v));  // it gets its members at the next pump
    pump();
    return {};
}

std::vector<handoff::ClusterView> Cluster::handoff_state() const {
    std::vector<handoff::ClusterView> out;
    for (const auto &v : views_) out.push_back({v->spec.name, v->shm_name, v->fd.get()});
    return out;
}

Result<void> Cluster::adopt_registry(const spec::RegistrySpec &spec,
                                     const handoff::ClusterView &view) {
    auto v = std::make_unique<View>();
    if (view.fd >= 0) v->fd.reset(view.fd);
    auto fail = [&](int code, const std::string &why) {
        return make_error(
            code, "cluster view " + spec.name + ": cannot take over " + view.shm_name + ": " + why);
    };
    constexpr std::string_view kSuffix = "@cluster";
    const std::string_view name = view.shm_name;
    if (view.registry != spec.name || name.size() <= kSuffix.size() ||
        name.substr(name.size() - kSuffix.size()) != kSuffix ||
        !registry::valid_shm_name(name.substr(0, name.size() - kSuffix.size()), spec.name))
        return fail(EINVAL, "not a cluster view name of this registry");
    for (const auto &w : views_)
        if (w->spec.name == spec.name) return fail(EINVAL, "the registry has a view already");
    if (!v->fd) return fail(EBADF, "no descriptor");
    const std::size_t size = registry::ClusterView::region_size(spec.max_members);
    if (size == 0) return fail(EINVAL, "bad capacity");
    auto m = os::map_shared(v->fd.get(), view.shm_name, size, os::real_uid());
    if (!m)
        return make_error(m.error().code, "cluster view " + spec.name + ": " + m.error().message);
    v->spec = spec;
    v->shm_name = view.shm_name;
    v->mapping = std::move(*m);
    std::string why;
    if (v->view.adopt(v->mapping.bytes(), &why) < 0) return fail(EINVAL, why);
    if (v->view.name() != spec.name || v->view.max_entries() != spec.max_members)
        return fail(EINVAL, "the region is the view of " + std::string(v->view.name()) + " with " +
                                std::to_string(v->view.max_entries()) + " entries");
    // What it shows stands until the session's view changes: a session that
    // has just started knows nothing yet, and an empty view would be a lie.
    v->written_gen = session_.view_generation();
    views_.push_back(std::move(v));
    // Its connected flag was the old session's; from now on it is this one's.
    views_.back()->view.set_connected(written_connected_);
    return {};
}

void Cluster::remove_registry(std::string_view name) {
    for (auto it = views_.begin(); it != views_.end(); ++it) {
        if ((*it)->spec.name != name) continue;
        (*it)->view.mark_dead();
        (void)os::unlink_shm((*it)->shm_name);
        views_.erase(it);
        return;
    }
}

void Cluster::joined(std::string_view registry, std::string_view group, pid_t pid,
                     const std::string &path) {
    session_.joined(std::string(registry), std::string(group), pid, path, now());
    pump();
}

void Cluster::left(std::string_view registry, std::string_view group, pid_t pid) {
    session_.left(std::string(registry), std::string(group), pid, now());
    pump();
}

void Cluster::send_signal(const std::string &registry, const std::string &group, int sig,
                          std::chrono::milliseconds timeout, Outcome done) {
    auto ticket = session_.send_signal(registry, group, sig, timeout, now());
    waiting_[ticket] = std::move(done);
    pump();
}

nlohmann::json Cluster::status() const {
    char lease[32];
    std::snprintf(lease, sizeof lease, "%llx", static_cast<unsigned long long>(session_.lease()));
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto &n : session_.nodes_seen()) nodes.push_back(n);
    nlohmann::json j{{"name", session_.config().name},
                     {"node", session_.config().node},
                     {"state", cluster::state_name(session_.state())},
                     {"endpoint", session_.endpoint()},
                     {"lease", session_.lease() ? nlohmann::json(lease) : nlohmann::json(nullptr)},
                     {"lease_ttl", session_.config().lease_ttl},
                     {"nodes", nodes},
                     {"members", session_.view().size()}};
    if (!session_.last_error().empty()) j["error"] = session_.last_error();
    return j;
}

bool Cluster::close(std::function<void()> on_closed) {
    session_.close(now());
    pump();
    if (session_.closed()) return false;
    on_closed_ = std::move(on_closed);
    return true;
}

void Cluster::remove_views() {
    for (auto &v : views_) {
        v->view.mark_dead();
        (void)os::unlink_shm(v->shm_name);
    }
    views_.clear();
}

void Cluster::pump() {
    // Callbacks below may come back here (a signal carried out answers at once).
    if (pumping_) return;
    pumping_ = true;
    for (int round = 0; round < 16; ++round) {
        for (auto id : session_.take_cancels()) http_->cancel(id);
        auto calls = session_.take_calls();
        for (auto &c : calls)
            http_->post(c.id, c.url, std::move(c.body), c.stream,
                        static_cast<long>(c.timeout.count()));
        for (const auto &w : session_.take_warnings()) warn_(w);
        auto requests = session_.take_signals();
        for (const auto &r : requests) {
            std::vector<pid_t> pids = signal_local_(r.registry, r.group, r.signal);
            session_.signalled(r, pids, now());
        }
        for (auto &o : session_.take_outcomes()) {
            auto it = waiting_.find(o.ticket);
            if (it == waiting_.end()) continue;
            Outcome done = std::move(it->second);
            waiting_.erase(it);
            done(o);
        }
        if (calls.empty() && requests.empty()) break;
    }
    write_views();
    if (auto next = session_.next_deadline()) {
        auto delta = *next - now();
        auto ms = delta.count() <= 0 ? 0 : (delta.count() + 999999) / 1000000;
        timer_->start(static_cast<std::uint64_t>(ms));
    } else {
        timer_->stop();
    }
    pumping_ = false;
    if (session_.closed() && on_closed_) std::exchange(on_closed_, nullptr)();
}

void Cluster::write_views() {
    bool connected = session_.state() == cluster::State::Connected;
    if (connected != written_connected_) {
        for (auto &v : views_) v->view.set_connected(connected);
        written_connected_ = connected;
    }
    const std::uint64_t gen = session_.view_generation();
    bool stale = false;
    for (const auto &v : views_) stale = stale || v->written_gen != gen;
    if (!stale) return;
    std::map<std::string, std::vector<registry::ClusterMember>> by_registry;
    for (const auto &[key, e] : session_.view())
        by_registry[e.registry].push_back({e.group, e.node, e.pid});
    for (auto &v : views_) {
        if (v->written_gen == gen) continue;
        v->written_gen = gen;
        auto it = by_registry.find(v->spec.name);
        std::size_t dropped =
            v->view.replace(it == by_registry.end() ? std::vector<registry::ClusterMember>{}
                                                    : std::move(it->second));
        if (dropped)
            warn_("cluster: the view of registry " + v->spec.name + " is full (max_members " +
                  std::to_string(v->spec.max_members) + "): " + std::to_string(dropped) +
                  " members left out");
    }
}

}  // namespace chip::daemon
