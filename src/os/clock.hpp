// Clock reads for chipd: the monotonic clock that deadlines and the core's
// time are measured on, and the wall clock that log lines are stamped with.
// Only reads: formatting a time is its users' business.
#pragma once

#include <chrono>

namespace chip::os {

// CLOCK_MONOTONIC (the clock of libuv's uv_hrtime), origin arbitrary.
std::chrono::nanoseconds monotonic_now();
// The wall clock (CLOCK_REALTIME).
std::chrono::system_clock::time_point wall_now();

}  // namespace chip::os
