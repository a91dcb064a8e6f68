#include "os/shm.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "chip/registry.h"

namespace chip::os {

namespace {

Error sys_error(int code, const std::string &what, const std::string &name) {
    return make_error(code, what + " " + name + ": " + std::strerror(code));
}

// A killed chipd left NAME behind: readers may still have it mapped, so flag it
// dead (if it is ours) before unlinking, or they would read it forever.
void mark_stale_dead(const std::string &name) {
    int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 &&
        static_cast<std::size_t>(st.st_size) >= sizeof(chip_registry_header)) {
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

Result<Mapping> create_shm(const std::string &name, std::size_t size) {
    mark_stale_dead(name);
    if (::shm_unlink(name.c_str()) < 0 && errno != ENOENT)
        return sys_error(errno, "cannot remove stale shared memory", name);
    // O_EXCL: if another process raced us to the name, fail rather than share it.
    int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(errno, "cannot create shared memory", name);
    // The umask may have narrowed the mode; readers of any user need 0644.
    if (::fchmod(fd, 0644) < 0 || ::ftruncate(fd, static_cast<off_t>(size)) < 0) {
        int e = errno;
        ::close(fd);
        ::shm_unlink(name.c_str());
        return sys_error(e, "cannot size shared memory", name);
    }
    void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    ::close(fd);  // the mapping keeps the object alive
    if (p == MAP_FAILED) {
        ::shm_unlink(name.c_str());
        return sys_error(e, "cannot map shared memory", name);
    }
    return Mapping(p, size, true);
}

Result<Mapping> open_shm_readonly(const std::string &name) {
    int fd = ::shm_open(name.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return sys_error(errno, "cannot open shared memory", name);
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        int e = errno;
        ::close(fd);
        return sys_error(e, "cannot stat shared memory", name);
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

std::vector<std::string> list_shm(const std::string &prefix) {
    std::vector<std::string> out;
    std::string bare = !prefix.empty() && prefix[0] == '/' ? prefix.substr(1) : prefix;
    DIR *dir = ::opendir("/dev/shm");
    if (!dir) return out;
    while (const dirent *ent = ::readdir(dir)) {
        std::string_view n(ent->d_name);
        if (n.size() > bare.size() && n.substr(0, bare.size()) == bare)
            out.push_back("/" + std::string(n));
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace chip::os
