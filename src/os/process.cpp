#include "os/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "os/fd.hpp"

namespace chip::os {

namespace {

struct ChildArgs {
    const SpawnPlan *plan;
    int cgroup_procs;  // written "0" to join the cgroup, when not born in it
    sigset_t mask;     // the mask to exec with
    pid_t parent;
    const int *reset;  // signals whose disposition is not SIG_DFL
    int reset_count;
    volatile int err;         // written by the child on failure (shared memory: CLONE_VM)
    volatile SpawnStep step;  // the step under way, so the failed one
};

// The child of spawn(): runs on its own stack in chipd's memory (CLONE_VM) while
// chipd is suspended (CLONE_VFORK), so it may only make async-signal-safe calls
// and must not touch anything chipd relies on. Sanitizers are off: their
// runtimes assume one stack per thread and this is none of theirs.
__attribute__((no_sanitize("address", "undefined"))) int child_main(void *arg) {
    auto *a = static_cast<ChildArgs *>(arg);
    const SpawnPlan &p = *a->plan;
    // Handlers are chipd's (libuv's signal pipe): reset them, as exec would,
    // before unblocking signals, and undo ignored ones (SIGPIPE).
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int i = 0; i < a->reset_count; ++i) ::sigaction(a->reset[i], &dfl, nullptr);
    int e = 0;
    // First, so that whatever the child becomes is contained (README.md,
    // "Containment"); "0" is the writer, this child.
    a->step = SpawnStep::Cgroup;
    if (a->cgroup_procs >= 0 && ::write(a->cgroup_procs, "0", 1) < 0) {
        e = errno;
        goto fail;
    }
    a->step = SpawnStep::Setsid;
    if (::setsid() < 0) {
        e = errno;
        goto fail;
    }
    a->step = SpawnStep::Dup;
    if (p.fd_stdin >= 0 && ::dup2(p.fd_stdin, 0) < 0) {
        e = errno;
        goto fail;
    }
    if (p.fd_stdout >= 0 && ::dup2(p.fd_stdout, 1) < 0) {
        e = errno;
        goto fail;
    }
    if (p.fd_stderr >= 0 && ::dup2(p.fd_stderr, 2) < 0) {
        e = errno;
        goto fail;
    }
    if (p.set_ids) {
        a->step = SpawnStep::SetGroups;
        if (::setgroups(p.group_count, p.groups) < 0) {
            e = errno;
            goto fail;
        }
        a->step = SpawnStep::SetGid;
        if (::setgid(p.gid) < 0) {
            e = errno;
            goto fail;
        }
        a->step = SpawnStep::SetUid;
        if (::setuid(p.uid) < 0) {
            e = errno;
            goto fail;
        }
    }
    // After setuid: a change of credentials clears the parent-death signal.
    a->step = SpawnStep::DeathSignal;
    if (p.parent_death_signal) {
        ::prctl(PR_SET_PDEATHSIG, p.parent_death_signal);
        // chipd may have died before prctl: then nobody would send it.
        if (::getppid() != a->parent) {
            e = ESRCH;
            goto fail;
        }
    }
    // Workers get the soft fd limit chipd was given, as a program started from
    // a shell would: many use select() or close every fd up to the limit.
    // Best effort: a limit that cannot be set leaves chipd's.
    if (p.fd_soft_limit) {
        struct rlimit rl;
        if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && p.fd_soft_limit < rl.rlim_cur) {
            rl.rlim_cur = p.fd_soft_limit;
            (void)::setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    // As the worker's user: it must be allowed into its folder.
    a->step = SpawnStep::Chdir;
    if (p.cwd && ::chdir(p.cwd) < 0) {
        e = errno;
        goto fail;
    }
    ::sigprocmask(SIG_SETMASK, &a->mask, nullptr);
    a->step = SpawnStep::Exec;
    e = ENOENT;
    for (std::size_t i = 0; i < p.candidate_count; ++i) {
        ::execve(p.candidates[i], p.argv, p.envp);
        // Like execvp: keep the most telling error (EACCES over ENOENT).
        if (errno != ENOENT && errno != ENOTDIR) e = errno;
    }
fail:
    a->err = e ? e : EIO;
    ::_exit(127);
}

// The signals chipd handles or ignores, found once: chipd installs its
// handlers (libuv's) before it spawns anything and never changes them after.
// Resetting only those keeps ~60 system calls out of every spawn.
struct Dispositions {
    int list[NSIG];
    int count = 0;
    Dispositions() {
        for (int s = 1; s < NSIG; ++s) {
            if (s == SIGKILL || s == SIGSTOP) continue;
            struct sigaction old;
            if (::sigaction(s, nullptr, &old) == 0 && old.sa_handler != SIG_DFL) list[count++] = s;
        }
    }
};

// The child's stack. CLONE_VFORK suspends chipd until exec, so one suffices.
alignas(64) char g_child_stack[256 * 1024];

#if defined(__x86_64__)
// struct clone_args of clone3(2), up to its cgroup (CLONE_ARGS_SIZE_VER2).
struct CloneArgs {
    std::uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};
constexpr std::uint64_t kCloneIntoCgroup = 0x200000000ULL;
// Whether spawn() starts children in their cgroup with clone3: until the
// kernel says it has none, or probe_clone_into_cgroup() finds it unusable.
bool g_clone3 = true;
#endif

}  // namespace

#if defined(__x86_64__)
// clone3(ARGS, SIZE) whose child runs FN(ARG) on the stack ARGS gives it and
// exits with what FN returns; the parent gets the child's pid or -errno.
// glibc wraps clone3 only for itself, and a child that starts on a new stack
// cannot return through a C function: hence these few instructions.
extern "C" __attribute__((visibility("hidden"))) long chip_clone3_run(void *args, std::size_t size,
                                                                      int (*fn)(void *), void *arg);
asm(R"(
    .text
    .globl chip_clone3_run
    .hidden chip_clone3_run
    .type chip_clone3_run, @function
    .p2align 4
chip_clone3_run:
    mov %rdx, %r8
    mov %rcx, %r9
    mov $435, %eax
    syscall
    test %rax, %rax
    jnz 1f
    xor %ebp, %ebp
    mov %r9, %rdi
    call *%r8
    mov %eax, %edi
    mov $60, %eax
    syscall
    hlt
1:  ret
    .size chip_clone3_run, .-chip_clone3_run
)");
#endif

SpawnResult spawn(const SpawnPlan &plan) {
    ChildArgs args{};
    args.plan = &plan;
    args.parent = ::getpid();
    args.err = 0;
    args.step = SpawnStep::Setsid;
    static const Dispositions dispositions;
    args.reset = dispositions.list;
    args.reset_count = dispositions.count;
    sigemptyset(&args.mask);
    // Block every signal so that no handler of chipd runs in the child before it
    // has reset them; the child installs an empty mask right before exec.
    args.cgroup_procs = -1;
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = -1;
    int clone_errno = 0;
    bool cloned = false;
#if defined(__x86_64__)
    if (plan.cgroup >= 0 && g_clone3) {
        CloneArgs ca{};
        ca.flags = CLONE_VM | CLONE_VFORK | kCloneIntoCgroup;
        ca.exit_signal = SIGCHLD;
        ca.stack = reinterpret_cast<std::uintptr_t>(g_child_stack);
        ca.stack_size = sizeof g_child_stack;
        ca.cgroup = static_cast<std::uint64_t>(plan.cgroup);
        long r = chip_clone3_run(&ca, sizeof ca, child_main, &args);
        // No clone3 (before 5.3), or none that knows CLONE_INTO_CGROUP (5.7).
        if (r == -ENOSYS || r == -E2BIG || r == -EINVAL) {
            g_clone3 = false;
        } else {
            cloned = true;
            pid = r < 0 ? -1 : static_cast<pid_t>(r);
            clone_errno = r < 0 ? static_cast<int>(-r) : 0;
        }
    }
#endif
    UniqueFd procs;
    if (!cloned && plan.cgroup >= 0) {
        procs.reset(::openat(plan.cgroup, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!procs) {
            int e = errno;
            ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
            return {0, SpawnStep::Cgroup, e};
        }
        args.cgroup_procs = procs.get();
    }
    if (!cloned) {
        pid = ::clone(child_main, g_child_stack + sizeof g_child_stack,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
        clone_errno = errno;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) {
        // clone3 refuses a cgroup it may not enter, that is gone or that
        // holds controllers in its subtree.
        bool cgroup =
            cloned && (clone_errno == EACCES || clone_errno == EPERM || clone_errno == EBADF ||
                       clone_errno == ENOENT || clone_errno == ENODEV || clone_errno == EBUSY ||
                       clone_errno == EOPNOTSUPP);
        return {0, cgroup ? SpawnStep::Cgroup : SpawnStep::Clone, clone_errno};
    }
    if (args.err != 0) {
        // The child has _exit'ed already: reap it here, so that the reaper never
        // mistakes it for a worker that ran.
        int st;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return {0, args.step, args.err};
    }
    return {pid, SpawnStep::Clone, 0};
}

bool probe_clone_into_cgroup(int cgroup) {
#if defined(__x86_64__)
    // Without CLONE_VM: a copy of chipd that only _exits, as after fork().
    CloneArgs ca{};
    ca.flags = kCloneIntoCgroup;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = static_cast<std::uint64_t>(cgroup);
    long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) ::_exit(0);
    bool lives = false;
    if (pid > 0) {
        int st = 0;
        while (::waitpid(static_cast<pid_t>(pid), &st, 0) < 0 && errno == EINTR) {
        }
        lives = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    g_clone3 = lives;
    return lives;
#else
    (void)cgroup;
    return false;
#endif
}

ChildExit decode_wait_status(int status) {
    if (WIFSIGNALED(status)) return {true, WTERMSIG(status)};
    return {false, WEXITSTATUS(status)};
}

bool reap_children(const std::function<void(pid_t, ChildExit)> &fn, std::size_t max) {
    for (std::size_t reaped = 0; reaped < max;) {
        int st = 0;
        pid_t pid = ::waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            fn(pid, decode_wait_status(st));
            ++reaped;
            continue;
        }
        if (pid < 0 && errno == EINTR) continue;
        return false;  // 0: children left but none exited; ECHILD: none left
    }
    return true;
}

void kill_group(pid_t pgid, int sig) {
    if (pgid > 1) ::kill(-pgid, sig);
}

int kill_pid(pid_t pid, int sig) {
    return ::kill(pid, sig) < 0 ? -errno : 0;
}

void become_subreaper() {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

int pidfd_open(pid_t pid) {
    long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return -errno;
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
}

bool pidfd_alive(int pidfd) {
    struct pollfd p {
        pidfd, POLLIN, 0
    };
    return ::poll(&p, 1, 0) == 0;
}

int pidfd_take(int pidfd, pid_t pid) {
    if (::fcntl(pidfd, F_GETFD) < 0) return -errno;
    // The kernel tells what a descriptor is in its fdinfo: a pidfd has a
    // "Pid:" line, -1 once its process has been reaped.
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return -EINVAL;
    buf[n] = '\0';
    const char *line = std::strstr(buf, "\nPid:");
    if (!line) return -EINVAL;
    long named = std::strtol(line + 6, nullptr, 10);
    if (named != pid && named != -1) return -EINVAL;
    if (::fcntl(pidfd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
    return 0;
}

std::optional<pid_t> parent_of(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    buf[n] = '\0';
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    char *close_paren = std::strrchr(buf, ')');
    if (!close_paren) return std::nullopt;
    char state;
    int ppid;
    if (std::sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2) return std::nullopt;
    return static_cast<pid_t>(ppid);
}

std::optional<pid_t> process_group_of(pid_t pid) {
    pid_t g = ::getpgid(pid);
    if (g < 0) return std::nullopt;
    return g;
}

bool descends_from(pid_t pid, pid_t ancestor) {
    if (pid <= 0 || ancestor <= 0) return false;
    if (pid == ancestor) return true;
    if (auto g = process_group_of(pid); g && *g == ancestor) return true;
    // A descendant that left the group (setsid, setpgid): its parents, up to
    // init, or to chipd when it was orphaned (chipd is their subreaper).
    pid_t p = pid;
    for (int depth = 0; depth < 64; ++depth) {
        auto parent = parent_of(p);
        if (!parent || *parent <= 1) return false;
        if (*parent == ancestor) return true;
        p = *parent;
    }
    return false;
}

std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Uid:", 0) == 0) {
            std::istringstream fields(line.substr(4));
            unsigned long real = 0, effective = 0;
            if (fields >> real >> effective)
                return std::make_pair(static_cast<uid_t>(real), static_cast<uid_t>(effective));
        }
    }
    return std::nullopt;
}

std::vector<gid_t> groups_of_user(const std::string &name, gid_t gid) {
    int n = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(n));
    if (::getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) {
        groups.resize(static_cast<std::size_t>(n));
        if (::getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) return {gid};
    }
    groups.resize(static_cast<std::size_t>(n));
    return groups;
}

std::size_t raise_fd_limit(std::size_t want) {
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) < 0) return 1024;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        struct rlimit more = {want, want};
        if (::setrlimit(RLIMIT_NOFILE, &more) == 0) return want;
    }
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<std::size_t>(rl.rlim_cur);
}

std::size_t fd_soft_limit() {
    struct rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) < 0) return 1024;
    return rl.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20
                                        : static_cast<std::size_t>(rl.rlim_cur);
}

pid_t pid_max() {
    std::ifstream in("/proc/sys/kernel/pid_max");
    long long v = 0;
    if (in >> v && v > 0 && v <= kPidMaxLimit) return static_cast<pid_t>(v);
    return kPidMaxLimit;
}

}  // namespace chip::os
