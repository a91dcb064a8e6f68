#include "os/clock.hpp"

#include <sched.h>
#include <time.h>

#include <cerrno>

namespace chip::os {

std::chrono::nanoseconds monotonic_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

std::chrono::system_clock::time_point wall_now() {
    return std::chrono::system_clock::now();
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
