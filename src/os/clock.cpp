#include "os/clock.hpp"

#include <sched.h>
#include <time.h>

#include <cerrno>

namespace chip::os {

std::int64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void sleep_for(std::chrono::nanoseconds d) {
    if (d <= std::chrono::nanoseconds::zero()) return;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
    timespec left{static_cast<time_t>(secs.count()), static_cast<long>((d - secs).count())};
    while (::nanosleep(&left, &left) < 0 && errno == EINTR) {
    }
}

void yield_cpu() {
    ::sched_yield();
}

}  // namespace chip::os
