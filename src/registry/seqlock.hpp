// The read side of the regions' seqlock (include/chip/registry.h, "Reader
// protocol"), shared by the local registry's reader and the cluster view's.
// Internal to src/registry.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>

#include "os/clock.hpp"
#include "registry/layout.hpp"

namespace chip::registry {

// Retry budget: spin briefly (a write section lasts well under a microsecond),
// then yield so a writer preempted on our CPU can finish, then sleep 50 us at a
// time (yielding readers can starve a writer on a busy machine), for at most
// 250 ms of CLOCK_MONOTONIC in all: then EAGAIN, a chipd stopped or killed
// inside a write.
inline constexpr int kSpinAttempts = 64;
inline constexpr int kYieldAttempts = 1024;
inline constexpr std::int64_t kBudgetNs = 250 * 1000 * 1000;
inline constexpr std::chrono::microseconds kNap{50};

inline void backoff(int attempt) {
    if (attempt < kSpinAttempts) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    } else if (attempt < kYieldAttempts) {
        os::yield_cpu();
    } else {
        os::sleep_for(kNap);
    }
}

// The seqlock's read side (Boehm's pattern): acquire-load seq, relaxed loads
// of the payload, an acquire fence, a relaxed reload of seq. If seq did not
// change (and is even), no write overlapped the payload loads, so the copy is
// a consistent snapshot. The payload loads are atomic (relaxed) so that a
// torn read is merely a stale value we discard, not undefined behaviour.
template <typename Body>
ssize_t read_consistent(const std::uint64_t &seq, Body body) {
    std::int64_t give_up = 0;  // read the clock only once spinning did not do
    for (int attempt = 0;; ++attempt) {
        if (attempt == kSpinAttempts) give_up = os::monotonic_now().count() + kBudgetNs;
        if (attempt > kSpinAttempts && (attempt & 15) == 0 && os::monotonic_now().count() > give_up)
            return -EAGAIN;
        std::uint64_t s1 = load_acquire(seq);
        if (s1 & 1) {
            backoff(attempt);
            continue;
        }
        bool bad = false;
        ssize_t n = body(&bad);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (load(seq) != s1) {
            backoff(attempt);
            continue;
        }
        // A stable snapshot with broken links: not a torn read but a corrupt region.
        return bad ? -EIO : n;
    }
}

}  // namespace chip::registry
