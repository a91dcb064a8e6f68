// The registry's reader: lists groups and members of a registry region that
// another process (chipd) is writing, without talking to it. Each call takes a
// consistent snapshot with the region's seqlock (include/chip/registry.h,
// "Reader protocol").
//
// It works over any read-only byte span (a PROT_READ mapping in libchip, heap
// memory in tests). It does not map or re-open regions (libchip does), and it
// never trusts the region: every index is checked against the capacities
// validated at attach, every walk is bounded, and retries are bounded, so a
// torn or garbage region yields an error, never a hang or an out-of-bounds
// read. Nothing here throws or allocates. A Reader is safe to use from several
// threads at once.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "chip/chip.h"
#include "chip/registry.h"

namespace chip::registry {

class Reader {
public:
    // Checks REGION's magic, layout version and geometry and remembers them.
    // 0, or -ESTALE with *WHY (when given) set to the reason: "not a chip
    // registry", "layout version 2, this reader knows 1", ...
    int attach(std::span<const std::byte> region, std::string *why = nullptr);
    bool attached() const { return hdr_ != nullptr; }

    // GROUP's members in join order: writes at most CAP pids to OUT and
    // returns the member count (0 for an unknown group). -EINVAL bad name,
    // -EAGAIN when no stable snapshot came within the retry budget (chipd
    // stopped or killed mid-write), -EIO when the region is corrupt.
    ssize_t members(std::string_view group, pid_t *out, std::size_t cap) const;
    // The groups in creation order with their member counts: writes at most
    // CAP entries to OUT and returns the group count. Errors as members().
    ssize_t groups(chip_group_info *out, std::size_t cap) const;

    // chipd abandoned this region (see registry.h, "Lifetime").
    bool dead() const;
    std::uint64_t generation() const;
    std::string_view name() const { return name_; }
    std::uint32_t max_groups() const { return max_groups_; }
    std::uint32_t max_members() const { return max_members_; }
    pid_t writer_pid() const { return writer_pid_; }

private:
    // Lookup inside a read section: the group's slot, or kNone; sets *bad
    // when the (possibly torn) index cannot be right.
    std::uint32_t find(std::string_view group, std::uint32_t hash, bool *bad) const;

    // Copies of the validated header: the shared header is never re-trusted.
    const chip_registry_header *hdr_ = nullptr;
    const std::uint32_t *index_ = nullptr;
    const chip_registry_group *groups_ = nullptr;
    const chip_registry_member *members_ = nullptr;
    std::uint32_t max_groups_ = 0;
    std::uint32_t max_members_ = 0;
    std::uint32_t index_size_ = 0;
    pid_t writer_pid_ = 0;
    char name_[CHIP_REGISTRY_NAME_MAX + 1] = {};
};

}  // namespace chip::registry
