#include "os/file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace chip::os {

namespace {

Error errno_error(int code, const std::string &what) {
    return make_error(code, what + ": " + std::strerror(code));
}

FileIdentity identity_of(const struct stat &st) {
    return FileIdentity{st.st_dev, st.st_ino, st.st_size};
}

}  // namespace

Result<UniqueFd> open_read(const std::string &path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error(errno, path);
    return fd;
}

Result<FileIdentity> file_identity(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) < 0) return make_error(errno, std::strerror(errno));
    return identity_of(st);
}

Result<FileIdentity> path_identity(const std::string &path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return errno_error(errno, path);
    return identity_of(st);
}

ssize_t read_at(int fd, char *buf, std::size_t cap, off_t offset) {
    for (;;) {
        ssize_t n = ::pread(fd, buf, cap, offset);
        if (n >= 0) return n;
        if (errno != EINTR) return -errno;
    }
}

std::string absolute_path(const std::string &path) {
    std::error_code ec;
    std::filesystem::path p = std::filesystem::absolute(path, ec);
    return ec ? path : p.lexically_normal().string();
}

bool is_folder(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_writable_folder(const std::string &path) {
    return is_folder(path) && ::access(path.c_str(), W_OK | X_OK) == 0;
}

Result<std::vector<std::string>> files_in_folder(const std::string &path) {
    UniqueFd dir_fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) return make_error(errno, "");
    DIR *dir = ::fdopendir(dir_fd.get());
    if (!dir) return make_error(errno, "");
    dir_fd.release();  // closedir closes it
    std::vector<std::string> names;
    int error = 0;
    for (;;) {
        errno = 0;
        dirent *e = ::readdir(dir);
        if (!e) {
            error = errno;
            break;
        }
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        // Only regular files: a FIFO would block the reader, a folder is no spec.
        struct stat st {};
        if (::fstatat(::dirfd(dir), name.c_str(), &st, 0) == 0 && S_ISREG(st.st_mode))
            names.push_back(std::move(name));
    }
    ::closedir(dir);
    if (error) return make_error(error, "");
    return names;
}

Result<void> executable_file(const std::string &path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return make_error(errno, "");
    if (S_ISDIR(st.st_mode)) return make_error(EISDIR, "");
    if (!S_ISREG(st.st_mode)) return make_error(EACCES, "");
    if (::access(path.c_str(), X_OK) != 0) return make_error(errno, "");
    return {};
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
