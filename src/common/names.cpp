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

std::optional<std::string> private_runtime_folder(uid_t uid) {
    const char *xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg) return std::string(xdg) + "/chip";
    if (uid == 0) return std::nullopt;
    return "/tmp/chip-" + std::to_string(uid);
}

SocketFolderKind socket_folder_kind(const std::string &socket_path, uid_t uid) {
    namespace fs = std::filesystem;
    fs::path folder = fs::path(socket_path).lexically_normal().parent_path();
    auto same = [&](const std::string &p) {
        fs::path q = fs::path(p).lexically_normal();
        // "/run/chip/" and "/run/chip" are the same folder.
        if (!q.has_filename()) q = q.parent_path();
        return folder == q;
    };
    if (auto own = private_runtime_folder(uid); own && same(*own)) return SocketFolderKind::Private;
    if (uid == 0 && same("/run/chip")) return SocketFolderKind::System;
    return SocketFolderKind::Given;
}

std::string registry_shm_name(std::string_view token, std::string_view registry) {
    return "/chip-" + std::string(token) + "-" + std::string(registry);
}

std::string registry_index_name(const std::string &socket_name) {
    return socket_name + ".registries";
}

std::string socket_hash_prefix(const std::string &socket_path) {
    std::string normal = std::filesystem::path(socket_path).lexically_normal().string();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(normal)));
    return std::string("chip-") + hex + "-";
}

std::optional<mode_t> parse_mode(std::string_view s) {
    if (s.empty() || s.size() > 4) return std::nullopt;
    mode_t m = 0;
    for (char c : s) {
        if (c < '0' || c > '7') return std::nullopt;
        m = m * 8 + static_cast<mode_t>(c - '0');
    }
    if (m > 0777) return std::nullopt;
    return m;
}

std::string format_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string cluster_shm_name(std::string_view registry_shm) {
    return std::string(registry_shm) + "@cluster";
}

}  // namespace chip
