#include "os/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace chip::os {

namespace {

Error errno_error(int code, const std::string &what) {
    return make_error(code, what + ": " + std::strerror(code));
}

// NAME/FILE, or FILE for NAME "" (the folder itself).
std::string inside(const std::string &name, const char *file) {
    return name.empty() ? std::string(file) : name + "/" + file;
}

// The whole of DIR/PATH, up to LIMIT bytes; nullopt when it cannot be read.
std::optional<std::string> read_at_most(int dir, const std::string &path, std::size_t limit) {
    UniqueFd fd(::openat(dir, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::nullopt;
    std::string text;
    char buf[4096];
    while (text.size() < limit) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    return text;
}

// The value of "KEY N" lines (cgroup.events, cpu.stat).
std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        if (line.size() > key.size() && line.substr(0, key.size()) == key &&
            line[key.size()] == ' ') {
            std::uint64_t v = 0;
            bool digits = false;
            for (char c : line.substr(key.size() + 1)) {
                if (c < '0' || c > '9') break;
                v = v * 10 + static_cast<std::uint64_t>(c - '0');
                digits = true;
            }
            if (digits) return v;
            return std::nullopt;
        }
        pos = end + 1;
    }
    return std::nullopt;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_field(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
            s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out +=
                static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t pos = 0;
    while (pos < line.size()) {
        auto end = line.find(' ', pos);
        if (end == std::string_view::npos) end = line.size();
        if (end > pos) fields.push_back(line.substr(pos, end - pos));
        pos = end + 1;
    }
    return fields;
}

}  // namespace

std::optional<std::string> cgroup2_folder(std::string_view mountinfo, std::string_view path) {
    std::size_t pos = 0;
    while (pos < mountinfo.size()) {
        auto end = mountinfo.find('\n', pos);
        if (end == std::string_view::npos) end = mountinfo.size();
        auto fields = split_spaces(mountinfo.substr(pos, end - pos));
        pos = end + 1;
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE ...
        auto dash = std::find(fields.begin(), fields.end(), std::string_view("-"));
        if (fields.size() < 6 || dash == fields.end() || dash + 1 == fields.end() ||
            dash - fields.begin() < 6 || dash[1] != "cgroup2")
            continue;
        std::string root = unescape_mount_field(fields[3]);
        std::string point = unescape_mount_field(fields[4]);
        // The mount shows the hierarchy from ROOT down: PATH must be inside it.
        if (root != "/") {
            if (path.substr(0, root.size()) != root ||
                (path.size() > root.size() && path[root.size()] != '/'))
                continue;
            path.remove_prefix(root.size());
        }
        std::string folder = point;
        if (path != "/" && !path.empty()) {
            if (folder == "/") folder.clear();
            folder += path;
        }
        return folder;
    }
    return std::nullopt;
}

std::optional<std::string> cgroup2_path(std::string_view proc_cgroup) {
    std::size_t pos = 0;
    while (pos < proc_cgroup.size()) {
        auto end = proc_cgroup.find('\n', pos);
        if (end == std::string_view::npos) end = proc_cgroup.size();
        std::string_view line = proc_cgroup.substr(pos, end - pos);
        pos = end + 1;
        if (line.substr(0, 3) == "0::" && line.size() > 3 && line[3] == '/')
            return std::string(line.substr(3));
    }
    return std::nullopt;
}

Result<CgroupPlace> own_cgroup() {
    auto cgroup = read_at_most(AT_FDCWD, "/proc/self/cgroup", 1 << 16);
    if (!cgroup) return make_error(errno ? errno : EIO, "cannot read /proc/self/cgroup");
    auto path = cgroup2_path(*cgroup);
    if (!path) return make_error(ENOENT, "no cgroup v2 line (0::) in /proc/self/cgroup");
    auto mountinfo = read_at_most(AT_FDCWD, "/proc/self/mountinfo", 1 << 22);
    if (!mountinfo) return make_error(errno ? errno : EIO, "cannot read /proc/self/mountinfo");
    auto folder = cgroup2_folder(*mountinfo, *path);
    if (!folder)
        return make_error(ENOENT, "no cgroup2 mount holding " + *path + " in /proc/self/mountinfo");
    return CgroupPlace{*path, *folder};
}

Result<UniqueFd> open_cgroup(const std::string &path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return errno_error(errno, path);
    return fd;
}

Result<void> check_cgroup_writable(int dir, const std::string &path) {
    UniqueFd fd(::openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return errno_error(errno, path + "/cgroup.procs");
    return {};
}

Result<bool> make_cgroup(int dir, const std::string &name) {
    if (::mkdirat(dir, name.c_str(), 0755) == 0) return true;
    int e = errno;
    struct stat st {};
    if (e == EEXIST && ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode))
        return false;
    return errno_error(e, name);
}

int remove_cgroup(int dir, const std::string &name) {
    return ::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0 ? 0 : -errno;
}

Result<UniqueFd> open_cgroup_at(int dir, const std::string &name) {
    UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return errno_error(errno, name);
    return fd;
}

std::vector<std::string> cgroup_children(int dir, const std::string &name) {
    std::vector<std::string> names;
    int fd = ::openat(dir, name.empty() ? "." : name.c_str(),
                      O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return names;
    DIR *d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return names;
    }
    while (struct dirent *e = ::readdir(d)) {
        if (e->d_type != DT_DIR || std::strcmp(e->d_name, ".") == 0 ||
            std::strcmp(e->d_name, "..") == 0)
            continue;
        names.emplace_back(e->d_name);
    }
    ::closedir(d);
    return names;
}

std::vector<pid_t> cgroup_pids(int dir, const std::string &name, bool recursive) {
    std::vector<pid_t> pids;
    if (auto text = read_at_most(dir, inside(name, "cgroup.procs"), 1 << 24)) {
        std::size_t pos = 0;
        while (pos < text->size()) {
            auto end = text->find('\n', pos);
            if (end == std::string::npos) end = text->size();
            long v = 0;
            for (std::size_t i = pos; i < end && (*text)[i] >= '0' && (*text)[i] <= '9'; ++i)
                v = v * 10 + ((*text)[i] - '0');
            if (v > 0) pids.push_back(static_cast<pid_t>(v));
            pos = end + 1;
        }
    }
    // Bounded depth: cgroup.max.depth may be unlimited.
    if (recursive && std::count(name.begin(), name.end(), '/') < 32)
        for (const auto &child : cgroup_children(dir, name)) {
            auto more = cgroup_pids(dir, inside(name, child.c_str()), true);
            pids.insert(pids.end(), more.begin(), more.end());
        }
    return pids;
}

int kill_cgroup(int dir, const std::string &name) {
    UniqueFd fd(
        ::openat(dir, inside(name, "cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd) {
        // The kernel kills the whole subtree, and processes forked meanwhile.
        if (::write(fd.get(), "1", 1) == 1) return 0;
        return errno == ENODEV ? 0 : -errno;  // ENODEV: removed meanwhile
    }
    if (errno != ENOENT) return -errno;
    kill_each(dir, name);  // before Linux 5.14, or the cgroup is gone
    return 0;
}

std::size_t kill_each(int dir, const std::string &name) {
    // A pid listed is in the cgroup (or a zombie in it) when it is read: not
    // reused before kill(2) reaches it.
    std::set<pid_t> killed;
    for (int pass = 0; pass < 64; ++pass) {
        bool fresh = false;
        for (pid_t pid : cgroup_pids(dir, name, true))
            if (killed.insert(pid).second) {
                fresh = true;
                ::kill(pid, SIGKILL);
            }
        if (!fresh) break;
    }
    return killed.size();
}

std::optional<bool> cgroup_populated(int dir, const std::string &name) {
    auto text = read_at_most(dir, inside(name, "cgroup.events"), 4096);
    if (!text) return std::nullopt;
    auto v = keyed_value(*text, "populated");
    if (!v) return std::nullopt;
    return *v != 0;
}

bool wait_cgroup_empty(int dir, const std::string &name, std::chrono::milliseconds timeout) {
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + timeout;
    UniqueFd fd(
        ::openat(dir, inside(name, "cgroup.events").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return errno == ENOENT;  // gone: empty
    char buf[256];
    for (;;) {
        // Read from the start each time: the read also re-arms the poll.
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        if (n < 0 && errno == ENODEV) return true;
        if (n > 0) {
            auto v = keyed_value(std::string_view(buf, static_cast<std::size_t>(n)), "populated");
            if (v && *v == 0) return true;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        // cgroup.events signals a change with POLLPRI; 100 ms at most, in case
        // a change slips between the read and the poll.
        struct pollfd p {
            fd.get(), POLLPRI, 0
        };
        ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
    }
}

std::optional<std::uint64_t> cgroup_cpu_usec(int dir, const std::string &name) {
    auto text = read_at_most(dir, inside(name, "cpu.stat"), 8192);
    if (!text) return std::nullopt;
    return keyed_value(*text, "usage_usec");
}

}  // namespace chip::os
