// Fuzz target: the registry reader (src/registry/reader.hpp) over a region
// nobody can trust: raw bytes, or a region the real writer formatted and
// filled, then forged (bytes overwritten anywhere) and truncated.
//
// Input:
//   byte 0    bit 0: format with the real writer (else the bytes are the region)
//             bit 1: truncate the region by byte 3 bytes
//   byte 1, 2 capacities: 1 + byte 1 % 8 groups, 1 + byte 2 % 32 members
//   byte 4    joins made before forging (pids into groups a, b, c, ...)
//   then      patches: offset (2 bytes, little endian), length (1 byte), bytes
//   raw mode  the region is everything after byte 0.
// The seqlock is left even: an odd one only makes the reader retry until its
// time budget (250 ms) is spent, which registry_test covers. Checked: attach
// refuses with -ESTALE or accepts; then every answer is a count or -EIO, never
// a crash, a hang or a read outside the region (AddressSanitizer: the region
// is a heap block of exactly its size).
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "registry/reader.hpp"
#include "registry/table.hpp"

using chip::registry::Reader;
using chip::registry::Table;

namespace {

// A heap block of exactly SIZE bytes (malloc aligns it for any type), so
// that AddressSanitizer sees a read one byte past the region.
struct Region {
    explicit Region(std::size_t size)
        : block(static_cast<std::byte *>(std::calloc(size ? size : 1, 1))), bytes(block, size) {}
    ~Region() { std::free(block); }
    Region(const Region &) = delete;
    Region &operator=(const Region &) = delete;
    chip_registry_header *header() { return reinterpret_cast<chip_registry_header *>(block); }
    std::byte *block;
    std::span<std::byte> bytes;
};

void query(const Reader &reader) {
    chip_group_info groups[8];
    ssize_t n = reader.groups(groups, 8);
    CHECK_FUZZ(n >= 0 || n == -EIO);
    std::vector<std::string> names = {"a", "b", "c", "zz"};
    for (ssize_t i = 0; i < n && i < 8; ++i) {
        CHECK_FUZZ(std::strlen(groups[i].name) <= CHIP_REGISTRY_NAME_MAX);
        names.push_back(groups[i].name);
    }
    // Also the bare count (no room for entries).
    if (n >= 0) CHECK_FUZZ(reader.groups(nullptr, 0) == n);
    for (const auto &g : names) {
        pid_t pids[4];
        ssize_t m = reader.members(g, pids, 4);
        CHECK_FUZZ(m >= 0 || m == -EIO || m == -EINVAL);
        CHECK_FUZZ(m < 0 || static_cast<std::size_t>(m) <= reader.max_members());
    }
    (void)reader.dead();
    (void)reader.generation();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size < 1) return 0;
    Reader reader;
    std::string why;
    if (!(data[0] & 1)) {
        Region region(size - 1);
        if (size > 1) std::memcpy(region.bytes.data(), data + 1, size - 1);
        if (region.bytes.size() >= sizeof(chip_registry_header))
            region.header()->seq &= ~std::uint64_t{1};
        int rc = reader.attach(region.bytes, &why);
        CHECK_FUZZ(rc == 0 || (rc == -ESTALE && !why.empty()));
        if (rc == 0) query(reader);
        return 0;
    }
    if (size < 5) return 0;
    std::uint32_t max_groups = 1 + data[1] % 8, max_members = 1 + data[2] % 32;
    std::size_t full = Table::region_size(max_groups, max_members);
    Region region(full);
    {
        Table table;
        CHECK_FUZZ(table.init(region.bytes, "fuzz", max_groups, max_members, 4242) == 0);
        static const char *const kGroups[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
        for (int j = 0; j < data[4] % 48; ++j) (void)table.join(kGroups[j % 9], 100 + j % 7);
        // Leaves too, so that free slots and shifted index entries appear.
        for (int j = 0; j < data[4] / 48; ++j) (void)table.leave(kGroups[j % 9], 100 + j % 7);
    }
    std::size_t at = 5;
    while (at + 3 <= size) {
        std::size_t off = data[at] | std::size_t{data[at + 1]} << 8;
        std::size_t len = data[at + 2];
        at += 3;
        for (std::size_t k = 0; k < len && at < size; ++k, ++at)
            if (off + k < full) region.bytes[off + k] = std::byte{data[at]};
    }
    region.header()->seq &= ~std::uint64_t{1};
    std::size_t cut = data[0] & 2 ? std::min<std::size_t>(data[3], full) : 0;
    Region shown(full - cut);
    std::memcpy(shown.bytes.data(), region.bytes.data(), full - cut);
    int rc = reader.attach(shown.bytes, &why);
    CHECK_FUZZ(rc == 0 || (rc == -ESTALE && !why.empty()));
    if (rc == 0) query(reader);
    return 0;
}
