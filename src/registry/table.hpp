// The registry's writer: chipd's view of one registry region (include/chip/
// registry.h). It formats the region, then joins and leaves pids to and from
// groups, publishing every change under the region's seqlock so that readers
// in other processes always see a consistent snapshot. Writers never wait for
// readers.
//
// It works over any byte span: shared memory in chipd, heap memory in tests.
// It does not map memory (src/os/shm.hpp does), check permissions or watch
// pids (chipd does), and it is not thread-safe: one writer, chipd's loop.
// Nothing here throws except std::bad_alloc from its private heap index.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chip/registry.h"

namespace chip::registry {

class Table {
public:
    Table() = default;
    Table(const Table &) = delete;
    Table &operator=(const Table &) = delete;
    Table(Table &&) = default;
    Table &operator=(Table &&) = default;

    // Bytes a region needs for these capacities; 0 when a capacity is 0 or too big.
    static std::size_t region_size(std::uint32_t max_groups, std::uint32_t max_members);

    // Formats REGION (8-byte aligned, at least region_size bytes) as an empty
    // registry NAME and takes it over. 0, or -EINVAL (bad name, capacities or
    // region).
    int init(std::span<std::byte> region, std::string_view name, std::uint32_t max_groups,
             std::uint32_t max_members, pid_t writer_pid);
    // Takes over REGION, formatted by init() in this process image or an
    // earlier one (chipd re-executed itself), as it stands: nothing is written
    // to it. Its magic, layout version, geometry and every list and index are
    // checked, and the private index is rebuilt from them. 0, or -EINVAL with
    // *WHY (when given) set to the reason (not a registry, flagged dead, a
    // write left unfinished, a broken list); the Table is then unchanged.
    // After it, groups_of() lists a pid's groups in their creation order (the
    // region does not record the order of one pid's joins across groups).
    int adopt(std::span<std::byte> region, std::string *why = nullptr);

    // Makes PID a member of GROUP, after its current members. 0 (also when it
    // already is: nothing changes), -EINVAL (bad group name or pid), -ENOSPC (no
    // free group slot for a new group, or no free member slot; nothing changes).
    int join(std::string_view group, pid_t pid);
    // Removes PID from GROUP; a group left empty disappears. 0, also when PID
    // was not a member; -EINVAL for a bad name.
    int leave(std::string_view group, pid_t pid);
    // Removes PID from every group (it died). Returns how many groups it left.
    std::size_t remove_pid(pid_t pid);

    bool has_member(pid_t pid) const;
    // The groups PID is in, in the order it joined them.
    std::vector<std::string> groups_of(pid_t pid) const;
    // GROUP's members in join order (empty for an unknown group).
    std::vector<pid_t> members(std::string_view group) const;
    // Every group with its member count, in creation order.
    std::vector<std::pair<std::string, std::uint32_t>> groups() const;

    // Brackets several mutations so that readers see them as one change (one
    // seqlock write section, one generation). Nestable; every begin() needs its
    // commit(). Readers retry for as long as the batch is open: keep it short.
    void begin();
    void commit();

    // Flags the region as abandoned (clean shutdown): readers that keep it
    // mapped re-open it by name.
    void mark_dead();

    bool initialized() const { return hdr_ != nullptr; }
    std::uint32_t max_groups() const { return max_groups_; }
    std::uint32_t max_members() const { return max_members_; }
    pid_t writer_pid() const;
    std::uint32_t group_count() const;
    std::uint32_t member_count() const;
    std::uint64_t generation() const;
    std::string_view name() const;

private:
    std::uint32_t find_group(std::string_view name, std::uint32_t hash) const;
    std::uint32_t create_group(std::string_view name, std::uint32_t hash);
    void remove_group(std::uint32_t g);
    void unlink_member(std::uint32_t m);
    std::uint32_t pid_slot_in(pid_t pid, std::uint32_t g) const;
    void open_write();
    void close_write();

    chip_registry_header *hdr_ = nullptr;
    std::uint32_t *index_ = nullptr;
    chip_registry_group *groups_ = nullptr;
    chip_registry_member *members_ = nullptr;
    std::uint32_t max_groups_ = 0;
    std::uint32_t max_members_ = 0;
    std::uint32_t index_mask_ = 0;

    std::vector<std::uint32_t> free_groups_;  // stacks of free slots
    std::vector<std::uint32_t> free_members_;
    // pid -> its member slots, in join order: leave and remove_pid touch only
    // that pid's memberships, never scan the tables.
    std::unordered_map<pid_t, std::vector<std::uint32_t>> by_pid_;

    int batch_depth_ = 0;
    bool writing_ = false;   // seq is odd
    std::uint64_t seq_ = 0;  // our copy of the stable (even) seq
};

}  // namespace chip::registry
