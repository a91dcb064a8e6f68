// One datagram to a Unix socket path (a leading '@' names an abstract socket),
// as sd_notify sends it: for the test helper (a worker's notify messages) and
// the tests (a stranger's).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace chip::test {

// Sends MSG to PATH from a fresh socket (SNDBUF: its send buffer, 0 for the
// default). Returns 0, or -errno.
inline int send_datagram(const std::string &path, const std::string &msg, int sndbuf = 0) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (sndbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    socklen_t len = sizeof(sa_family_t) + static_cast<socklen_t>(path.size());
    if (!path.empty() && path[0] == '@')
        addr.sun_path[0] = '\0';
    else
        len += 1;
    ssize_t n = ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr *>(&addr), len);
    int rc = n < 0 ? -errno : n == static_cast<ssize_t>(msg.size()) ? 0 : -EMSGSIZE;
    ::close(fd);
    return rc;
}

}  // namespace chip::test
