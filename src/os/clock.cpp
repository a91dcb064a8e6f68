#include "os/clock.hpp"

#include <time.h>

namespace chip::os {

std::chrono::nanoseconds monotonic_now() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

std::chrono::system_clock::time_point wall_now() {
    return std::chrono::system_clock::now();
}

}  // namespace chip::os
