// The clock and sleeping, for the code outside src/os and src/uv: the
// monotonic clock that deadlines are measured on, the wall clock that log lines
// are stamped with, sleeps, yielding the CPU. (The core is given the time.)
#pragma once

#include <chrono>

namespace chip::os {

// CLOCK_MONOTONIC (the clock of libuv's uv_hrtime), origin arbitrary.
std::chrono::nanoseconds monotonic_now();
// The wall clock (CLOCK_REALTIME).
std::chrono::system_clock::time_point wall_now();
// Sleeps for D (nanosleep(2), resumed after a signal handler ran).
void sleep_for(std::chrono::nanoseconds d);
// sched_yield(2): lets another thread or process run on this CPU.
void yield_cpu();

}  // namespace chip::os
