#include "os/host.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "os/fd.hpp"

namespace chip::os {

namespace {

// getpw*_r/getgr*_r with a buffer grown on ERANGE (sysconf's hint may be -1).
template <typename Entry, typename Lookup>
bool lookup_entry(Entry &entry, Lookup lookup) {
    std::vector<char> buf(4096);
    for (;;) {
        Entry *result = nullptr;
        int rc = lookup(&entry, buf.data(), buf.size(), &result);
        if (rc == ERANGE && buf.size() < (1u << 22)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        return rc == 0 && result != nullptr;
    }
}

}  // namespace

std::optional<std::pair<uid_t, gid_t>> user_by_name(const std::string &name) {
    passwd pw{};
    if (!lookup_entry(pw, [&](passwd *e, char *b, std::size_t n, passwd **r) {
            return ::getpwnam_r(name.c_str(), e, b, n, r);
        }))
        return std::nullopt;
    return std::pair{pw.pw_uid, pw.pw_gid};
}

std::optional<gid_t> user_by_id(uid_t uid) {
    passwd pw{};
    if (!lookup_entry(pw, [&](passwd *e, char *b, std::size_t n, passwd **r) {
            return ::getpwuid_r(uid, e, b, n, r);
        }))
        return std::nullopt;
    return pw.pw_gid;
}

std::optional<gid_t> group_by_name(const std::string &name) {
    group gr{};
    if (!lookup_entry(gr, [&](group *e, char *b, std::size_t n, group **r) {
            return ::getgrnam_r(name.c_str(), e, b, n, r);
        }))
        return std::nullopt;
    return gr.gr_gid;
}

bool is_folder(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_writable_folder(const std::string &path) {
    return is_folder(path) && ::access(path.c_str(), W_OK | X_OK) == 0;
}

// Plain read(2) rather than iostreams: errno survives, so the caller can say why.
Result<std::string> read_small_file(const std::string &path, std::size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return make_error(errno, "");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return make_error(errno, "");
    if (S_ISDIR(st.st_mode)) return make_error(EISDIR, "");
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(errno, "");
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        // This bounds what e.g. /dev/zero would cost.
        if (text.size() > limit) return make_error(EFBIG, "");
    }
    return text;
}

std::string current_dir() {
    char buf[PATH_MAX];
    return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string();
}

}  // namespace chip::os
