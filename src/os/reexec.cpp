#include "os/reexec.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/search_path.hpp"
#include "os/clock.hpp"
#include "os/file.hpp"
#include "os/process.hpp"

extern char **environ;

namespace chip::os {

namespace {

std::string self_exe() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

std::string program_path(const char *argv0) {
    std::string a = argv0 ? argv0 : "";
    if (a.find('/') != std::string::npos) {
        if (a[0] == '/') return a;
        std::string cwd = current_dir();
        if (!cwd.empty()) return cwd + "/" + a;
        return self_exe();
    }
    if (!a.empty()) {
        const char *p = std::getenv("PATH");
        for (const auto &cand :
             search_candidates(p && *p ? p : "/usr/local/bin:/usr/bin:/bin", a)) {
            struct stat st {};
            if (::stat(cand.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
                ::access(cand.c_str(), X_OK) != 0)
                continue;
            if (cand[0] == '/') return cand;
            std::string cwd = current_dir();
            return cwd.empty() ? self_exe() : cwd + "/" + cand;
        }
    }
    return self_exe();
}

RunOutcome run_program(const std::string &path, const std::vector<std::string> &args,
                       std::chrono::milliseconds timeout, std::size_t limit) {
    RunOutcome out;
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int p[2];
    if (null < 0 || ::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        out.spawn_error = errno;
        if (null >= 0) ::close(null);
        return out;
    }
    UniqueFd null_fd(null), rd(p[0]), wr(p[1]);
    std::vector<char *> argv;
    argv.push_back(const_cast<char *>(path.c_str()));
    for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    const char *cand = path.c_str();
    SpawnPlan plan;
    plan.candidates = &cand;
    plan.candidate_count = 1;
    plan.argv = argv.data();
    plan.envp = environ;
    plan.fd_stdin = null_fd.get();
    plan.fd_stdout = wr.get();
    plan.fd_stderr = wr.get();
    SpawnResult r = spawn(plan);
    wr.reset();
    if (!r) {
        out.spawn_error = r.error;
        return out;
    }
    // Read until EOF or the deadline, the clock read afresh each round.
    auto deadline = monotonic_now() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
    char buf[1024];
    for (;;) {
        auto left = deadline - monotonic_now();
        if (left.count() <= 0) {
            out.timed_out = true;
            break;
        }
        struct pollfd pfd {
            rd.get(), POLLIN, 0
        };
        int ms = static_cast<int>(
            std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
        int n = ::poll(&pfd, 1, ms);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        ssize_t got = ::read(rd.get(), buf, sizeof buf);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got <= 0) break;
        std::size_t room = limit > out.output.size() ? limit - out.output.size() : 0;
        out.output.append(buf, std::min(room, static_cast<std::size_t>(got)));
    }
    // A program that closed its output but lives on, or one past its
    // deadline, is killed: the answer must come now.
    if (out.timed_out) ::kill(-r.pid, SIGKILL);  // its process group: it leads one
    int status = 0;
    for (;;) {
        pid_t w = ::waitpid(r.pid, &status, out.timed_out ? 0 : WNOHANG);
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) {
            // Still running after its output ended: up to the deadline more.
            auto left = deadline - monotonic_now();
            if (left.count() <= 0) {
                out.timed_out = true;
                ::kill(-r.pid, SIGKILL);  // its process group: it leads one
                continue;
            }
            struct timespec ts {
                0, 1000000
            };
            ::nanosleep(&ts, nullptr);
            continue;
        }
        break;
    }
    if (!out.timed_out) {
        auto how = decode_wait_status(status);
        out.exited = !how.signaled;
        out.status = how.value;
    }
    return out;
}

Result<UniqueFd> memfd_holding(std::string_view data) {
    int fd = static_cast<int>(::syscall(SYS_memfd_create, "chipd-handoff", MFD_ALLOW_SEALING));
    if (fd < 0) return make_error(errno, std::string("memfd_create: ") + std::strerror(errno));
    UniqueFd owned(fd);
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return make_error(n < 0 ? errno : EIO,
                              std::string("writing the hand-off: ") + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    (void)::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return owned;
}

Result<std::string> read_whole(int fd, std::size_t limit) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return make_error(errno, std::strerror(errno));
    std::string out;
    if (st.st_size > 0)
        out.reserve(std::min<std::size_t>(limit, static_cast<std::size_t>(st.st_size)));
    char buf[64 * 1024];
    off_t at = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(errno, std::strerror(errno));
        if (n == 0) break;
        if (out.size() + static_cast<std::size_t>(n) > limit)
            return make_error(E2BIG, "more than " + std::to_string(limit) + " bytes");
        out.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
    return out;
}

Result<void> set_cloexec(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0)
        return make_error(errno, "fd " + std::to_string(fd) + ": " + std::strerror(errno));
    int next = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    if (next != flags && ::fcntl(fd, F_SETFD, next) != 0)
        return make_error(errno, "fd " + std::to_string(fd) + ": " + std::strerror(errno));
    return {};
}

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) >= 0;
}

void close_fds_except(std::vector<int> keep) {
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int k : keep) {
        if (k < static_cast<int>(from)) continue;
        if (static_cast<unsigned>(k) > from)
            (void)::syscall(SYS_close_range, from, static_cast<unsigned>(k) - 1, 0u);
        from = static_cast<unsigned>(k) + 1;
    }
    (void)::syscall(SYS_close_range, from, ~0u, 0u);
}

std::size_t open_fd_count() {
    DIR *d = ::opendir("/proc/self/fd");
    if (!d) return 0;
    std::size_t n = 0;
    while (struct dirent *e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n > 0 ? n - 1 : 0;  // the folder's own fd
}

std::uint64_t signal_mask() {
    sigset_t set;
    sigemptyset(&set);
    ::sigprocmask(SIG_SETMASK, nullptr, &set);
    std::uint64_t out = 0;
    for (int s = 1; s <= 64; ++s)
        if (sigismember(&set, s) == 1) out |= std::uint64_t{1} << (s - 1);
    return out;
}

void set_signal_mask(std::uint64_t mask) {
    sigset_t set;
    sigemptyset(&set);
    for (int s = 1; s <= 64; ++s)
        if (mask & (std::uint64_t{1} << (s - 1))) sigaddset(&set, s);
    ::sigprocmask(SIG_SETMASK, &set, nullptr);
}

std::uint64_t block_all_signals() {
    std::uint64_t before = signal_mask();
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    return before;
}

int exec_program(const std::string &path, const std::vector<std::string> &argv) {
    std::vector<char *> args;
    for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    ::execve(path.c_str(), args.data(), environ);
    return errno;
}

}  // namespace chip::os
