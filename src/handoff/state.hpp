// What one chipd hands the next across `chipctl reexec` (README.md,
// "Upgrading chipd in place"): everything it needs to go on supervising the
// same workers from the same pid, as plain values. File descriptors are
// numbers: they stay open across the exec (their close-on-exec flag cleared
// for it) and the new process takes them over.
//
// Times are monotonic clock readings (os::monotonic_now()): the clock goes on
// across an exec, so a deadline keeps its remaining time.
//
// Turning a State into bytes and back is codec.hpp's business; gathering it
// from the running modules and handing it to them is the daemon's.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tree.hpp"
#include "spec/spec.hpp"

namespace chip::handoff {

using Time = std::chrono::nanoseconds;

// Where a captured output pipe's lines go.
struct Sink {
    enum class Kind : std::uint8_t { Stdout, Stderr, File };
    Kind kind = Kind::Stdout;
    spec::OutputSpec file;  // Kind::File: mode File, its path, max_bytes and keep
    bool operator==(const Sink &o) const {
        return kind == o.kind && file.mode == o.file.mode && file.file == o.file.file &&
               file.max_bytes == o.file.max_bytes && file.keep == o.file.keep;
    }
};

// A worker's output pipe (its read end), still open: what the kernel holds in
// it stays there, what chipd had read of an unfinished line is PARTIAL.
struct Pipe {
    int fd = -1;
    std::string prefix;      // the worker's path, as lines are prefixed
    std::string partial;     // bytes of an unfinished line, at most 64 KiB
    std::uint32_t sink = 0;  // index into State::sinks
    bool operator==(const Pipe &) const = default;
};

// The launcher's slot of a worker node.
struct Slot {
    std::uint64_t id = 0;     // the node's id
    pid_t pid = 0;            // of the last spawn
    int notify_fd = -1;       // its NOTIFY_SOCKET, while it waits for READY=1
    std::string notify_path;  // ... and that socket's path
    std::vector<std::pair<std::string, std::string>> exports;  // CHIP_EXPORT_ NAME, VALUE
    bool warned_stranger = false, warned_oversized = false;
    std::optional<std::uint32_t> out_file, err_file;  // its own log files: index into sinks
    bool operator==(const Slot &) const = default;
};

// A registry's shared-memory region, formatted and written by chipd.
struct Registry {
    spec::RegistrySpec spec;
    std::string shm_name;  // "/chip-<random>-<name>"
    int fd = -1;           // the shared-memory object, open read-write
    bool operator==(const Registry &o) const {
        return spec.name == o.spec.name && spec.max_groups == o.spec.max_groups &&
               spec.max_members == o.spec.max_members && shm_name == o.shm_name && fd == o.fd;
    }
};

// A registry member that is not chipd's child, watched through its pidfd.
struct Watch {
    pid_t pid = 0;
    int pidfd = -1;
    bool operator==(const Watch &) const = default;
};

// A worker's cgroup (README.md, "Containment").
struct Cgroup {
    std::uint64_t id = 0;         // the node's id
    std::string name;             // in chipd's folder
    std::uint64_t base_usec = 0;  // cpu.stat's usage_usec at its last spawn
    bool operator==(const Cgroup &) const = default;
};

struct Cgroups {
    bool on = false;
    std::vector<Cgroup> groups;
    std::vector<std::string> removals;  // names of cgroups to remove once empty
    bool operator==(const Cgroups &) const = default;
};

// A registry's cluster view region (README.md, "Cluster").
struct ClusterView {
    std::string registry;
    std::string shm_name;
    int fd = -1;
    bool operator==(const ClusterView &) const = default;
};

// chipd's side of systemd's notification protocol. Version 2 on; a version 1
// hand-off has none (READY=1 is said again once the tree is up, and STATUS=
// counts restarts from the hand-off on).
struct Systemd {
    bool told_ready = false;
    std::vector<Time> recent_restarts;  // those of the last minute, oldest first
    bool operator==(const Systemd &) const = default;
};

struct State {
    // The chipd that wrote it.
    pid_t pid = 0;                      // the new process must have the same
    std::string version;                // CHIP_VERSION
    std::uint64_t worker_fd_limit = 0;  // the soft fd limit workers get (chipd's first)
    std::uint64_t signal_mask = 0;      // bit N-1 for signal N: the mask chipd was started with
    std::string socket_path;            // absolute
    int listen_fd = -1;                 // the control socket, listening
    int requester_fd = -1;              // the connection that asked for the reexec (-1: none)

    spec::Spec spec;      // the spec as last loaded (its definitions shared with the tree's)
    core::Snapshot tree;  // every node, with its definition, pid, deadlines and history

    std::vector<Sink> sinks;
    std::vector<std::uint32_t> shared_sinks;  // sinks shared by path (not a worker's own)
    std::vector<Pipe> pipes;
    std::vector<Slot> slots;
    std::vector<Registry> registries;
    std::vector<Watch> watches;
    Cgroups cgroups;
    std::vector<ClusterView> cluster_views;
    std::optional<Systemd> systemd;  // version 2 on

    // Every file descriptor the State names, in no order.
    std::vector<int> fds() const {
        std::vector<int> out;
        auto add = [&](int fd) {
            if (fd >= 0) out.push_back(fd);
        };
        add(listen_fd);
        add(requester_fd);
        for (const auto &p : pipes) add(p.fd);
        for (const auto &s : slots) add(s.notify_fd);
        for (const auto &r : registries) add(r.fd);
        for (const auto &w : watches) add(w.pidfd);
        for (const auto &v : cluster_views) add(v.fd);
        return out;
    }
};

}  // namespace chip::handoff
