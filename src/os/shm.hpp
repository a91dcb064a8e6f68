// POSIX shared-memory objects for the registry: chipd creates and formats one
// per registry (read-write), readers map them read-only. RAII mappings; every
// failure is a Result naming the object and the cause.
//
// It knows nothing of the registry's layout except, in create_shm, how to flag
// a stale chip registry as dead before replacing it (include/chip/registry.h,
// "Lifetime"). No locking: chipd is the only creator of its names.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

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

// Creates shared-memory object NAME ("/chip-..."), mode 0644, of SIZE zeroed
// bytes, mapped read-write. A stale object of that name (a chipd that was
// killed) is flagged dead when it is a chip registry, then unlinked first.
Result<Mapping> create_shm(const std::string &name, std::size_t size);
// Maps existing object NAME read-only, whole (its size from fstat).
// ENOENT when there is none.
Result<Mapping> open_shm_readonly(const std::string &name);
// Removes NAME; a missing one is not an error.
Result<void> unlink_shm(const std::string &name);
// Names (with their leading '/') of the objects starting with PREFIX
// ("/chip-<hash>-"), sorted, from /dev/shm.
std::vector<std::string> list_shm(const std::string &prefix);

}  // namespace chip::os
