#include "daemon/control.hpp"

#include <cerrno>
#include <cstring>

#include "os/clock.hpp"

namespace chip::daemon {

Control::Control(uv::Loop &loop, os::UniqueFd listen_fd, RequestHandler &handler, Warn warn)
    : loop_(loop), listen_fd_(std::move(listen_fd)), handler_(handler), warn_(std::move(warn)) {
    spare_ = os::open_dev_null();
    listen_poll_ =
        std::make_unique<uv::Poll>(loop_, listen_fd_.get(), [this](int) { on_accept(); });
    listen_poll_->start(uv::Poll::Readable);
    resume_ = std::make_unique<uv::Timer>(loop_, [this] {
        if (!spare_) spare_ = os::open_dev_null();
        if (listen_poll_) listen_poll_->start(uv::Poll::Readable);
    });
}

Control::~Control() = default;

void Control::stop_listening() {
    resume_.reset();
    listen_poll_.reset();
    listen_fd_.reset();
}

void Control::on_accept() {
    // A bounded batch per wake-up: a flood of connections must not starve the loop.
    for (int i = 0; i < 64; ++i) {
        int fd = os::accept_client(listen_fd_.get());
        if (fd == -EAGAIN || fd == -EWOULDBLOCK) return;
        if (fd == -ECONNABORTED) continue;
        if ((fd == -EMFILE || fd == -ENFILE) && spare_) {
            int refused = refuse_one();
            if (refused == -EAGAIN) return;
            if (refused >= 0) {
                warn_accept(fd);
                continue;
            }
            fd = refused;
        }
        if (fd < 0) {
            // Still failing (no spare, or another error: ENOMEM, ENOBUFS):
            // the listener rests a little instead of waking the loop at once.
            warn_accept(fd);
            listen_poll_->stop();
            resume_->start(100);
            return;
        }
        add(fd, false);
    }
}

std::uint64_t Control::add(int fd, bool busy) {
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = os::UniqueFd(fd);
    c->busy = busy;
    // Who is asking, for join/leave: the kernel's word, not the client's.
    if (auto cred = os::peer_cred(fd)) c->peer = *cred;
    std::uint64_t id = c->id;
    c->poll = std::make_unique<uv::Poll>(loop_, fd, [this, id](int ev) { on_io(id, ev); });
    c->poll->start(uv::Poll::Readable);
    conns_[id] = std::move(c);
    return id;
}

int Control::fd_of(std::uint64_t conn) const {
    auto it = conns_.find(conn);
    return it == conns_.end() ? -1 : it->second->fd.get();
}

std::uint64_t Control::adopt(os::UniqueFd fd) {
    return add(fd.release(), true);
}

int Control::refuse_one() {
    spare_.reset();
    int fd = os::accept_client(listen_fd_.get());
    // Closed unread: the client sees EOF, and the listener is no longer
    // readable for this one.
    if (fd >= 0) os::UniqueFd(fd).reset();
    spare_ = os::open_dev_null();
    return fd >= 0 ? 0 : fd;
}

void Control::warn_accept(int err) {
    ++unreported_;
    auto now = os::monotonic_now();
    if (last_warning_ && now - *last_warning_ < kWarnEvery) return;
    std::string n =
        std::to_string(unreported_) + (unreported_ > 1 ? " connections" : " connection");
    std::string since = last_warning_ ? " since the last warning" : "";
    if (err == -EMFILE || err == -ENFILE)
        warn_("control socket: out of file descriptors (" + std::string(std::strerror(-err)) +
              "): " + n + " closed at once" + since + "; raise RLIMIT_NOFILE");
    else
        warn_("control socket: accept: " + std::string(std::strerror(-err)) + ": " + n + " failed" +
              since + "; listening again in 100 ms");
    unreported_ = 0;
    last_warning_ = now;
}

void Control::on_io(std::uint64_t id, int events) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn &c = *it->second;
    // Writing first frees room in OUT before new requests add to it.
    if (events & uv::Poll::Writable) {
        while (!c.out.empty()) {
            ssize_t n = os::send_some(c.fd.get(), c.out.data(), c.out.size());
            if (n < 0) {
                if (n == -EAGAIN) break;
                drop(id);
                return;
            }
            c.out.erase(0, static_cast<std::size_t>(n));
        }
        if (c.out.empty() && c.closing) {
            drop(id);
            return;
        }
    }
    if (events & uv::Poll::Readable) {
        char buf[16384];
        std::size_t ignored = 0;
        for (;;) {
            ssize_t n = os::read_some(c.fd.get(), buf, sizeof buf);
            if (n == -EAGAIN) break;
            if (n == 0) {
                // End of its requests, not of the connection: a client that
                // sends and then shuts its writing side (`nc -N`, many HTTP-style
                // clients) gets its answers before chipd closes. One that is
                // gone entirely is dropped at the first answer it cannot take.
                c.eof = true;
                break;
            }
            if (n < 0) {
                drop(id);
                return;
            }
            // After its last request, what a client sends is read and ignored.
            if (c.last) {
                ignored += static_cast<std::size_t>(n);
                if (ignored > kMaxRequest) break;
                continue;
            }
            c.in.append(buf, static_cast<std::size_t>(n));
            // Enough for a whole request or to tell an oversized one; the rest
            // waits in the socket, so that a flooding client gets one share
            // of a loop turn like any other.
            if (c.in.size() > kMaxRequest) break;
        }
        process_lines(c);
        // Gone entirely while its request waits for an answer or its event
        // stream is quiet: once at EOF the socket is no longer watched, so
        // nothing else would free it until an answer or an event is due,
        // which may be never (a wait without timeout, a stopped subtree).
        // Lines it sent after that request are still carried out when the
        // answer comes, as for a client that only shut its writing side.
        if (conns_.count(id) && c.eof && c.busy && c.in.find('\n') == std::string::npos &&
            os::peer_closed(c.fd.get())) {
            drop(id);
            return;
        }
    }
    if (conns_.count(id)) watch(c);
}

void Control::process_lines(Conn &c) {
    std::uint64_t id = c.id;
    while (!c.busy && !c.closing) {
        auto nl = c.in.find('\n');
        if (nl == std::string::npos ? c.in.size() > kMaxRequest : nl > kMaxRequest) {
            c.in.clear();
            c.closing = true;
            send(c, handler_.on_oversized());
            return;
        }
        if (nl == std::string::npos) {
            if (c.eof && !c.busy) {
                // Every complete line is answered: nothing more will come.
                c.closing = true;
                if (c.out.empty()) drop(id);
            }
            return;
        }
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        // A blank line (spaces, tabs, a CR) is no request and gets no answer.
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto reply = handler_.on_request(id, c.peer, line);
        // The handler may have answered a deferred request and so on: C may be gone.
        if (!conns_.count(id)) return;
        // One request in flight: a deferred one holds the later ones back.
        if (reply.last || !reply.line) c.busy = true;
        if (reply.last) {
            c.last = true;
            c.in.clear();
        }
        if (reply.line) send(c, *reply.line);
        if (!conns_.count(id)) return;
    }
}

void Control::send(Conn &c, std::string_view line) {
    c.out.append(line);
    c.out += '\n';
    // Most answers fit the socket buffer at once: no wait for a Writable turn.
    while (!c.out.empty()) {
        ssize_t n = os::send_some(c.fd.get(), c.out.data(), c.out.size());
        if (n <= 0) break;
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.out.size() > kMaxQueuedOutput) {
        // A client that does not read its responses is dropped, not waited for.
        c.closing = true;
        c.out.clear();
    }
    if (c.out.empty() && c.closing) {
        drop(c.id);
        return;
    }
    watch(c);
}

// Writable only while something waits to be sent: a poll that always asks for
// it would wake the loop at once, turn after turn.
void Control::watch(Conn &c) {
    // After EOF the socket stays readable (it reads 0): not asked for again.
    int events = (c.eof ? 0 : uv::Poll::Readable) | (c.out.empty() ? 0 : uv::Poll::Writable);
    if (events)
        c.poll->start(events);
    else
        c.poll->stop();
}

void Control::push(std::uint64_t conn, std::string_view line) {
    auto it = conns_.find(conn);
    if (it == conns_.end() || it->second->closing) return;
    Conn &c = *it->second;
    c.out.append(line);
    c.out += '\n';
    if (c.out.size() > kMaxQueuedOutput) {
        // A subscriber that does not read is dropped, not waited for.
        c.out.clear();
        warn_("event stream: a subscriber left 8 MiB unread: disconnected");
        drop(conn);
        return;
    }
    if (!c.pushed) {
        c.pushed = true;
        pushed_.push_back(conn);
    }
}

void Control::flush() {
    // One send per connection per turn, however many lines it was pushed.
    auto ids = std::move(pushed_);
    pushed_.clear();
    for (std::uint64_t id : ids) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        Conn &c = *it->second;
        c.pushed = false;
        if (write_out(c)) watch(c);
    }
}

bool Control::write_out(Conn &c) {
    while (!c.out.empty()) {
        ssize_t n = os::send_some(c.fd.get(), c.out.data(), c.out.size());
        if (n == -EAGAIN) break;
        if (n <= 0) {
            drop(c.id);
            return false;
        }
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    return true;
}

void Control::respond(std::uint64_t conn, std::string_view line) {
    auto it = conns_.find(conn);
    if (it == conns_.end()) return;
    Conn &c = *it->second;
    c.busy = false;
    send(c, line);
    if (auto again = conns_.find(conn); again != conns_.end()) process_lines(*again->second);
}

void Control::drop(std::uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    // Possibly from its own callback: freed after this turn.
    it->second->poll->stop();
    dropped_.push_back(std::move(it->second));
    conns_.erase(it);
    handler_.on_closed(id);
}

void Control::after_turn() {
    dropped_.clear();
}

}  // namespace chip::daemon
