#include "registry/reader.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/names.hpp"
#include "os/clock.hpp"
#include "registry/layout.hpp"
#include "registry/seqlock.hpp"

namespace chip::registry {

int Reader::attach(std::span<const std::byte> region, std::string *why) {
    auto fail = [&](std::string reason) {
        hdr_ = nullptr;
        if (why) *why = std::move(reason);
        return -ESTALE;
    };
    hdr_ = nullptr;
    if (region.size() < sizeof(chip_registry_header) ||
        reinterpret_cast<std::uintptr_t>(region.data()) % alignof(chip_registry_header) != 0)
        return fail("not a chip registry (too small)");
    const auto *h = reinterpret_cast<const chip_registry_header *>(region.data());
    if (load_acquire(h->magic) != CHIP_REGISTRY_MAGIC) return fail("not a chip registry");
    std::uint32_t version = load(h->version);
    if (version != CHIP_REGISTRY_VERSION)
        return fail("layout version " + std::to_string(version) + ", this reader knows " +
                    std::to_string(CHIP_REGISTRY_VERSION));
    std::uint32_t max_groups = load(h->max_groups), max_members = load(h->max_members);
    auto geo = geometry(max_groups, max_members);
    if (load(h->header_size) != sizeof(chip_registry_header) ||
        load(h->group_size) != sizeof(chip_registry_group) ||
        load(h->member_size) != sizeof(chip_registry_member) || !geo ||
        load(h->index_size) != geo->index_size || load(h->index_offset) != geo->index_offset ||
        load(h->groups_offset) != geo->groups_offset ||
        load(h->members_offset) != geo->members_offset || load(h->total_size) != geo->total_size)
        return fail("not a chip registry (inconsistent header)");
    if (region.size() < geo->total_size) return fail("chip registry truncated");
    for (std::size_t i = 0; i <= CHIP_REGISTRY_NAME_MAX; ++i) name_[i] = load(h->name[i]);
    name_[CHIP_REGISTRY_NAME_MAX] = '\0';

    const std::byte *base = region.data();
    index_ = reinterpret_cast<const std::uint32_t *>(base + geo->index_offset);
    groups_ = reinterpret_cast<const chip_registry_group *>(base + geo->groups_offset);
    members_ = reinterpret_cast<const chip_registry_member *>(base + geo->members_offset);
    max_groups_ = max_groups;
    max_members_ = max_members;
    index_size_ = geo->index_size;
    writer_pid_ = load(h->writer_pid);
    hdr_ = h;
    return 0;
}

bool Reader::dead() const {
    return hdr_ && load_acquire(hdr_->dead) != 0;
}

std::uint64_t Reader::generation() const {
    return hdr_ ? load_acquire(hdr_->generation) : 0;
}

std::uint32_t Reader::find(std::string_view group, std::uint32_t hash, bool *bad) const {
    const std::uint32_t mask = index_size_ - 1;
    std::uint32_t b = hash & mask;
    for (std::uint32_t probes = 0; probes < index_size_; ++probes, b = (b + 1) & mask) {
        std::uint32_t g = load(index_[b]);
        if (g == kNone) return kNone;
        if (g >= max_groups_) {
            *bad = true;
            return kNone;
        }
        const auto &gr = groups_[g];
        if (load(gr.hash) != hash || load(gr.name_len) != group.size()) continue;
        std::size_t i = 0;
        while (i < group.size() && load(gr.name[i]) == group[i]) ++i;
        if (i == group.size()) return g;
    }
    *bad = true;  // the index is never full: a probe must end at an empty bucket
    return kNone;
}

ssize_t Reader::members(std::string_view group, pid_t *out, std::size_t cap) const {
    if (!hdr_) return -EINVAL;
    if (!valid_group_name(group) || (!out && cap > 0)) return -EINVAL;
    const std::uint32_t hash = chip_registry_hash(group.data(), group.size());
    return read_consistent(hdr_->seq, [&](bool *bad) -> ssize_t {
        std::uint32_t g = find(group, hash, bad);
        if (g == kNone) return 0;
        std::size_t n = 0;
        for (std::uint32_t m = load(groups_[g].first_member); m != kNone;
             m = load(members_[m].next)) {
            if (m >= max_members_ || n >= max_members_) {
                *bad = true;
                break;
            }
            if (n < cap) out[n] = load(members_[m].pid);
            ++n;
        }
        return static_cast<ssize_t>(n);
    });
}

ssize_t Reader::groups(chip_group_info *out, std::size_t cap) const {
    if (!hdr_) return -EINVAL;
    if (!out && cap > 0) return -EINVAL;
    return read_consistent(hdr_->seq, [&](bool *bad) -> ssize_t {
        std::size_t n = 0;
        for (std::uint32_t g = load(hdr_->group_head); g != kNone;
             g = load(groups_[g].next_group)) {
            if (g >= max_groups_ || n >= max_groups_) {
                *bad = true;
                break;
            }
            const auto &gr = groups_[g];
            if (n < cap) {
                std::size_t len = load(gr.name_len);
                if (len == 0 || len > CHIP_REGISTRY_NAME_MAX) {
                    *bad = true;
                    break;
                }
                for (std::size_t i = 0; i < len; ++i) out[n].name[i] = load(gr.name[i]);
                out[n].name[len] = '\0';
                out[n].count = load(gr.count);
            }
            ++n;
        }
        return static_cast<ssize_t>(n);
    });
}

}  // namespace chip::registry
