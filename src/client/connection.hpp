// A connection to chipd's control socket speaking the newline-delimited JSON
// protocol (README.md, "Protocol"). Shared by libchip and chipctl; chipd
// itself never uses it. Throws nothing: failures are Results.
//
// Every call has a deadline, a point on os::monotonic_now()'s clock covering
// all it does (connecting, sending, receiving; the time left is computed
// afresh before each wait), so that a chipd that is stopped (SIGSTOP) or hung
// makes the call fail with ETIMEDOUT instead of blocking for ever. A call
// without one is bounded by kDefaultTimeout from its start (libchip's calls);
// nullopt is no limit (event streams, after their first answer).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::client {

// A point on os::monotonic_now()'s clock; nullopt: no limit.
using Deadline = std::optional<std::chrono::nanoseconds>;

// The bound of a call made without a deadline.
inline constexpr std::chrono::seconds kDefaultTimeout{30};

// The deadline TIMEOUT from now.
Deadline deadline_in(std::chrono::nanoseconds timeout);

class Connection {
public:
    Connection() = default;
    Connection(Connection &&other) noexcept = default;
    Connection &operator=(Connection &&other) noexcept = default;
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    ~Connection() = default;

    // Connects to the socket at PATH by DEADLINE, after checking its folder
    // when it is the user's runtime folder or /run/chip
    // (os/private_folder.hpp). Error codes: ENOENT (no socket), ECONNREFUSED
    // (nobody listening), EACCES, EPERM (an untrusted runtime folder),
    // ETIMEDOUT (its listen queue stayed full), ...
    static Result<Connection> open(const std::string &path, Deadline deadline);
    static Result<Connection> open(const std::string &path) {
        return open(path, deadline_in(kDefaultTimeout));
    }

    // Sends one request and waits for its response line, all by DEADLINE. A
    // transport failure is an Error (EPIPE, ECONNRESET, EPROTO for a malformed
    // response, ETIMEDOUT), after which the connection is closed (later
    // requests: ENOTCONN); an {"ok": false} response is returned as a value,
    // for the caller to read.
    Result<nlohmann::json> request(const nlohmann::json &req, Deadline deadline);
    Result<nlohmann::json> request(const nlohmann::json &req) {
        return request(req, deadline_in(kDefaultTimeout));
    }

    // The next line chipd sends unasked (an event stream), without its
    // newline; nullopt when chipd closed the connection after its last line.
    // ETIMEDOUT when none came by DEADLINE.
    Result<std::optional<std::string>> read_line(Deadline deadline = std::nullopt);

    const std::string &path() const { return path_; }
    bool is_open() const { return static_cast<bool>(fd_); }

private:
    // request() without closing the connection on failure.
    Result<nlohmann::json> exchange(const nlohmann::json &req, Deadline deadline);
    // The next line from the socket (nullopt at EOF), by DEADLINE.
    Result<std::optional<std::string>> next_line(Deadline deadline);

    os::UniqueFd fd_;  // non-blocking: every wait is a poll with the time left
    std::string path_;
    std::string buf_;  // bytes read past the last response line
};

// Maps a response's "errno" name ("ENOENT") to its positive value; EIO when
// unknown or missing.
int errno_from_name(const std::string &name);

}  // namespace chip::client
