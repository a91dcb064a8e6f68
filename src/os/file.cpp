#include "os/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace chip::os
