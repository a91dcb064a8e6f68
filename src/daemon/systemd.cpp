#include "daemon/systemd.hpp"

#include <algorithm>
#include <cstdlib>

#include "os/clock.hpp"
#include "os/socket.hpp"

namespace chip::daemon {

namespace {

constexpr core::Time kMinute = std::chrono::seconds(60);
constexpr std::size_t kMaxRecent = 100000;  // bounded memory under a restart storm

}  // namespace

std::string status_line(const core::Tree::Summary &s, std::size_t restarts) {
    return std::to_string(s.running) + " running, " + std::to_string(s.starting) + " starting, " +
           std::to_string(s.stopping) + " stopping, " + std::to_string(s.failed) + " failed; " +
           std::to_string(restarts) + (restarts == 1 ? " restart" : " restarts") +
           " in the last minute";
}

Systemd::Systemd(uv::Loop &loop, Env env, pid_t own_pid, Summary summary, Warn warn)
    : socket_(env.notify_socket.value_or("")),
      summary_(std::move(summary)),
      warn_(std::move(warn)) {
    if (socket_.empty()) return;
    // A timer callback runs before the loop polls: it updates STATUS= itself,
    // or the loop could block with the change unsent.
    status_timer_ = std::make_unique<uv::Timer>(loop, [this] {
        dirty_ = true;
        update_status(os::monotonic_now());
    });
    start_watchdog(env, own_pid);
    if (watchdog_ms_) {
        watchdog_ = std::make_unique<uv::Timer>(loop, [this] {
            send("WATCHDOG=1");
            watchdog_->start(watchdog_ms_);
        });
        watchdog_->start(watchdog_ms_);
    }
}

void Systemd::start_watchdog(const Env &env, pid_t own_pid) {
    if (!env.watchdog_usec) return;
    // WATCHDOG_PID names the process systemd watches; another one's is not ours
    // (e.g. a chipd started by a service's main process).
    if (env.watchdog_pid && std::strtol(env.watchdog_pid->c_str(), nullptr, 10) != own_pid) return;
    const char *usec = env.watchdog_usec->c_str();
    char *end = nullptr;
    unsigned long long us = std::strtoull(usec, &end, 10);
    if (end == usec || *end != '\0' || us == 0) {
        warn_(std::string("ignoring WATCHDOG_USEC=") + usec + ": not a positive integer");
        return;
    }
    // Half the period, as sd_watchdog_enabled(3) advises; the ping comes from
    // a loop timer, so a stuck loop stops it and systemd notices.
    watchdog_ms_ = std::max<unsigned long long>(us / 2000, 1);
}

void Systemd::send(const std::string &msg) {
    if (socket_.empty()) return;
    // Never blocks: a fresh non-blocking socket per datagram, so a socket that
    // refuses it (nobody listening, queue full) only loses the message.
    (void)os::send_datagram(socket_, msg);
}

void Systemd::on_event(const core::Event &e, core::Time now) {
    dirty_ = true;
    if (e.kind != core::Event::Kind::Restart || socket_.empty()) return;
    recent_restarts_.push_back(now);
    if (recent_restarts_.size() > kMaxRecent) recent_restarts_.pop_front();
}

void Systemd::after_turn(bool tree_up, core::Time now) {
    if (socket_.empty()) return;
    if (!told_ready_ && !told_stopping_ && tree_up) {
        told_ready_ = true;
        send("READY=1");
    }
    if (dirty_) update_status(now);
}

void Systemd::reloading(core::Time now) {
    if (told_stopping_) return;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(us));
}

void Systemd::reloaded() {
    if (!told_stopping_) send("READY=1");
}

void Systemd::stopping() {
    if (told_stopping_) return;
    told_stopping_ = true;
    send("STOPPING=1");
}

void Systemd::update_status(core::Time now) {
    dirty_ = false;
    while (!recent_restarts_.empty() && now - recent_restarts_.front() >= kMinute)
        recent_restarts_.pop_front();
    // The count changes when the oldest restart leaves the minute: look again then.
    if (!recent_restarts_.empty()) {
        auto left = recent_restarts_.front() + kMinute - now;
        status_timer_->start(static_cast<std::uint64_t>(left.count() / 1000000 + 1));
    }
    std::string line = status_line(summary_(), recent_restarts_.size());
    if (line == last_status_) return;
    last_status_ = line;
    send("STATUS=" + line);
}

handoff::Systemd Systemd::handoff_state() const {
    return handoff::Systemd{told_ready_, {recent_restarts_.begin(), recent_restarts_.end()}};
}

void Systemd::adopt(const handoff::Systemd &s) {
    told_ready_ = s.told_ready;
    recent_restarts_.assign(s.recent_restarts.begin(), s.recent_restarts.end());
    dirty_ = true;
}

}  // namespace chip::daemon
