// The cluster view of a registry in shared memory (include/chip/registry.h,
// "The cluster view"): ClusterView writes it (chipd, from its etcd session),
// ClusterReader reads it (libchip, chipctl) under the same seqlock as the
// local region. Both work over any byte span, like Table and Reader.
//
// The writer replaces the whole list at each change: a view changes at the
// pace of joins and leaves across hosts, and a sorted array lets readers find
// a group's members in one bounded pass. Nothing here throws but bad_alloc.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chip/chip.h"
#include "chip/registry.h"

namespace chip::registry {

struct ClusterMember {
    std::string group;
    std::string node;
    pid_t pid = 0;
    auto operator<=>(const ClusterMember &) const = default;
};

class ClusterView {
public:
    // Bytes a view of MAX_ENTRIES needs; 0 when MAX_ENTRIES is 0 or too big.
    static std::size_t region_size(std::uint32_t max_entries);
    // Formats REGION (8-byte aligned, region_size bytes) as the empty view of
    // registry NAME. 0 or -EINVAL.
    int init(std::span<std::byte> region, std::string_view name, std::uint32_t max_entries,
             pid_t writer_pid);
    // Takes over REGION, formatted by init() in this process image or an
    // earlier one, as it stands (its entries stay until the next replace):
    // nothing is written to it. Checks its magic, version and geometry, that
    // it is not flagged dead and that no write was left unfinished. 0 or
    // -EINVAL with *WHY set; the view is then unchanged.
    int adopt(std::span<std::byte> region, std::string *why = nullptr);
    // The view is MEMBERS from now on (sorted here; names must be valid).
    // Returns how many did not fit.
    std::size_t replace(std::vector<ClusterMember> members);
    // Whether the view is current (chipd's session with etcd is up).
    void set_connected(bool connected);
    void mark_dead();
    bool initialized() const { return hdr_ != nullptr; }
    // The registry's name and the capacity, as the header says.
    std::string_view name() const;
    std::uint32_t max_entries() const { return max_entries_; }

private:
    void open_write();
    void close_write();
    chip_cluster_header *hdr_ = nullptr;
    chip_cluster_entry *entries_ = nullptr;
    std::uint32_t max_entries_ = 0;
    std::uint64_t seq_ = 0;
};

class ClusterReader {
public:
    // Checks REGION's magic, version and geometry. 0 or -ESTALE (*WHY set).
    int attach(std::span<const std::byte> region, std::string *why = nullptr);
    // GROUP's members on every host: writes at most CAP to OUT and returns
    // the count. -EINVAL bad name, -EAGAIN no stable snapshot, -EIO corrupt.
    ssize_t members(std::string_view group, chip_cluster_member *out, std::size_t cap) const;
    // The groups with their member counts over every host, sorted by name.
    ssize_t groups(chip_group_info *out, std::size_t cap) const;
    bool dead() const;
    bool connected() const;

private:
    const chip_cluster_header *hdr_ = nullptr;
    const chip_cluster_entry *entries_ = nullptr;
    std::uint32_t max_entries_ = 0;
};

}  // namespace chip::registry
