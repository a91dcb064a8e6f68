// chipd's control socket as a transport (README.md, "Protocol"): it accepts
// connections on the listening socket, cuts each connection's input into
// newline-terminated request lines (at most 64 KiB: a longer one is answered
// once and the connection closed), queues each connection's output (a client
// that leaves more than 8 MiB unread is dropped, not waited for), and keeps
// one request per connection in flight: a request whose answer comes later
// (deferred) holds back the later requests of its own connection only.
//
// A connection may also carry lines nobody asked for (an event stream,
// README.md, "chipctl events"): push() queues them and flush() sends what is
// queued at the end of a loop turn, with the same 8 MiB limit.
//
// It knows nothing of operations: each line goes to a RequestHandler with the
// peer's credentials and the connection's id, and what comes back is sent.
//
// Out of file descriptors (EMFILE, ENFILE), a waiting connection would keep
// the listening socket readable and the loop spinning: a spare descriptor
// (/dev/null) is given up to accept it, it is closed at once (the client sees
// EOF) and the spare taken back. The warning says how many were refused, at
// most once every kWarnEvery.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "os/fd.hpp"
#include "os/socket.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

class RequestHandler {
public:
    struct Reply {
        std::optional<std::string> line;  // the response, without newline; none: deferred
        bool last = false;                // no later request of this connection is read
    };
    virtual ~RequestHandler() = default;
    // A request line of connection CONN (without its newline, never blank).
    // A deferred one is answered later with Control::respond.
    virtual Reply on_request(std::uint64_t conn, const os::PeerCred &peer,
                             std::string_view line) = 0;
    // The response to a request line over the limit; the connection is closed after it.
    virtual std::string on_oversized() = 0;
    // CONN is closed: its deferred request, if any, will not be answered.
    virtual void on_closed(std::uint64_t conn) = 0;
};

class Control {
public:
    static constexpr std::size_t kMaxRequest = 64 * 1024;
    static constexpr std::size_t kMaxQueuedOutput = 8 * 1024 * 1024;
    static constexpr std::chrono::seconds kWarnEvery{10};
    using Warn = std::function<void(const std::string &)>;

    // Serves LISTEN_FD (listening, non-blocking) on LOOP.
    Control(uv::Loop &loop, os::UniqueFd listen_fd, RequestHandler &handler, Warn warn);
    ~Control();
    Control(const Control &) = delete;
    Control &operator=(const Control &) = delete;

    // Sends the answer to CONN's deferred request, then reads its later
    // requests. A connection closed meanwhile is ignored.
    void respond(std::uint64_t conn, std::string_view line);
    // Queues LINE (without newline) on CONN, sent by the next flush(); a
    // connection with more than 8 MiB unsent is dropped. Unknown CONN: ignored.
    void push(std::uint64_t conn, std::string_view line);
    // Sends what push() queued, as far as each socket takes it without waiting.
    void flush();
    // The end of a loop turn: frees the connections closed during it.
    void after_turn();
    // Stops listening (chipd's exit); open connections stay until destruction.
    void stop_listening();

    // The hand-off (README.md, "Upgrading chipd in place"): the listening
    // socket, and connection CONN's socket (-1 when unknown).
    int listen_fd() const { return listen_fd_.get(); }
    int fd_of(std::uint64_t conn) const;
    // Takes over FD, a connection whose request is being answered (busy): its
    // id, to respond() to.
    std::uint64_t adopt(os::UniqueFd fd);

private:
    struct Conn {
        std::uint64_t id = 0;
        os::UniqueFd fd;
        std::unique_ptr<uv::Poll> poll;  // destroyed before fd is closed
        os::PeerCred peer;
        std::string in;
        std::string out;
        bool busy = false;     // a request is waiting for its answer
        bool closing = false;  // close once OUT is flushed; read nothing more
        bool last = false;     // takes no more requests: what it sends is discarded
        bool pushed = false;   // in pushed_
        bool eof = false;      // the client shut its writing side: answered, then closed
    };

    void on_accept();
    // A new connection on FD: its id.
    std::uint64_t add(int fd, bool busy);
    // Out of descriptors: gives up the spare one to take the next waiting
    // connection, closes it and takes the spare back. 0, or the accept's -errno.
    int refuse_one();
    // An accept failed with ERR (-errno) or a connection was refused: the
    // warning, at most once every kWarnEvery, with the count since the last.
    void warn_accept(int err);
    void on_io(std::uint64_t id, int events);
    void process_lines(Conn &c);
    void send(Conn &c, std::string_view line);
    // Sends from OUT until the socket is full; false when C was dropped.
    bool write_out(Conn &c);
    void watch(Conn &c);
    void drop(std::uint64_t id);

    uv::Loop &loop_;
    os::UniqueFd listen_fd_;
    std::unique_ptr<uv::Poll> listen_poll_;
    os::UniqueFd spare_;                 // given up to refuse a connection at EMFILE
    std::unique_ptr<uv::Timer> resume_;  // listens again after a pause
    std::uint64_t unreported_ = 0;       // failed accepts since the last warning
    std::optional<std::chrono::nanoseconds> last_warning_;
    RequestHandler &handler_;
    Warn warn_;
    std::map<std::uint64_t, std::unique_ptr<Conn>> conns_;
    std::vector<std::unique_ptr<Conn>> dropped_;
    std::vector<std::uint64_t> pushed_;  // connections with pushed lines to send
    std::uint64_t next_id_ = 1;
};

}  // namespace chip::daemon
