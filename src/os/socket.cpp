#include "os/socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>

namespace chip::os {

namespace {

Error sys_error(const std::string &what) {
    int e = errno;
    return make_error(e, what + ": " + std::strerror(e));
}

// Fills ADDR for PATH; '@' names an abstract socket. Returns the address length.
Result<socklen_t> make_addr(const std::string &path, sockaddr_un &addr) {
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return make_error(ENAMETOOLONG, "socket path too long (max " +
                                            std::to_string(sizeof addr.sun_path - 1) +
                                            " bytes): " + path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (path[0] == '@') {
        addr.sun_path[0] = '\0';
        return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    }
    return static_cast<socklen_t>(sizeof addr);
}

Result<void> send_datagram_to(const std::string &path, const std::string &msg, int flags) {
    sockaddr_un addr;
    auto len = make_addr(path, addr);
    if (!len) return len.error();
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | flags | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket");
    if (::sendto(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL,
                 reinterpret_cast<sockaddr *>(&addr), *len) < 0)
        return sys_error("send to " + path);
    return {};
}

}  // namespace

Result<void> make_parent_dirs(const std::string &path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return {};
    std::string dir = path.substr(0, slash);
    for (std::size_t i = 1; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            std::string part = dir.substr(0, i);
            if (::mkdir(part.c_str(), 0755) < 0 && errno != EEXIST)
                return sys_error("cannot create " + part);
        }
    }
    return {};
}

Result<UniqueFd> listen_unix(const SocketFolder &folder, mode_t mode, std::optional<gid_t> group) {
    const std::string base = folder.path == "/" ? std::string() : folder.path;
    const std::string path = base + "/" + folder.socket_name;
    const char *name = folder.socket_name.c_str();
    sockaddr_un addr;
    auto len = make_addr(path, addr);
    if (!len) return len.error();
    // The socket is made listening under a temporary name, then linked to its
    // own: a client never finds it there before chipd listens (ECONNREFUSED),
    // and the link fails if the name is taken. A path too long for the
    // temporary name is bound in place.
    const std::string tmp_name = "." + folder.socket_name + "." + std::to_string(::getpid());
    sockaddr_un tmp_addr;
    auto tmp_len = make_addr(base + "/" + tmp_name, tmp_addr);
    const bool in_place = !tmp_len;
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket");
    // bind(2) creates the file with the umask applied: with this one it gets
    // MODE itself, never a moment with more access.
    auto bind_with_mode = [&](const sockaddr_un &at, socklen_t at_len) {
        mode_t old = ::umask(~mode & 0777);
        int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr *>(&at), at_len);
        int e = errno;
        ::umask(old);
        errno = e;
        return rc;
    };
    // Someone's socket file at PATH: a live chipd answers, a stale one does not.
    auto live = [&] {
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        return ::connect(probe.get(), reinterpret_cast<sockaddr *>(&addr), *len) == 0;
    };
    const char *bound = in_place ? name : tmp_name.c_str();
    if (in_place) {
        if (bind_with_mode(addr, *len) < 0) {
            if (errno != EADDRINUSE) return sys_error("cannot bind " + path);
            if (live())
                return make_error(EADDRINUSE, "another chipd is already running on " + path);
            ::unlinkat(folder.fd.get(), name, 0);
            if (bind_with_mode(addr, *len) < 0) return sys_error("cannot bind " + path);
        }
    } else {
        ::unlinkat(folder.fd.get(), bound, 0);  // a leftover of a chipd with this pid
        if (bind_with_mode(tmp_addr, *tmp_len) < 0) return sys_error("cannot bind " + path);
    }
    auto fail = [&](Error e) {
        ::unlinkat(folder.fd.get(), bound, 0);
        return e;
    };
    // Relative to the checked folder, and never through a symlink.
    if (group &&
        ::fchownat(folder.fd.get(), bound, static_cast<uid_t>(-1), *group, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(sys_error("cannot give " + path + " to group " + std::to_string(*group)));
    if (::listen(fd.get(), SOMAXCONN) < 0) return fail(sys_error("listen on " + path));
    if (in_place) return fd;
    for (int attempt = 0;; ++attempt) {
        if (::linkat(folder.fd.get(), bound, folder.fd.get(), name, 0) == 0) break;
        if (errno != EEXIST || attempt == 3) return fail(sys_error("cannot link " + path));
        if (live())
            return fail(make_error(EADDRINUSE, "another chipd is already running on " + path));
        ::unlinkat(folder.fd.get(), name, 0);
    }
    ::unlinkat(folder.fd.get(), bound, 0);
    return fd;
}

int accept_client(int listen_fd) {
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        if (errno == EINTR) continue;
        return -errno;
    }
}

Result<UniqueFd> connect_unix(const std::string &path,
                              std::optional<std::chrono::nanoseconds> timeout) {
    if (timeout && *timeout <= std::chrono::nanoseconds::zero())
        return make_error(ETIMEDOUT, "no time left to connect to " + path);
    sockaddr_un addr;
    auto len = make_addr(path, addr);
    if (!len) return len.error();
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket");
    // A blocking connect to a Unix socket waits while the listener's backlog
    // is full, for at most SO_SNDTIMEO (0: for ever), then fails with EAGAIN.
    if (timeout) {
        auto us = std::chrono::ceil<std::chrono::microseconds>(*timeout).count();
        timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
            return sys_error("SO_SNDTIMEO");
    }
    for (;;) {
        if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), *len) == 0) break;
        if (errno == EAGAIN || errno == EINPROGRESS)
            return make_error(ETIMEDOUT, "cannot connect to " + path +
                                             ": its listen queue stayed full (nobody accepts)");
        // A signal cut the wait for room in the backlog: wait again.
        if (errno == EINTR) continue;
        return sys_error("cannot connect to " + path);
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
        return sys_error("fcntl O_NONBLOCK");
    return fd;
}

Result<bool> wait_fd(int fd, bool writable, std::optional<std::chrono::nanoseconds> timeout) {
    if (timeout && *timeout <= std::chrono::nanoseconds::zero()) return false;
    // Rounded up: poll(2) takes milliseconds, and a wait that ends early would
    // only be asked for again.
    long long ms = timeout ? std::chrono::ceil<std::chrono::milliseconds>(*timeout).count() : -1;
    pollfd p{fd, static_cast<short>(writable ? POLLOUT : POLLIN), 0};
    int n = ::poll(&p, 1, ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms));
    if (n < 0) {
        if (errno == EINTR) return false;
        return sys_error("poll");
    }
    return n > 0;
}

Result<PeerCred> peer_cred(int fd) {
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) return sys_error("SO_PEERCRED");
    return PeerCred{uc.pid, uc.uid, uc.gid};
}

Result<UniqueFd> bind_datagram(const std::string &path, bool pass_cred) {
    sockaddr_un addr;
    auto len = make_addr(path, addr);
    if (!len) return len.error();
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("socket");
    if (path[0] != '@') ::unlink(path.c_str());
    int on = 1;
    // Before bind: no datagram can arrive without its credentials.
    if (pass_cred && ::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
        return sys_error("SO_PASSCRED");
    if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), *len) < 0)
        return sys_error("cannot bind " + path);
    if (path[0] != '@') ::chmod(path.c_str(), 0666);
    return fd;
}

Result<void> send_datagram(const std::string &path, const std::string &msg) {
    return send_datagram_to(path, msg, SOCK_NONBLOCK);
}

Result<void> send_datagram_wait(const std::string &path, const std::string &msg) {
    return send_datagram_to(path, msg, 0);
}

ssize_t recv_datagram(int fd, char *buf, std::size_t cap) {
    for (;;) {
        ssize_t n = ::recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
}

Datagram recv_datagram_cred(int fd, char *buf, std::size_t cap) {
    Datagram d;
    iovec iov{buf, cap};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return d;
    d.got = true;
    d.size = static_cast<std::size_t>(n);
    d.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
            ucred uc;
            std::memcpy(&uc, CMSG_DATA(c), sizeof uc);
            d.pid = uc.pid;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            // Descriptors nobody asked for: closed, not leaked.
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int passed;
                std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                ::close(passed);
            }
        }
    }
    return d;
}

Result<void> make_pipe(UniqueFd &read_end, UniqueFd &write_end, bool blocking) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) return sys_error("pipe");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
    if (!blocking) ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    return {};
}

ssize_t read_some(int fd, char *buf, std::size_t cap) {
    for (;;) {
        ssize_t n = ::read(fd, buf, cap);
        if (n >= 0) return n;
        if (errno != EINTR) return -errno;
    }
}

bool peer_closed(int fd) {
    // A Unix stream socket reports POLLHUP once both directions are shut: the
    // peer closed, or shut both. poll() reports it whatever is asked for.
    struct pollfd p = {fd, 0, 0};
    int n;
    do n = ::poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    return n > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

Result<void> write_all(int fd, const char *buf, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error("write");
        }
        buf += n;
        len -= static_cast<std::size_t>(n);
    }
    return {};
}

ssize_t send_some(int fd, const char *buf, std::size_t len) {
    for (;;) {
        ssize_t n = ::send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

Result<void> send_all(int fd, const char *buf, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error("send");
        }
        buf += n;
        len -= static_cast<std::size_t>(n);
    }
    return {};
}

void remove_path(const std::string &path, bool folder) {
    if (folder)
        ::rmdir(path.c_str());
    else
        ::unlink(path.c_str());
}

void ignore_sigpipe() {
    ::signal(SIGPIPE, SIG_IGN);
}

Result<void> append_whole(int fd, const char *buf, std::size_t len, std::uint64_t whole_size) {
    std::size_t done = 0;
    while (done < len) {
        ssize_t n = ::write(fd, buf + done, len - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        int e = n < 0 ? errno : ENOSPC;
        // Shrinking needs no free space, so this works on a full disk too.
        if (done > 0) (void)::ftruncate(fd, static_cast<off_t>(whole_size));
        return make_error(e, std::strerror(e));
    }
    return {};
}

UniqueFd open_dev_null() {
    return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
}

}  // namespace chip::os
