// Sockets, pipes and files for chipd: the control socket, per-worker notify
// sockets (sd_notify datagrams), peer credentials, output pipes. And the client
// side, for libchip and chipctl: connecting to the control socket, sending.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "os/fd.hpp"
#include "os/private_folder.hpp"

namespace chip::os {

struct PeerCred {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

// Creates the folders of PATH's parent (mode 0755), like mkdir -p.
Result<void> make_parent_dirs(const std::string &path);

// A listening, non-blocking Unix stream socket named FOLDER.socket_name in
// FOLDER, with mode MODE from the start (bound under a umask that leaves
// exactly MODE) and, when GROUP is set, that group (given before it listens:
// nobody connects in between). A socket file already there is replaced when
// nobody answers on it (a stale one), and refused with EADDRINUSE when a live
// chipd does.
Result<UniqueFd> listen_unix(const SocketFolder &folder, mode_t mode, std::optional<gid_t> group);
// accept4, non-blocking and close-on-exec; -errno on failure.
int accept_client(int listen_fd);
Result<PeerCred> peer_cred(int fd);
// A close-on-exec Unix stream socket connected to PATH ('@' abstract),
// non-blocking once connected. Connecting waits while the listener's backlog
// is full (a listener that accepts nothing, stopped or hung, fills it): at
// most TIMEOUT when given, then ETIMEDOUT. Other error codes: ENOENT (no
// socket), ECONNREFUSED (nobody listening), EACCES, ENAMETOOLONG, ...
Result<UniqueFd> connect_unix(const std::string &path,
                              std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
// Waits until FD is readable (or, with WRITABLE, writable) or TIMEOUT (none:
// no limit) has passed: true when it is, false when the time is up or a
// signal interrupted the wait (the caller computes what is left and asks
// again). An error or a hang-up counts as ready: the read or write that
// follows reports it.
Result<bool> wait_fd(int fd, bool writable, std::optional<std::chrono::nanoseconds> timeout);

// A non-blocking datagram socket bound at PATH (mode 0666, so that workers
// running as other users can notify), or at an abstract address when PATH
// starts with '@'. PASS_CRED: SO_PASSCRED, so that recv_datagram_cred() tells
// each sender.
Result<UniqueFd> bind_datagram(const std::string &path, bool pass_cred = false);
// Sends one datagram to the socket at PATH ('@' abstract); never blocks.
Result<void> send_datagram(const std::string &path, const std::string &msg);
// The same, except that it waits while the receiver's queue is full: for a
// worker telling its supervisor READY=1, which must not be lost.
Result<void> send_datagram_wait(const std::string &path, const std::string &msg);
// Receives one datagram into BUF; returns its size, 0 when none is waiting.
ssize_t recv_datagram(int fd, char *buf, std::size_t cap);
// One datagram taken with recvmsg(2) and its sender's SCM_CREDENTIALS (the
// socket needs SO_PASSCRED). GOT is false when none is waiting (or on an
// error); TRUNCATED when it was longer than CAP (what did not fit is lost);
// PID 0 when the kernel gave no credentials.
struct Datagram {
    bool got = false;
    std::size_t size = 0;
    bool truncated = false;
    pid_t pid = 0;
};
Datagram recv_datagram_cred(int fd, char *buf, std::size_t cap);

// A pipe whose read end is non-blocking, unless BLOCKING; both ends close-on-exec.
Result<void> make_pipe(UniqueFd &read_end, UniqueFd &write_end, bool blocking = false);
// read(2) retrying EINTR; -errno on failure (-EAGAIN when empty).
ssize_t read_some(int fd, char *buf, std::size_t cap);
// Whether the peer of the stream socket FD closed it entirely (POLLHUP), not
// only shut its writing side (which reads as EOF all the same).
bool peer_closed(int fd);
// Writes all of BUF to a blocking fd, retrying EINTR and short writes.
Result<void> write_all(int fd, const char *buf, std::size_t len);
// send(2) without blocking and without SIGPIPE: bytes sent, or -errno
// (-EAGAIN when the socket buffer is full).
ssize_t send_some(int fd, const char *buf, std::size_t len);
// Sends all of BUF on a blocking socket, retrying EINTR and short sends;
// without SIGPIPE (a peer that went away is EPIPE).
Result<void> send_all(int fd, const char *buf, std::size_t len);
// unlink(2) or, for a folder, rmdir(2); a missing path is not an error.
void remove_path(const std::string &path, bool folder = false);
// SIGPIPE ignored: a client that went away is an EPIPE, not chipd's death.
void ignore_sigpipe();
// Appends all of BUF to FD. On failure (a full disk) the file is cut back to
// WHOLE_SIZE, so that it never ends in part of a line; the error is returned.
Result<void> append_whole(int fd, const char *buf, std::size_t len, std::uint64_t whole_size);
// open("/dev/null", O_RDWR | O_CLOEXEC).
UniqueFd open_dev_null();

}  // namespace chip::os
