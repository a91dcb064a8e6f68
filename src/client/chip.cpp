// libchip: the C API of include/chip/chip.h.
//
// Join and leave are one request each over the control socket (README.md,
// "Protocol"), connected at the first of them: chip_connect only checks that
// the socket is there, in a folder to be trusted. Members and groups never
// talk to chipd: the client finds each registry's shared memory through the
// index chipd publishes beside its socket (client/published.hpp), maps it
// read-only once, keeps the mapping, and reads it with the seqlock reader
// (src/registry/reader.hpp). A mapping is dropped and the index read again
// when chipd flags it dead (it shut down or was replaced).
//
// C linkage, no exception crosses the API: each entry point catches
// everything (in practice std::bad_alloc) and returns -ENOMEM.
#include "chip/chip.h"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.hpp"
#include "client/published.hpp"
#include "common/names.hpp"
#include "os/file.hpp"
#include "os/self.hpp"
#include "os/shm.hpp"
#include "os/socket.hpp"
#include "registry/cluster_view.hpp"
#include "registry/reader.hpp"

namespace {

struct MappedRegistry {
    std::string name;
    std::string shm_name;  // as the index lists it: its cluster view is named after it
    uid_t owner = 0;       // the index's, which the cluster view must have too
    chip::os::Mapping mapping;
    chip::registry::Reader reader;
};

struct MappedCluster {
    std::string name;  // the registry's
    chip::os::Mapping mapping;
    chip::registry::ClusterReader reader;
};

}  // namespace

struct chip_client {
    std::string socket;
    std::string socket_abs;         // absolute: the folder that holds the published index
    chip::client::Connection conn;  // opened by the first join or leave
    // Few registries per chipd: a vector beats a map. unique_ptr keeps the
    // Readers (which point into their mapping) at a fixed address.
    std::vector<std::unique_ptr<MappedRegistry>> registries;
    MappedRegistry *last = nullptr;  // the most recently used one, for the fast path
    MappedRegistry *only = nullptr;  // what a NULL registry resolved to
    std::vector<std::unique_ptr<MappedCluster>> clusters;  // cluster views, by registry
};

namespace {

// What chipd publishes now. Returns false with *ERR set.
bool published(const chip_client *c, chip::client::Published &out, int *err) {
    auto p = chip::client::find_published(c->socket_abs, chip::os::real_uid());
    if (!p) {
        *err = -p.error().code;
        return false;
    }
    out = std::move(*p);
    return true;
}

// Maps registry NAME as PUB lists it, and checks it. Returns nullptr with *ERR set.
std::unique_ptr<MappedRegistry> open_registry(const chip::client::Published &pub,
                                              const std::string &name, int *err) {
    const chip::registry::IndexEntry *entry = nullptr;
    for (const auto &e : pub.entries)
        if (e.registry == name) entry = &e;
    if (!entry) {
        *err = -ENOENT;
        return nullptr;
    }
    // Only the region chipd made: owned by the index's owner.
    auto m = chip::os::open_shm_readonly(entry->shm_name, pub.owner);
    if (!m) {
        *err = -m.error().code;
        return nullptr;
    }
    auto reg = std::make_unique<MappedRegistry>();
    reg->name = name;
    reg->shm_name = entry->shm_name;
    reg->owner = pub.owner;
    reg->mapping = std::move(*m);
    if (int rc = reg->reader.attach(reg->mapping.cbytes()); rc < 0) {
        *err = rc;
        return nullptr;
    }
    // A dead region still listed: chipd is shutting down.
    if (reg->reader.dead()) {
        *err = -ENOENT;
        return nullptr;
    }
    return reg;
}

void forget(chip_client *c, MappedRegistry *r) {
    if (c->last == r) c->last = nullptr;
    if (c->only == r) c->only = nullptr;
    std::erase_if(c->registries, [r](const auto &p) { return p.get() == r; });
}

// The reader of REGISTRY (NULL: the only one), mapping it on first use and
// again after chipd abandoned it. Returns nullptr with *ERR set.
MappedRegistry *find_registry(chip_client *c, const char *registry, int *err) {
    // Fast path: the registry used last, still alive.
    MappedRegistry *r = registry ? c->last : c->only;
    if (r && (!registry || r->name == registry)) {
        if (!r->reader.dead()) return r;
        forget(c, r);
        r = nullptr;
    }
    std::string name;
    chip::client::Published pub;
    if (registry) {
        if (!chip::valid_group_name(registry)) {
            *err = -EINVAL;
            return nullptr;
        }
        name = registry;
        for (auto &p : c->registries) {
            if (p->name != name) continue;
            if (p->reader.dead()) {
                forget(c, p.get());
                break;
            }
            c->last = p.get();
            return c->last;
        }
        if (!published(c, pub, err)) return nullptr;
    } else {
        // With no name, the index says which one is the only one.
        if (!published(c, pub, err)) return nullptr;
        if (pub.entries.empty()) {
            *err = -ENOENT;
            return nullptr;
        }
        if (pub.entries.size() > 1) {
            *err = -EINVAL;
            return nullptr;
        }
        name = pub.entries[0].registry;
        for (auto &p : c->registries)
            if (p->name == name && !p->reader.dead()) return c->only = p.get();
    }
    auto reg = open_registry(pub, name, err);
    if (!reg) return nullptr;
    // Drop a dead mapping of the same name, if any is left.
    for (auto &p : c->registries)
        if (p->name == name) {
            forget(c, p.get());
            break;
        }
    c->registries.push_back(std::move(reg));
    r = c->registries.back().get();
    if (registry)
        c->last = r;
    else
        c->only = r;
    return r;
}

// The cluster view of REGISTRY (NULL: the only registry), mapped on first use
// and again after chipd abandoned it. nullptr with *ERR set: -ENOTCONN when
// the registry exists but has no view (no "cluster" in the spec).
MappedCluster *find_cluster(chip_client *c, const char *registry, int *err) {
    MappedRegistry *local = find_registry(c, registry, err);
    if (!local) return nullptr;
    for (auto it = c->clusters.begin(); it != c->clusters.end(); ++it) {
        if ((*it)->name != local->name) continue;
        if (!(*it)->reader.dead()) return it->get();
        c->clusters.erase(it);
        break;
    }
    // Only the view chipd made: named after its registry, owned as it is.
    auto m = chip::os::open_shm_readonly(chip::cluster_shm_name(local->shm_name), local->owner);
    if (!m) {
        *err = m.error().code == ENOENT ? -ENOTCONN : -m.error().code;
        return nullptr;
    }
    auto view = std::make_unique<MappedCluster>();
    view->name = local->name;
    view->mapping = std::move(*m);
    if (int rc = view->reader.attach(view->mapping.cbytes()); rc < 0) {
        *err = rc;
        return nullptr;
    }
    if (view->reader.dead()) {
        *err = -ENOTCONN;
        return nullptr;
    }
    c->clusters.push_back(std::move(view));
    return c->clusters.back().get();
}

bool is_transport_loss(int code) {
    return code == EPIPE || code == ECONNRESET || code == ENOTCONN || code == ECONNABORTED;
}

int send_membership(chip_client *c, const char *op, const char *registry, const char *group,
                    pid_t pid) {
    if (!c || !group) return -EINVAL;
    if (!chip::valid_group_name(group)) return -EINVAL;
    if (registry && !chip::valid_group_name(registry)) return -EINVAL;
    if (pid <= 0) return -EINVAL;
    nlohmann::json req = {
        {"op", op},
        {"registry", registry ? nlohmann::json(registry) : nlohmann::json(nullptr)},
        {"group", group},
        {"pid", pid}};
    if (!c->conn.is_open()) {
        auto conn = chip::client::Connection::open(c->socket);
        if (!conn) return -conn.error().code;
        c->conn = std::move(*conn);
    }
    auto resp = c->conn.request(req);
    // chipd restarted since we connected: join and leave are idempotent, so
    // one retry on a fresh connection is safe.
    if (!resp && is_transport_loss(resp.error().code)) {
        auto conn = chip::client::Connection::open(c->socket);
        if (!conn) return -conn.error().code;
        c->conn = std::move(*conn);
        resp = c->conn.request(req);
    }
    if (!resp) return -resp.error().code;
    const auto &j = *resp;
    auto ok = j.find("ok");
    if (ok == j.end() || !ok->is_boolean()) return -EPROTO;
    if (ok->get<bool>()) return 0;
    auto e = j.find("errno");
    return -chip::client::errno_from_name(e != j.end() && e->is_string() ? e->get<std::string>()
                                                                         : "");
}

}  // namespace

extern "C" {

chip_client *chip_connect(const char *socket_path) {
    try {
        auto c = std::make_unique<chip_client>();
        c->socket = chip::resolve_socket_path(socket_path, chip::os::real_uid());
        c->socket_abs = chip::os::absolute_path(c->socket);
        // No connection yet (join and leave make it): members and groups
        // need none, so a user who may not connect can still read them.
        uid_t owner = 0;
        auto folder = chip::client::reach_socket(c->socket_abs, chip::os::real_uid(), owner);
        if (!folder) {
            errno = folder.error().code;
            return nullptr;
        }
        return c.release();
    } catch (...) {
        errno = ENOMEM;
        return nullptr;
    }
}

int chip_join(chip_client *c, const char *registry, const char *group) {
    return chip_join_pid(c, registry, group, chip::os::self_pid());
}

int chip_leave(chip_client *c, const char *registry, const char *group) {
    return chip_leave_pid(c, registry, group, chip::os::self_pid());
}

int chip_join_pid(chip_client *c, const char *registry, const char *group, pid_t pid) {
    try {
        return send_membership(c, "join", registry, group, pid);
    } catch (...) {
        return -ENOMEM;
    }
}

int chip_leave_pid(chip_client *c, const char *registry, const char *group, pid_t pid) {
    try {
        return send_membership(c, "leave", registry, group, pid);
    } catch (...) {
        return -ENOMEM;
    }
}

ssize_t chip_members(chip_client *c, const char *registry, const char *group, pid_t *out,
                     size_t cap) {
    try {
        if (!c || !group || (!out && cap > 0)) return -EINVAL;
        int err = 0;
        MappedRegistry *r = find_registry(c, registry, &err);
        if (!r) return err;
        return r->reader.members(group, out, cap);
    } catch (...) {
        return -ENOMEM;
    }
}

ssize_t chip_groups(chip_client *c, const char *registry, chip_group_info *out, size_t cap) {
    try {
        if (!c || (!out && cap > 0)) return -EINVAL;
        int err = 0;
        MappedRegistry *r = find_registry(c, registry, &err);
        if (!r) return err;
        return r->reader.groups(out, cap);
    } catch (...) {
        return -ENOMEM;
    }
}

ssize_t chip_members_cluster(chip_client *c, const char *registry, const char *group,
                             chip_cluster_member *out, size_t cap) {
    try {
        if (!c || !group || (!out && cap > 0)) return -EINVAL;
        int err = 0;
        MappedCluster *v = find_cluster(c, registry, &err);
        if (!v) return err;
        return v->reader.members(group, out, cap);
    } catch (...) {
        return -ENOMEM;
    }
}

ssize_t chip_groups_cluster(chip_client *c, const char *registry, chip_group_info *out,
                            size_t cap) {
    try {
        if (!c || (!out && cap > 0)) return -EINVAL;
        int err = 0;
        MappedCluster *v = find_cluster(c, registry, &err);
        if (!v) return err;
        return v->reader.groups(out, cap);
    } catch (...) {
        return -ENOMEM;
    }
}

ssize_t chip_registries(chip_client *c, char (*names)[65], size_t cap) {
    try {
        if (!c || (!names && cap > 0)) return -EINVAL;
        int err = 0;
        chip::client::Published pub;
        if (!published(c, pub, &err)) return err;
        for (std::size_t i = 0; i < pub.entries.size() && i < cap; ++i) {
            const auto &n = pub.entries[i].registry;
            std::memcpy(names[i], n.c_str(), n.size() + 1);
        }
        return static_cast<ssize_t>(pub.entries.size());
    } catch (...) {
        return -ENOMEM;
    }
}

int chip_notify_ready(void) {
    try {
        const char *path = std::getenv("NOTIFY_SOCKET");
        if (!path || !*path) return 0;
        // "@name" is an abstract socket. A receiver whose queue is full is
        // waited for: READY=1 must not be lost.
        auto sent = chip::os::send_datagram_wait(path, "READY=1");
        return sent ? 0 : -sent.error().code;
    } catch (...) {
        return -ENOMEM;
    }
}

int chip_notify(const char *state) {
    if (!state) return -EINVAL;
    try {
        const char *path = std::getenv("NOTIFY_SOCKET");
        if (!path || !*path) return 0;
        auto sent = chip::os::send_datagram_wait(path, state);
        return sent ? 0 : -sent.error().code;
    } catch (...) {
        return -ENOMEM;
    }
}

const char *chip_strerror(int code) {
    switch (code < 0 ? -code : code) {
        case 0:
            return "success";
        case ENOENT:
            return "no such registry, or chipd's socket does not exist";
        case EINVAL:
            return "invalid argument (bad group or registry name, or several registries)";
        case ENOSPC:
            return "the registry is full";
        case EPERM:
            return "operation not permitted (on that pid; or an untrusted runtime folder, "
                   "registry index or shared memory)";
        case ESRCH:
            return "no such process";
        case ECONNREFUSED:
            return "chipd is not reachable (connection refused)";
        case EPROTO:
            return "chipd answered something unexpected";
        case ENOTCONN:
            return "not connected (the connection to chipd was lost; for the cluster calls: "
                   "chipd's spec has no cluster)";
        case ESTALE:
            return "the shared memory is not a chip registry of this layout version";
        case EAGAIN:
            return "the registry stayed mid-update (chipd stopped while writing?)";
        case EIO:
            return "the operation failed (or the registry is corrupt)";
        case ENOMEM:
            return "out of memory";
        case EACCES:
            return "permission denied";
        case EPIPE:
        case ECONNRESET:
        case ECONNABORTED:
            return "the connection to chipd was lost";
        case ENAMETOOLONG:
            return "socket path too long";
        case ETIMEDOUT:
            return "timed out";
        case EMSGSIZE:
            return "request too large";
        case EOPNOTSUPP:
            return "operation not supported by chipd";
        case ECANCELED:
            return "chipd is shutting down";
        case EBUSY:
            return "busy";
        case EEXIST:
            return "already exists";
        case EBADF:
            return "bad client handle";
        default:
            return "unknown error";
    }
}

void chip_close(chip_client *c) {
    delete c;
}

}  // extern "C"
