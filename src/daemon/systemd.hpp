// chipd's side of systemd's notification protocol (README.md, "Running under
// systemd"): READY=1 once the whole tree is up, STATUS= with a one-line
// summary when it changes (recomputed at most once per loop turn, with the
// restarts of the last minute), STOPPING=1 once when a shutdown begins, and
// WATCHDOG=1 every WATCHDOG_USEC/2 from a loop timer.
//
// Datagrams never block: one that the socket refuses is lost. Without
// NOTIFY_SOCKET everything here is a no-op. It does not handle the workers'
// own notify sockets (the launcher does) nor decide when a shutdown begins.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/tree.hpp"
#include "handoff/state.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

// The STATUS= text: "N running, N starting, N stopping, N failed; N restarts
// in the last minute".
std::string status_line(const core::Tree::Summary &s, std::size_t restarts);

class Systemd {
public:
    // What systemd told chipd through its environment.
    struct Env {
        std::optional<std::string> notify_socket;  // NOTIFY_SOCKET
        std::optional<std::string> watchdog_usec;  // WATCHDOG_USEC
        std::optional<std::string> watchdog_pid;   // WATCHDOG_PID
    };
    using Summary = std::function<core::Tree::Summary()>;
    using Warn = std::function<void(const std::string &)>;

    // SUMMARY counts the tree's workers when STATUS= is recomputed. OWN_PID
    // is chipd's, to tell whether WATCHDOG_PID names it.
    Systemd(uv::Loop &loop, Env env, pid_t own_pid, Summary summary, Warn warn);
    Systemd(const Systemd &) = delete;
    Systemd &operator=(const Systemd &) = delete;

    // An event of the core: any may change STATUS=; a restart counts in it.
    void on_event(const core::Event &e, core::Time now);
    // At the end of a loop turn: READY=1 the first time TREE_UP holds (unless
    // stopping), STATUS= when something changed it.
    void after_turn(bool tree_up, core::Time now);
    // STOPPING=1, once.
    void stopping();
    // A reload begins (RELOADING=1 with the monotonic time, as systemd's
    // notify-reload protocol asks) / is over (READY=1 again).
    void reloading(core::Time now);
    void reloaded();
    // The hand-off (README.md, "Upgrading chipd in place"): whether READY=1
    // was said, and the restarts STATUS= counts, taken over by the next chipd.
    handoff::Systemd handoff_state() const;
    void adopt(const handoff::Systemd &s);

private:
    void send(const std::string &msg);
    void update_status(core::Time now);
    void start_watchdog(const Env &env, pid_t own_pid);

    std::string socket_;  // empty: not under systemd
    Summary summary_;
    Warn warn_;
    bool told_ready_ = false;
    bool told_stopping_ = false;
    bool dirty_ = true;
    std::string last_status_;
    std::deque<core::Time> recent_restarts_;  // those of the last minute, oldest first
    // A restart leaving the last minute changes STATUS= with no event.
    std::unique_ptr<uv::Timer> status_timer_;
    std::unique_ptr<uv::Timer> watchdog_;
    std::uint64_t watchdog_ms_ = 0;
};

}  // namespace chip::daemon
