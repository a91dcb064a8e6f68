// The clock and sleeping, for the code outside src/os and src/uv: the
// monotonic clock, sleeps, yielding the CPU. (chipd's loop reads the clock
// through src/uv; the core is given the time.)
#pragma once

#include <chrono>
#include <cstdint>

namespace chip::os {

// CLOCK_MONOTONIC in nanoseconds.
std::int64_t monotonic_ns();
// Sleeps for D (nanosleep(2), resumed after a signal handler ran).
void sleep_for(std::chrono::nanoseconds d);
// sched_yield(2): lets another thread or process run on this CPU.
void yield_cpu();

}  // namespace chip::os
