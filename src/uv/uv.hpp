// Thin RAII over the libuv handles chipd uses: the loop, signals, timers and
// fd polls. Only this folder includes <uv.h>.
//
// libuv closes handles asynchronously, so each wrapper owns a heap handle that
// is freed by the close callback; destroying a wrapper stops its callbacks at
// once. Callbacks are std::function and run from noexcept trampolines: an
// exception escaping one is logged and dropped, never propagated into libuv.
#pragma once

#include <cstdint>
#include <functional>

struct uv_loop_s;
struct uv_signal_s;
struct uv_timer_s;
struct uv_poll_s;
struct uv_check_s;

namespace chip::uv {

class Loop {
public:
    Loop();
    ~Loop();
    Loop(const Loop &) = delete;
    Loop &operator=(const Loop &) = delete;

    // Runs until stop() or until nothing is left to watch.
    void run();
    void stop();
    // Monotonic nanoseconds (uv_hrtime).
    static std::uint64_t now_ns();
    uv_loop_s *raw() { return loop_; }

private:
    uv_loop_s *loop_;
};

class Signal {
public:
    Signal(Loop &loop, int signum, std::function<void()> cb);
    ~Signal();
    Signal(const Signal &) = delete;
    Signal &operator=(const Signal &) = delete;

private:
    uv_signal_s *h_;
    std::function<void()> cb_;
    friend struct Trampolines;
};

class Timer {
public:
    Timer(Loop &loop, std::function<void()> cb);
    ~Timer();
    Timer(const Timer &) = delete;
    Timer &operator=(const Timer &) = delete;

    // Fires once after TIMEOUT_MS (re-arming replaces the previous deadline).
    void start(std::uint64_t timeout_ms);
    void stop();

private:
    uv_timer_s *h_;
    std::function<void()> cb_;
    friend struct Trampolines;
};

class Poll {
public:
    enum : int { Readable = 1, Writable = 2 };
    // CB(events): Readable/Writable bits; errors and hang-ups come as Readable,
    // so that the read itself reports them.
    Poll(Loop &loop, int fd, std::function<void(int)> cb);
    ~Poll();
    Poll(const Poll &) = delete;
    Poll &operator=(const Poll &) = delete;

    void start(int events);
    void stop();
    int fd() const { return fd_; }

private:
    uv_poll_s *h_;
    int fd_;
    std::function<void(int)> cb_;
    friend struct Trampolines;
};

// Runs CB once per loop turn, after the I/O callbacks of that turn: the place
// for work batched over several events.
class Check {
public:
    Check(Loop &loop, std::function<void()> cb);
    ~Check();
    Check(const Check &) = delete;
    Check &operator=(const Check &) = delete;

private:
    uv_check_s *h_;
    std::function<void()> cb_;
    friend struct Trampolines;
};

}  // namespace chip::uv
