// A loaded spec: the tree of core definitions (core/spec.hpp), with what the
// daemon needs beside them: how each worker is started (Launch), the
// registries and the control socket. Plain types, already validated, every
// default filled in and every relative path made absolute.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/spec.hpp"

namespace chip::spec {

struct OutputSpec {
    enum class Mode { Inherit, Null, File };
    Mode mode = Mode::Inherit;
    std::string file;                     // absolute path, Mode::File only
    std::uint64_t max_bytes = 10u << 20;  // rotate before passing this size
    unsigned keep = 5;                    // PATH.1 ... PATH.keep
};

// What a login as a worker's user gets (its passwd entry): the worker's
// HOME, USER and LOGNAME, SHELL unless its env sets them.
struct Login {
    std::string name;
    std::string home;
    std::string shell;
    bool operator==(const Login &) const = default;
};

// How a worker is started: the fields the core never decides on.
struct Launch {
    std::vector<std::string> command;  // command[0] non-empty, absolute if it had a '/'
    std::vector<std::pair<std::string, std::string>> env;  // in spec order
    std::string cwd;                                       // absolute
    std::optional<std::string> user;                       // name as written
    std::optional<std::string> group;
    std::optional<uid_t> uid;    // resolved from user
    std::optional<gid_t> gid;    // resolved from group, else user's primary group
    std::optional<Login> login;  // user's passwd entry; unset without user or without an entry
    std::vector<std::pair<std::string, std::vector<std::string>>> join;  // registry -> groups
    OutputSpec out;                                                      // "stdout"
    OutputSpec err;                                                      // "stderr"
};

struct RegistrySpec {
    std::string name;
    std::uint32_t max_groups = 1024;
    std::uint32_t max_members = 16384;  // memberships (pid, group) in all
};

// Who may reach the control socket: its group and mode ("socket" as an object).
struct SocketAccess {
    std::optional<std::string> group;  // as written
    std::optional<gid_t> gid;          // resolved from group
    mode_t mode = 0660;
    bool operator==(const SocketAccess &) const = default;
};

// "cluster": this chipd's place among the hosts sharing groups through etcd
// (README.md, "Cluster").
struct ClusterSpec {
    std::vector<std::string> etcd;  // endpoints "http(s)://HOST[:PORT]", without a trailing '/'
    std::string name;               // the cluster's name: keys live under /chip/<name>/
    std::string node;               // this host's name in the cluster
    unsigned lease_ttl = 10;        // seconds
    struct Tls {
        std::string ca;    // absolute paths, readable when the spec was loaded
        std::string cert;  // empty: no client certificate (then key is empty too)
        std::string key;
        bool operator==(const Tls &) const = default;
    };
    std::optional<Tls> tls;

    bool operator==(const ClusterSpec &) const = default;
};

struct Spec {
    std::string file;  // the spec file as given
    std::string dir;   // its folder, absolute
    std::vector<RegistrySpec> registries;
    std::shared_ptr<const core::SupervisorSpec> root;
    std::optional<std::string> socket;  // absolute when set
    SocketAccess socket_access;
    std::optional<ClusterSpec> cluster;
};

// A log file's path may hold {name} (the worker's name in the spec) and
// {instance} (its index in its pool) in its file name: one file per worker of
// a pool. True when O is such a file.
inline bool per_worker_file(const OutputSpec &o) {
    return o.mode == OutputSpec::Mode::File && o.file.find('{') != std::string::npos;
}
// O's file for the worker NAME (its spec name) of index INSTANCE.
inline std::string log_file_of(const OutputSpec &o, std::string_view name, unsigned instance) {
    std::string out;
    std::string_view f = o.file;
    for (std::size_t i = 0; i < f.size();) {
        if (f.substr(i).starts_with("{name}")) {
            out += name;
            i += 6;
        } else if (f.substr(i).starts_with("{instance}")) {
            out += std::to_string(instance);
            i += 10;
        } else {
            out += f[i++];
        }
    }
    return out;
}

// The launch fields of a worker's definition (every worker the loader makes has them).
inline const Launch &launch_of(const core::WorkerSpec &w) {
    return *w.launch;
}

}  // namespace chip::spec
