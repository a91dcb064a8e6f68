// POSIX shared-memory objects for the registry: chipd creates and formats one
// per registry (read-write), readers map them read-only. RAII mappings; every
// failure is a Result naming the object and the cause.
//
// It knows nothing of the registry's layout except, in remove_stale_shm, how
// to flag a stale chip registry as dead before removing it
// (include/chip/registry.h, "Lifetime"). No locking: every name chipd creates
// is fresh and random (O_EXCL), so nobody else holds it.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include <sys/types.h>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::os {

// A MAP_SHARED mapping, unmapped on destruction. Move-only.
class Mapping {
public:
    Mapping() = default;
    Mapping(void *addr, std::size_t size, bool writable)
        : addr_(addr), size_(size), writable_(writable) {}
    Mapping(Mapping &&other) noexcept;
    Mapping &operator=(Mapping &&other) noexcept;
    Mapping(const Mapping &) = delete;
    Mapping &operator=(const Mapping &) = delete;
    ~Mapping();

    bool valid() const { return addr_ != nullptr; }
    std::size_t size() const { return size_; }
    // Empty for a read-only mapping.
    std::span<std::byte> bytes() {
        return writable_ ? std::span<std::byte>(static_cast<std::byte *>(addr_), size_)
                         : std::span<std::byte>();
    }
    std::span<const std::byte> cbytes() const {
        return {static_cast<const std::byte *>(addr_), size_};
    }
    void reset();

private:
    void *addr_ = nullptr;
    std::size_t size_ = 0;
    bool writable_ = false;
};

// A shared-memory object chipd writes: its descriptor (read-write,
// close-on-exec), kept open so that it can be handed to the next chipd image
// across a re-exec, and its read-write mapping.
struct SharedMemory {
    UniqueFd fd;
    Mapping mapping;
};

// Creates shared-memory object NAME ("/chip-..."), mode 0644, of SIZE zeroed
// bytes, mapped read-write. O_EXCL: EEXIST when the name is taken (never
// someone else's object reused).
Result<SharedMemory> create_shm(const std::string &name, std::size_t size);
// Maps FD read-write: the shared-memory object NAME, handed over by an earlier
// chipd image across a re-exec (its descriptor open read-write), checked
// first: a regular object owned by OWNER that others than OWNER may not write,
// of SIZE bytes exactly, and still the object readers find under NAME. FD is
// marked close-on-exec again (no worker inherits it) and stays the caller's.
// EBADF, EPERM, EINVAL (wrong size), ENOENT or ESTALE (NAME is gone or another
// object) with the reason.
Result<Mapping> map_shared(int fd, const std::string &name, std::size_t size, uid_t owner);
// Maps existing object NAME read-only, whole (its size from fstat). ENOENT
// when there is none; EPERM when it is not owned by OWNER or others than its
// owner may write it (it is not the region chipd made).
Result<Mapping> open_shm_readonly(const std::string &name, uid_t owner);
// Removes NAME; a missing one is not an error.
Result<void> unlink_shm(const std::string &name);
// Removes NAME, left by a chipd that was killed, if it is owned by OWNER
// (else it is left alone: false); a chip registry is flagged dead first, so
// that readers still mapping it look for the new one.
bool remove_stale_shm(const std::string &name, uid_t owner);

// BYTES random bytes from getrandom(2) as 2*BYTES lowercase hex digits: the
// unguessable part of names others must not take first.
Result<std::string> random_hex(std::size_t bytes);

}  // namespace chip::os
