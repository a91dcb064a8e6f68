// libchip: the C API of include/chip/chip.h.
//
// Join and leave are one request each over the control socket (README.md,
// "Protocol"). Members and groups never talk to chipd: the client maps each
// registry's shared memory read-only once, keeps the mapping, and reads it with
// the seqlock reader (src/registry/reader.hpp). A mapping is dropped and the
// name opened again when chipd flags it dead (it shut down or was replaced).
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
    std::string socket_abs;  // absolute: its hash names the registries' shared memory
    chip::client::Connection conn;
    // Few registries per chipd: a vector beats a map. unique_ptr keeps the
    // Readers (which point into their mapping) at a fixed address.
    std::vector<std::unique_ptr<MappedRegistry>> registries;
    MappedRegistry *last = nullptr;  // the most recently used one, for the fast path
    MappedRegistry *only = nullptr;  // what a NULL registry resolved to
    std::vector<std::unique_ptr<MappedCluster>> clusters;  // cluster views, by registry
};

namespace {

// Maps registry NAME and checks it. Returns nullptr with *ERR set.
std::unique_ptr<MappedRegistry> open_registry(const std::string &socket_abs,
                                              const std::string &name, int *err) {
    auto m = chip::os::open_shm_readonly(chip::registry_shm_name(socket_abs, name));
    if (!m) {
        *err = -m.error().code;
        return nullptr;
    }
    auto reg = std::make_unique<MappedRegistry>();
    reg->name = name;
    reg->mapping = std::move(*m);
    if (int rc = reg->reader.attach(reg->mapping.cbytes()); rc < 0) {
        *err = rc;
        return nullptr;
    }
    // A dead region still under the name: chipd is shutting down.
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

// The names of the live registries of C's chipd, from /dev/shm.
std::vector<std::string> registry_names(const chip_client *c) {
    std::string prefix = chip::registry_shm_prefix(c->socket_abs);
    std::vector<std::string> out;
    for (const auto &shm : chip::os::list_shm(prefix)) {
        std::string name = shm.substr(prefix.size());
        if (!chip::valid_group_name(name)) continue;
        // Skip regions chipd abandoned; keep the ones we cannot read (another
        // layout version): using them then says why (ESTALE).
        int err = 0;
        if (open_registry(c->socket_abs, name, &err) || err != -ENOENT)
            out.push_back(std::move(name));
    }
    return out;
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
    } else {
        auto names = registry_names(c);
        if (names.empty()) {
            *err = -ENOENT;
            return nullptr;
        }
        if (names.size() > 1) {
            *err = -EINVAL;
            return nullptr;
        }
        name = names[0];
        for (auto &p : c->registries)
            if (p->name == name && !p->reader.dead()) return c->only = p.get();
    }
    auto reg = open_registry(c->socket_abs, name, err);
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
    auto m = chip::os::open_shm_readonly(chip::cluster_shm_name(c->socket_abs, local->name));
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
        auto conn = chip::client::Connection::open(c->socket);
        if (!conn) {
            errno = conn.error().code;
            return nullptr;
        }
        c->conn = std::move(*conn);
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
        auto all = registry_names(c);
        for (std::size_t i = 0; i < all.size() && i < cap; ++i) {
            std::memcpy(names[i], all[i].c_str(), all[i].size() + 1);
        }
        return static_cast<ssize_t>(all.size());
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
            return "operation not permitted on that pid";
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
