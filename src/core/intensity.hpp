// Restart intensity: at most max_restarts restarts within any period.
// OTP's rule, counted with timestamps: a restart at time t is allowed when,
// counting it, no more than max_restarts restarts fall within (t - period, t].
#pragma once

#include <cstddef>
#include <deque>
#include <vector>

#include "core/spec.hpp"

namespace chip::core {

using Time = std::chrono::nanoseconds;  // a monotonic clock reading, origin arbitrary

class Intensity {
public:
    Intensity(unsigned max_restarts, Duration period) : max_(max_restarts), period_(period) {}

    // Records a restart at NOW. Returns false when it would exceed the limit
    // (the supervisor must give up); the restart is then not kept.
    bool record(Time now) {
        while (!times_.empty() && now - times_.front() >= period_) times_.pop_front();
        if (times_.size() + 1 > max_) return false;
        times_.push_back(now);
        return true;
    }
    // Restarts within the period ending at the last record().
    std::size_t count() const { return times_.size(); }
    void reset() { times_.clear(); }

    // New limits from now on (a redefined supervisor); the history is kept.
    void set_limits(unsigned max_restarts, Duration period) {
        max_ = max_restarts;
        period_ = period;
    }
    // The recorded restart times, oldest first, and their restoration (a snapshot).
    std::vector<Time> history() const { return {times_.begin(), times_.end()}; }
    void restore(const std::vector<Time> &times) { times_.assign(times.begin(), times.end()); }

private:
    unsigned max_;
    Duration period_;
    std::deque<Time> times_;
};

}  // namespace chip::core
