// A blocking connection to chipd's control socket speaking the newline-delimited
// JSON protocol (README.md, "Protocol"). Shared by libchip and chipctl; chipd
// itself never uses it. Throws nothing: failures are Results.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::client {

class Connection {
public:
    Connection() = default;
    Connection(Connection &&other) noexcept = default;
    Connection &operator=(Connection &&other) noexcept = default;
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    ~Connection() = default;

    // Connects to the socket at PATH, after checking its folder when it is
    // the user's runtime folder or /run/chip (os/private_folder.hpp). Error
    // codes: ENOENT (no socket), ECONNREFUSED (nobody listening), EACCES,
    // EPERM (an untrusted runtime folder), ...
    static Result<Connection> open(const std::string &path);

    // Sends one request and waits for its response line. A transport failure is
    // an Error (EPIPE, ECONNRESET, EPROTO for a malformed response); an
    // {"ok": false} response is returned as a value, for the caller to read.
    Result<nlohmann::json> request(const nlohmann::json &req);

    // The next line chipd sends unasked (an event stream), without its
    // newline; nullopt when chipd closed the connection after its last line.
    Result<std::optional<std::string>> read_line();

    const std::string &path() const { return path_; }
    bool is_open() const { return static_cast<bool>(fd_); }

private:
    os::UniqueFd fd_;
    std::string path_;
    std::string buf_;  // bytes read past the last response line
};

// Maps a response's "errno" name ("ENOENT") to its positive value; EIO when
// unknown or missing.
int errno_from_name(const std::string &name);

}  // namespace chip::client
