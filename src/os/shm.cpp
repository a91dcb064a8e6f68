#include "os/shm.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "chip/registry.h"
#include "common/names.hpp"

namespace chip::os {

namespace {

Error sys_error(int code, const std::string &what, const std::string &name) {
    return make_error(code, what + " " + name + ": " + std::strerror(code));
}

}  // namespace

Mapping::Mapping(Mapping &&other) noexcept
    : addr_(other.addr_), size_(other.size_), writable_(other.writable_) {
    other.addr_ = nullptr;
    other.size_ = 0;
}

Mapping &Mapping::operator=(Mapping &&other) noexcept {
    if (this != &other) {
        reset();
        addr_ = other.addr_;
        size_ = other.size_;
        writable_ = other.writable_;
        other.addr_ = nullptr;
        other.size_ = 0;
    }
    return *this;
}

Mapping::~Mapping() {
    reset();
}

void Mapping::reset() {
    if (addr_) ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
}

Result<SharedMemory> create_shm(const std::string &name, std::size_t size) {
    // O_EXCL: a name someone else made first is never shared with them.
    int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(errno, "cannot create shared memory", name);
    SharedMemory shm;
    shm.fd.reset(fd);
    // The umask may have narrowed the mode; readers of any user need 0644.
    if (::fchmod(fd, 0644) < 0 || ::ftruncate(fd, static_cast<off_t>(size)) < 0) {
        int e = errno;
        ::shm_unlink(name.c_str());
        return sys_error(e, "cannot size shared memory", name);
    }
    void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        ::shm_unlink(name.c_str());
        return sys_error(e, "cannot map shared memory", name);
    }
    shm.mapping = Mapping(p, size, true);
    return shm;
}

Result<Mapping> map_shared(int fd, const std::string &name, std::size_t size, uid_t owner) {
    struct stat st {};
    if (::fstat(fd, &st) < 0) return sys_error(errno, "cannot stat shared memory", name);
    if (!S_ISREG(st.st_mode) || st.st_uid != owner || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return make_error(EPERM, "refusing shared memory " + name + ": owned by uid " +
                                     std::to_string(st.st_uid) + " with mode " +
                                     format_mode(st.st_mode) + "; expected uid " +
                                     std::to_string(owner) + ", writable by it alone");
    if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) != size)
        return make_error(EINVAL, "shared memory " + name + " is " + std::to_string(st.st_size) +
                                      " bytes; expected " + std::to_string(size));
    // Readers open it by name: what we write must be what they find there.
    int named = ::shm_open(name.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (named < 0) return sys_error(errno, "cannot open shared memory", name);
    struct stat nst {};
    int rc = ::fstat(named, &nst);
    int e = errno;
    ::close(named);
    if (rc < 0) return sys_error(e, "cannot stat shared memory", name);
    if (nst.st_dev != st.st_dev || nst.st_ino != st.st_ino)
        return make_error(
            ESTALE, "shared memory " + name + " is no longer the object handed over (replaced)");
    // The exec cleared close-on-exec for the hand-off; workers spawned from
    // now on must not inherit the region.
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return sys_error(errno, "cannot set close-on-exec on shared memory", name);
    void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return sys_error(errno, "cannot map shared memory", name);
    return Mapping(p, size, true);
}

Result<Mapping> open_shm_readonly(const std::string &name, uid_t owner) {
    // glibc's shm_open adds O_NOFOLLOW: a symlink in /dev/shm is not followed.
    int fd = ::shm_open(name.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return sys_error(errno, "cannot open shared memory", name);
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        int e = errno;
        ::close(fd);
        return sys_error(e, "cannot stat shared memory", name);
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != owner || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        ::close(fd);
        return make_error(EPERM, "refusing shared memory " + name + ": owned by uid " +
                                     std::to_string(st.st_uid) + " with mode " +
                                     format_mode(st.st_mode) + "; expected chipd's uid " +
                                     std::to_string(owner) + ", writable by it alone");
    }
    if (st.st_size <= 0) {
        ::close(fd);
        return make_error(ESTALE, "shared memory " + name + " is empty");
    }
    auto size = static_cast<std::size_t>(st.st_size);
    void *p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) return sys_error(e, "cannot map shared memory", name);
    return Mapping(p, size, false);
}

Result<void> unlink_shm(const std::string &name) {
    if (::shm_unlink(name.c_str()) < 0 && errno != ENOENT)
        return sys_error(errno, "cannot remove shared memory", name);
    return {};
}

bool remove_stale_shm(const std::string &name, uid_t owner) {
    // Readers may still have it mapped: flag it dead (if it is a chip
    // registry) before unlinking, or they would read it forever.
    int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != owner) {
        ::close(fd);
        return false;
    }
    if (static_cast<std::size_t>(st.st_size) >= sizeof(chip_registry_header)) {
        void *p = ::mmap(nullptr, sizeof(chip_registry_header), PROT_READ | PROT_WRITE, MAP_SHARED,
                         fd, 0);
        if (p != MAP_FAILED) {
            auto *h = static_cast<chip_registry_header *>(p);
            if (std::atomic_ref<std::uint64_t>(h->magic).load(std::memory_order_acquire) ==
                CHIP_REGISTRY_MAGIC)
                std::atomic_ref<std::uint32_t>(h->dead).store(1, std::memory_order_release);
            ::munmap(p, sizeof(chip_registry_header));
        }
    }
    ::close(fd);
    // /dev/shm is sticky: the name can only be ours still, or gone.
    return ::shm_unlink(name.c_str()) == 0;
}

Result<std::string> random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    std::size_t got = 0;
    while (got < bytes) {
        ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(errno, std::string("getrandom: ") + std::strerror(errno));
        got += static_cast<std::size_t>(n);
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * bytes);
    for (unsigned char c : raw) {
        out += kDigits[c >> 4];
        out += kDigits[c & 15];
    }
    return out;
}

}  // namespace chip::os
