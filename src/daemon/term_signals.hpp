// What a SIGTERM or SIGINT means, given the ones before it.
//
// The first begins the shutdown. A container runtime or a process-group kill
// (`kill -TERM -PGID` from a shell that is itself in the group, systemd's
// KillMode=mixed) often delivers two at once; a second one within kGrace of
// the first is that same request and is ignored. Any later one is an operator
// insisting: it hurries the shutdown (SIGKILL to what is left).
//
// Pure: the caller passes the monotonic time of each signal.
#pragma once

#include <chrono>
#include <optional>

namespace chip::daemon {

class TermSignals {
public:
    enum class Action { Begin, Ignore, Hurry };
    static constexpr std::chrono::nanoseconds kGrace = std::chrono::seconds(1);

    // SHUTTING_DOWN: a shutdown is already under way (begun by a command).
    Action on_signal(std::chrono::nanoseconds now, bool shutting_down) {
        if (!first_) {
            first_ = now;
            return shutting_down ? Action::Hurry : Action::Begin;
        }
        return now - *first_ < kGrace ? Action::Ignore : Action::Hurry;
    }

private:
    std::optional<std::chrono::nanoseconds> first_;
};

}  // namespace chip::daemon
