#include "client/connection.hpp"

#include <cerrno>
#include <cstring>

#include "common/names.hpp"
#include "os/clock.hpp"
#include "os/file.hpp"
#include "os/private_folder.hpp"
#include "os/self.hpp"
#include "os/socket.hpp"

namespace chip::client {

namespace {

// What is left until DEADLINE (nullopt: no limit), read afresh.
std::optional<std::chrono::nanoseconds> left(Deadline deadline) {
    if (!deadline) return std::nullopt;
    return *deadline - os::monotonic_now();
}

Error timed_out() {
    return make_error(ETIMEDOUT, "chipd did not answer in time");
}

}  // namespace

Deadline deadline_in(std::chrono::nanoseconds timeout) {
    return os::monotonic_now() + timeout;
}

Result<Connection> Connection::open(const std::string &path, Deadline deadline) {
    // Never through a default runtime folder that someone else made or
    // replaced (README.md, "Paths"): it would hand our requests to them.
    if (!path.empty() && path[0] != '@') {
        std::string abs = os::absolute_path(path);
        if (socket_folder_kind(abs, os::real_uid()) != SocketFolderKind::Given)
            if (auto folder = os::open_socket_folder(abs, os::real_uid());
                !folder && folder.error().code == EPERM)
                return make_error(EPERM,
                                  "cannot reach chipd at " + path + ": " + folder.error().message);
    }
    auto fd = os::connect_unix(path, left(deadline));
    if (!fd) {
        int e = fd.error().code;
        // Too long for a socket address: os says so, with the limit.
        if (e == ENAMETOOLONG) return fd.error();
        if (e == ETIMEDOUT) return timed_out();
        return make_error(e, "cannot reach chipd at " + path + ": " + std::strerror(e));
    }
    Connection c;
    c.fd_ = std::move(*fd);
    c.path_ = path;
    return c;
}

Result<nlohmann::json> Connection::request(const nlohmann::json &req, Deadline deadline) {
    if (!fd_) return make_error(ENOTCONN, "not connected");
    auto resp = exchange(req, deadline);
    if (!resp) {
        // An answer may still come, or half a request went: the next request
        // on this connection would read the wrong answer. It is closed
        // (ENOTCONN from now on; libchip then connects again).
        fd_.reset();
        buf_.clear();
    }
    return resp;
}

Result<nlohmann::json> Connection::exchange(const nlohmann::json &req, Deadline deadline) {
    std::string line = req.dump() + "\n";
    // Without SIGPIPE: a chipd that went away is an EPIPE result.
    for (std::size_t sent = 0; sent < line.size();) {
        ssize_t n = os::send_some(fd_.get(), line.data() + sent, line.size() - sent);
        if (n >= 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n == -EPIPE || n == -ECONNRESET)
            return make_error(static_cast<int>(-n), "chipd closed the connection");
        if (n != -EAGAIN) {
            int e = static_cast<int>(-n);
            return make_error(e, std::string("send to chipd: ") + std::strerror(e));
        }
        auto time = left(deadline);
        if (time && time->count() <= 0) return timed_out();
        if (auto w = os::wait_fd(fd_.get(), true, time); !w) return w.error();
    }
    auto resp = next_line(deadline);
    if (!resp) return resp.error();
    if (!*resp) return make_error(ECONNRESET, "chipd closed the connection");
    auto j = nlohmann::json::parse(**resp, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
        return make_error(EPROTO, "malformed response from chipd");
    return j;
}

Result<std::optional<std::string>> Connection::read_line(Deadline deadline) {
    if (!fd_) return make_error(ENOTCONN, "not connected");
    return next_line(deadline);
}

Result<std::optional<std::string>> Connection::next_line(Deadline deadline) {
    for (;;) {
        if (auto nl = buf_.find('\n'); nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return std::optional<std::string>(std::move(line));
        }
        char tmp[16384];
        ssize_t n = os::read_some(fd_.get(), tmp, sizeof tmp);
        if (n == -EAGAIN) {
            auto time = left(deadline);
            if (time && time->count() <= 0) return timed_out();
            if (auto w = os::wait_fd(fd_.get(), false, time); !w) return w.error();
            continue;
        }
        if (n == -ECONNRESET) return make_error(ECONNRESET, "chipd closed the connection");
        if (n < 0) {
            int e = static_cast<int>(-n);
            return make_error(e, std::string("receive from chipd: ") + std::strerror(e));
        }
        // A partial last line (chipd ended mid-line) is dropped.
        if (n == 0) return std::optional<std::string>();
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

int errno_from_name(const std::string &name) {
    return chip::errno_from_name(name);
}

}  // namespace chip::client
