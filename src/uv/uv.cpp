#include "uv/uv.hpp"

#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace chip::uv {

namespace {

template <typename H>
void close_and_free(H *h) {
    h->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t *>(h),
             [](uv_handle_t *raw) { delete reinterpret_cast<H *>(raw); });
}

void check(int rc, const char *what) {
    if (rc < 0) {
        // Only start-up failures (out of memory, bad fd) can get here.
        std::fprintf(stderr, "chipd: fatal: %s: %s\n", what, uv_strerror(rc));
        std::abort();
    }
}

template <typename F>
void guarded(F &&f) noexcept {
    try {
        f();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "chipd: error: in event handler: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "chipd: error: in event handler: unknown exception\n");
    }
}

}  // namespace

struct Trampolines {
    static void signal(uv_signal_t *h, int) noexcept {
        if (auto *self = static_cast<Signal *>(h->data)) guarded([&] { self->cb_(); });
    }
    static void timer(uv_timer_t *h) noexcept {
        if (auto *self = static_cast<Timer *>(h->data)) guarded([&] { self->cb_(); });
    }
    static void check(uv_check_t *h) noexcept {
        if (auto *self = static_cast<Check *>(h->data)) guarded([&] { self->cb_(); });
    }
    static void poll(uv_poll_t *h, int status, int events) noexcept {
        auto *self = static_cast<Poll *>(h->data);
        if (!self) return;
        int ev = 0;
        if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT))) ev |= Poll::Readable;
        if (events & UV_WRITABLE) ev |= Poll::Writable;
        guarded([&] { self->cb_(ev); });
    }
};

Loop::Loop() : loop_(new uv_loop_t) {
    check(uv_loop_init(loop_), "uv_loop_init");
}

Loop::~Loop() {
    // Let pending close callbacks free their handles. The first run only
    // clears a stop() that was never consumed by run() (chipd can be done
    // before its loop ever runs); the second runs the callbacks.
    uv_run(loop_, UV_RUN_NOWAIT);
    uv_run(loop_, UV_RUN_NOWAIT);
    if (uv_loop_close(loop_) == 0) delete loop_;
}

void Loop::run() {
    uv_run(loop_, UV_RUN_DEFAULT);
}
void Loop::stop() {
    uv_stop(loop_);
}
std::uint64_t Loop::now_ns() {
    return uv_hrtime();
}

Signal::Signal(Loop &loop, int signum, std::function<void()> cb)
    : h_(new uv_signal_t), cb_(std::move(cb)) {
    check(uv_signal_init(loop.raw(), h_), "uv_signal_init");
    h_->data = this;
    check(uv_signal_start(h_, Trampolines::signal, signum), "uv_signal_start");
}

Signal::~Signal() {
    close_and_free(h_);
}

Timer::Timer(Loop &loop, std::function<void()> cb) : h_(new uv_timer_t), cb_(std::move(cb)) {
    check(uv_timer_init(loop.raw(), h_), "uv_timer_init");
    h_->data = this;
}

Timer::~Timer() {
    close_and_free(h_);
}

void Timer::start(std::uint64_t timeout_ms) {
    uv_timer_start(h_, Trampolines::timer, timeout_ms, 0);
}
void Timer::stop() {
    uv_timer_stop(h_);
}

Poll::Poll(Loop &loop, int fd, std::function<void(int)> cb)
    : h_(new uv_poll_t), fd_(fd), cb_(std::move(cb)) {
    check(uv_poll_init(loop.raw(), h_, fd), "uv_poll_init");
    h_->data = this;
}

Poll::~Poll() {
    close_and_free(h_);
}

void Poll::start(int events) {
    int ev = 0;
    if (events & Readable) ev |= UV_READABLE;
    if (events & Writable) ev |= UV_WRITABLE;
    uv_poll_start(h_, ev, Trampolines::poll);
}

void Poll::stop() {
    uv_poll_stop(h_);
}

Check::Check(Loop &loop, std::function<void()> cb) : h_(new uv_check_t), cb_(std::move(cb)) {
    check(uv_check_init(loop.raw(), h_), "uv_check_init");
    h_->data = this;
    check(uv_check_start(h_, Trampolines::check), "uv_check_start");
}

Check::~Check() {
    close_and_free(h_);
}

}  // namespace chip::uv
