#include "client/connection.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/names.hpp"

namespace chip::client {

Connection::Connection(Connection &&other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), buf_(std::move(other.buf_)) {
    other.fd_ = -1;
}

Connection &Connection::operator=(Connection &&other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.fd_;
        path_ = std::move(other.path_);
        buf_ = std::move(other.buf_);
        other.fd_ = -1;
    }
    return *this;
}

Connection::~Connection() {
    if (fd_ >= 0) ::close(fd_);
}

Result<Connection> Connection::open(const std::string &path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return make_error(ENAMETOOLONG, "socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(errno, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
        int e = errno;
        ::close(fd);
        return make_error(e, "cannot reach chipd at " + path + ": " + std::strerror(e));
    }
    Connection c;
    c.fd_ = fd;
    c.path_ = path;
    return c;
}

Result<nlohmann::json> Connection::request(const nlohmann::json &req) {
    if (fd_ < 0) return make_error(ENOTCONN, "not connected");
    std::string line = req.dump() + "\n";
    std::size_t off = 0;
    while (off < line.size()) {
        // MSG_NOSIGNAL: a chipd that went away is an EPIPE result, not a SIGPIPE.
        ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(errno, std::string("send to chipd: ") + std::strerror(errno));
        }
        off += static_cast<std::size_t>(n);
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
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(errno, std::string("receive from chipd: ") + std::strerror(errno));
        }
        if (n == 0) return make_error(ECONNRESET, "chipd closed the connection");
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

int errno_from_name(const std::string &name) {
    return chip::errno_from_name(name);
}

}  // namespace chip::client
