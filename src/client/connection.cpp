#include "client/connection.hpp"

#include <cerrno>
#include <cstring>

#include "common/names.hpp"
#include "os/file.hpp"
#include "os/private_folder.hpp"
#include "os/self.hpp"
#include "os/socket.hpp"

namespace chip::client {

Result<Connection> Connection::open(const std::string &path) {
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
    auto fd = os::connect_unix(path);
    if (!fd) {
        int e = fd.error().code;
        // Too long for a socket address: os says so, with the limit.
        if (e == ENAMETOOLONG) return fd.error();
        return make_error(e, "cannot reach chipd at " + path + ": " + std::strerror(e));
    }
    Connection c;
    c.fd_ = std::move(*fd);
    c.path_ = path;
    return c;
}

Result<nlohmann::json> Connection::request(const nlohmann::json &req) {
    if (!fd_) return make_error(ENOTCONN, "not connected");
    std::string line = req.dump() + "\n";
    // Without SIGPIPE: a chipd that went away is an EPIPE result.
    if (auto sent = os::send_all(fd_.get(), line.data(), line.size()); !sent) {
        int e = sent.error().code;
        return make_error(e, std::string("send to chipd: ") + std::strerror(e));
    }
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string resp = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            auto j = nlohmann::json::parse(resp, nullptr, false);
            if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
                return make_error(EPROTO, "malformed response from chipd");
            return j;
        }
        char tmp[4096];
        ssize_t n = os::read_some(fd_.get(), tmp, sizeof tmp);
        if (n < 0) {
            int e = static_cast<int>(-n);
            return make_error(e, std::string("receive from chipd: ") + std::strerror(e));
        }
        if (n == 0) return make_error(ECONNRESET, "chipd closed the connection");
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

Result<std::optional<std::string>> Connection::read_line() {
    if (!fd_) return make_error(ENOTCONN, "not connected");
    for (;;) {
        if (auto nl = buf_.find('\n'); nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return std::optional<std::string>(std::move(line));
        }
        char tmp[16384];
        ssize_t n = os::read_some(fd_.get(), tmp, sizeof tmp);
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
