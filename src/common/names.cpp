#include "common/names.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace chip {

namespace {

bool valid_name(std::string_view s, std::string_view extra) {
    if (s.empty() || s.size() > kMaxNameLen) return false;
    for (char c : s) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && extra.find(c) == std::string_view::npos) return false;
    }
    return true;
}

struct SignalEntry {
    const char *name;
    int number;
};

constexpr std::array kSignals{
    SignalEntry{"HUP", SIGHUP},       SignalEntry{"INT", SIGINT},   SignalEntry{"QUIT", SIGQUIT},
    SignalEntry{"ILL", SIGILL},       SignalEntry{"TRAP", SIGTRAP}, SignalEntry{"ABRT", SIGABRT},
    SignalEntry{"BUS", SIGBUS},       SignalEntry{"FPE", SIGFPE},   SignalEntry{"KILL", SIGKILL},
    SignalEntry{"USR1", SIGUSR1},     SignalEntry{"SEGV", SIGSEGV}, SignalEntry{"USR2", SIGUSR2},
    SignalEntry{"PIPE", SIGPIPE},     SignalEntry{"ALRM", SIGALRM}, SignalEntry{"TERM", SIGTERM},
    SignalEntry{"CHLD", SIGCHLD},     SignalEntry{"CONT", SIGCONT}, SignalEntry{"STOP", SIGSTOP},
    SignalEntry{"TSTP", SIGTSTP},     SignalEntry{"TTIN", SIGTTIN}, SignalEntry{"TTOU", SIGTTOU},
    SignalEntry{"URG", SIGURG},       SignalEntry{"XCPU", SIGXCPU}, SignalEntry{"XFSZ", SIGXFSZ},
    SignalEntry{"VTALRM", SIGVTALRM}, SignalEntry{"PROF", SIGPROF}, SignalEntry{"WINCH", SIGWINCH},
    SignalEntry{"IO", SIGIO},         SignalEntry{"PWR", SIGPWR},   SignalEntry{"SYS", SIGSYS},
};

struct ErrnoEntry {
    const char *name;
    int code;
};

constexpr std::array kErrnos{
    ErrnoEntry{"EINVAL", EINVAL},
    ErrnoEntry{"ENOENT", ENOENT},
    ErrnoEntry{"EPERM", EPERM},
    ErrnoEntry{"ESRCH", ESRCH},
    ErrnoEntry{"ENOSPC", ENOSPC},
    ErrnoEntry{"ETIMEDOUT", ETIMEDOUT},
    ErrnoEntry{"EPROTO", EPROTO},
    ErrnoEntry{"EMSGSIZE", EMSGSIZE},
    ErrnoEntry{"EOPNOTSUPP", EOPNOTSUPP},
    ErrnoEntry{"ECANCELED", ECANCELED},
    ErrnoEntry{"EIO", EIO},
    ErrnoEntry{"EBUSY", EBUSY},
    ErrnoEntry{"EACCES", EACCES},
    ErrnoEntry{"ENOTCONN", ENOTCONN},
    ErrnoEntry{"EEXIST", EEXIST},
    ErrnoEntry{"EAGAIN", EAGAIN},
};

std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 14695981039346656037ULL;  // the FNV-1a 64 offset basis
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace

bool valid_child_name(std::string_view s) {
    // "." and ".." would read as folders in paths and log file names.
    return s != "." && s != ".." && valid_name(s, "_.-");
}
bool valid_group_name(std::string_view s) {
    return valid_name(s, "_.:-");
}

std::optional<int> parse_signal(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s[0] >= '0' && s[0] <= '9') {
        int n = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return std::nullopt;
            n = n * 10 + (c - '0');
            if (n > 64) return std::nullopt;
        }
        if (n < 1 || n > SIGRTMAX) return std::nullopt;
        return n;
    }
    if (s.size() > 3 && s.substr(0, 3) == "SIG") s.remove_prefix(3);
    for (const auto &e : kSignals)
        if (s == e.name) return e.number;
    return std::nullopt;
}

std::string signal_name(int sig) {
    for (const auto &e : kSignals)
        if (sig == e.number) return e.name;
    return std::to_string(sig);
}

const char *errno_name(int code) {
    for (const auto &e : kErrnos)
        if (e.code == code) return e.name;
    return "EIO";
}

int errno_from_name(std::string_view name) {
    for (const auto &e : kErrnos)
        if (name == e.name) return e.code;
    return EIO;
}

std::string default_socket_path(uid_t uid) {
    const char *xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg) return std::string(xdg) + "/chip/chipd.sock";
    if (uid == 0) return "/run/chip/chipd.sock";
    return "/tmp/chip-" + std::to_string(uid) + "/chipd.sock";
}

std::string resolve_socket_path(const char *given, uid_t uid) {
    if (given && *given) return given;
    const char *env = std::getenv("CHIP_SOCKET");
    if (env && *env) return env;
    return default_socket_path(uid);
}

std::string registry_shm_prefix(const std::string &socket_path) {
    std::string normal = std::filesystem::path(socket_path).lexically_normal().string();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(normal)));
    return std::string("/chip-") + hex + "-";
}

std::string registry_shm_name(const std::string &socket_path, const std::string &registry) {
    return registry_shm_prefix(socket_path) + registry;
}

std::string cluster_shm_name(const std::string &socket_path, const std::string &registry) {
    return registry_shm_name(socket_path, registry) + "@cluster";
}

}  // namespace chip
