// chip.hpp: a header-only C++ wrapper over libchip's C API (chip.h).
//
// chip::Client owns one chip_client (RAII, move-only) and returns std::vector
// and std::string instead of caller-sized buffers.
//
// Errors are exceptions of type chip::ClientError, a std::system_error whose
// code() is the errno value in chip::error_category(), equivalent to the
// generic errno conditions (so `e.code() == std::errc::no_space_on_device`). Why exceptions
// rather than an expected-like type: a failed join or an unreachable chipd is
// exceptional for the programs that use this wrapper, std::system_error is the
// standard vocabulary for errno-style failures, and std::expected is not
// available in C++20 (nor in clang 14's library). Code that must not throw
// calls the C API directly. (It is not named chip::Error: chip's own sources
// use that name for their internal Result errors.)
//
// What it does not do: no caching beyond libchip's own, no thread safety (one
// Client per thread, as for chip_client).
#pragma once

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "chip/chip.h"

namespace chip {

// errno values as libchip words them (chip_strerror); each is equivalent to
// the generic errno condition, so comparing with std::errc works.
class ErrorCategory : public std::error_category {
public:
    const char *name() const noexcept override { return "chip"; }
    std::string message(int ev) const override { return chip_strerror(-ev); }
    std::error_condition default_error_condition(int ev) const noexcept override {
        return std::error_condition(ev, std::generic_category());
    }
};

inline const std::error_category &error_category() {
    static const ErrorCategory category;
    return category;
}

class ClientError : public std::system_error {
public:
    // CODE as libchip returns it (negative errno); what() is "WHAT: <chip_strerror>".
    ClientError(int code, const std::string &what)
        : std::system_error(code < 0 ? -code : code, error_category(), what) {}
};

// A group and its member count.
struct GroupInfo {
    std::string name;
    std::uint32_t count = 0;
};

// A member of a group on some host of the cluster.
struct ClusterMember {
    std::string node;
    pid_t pid = 0;
};

class Client {
public:
    // Connects to SOCKET_PATH, else $CHIP_SOCKET, else the default path.
    explicit Client(std::string_view socket_path = {}) {
        std::string path(socket_path);
        c_ = chip_connect(path.empty() ? nullptr : path.c_str());
        if (!c_) throw ClientError(-errno, "cannot connect to chipd");
    }
    Client(Client &&other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
    Client &operator=(Client &&other) noexcept {
        if (this != &other) {
            if (c_) chip_close(c_);
            c_ = std::exchange(other.c_, nullptr);
        }
        return *this;
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    ~Client() {
        if (c_) chip_close(c_);
    }

    // Joins or leaves GROUP of REGISTRY (empty: the only registry) for PID
    // (0: the calling process).
    void join(std::string_view group, std::string_view registry = {}, pid_t pid = 0) {
        Name g(group), r(registry);
        check(chip_join_pid(c_, r.get(), g.get(), pid ? pid : ::getpid()), "cannot join", group);
    }
    void leave(std::string_view group, std::string_view registry = {}, pid_t pid = 0) {
        Name g(group), r(registry);
        check(chip_leave_pid(c_, r.get(), g.get(), pid ? pid : ::getpid()), "cannot leave", group);
    }

    // GROUP's members in join order, from shared memory (no round trip).
    std::vector<pid_t> members(std::string_view group, std::string_view registry = {}) {
        Name g(group), r(registry);
        std::vector<pid_t> out(16);
        for (;;) {
            ssize_t n = chip_members(c_, r.get(), g.get(), out.data(), out.size());
            check(n, "cannot read the members of", group);
            if (static_cast<std::size_t>(n) <= out.size()) {
                out.resize(static_cast<std::size_t>(n));
                return out;
            }
            out.resize(static_cast<std::size_t>(n));  // grew meanwhile: again, bigger
        }
    }

    // GROUP's members on every host of the cluster, sorted by node then pid,
    // from chipd's cluster view (no round trip). Throws ClientError with
    // ENOTCONN when chipd's spec has no "cluster".
    std::vector<ClusterMember> members_cluster(std::string_view group,
                                               std::string_view registry = {}) {
        Name g(group), r(registry);
        std::vector<chip_cluster_member> buf(16);
        for (;;) {
            ssize_t n = chip_members_cluster(c_, r.get(), g.get(), buf.data(), buf.size());
            check(n, "cannot read the cluster members of", group);
            if (static_cast<std::size_t>(n) <= buf.size()) {
                std::vector<ClusterMember> out;
                out.reserve(static_cast<std::size_t>(n));
                for (ssize_t i = 0; i < n; ++i) out.push_back({buf[i].node, buf[i].pid});
                return out;
            }
            buf.resize(static_cast<std::size_t>(n));
        }
    }

    // REGISTRY's groups with their member counts, in creation order.
    std::vector<GroupInfo> groups(std::string_view registry = {}) {
        Name r(registry);
        std::vector<chip_group_info> buf(64);
        for (;;) {
            ssize_t n = chip_groups(c_, r.get(), buf.data(), buf.size());
            check(n, "cannot read the groups of", registry.empty() ? "the registry" : registry);
            if (static_cast<std::size_t>(n) <= buf.size()) {
                std::vector<GroupInfo> out;
                out.reserve(static_cast<std::size_t>(n));
                for (ssize_t i = 0; i < n; ++i) out.push_back({buf[i].name, buf[i].count});
                return out;
            }
            buf.resize(static_cast<std::size_t>(n));
        }
    }

    // The names of the registries chipd serves.
    std::vector<std::string> registries() {
        std::vector<std::array<char, 65>> buf(8);
        for (;;) {
            // std::array<char, 65> has the layout of char[65].
            ssize_t n = chip_registries(c_, reinterpret_cast<char(*)[65]>(buf.data()), buf.size());
            check(n, "cannot list the registries", {});
            if (static_cast<std::size_t>(n) <= buf.size()) {
                std::vector<std::string> out;
                for (ssize_t i = 0; i < n; ++i) out.emplace_back(buf[i].data());
                return out;
            }
            buf.resize(static_cast<std::size_t>(n));
        }
    }

    // Sends READY=1 to $NOTIFY_SOCKET, if set.
    static void notify_ready() {
        if (int rc = chip_notify_ready(); rc < 0) throw ClientError(rc, "cannot notify readiness");
    }
    // Sends STATE ("CHIP_EXPORT_PORT=5432\nREADY=1") to $NOTIFY_SOCKET, if set.
    static void notify(const std::string &state) {
        if (int rc = chip_notify(state.c_str()); rc < 0) throw ClientError(rc, "cannot notify");
    }

    chip_client *get() const { return c_; }

private:
    // A NUL-terminated copy of a name, without allocating; empty -> NULL.
    // Longer than 64 bytes: -EINVAL, as libchip would say.
    class Name {
    public:
        explicit Name(std::string_view s) : empty_(s.empty()) {
            if (s.size() >= sizeof buf_) throw ClientError(-EINVAL, "name too long");
            std::memcpy(buf_, s.data(), s.size());
            buf_[s.size()] = '\0';
        }
        const char *get() const { return empty_ ? nullptr : buf_; }

    private:
        char buf_[65];
        bool empty_;
    };

    static void check(ssize_t rc, const char *what, std::string_view name) {
        if (rc >= 0) return;
        std::string msg(what);
        if (!name.empty()) msg.append(" ").append(name);
        throw ClientError(static_cast<int>(rc), msg);
    }

    chip_client *c_ = nullptr;
};

}  // namespace chip
