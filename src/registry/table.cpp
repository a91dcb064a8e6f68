#include "registry/table.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/names.hpp"
#include "registry/layout.hpp"

namespace chip::registry {

std::size_t Table::region_size(std::uint32_t max_groups, std::uint32_t max_members) {
    auto g = geometry(max_groups, max_members);
    return g ? static_cast<std::size_t>(g->total_size) : 0;
}

int Table::init(std::span<std::byte> region, std::string_view name, std::uint32_t max_groups,
                std::uint32_t max_members, pid_t writer_pid) {
    auto geo = geometry(max_groups, max_members);
    if (!geo || !valid_group_name(name)) return -EINVAL;
    if (region.size() < geo->total_size) return -EINVAL;
    if (reinterpret_cast<std::uintptr_t>(region.data()) % alignof(chip_registry_header) != 0)
        return -EINVAL;

    std::byte *base = region.data();
    // Nobody trusts the region before it carries the magic, stored last with
    // release ordering; until then plain writes are fine.
    std::memset(base, 0, geo->total_size);
    hdr_ = reinterpret_cast<chip_registry_header *>(base);
    index_ = reinterpret_cast<std::uint32_t *>(base + geo->index_offset);
    groups_ = reinterpret_cast<chip_registry_group *>(base + geo->groups_offset);
    members_ = reinterpret_cast<chip_registry_member *>(base + geo->members_offset);
    max_groups_ = max_groups;
    max_members_ = max_members;
    index_mask_ = geo->index_size - 1;

    std::memset(index_, 0xff, std::size_t{geo->index_size} * sizeof(std::uint32_t));
    for (std::uint32_t g = 0; g < max_groups; ++g) {
        auto &gr = groups_[g];
        gr.first_member = gr.last_member = gr.prev_group = gr.next_group = kNone;
    }
    for (std::uint32_t m = 0; m < max_members; ++m) {
        auto &mem = members_[m];
        mem.group = mem.prev = mem.next = kNone;
    }
    hdr_->version = CHIP_REGISTRY_VERSION;
    hdr_->header_size = sizeof(chip_registry_header);
    hdr_->total_size = geo->total_size;
    hdr_->max_groups = max_groups;
    hdr_->max_members = max_members;
    hdr_->index_size = geo->index_size;
    hdr_->group_size = sizeof(chip_registry_group);
    hdr_->member_size = sizeof(chip_registry_member);
    hdr_->writer_pid = writer_pid;
    hdr_->index_offset = geo->index_offset;
    hdr_->groups_offset = geo->groups_offset;
    hdr_->members_offset = geo->members_offset;
    std::memcpy(hdr_->name, name.data(), name.size());
    hdr_->group_head = hdr_->group_tail = kNone;

    // Slot 0 first: pop from the back.
    free_groups_.clear();
    free_groups_.reserve(max_groups);
    for (std::uint32_t g = max_groups; g-- > 0;) free_groups_.push_back(g);
    free_members_.clear();
    free_members_.reserve(max_members);
    for (std::uint32_t m = max_members; m-- > 0;) free_members_.push_back(m);
    by_pid_.clear();
    batch_depth_ = 0;
    writing_ = false;
    seq_ = 0;

    store_release(hdr_->magic, CHIP_REGISTRY_MAGIC);
    return 0;
}

int Table::adopt(std::span<std::byte> region, std::string *why) {
    auto fail = [&](std::string reason) {
        if (why) *why = std::move(reason);
        return -EINVAL;
    };
    if (region.size() < sizeof(chip_registry_header) ||
        reinterpret_cast<std::uintptr_t>(region.data()) % alignof(chip_registry_header) != 0)
        return fail("not a chip registry (too small)");
    std::byte *base = region.data();
    auto *h = reinterpret_cast<chip_registry_header *>(base);
    if (load_acquire(h->magic) != CHIP_REGISTRY_MAGIC) return fail("not a chip registry");
    if (std::uint32_t v = load(h->version); v != CHIP_REGISTRY_VERSION)
        return fail("layout version " + std::to_string(v) + ", this chipd writes " +
                    std::to_string(CHIP_REGISTRY_VERSION));
    const std::uint32_t max_groups = load(h->max_groups), max_members = load(h->max_members);
    auto geo = geometry(max_groups, max_members);
    if (!geo || load(h->header_size) != sizeof(chip_registry_header) ||
        load(h->group_size) != sizeof(chip_registry_group) ||
        load(h->member_size) != sizeof(chip_registry_member) ||
        load(h->index_size) != geo->index_size || load(h->index_offset) != geo->index_offset ||
        load(h->groups_offset) != geo->groups_offset ||
        load(h->members_offset) != geo->members_offset || load(h->total_size) != geo->total_size)
        return fail("not a chip registry (inconsistent header)");
    if (region.size() < geo->total_size)
        return fail("truncated: " + std::to_string(region.size()) + " of " +
                    std::to_string(geo->total_size) + " bytes");
    const std::size_t name_len = ::strnlen(h->name, sizeof h->name);
    if (name_len == sizeof h->name || !valid_group_name(std::string_view(h->name, name_len)))
        return fail("not a chip registry (bad name)");
    if (load_acquire(h->dead) != 0) return fail("flagged dead");
    const std::uint64_t seq = load(h->seq);
    if (seq % 2 != 0) return fail("a write was left unfinished (seq " + std::to_string(seq) + ")");

    // Only chipd writes the region, and never leaves it half-written outside a
    // write section; still, nothing below trusts it: every slot is checked
    // against the capacities and every walk is bounded, so a corrupt region is
    // refused rather than written through.
    auto *index = reinterpret_cast<std::uint32_t *>(base + geo->index_offset);
    auto *groups = reinterpret_cast<chip_registry_group *>(base + geo->groups_offset);
    auto *members = reinterpret_cast<chip_registry_member *>(base + geo->members_offset);
    std::vector<bool> group_used(max_groups), member_used(max_members);
    std::unordered_map<pid_t, std::vector<std::uint32_t>> by_pid;
    std::uint32_t group_count = 0, member_count = 0;
    std::uint32_t prev_g = kNone;
    for (std::uint32_t g = load(h->group_head); g != kNone; g = load(groups[g].next_group)) {
        const std::string at = "group slot " + std::to_string(g);
        if (g >= max_groups || group_used[g]) return fail("the group list is broken at " + at);
        group_used[g] = true;
        ++group_count;
        auto &gr = groups[g];
        if (load(gr.prev_group) != prev_g) return fail(at + ": wrong previous group");
        const std::size_t len = load(gr.name_len);
        if (len == 0 || len > kMaxNameLen || gr.name[len] != '\0' ||
            !valid_group_name(std::string_view(gr.name, len)))
            return fail(at + ": bad name");
        const std::string_view gname(gr.name, len);
        if (load(gr.hash) != chip_registry_hash(gname.data(), gname.size()))
            return fail("group " + std::string(gname) + ": wrong hash");
        std::uint32_t count = 0, prev_m = kNone;
        for (std::uint32_t m = load(gr.first_member); m != kNone; m = load(members[m].next)) {
            if (m >= max_members || member_used[m])
                return fail("group " + std::string(gname) + ": its member list is broken");
            member_used[m] = true;
            ++count;
            const auto &mem = members[m];
            const pid_t pid = load(mem.pid);
            if (pid <= 0 || load(mem.group) != g || load(mem.prev) != prev_m)
                return fail("group " + std::string(gname) + ": member slot " + std::to_string(m) +
                            " is broken");
            auto &slots = by_pid[pid];
            // A pid's slots are gathered group by group: a second one in this
            // group would come right after the first.
            if (!slots.empty() && members[slots.back()].group == g)
                return fail("group " + std::string(gname) + ": pid " + std::to_string(pid) +
                            " twice");
            slots.push_back(m);
            prev_m = m;
        }
        if (count == 0 || load(gr.count) != count || load(gr.last_member) != prev_m)
            return fail("group " + std::string(gname) + ": wrong count or last member");
        member_count += count;
        prev_g = g;
    }
    if (load(h->group_tail) != prev_g || load(h->group_count) != group_count ||
        load(h->member_count) != member_count)
        return fail("the header's counts or group tail disagree with the lists");

    // The hash index holds each live group once, and a probe from its hash
    // reaches it before an empty bucket.
    std::vector<bool> indexed(max_groups);
    std::uint32_t buckets = 0;
    for (std::uint32_t b = 0; b < geo->index_size; ++b) {
        const std::uint32_t g = load(index[b]);
        if (g == kNone) continue;
        if (g >= max_groups || !group_used[g] || indexed[g])
            return fail("the hash index is broken at bucket " + std::to_string(b));
        indexed[g] = true;
        ++buckets;
    }
    if (buckets != group_count) return fail("the hash index misses a group");
    const std::uint32_t mask = geo->index_size - 1;
    for (std::uint32_t g = 0; g < max_groups; ++g) {
        if (!group_used[g]) continue;
        std::uint32_t b = load(groups[g].hash) & mask;
        while (load(index[b]) != g) {
            if (load(index[b]) == kNone)
                return fail("the hash index does not find group slot " + std::to_string(g));
            b = (b + 1) & mask;
        }
    }

    hdr_ = h;
    index_ = index;
    groups_ = groups;
    members_ = members;
    max_groups_ = max_groups;
    max_members_ = max_members;
    index_mask_ = mask;
    // Lowest free slot first, as after init().
    free_groups_.clear();
    free_groups_.reserve(max_groups);  // a push never allocates mid-write
    for (std::uint32_t g = max_groups; g-- > 0;)
        if (!group_used[g]) free_groups_.push_back(g);
    free_members_.clear();
    free_members_.reserve(max_members);
    for (std::uint32_t m = max_members; m-- > 0;)
        if (!member_used[m]) free_members_.push_back(m);
    by_pid_ = std::move(by_pid);
    batch_depth_ = 0;
    writing_ = false;
    seq_ = seq;
    return 0;
}

// The seqlock's write side (Boehm, "Can seqlocks get along with programming
// language memory models?"): seq goes odd, a release fence keeps the payload
// stores after it, the payload is stored (relaxed atomics), and seq goes even
// with a release store that publishes them. A write section opens lazily at
// the first real change, so a no-op join bumps nothing.
void Table::open_write() {
    if (writing_) return;
    store(hdr_->seq, seq_ + 1);
    std::atomic_thread_fence(std::memory_order_release);
    writing_ = true;
}

void Table::close_write() {
    if (!writing_ || batch_depth_ > 0) return;
    store(hdr_->generation, hdr_->generation + 1);
    seq_ += 2;
    store_release(hdr_->seq, seq_);
    writing_ = false;
}

void Table::begin() {
    ++batch_depth_;
}

void Table::commit() {
    if (batch_depth_ > 0 && --batch_depth_ == 0) close_write();
}

void Table::mark_dead() {
    if (hdr_) store_release(hdr_->dead, 1u);
}

std::uint32_t Table::find_group(std::string_view name, std::uint32_t hash) const {
    // The index is at most half full, so the probe ends at an empty bucket.
    for (std::uint32_t b = hash & index_mask_;; b = (b + 1) & index_mask_) {
        std::uint32_t g = index_[b];
        if (g == kNone) return kNone;
        const auto &gr = groups_[g];
        if (gr.hash == hash && gr.name_len == name.size() &&
            std::memcmp(gr.name, name.data(), name.size()) == 0)
            return g;
    }
}

std::uint32_t Table::create_group(std::string_view name, std::uint32_t hash) {
    std::uint32_t g = free_groups_.back();
    free_groups_.pop_back();
    auto &gr = groups_[g];
    for (std::size_t i = 0; i <= kMaxNameLen; ++i)
        store(gr.name[i], i < name.size() ? name[i] : '\0');
    store(gr.name_len, name.size());
    store(gr.hash, hash);
    store(gr.count, 0u);
    store(gr.first_member, kNone);
    store(gr.last_member, kNone);
    store(gr.prev_group, hdr_->group_tail);
    store(gr.next_group, kNone);
    if (hdr_->group_tail == kNone)
        store(hdr_->group_head, g);
    else
        store(groups_[hdr_->group_tail].next_group, g);
    store(hdr_->group_tail, g);
    store(hdr_->group_count, hdr_->group_count + 1);

    std::uint32_t b = hash & index_mask_;
    while (index_[b] != kNone) b = (b + 1) & index_mask_;
    store(index_[b], g);
    return g;
}

void Table::remove_group(std::uint32_t g) {
    auto &gr = groups_[g];
    // Backward-shift deletion (no tombstones): after emptying bucket `hole`,
    // pull back each later entry of the cluster whose home bucket is not
    // between the hole and its position, so every probe still reaches it.
    std::uint32_t hole = gr.hash & index_mask_;
    while (index_[hole] != g) hole = (hole + 1) & index_mask_;
    for (std::uint32_t j = (hole + 1) & index_mask_; index_[j] != kNone;
         j = (j + 1) & index_mask_) {
        std::uint32_t home = groups_[index_[j]].hash & index_mask_;
        if (((j - home) & index_mask_) >= ((j - hole) & index_mask_)) {
            store(index_[hole], index_[j]);
            hole = j;
        }
    }
    store(index_[hole], kNone);

    if (gr.prev_group == kNone)
        store(hdr_->group_head, gr.next_group);
    else
        store(groups_[gr.prev_group].next_group, gr.next_group);
    if (gr.next_group == kNone)
        store(hdr_->group_tail, gr.prev_group);
    else
        store(groups_[gr.next_group].prev_group, gr.prev_group);
    store(gr.name_len, 0u);
    store(gr.name[0], '\0');
    store(gr.hash, 0u);
    store(gr.prev_group, kNone);
    store(gr.next_group, kNone);
    store(hdr_->group_count, hdr_->group_count - 1);
    free_groups_.push_back(g);
}

void Table::unlink_member(std::uint32_t m) {
    auto &mem = members_[m];
    std::uint32_t g = mem.group;
    auto &gr = groups_[g];
    if (mem.prev == kNone)
        store(gr.first_member, mem.next);
    else
        store(members_[mem.prev].next, mem.next);
    if (mem.next == kNone)
        store(gr.last_member, mem.prev);
    else
        store(members_[mem.next].prev, mem.prev);
    store(gr.count, gr.count - 1);
    store(mem.pid, 0);
    store(mem.group, kNone);
    store(mem.prev, kNone);
    store(mem.next, kNone);
    store(hdr_->member_count, hdr_->member_count - 1);
    free_members_.push_back(m);
    if (gr.count == 0) remove_group(g);
}

std::uint32_t Table::pid_slot_in(pid_t pid, std::uint32_t g) const {
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return kNone;
    for (std::uint32_t m : it->second)
        if (members_[m].group == g) return m;
    return kNone;
}

int Table::join(std::string_view group, pid_t pid) {
    if (!hdr_ || !valid_group_name(group) || pid <= 0) return -EINVAL;
    std::uint32_t hash = chip_registry_hash(group.data(), group.size());
    std::uint32_t g = find_group(group, hash);
    if (g != kNone && pid_slot_in(pid, g) != kNone) return 0;
    if (free_members_.empty() || (g == kNone && free_groups_.empty())) return -ENOSPC;
    // Allocate first: a bad_alloc leaves the region untouched.
    auto &slots = by_pid_[pid];
    slots.reserve(slots.size() + 1);

    open_write();
    if (g == kNone) g = create_group(group, hash);
    std::uint32_t m = free_members_.back();
    free_members_.pop_back();
    auto &gr = groups_[g];
    auto &mem = members_[m];
    store(mem.pid, pid);
    store(mem.group, g);
    store(mem.prev, gr.last_member);
    store(mem.next, kNone);
    if (gr.last_member == kNone)
        store(gr.first_member, m);
    else
        store(members_[gr.last_member].next, m);
    store(gr.last_member, m);
    store(gr.count, gr.count + 1);
    store(hdr_->member_count, hdr_->member_count + 1);
    close_write();
    slots.push_back(m);
    return 0;
}

int Table::leave(std::string_view group, pid_t pid) {
    if (!hdr_ || !valid_group_name(group)) return -EINVAL;
    std::uint32_t g = find_group(group, chip_registry_hash(group.data(), group.size()));
    if (g == kNone) return 0;
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return 0;
    auto &slots = it->second;
    auto pos = std::find_if(slots.begin(), slots.end(),
                            [&](std::uint32_t m) { return members_[m].group == g; });
    if (pos == slots.end()) return 0;
    open_write();
    unlink_member(*pos);
    close_write();
    slots.erase(pos);
    if (slots.empty()) by_pid_.erase(it);
    return 0;
}

std::size_t Table::remove_pid(pid_t pid) {
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return 0;
    std::size_t n = it->second.size();
    open_write();
    for (std::uint32_t m : it->second) unlink_member(m);
    close_write();
    by_pid_.erase(it);
    return n;
}

bool Table::has_member(pid_t pid) const {
    return by_pid_.count(pid) != 0;
}

std::vector<std::string> Table::groups_of(pid_t pid) const {
    std::vector<std::string> out;
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return out;
    for (std::uint32_t m : it->second) {
        const auto &gr = groups_[members_[m].group];
        out.emplace_back(gr.name, gr.name_len);
    }
    return out;
}

std::vector<pid_t> Table::members(std::string_view group) const {
    std::vector<pid_t> out;
    if (!hdr_) return out;
    std::uint32_t g = find_group(group, chip_registry_hash(group.data(), group.size()));
    if (g == kNone) return out;
    out.reserve(groups_[g].count);
    for (std::uint32_t m = groups_[g].first_member; m != kNone; m = members_[m].next)
        out.push_back(members_[m].pid);
    return out;
}

std::vector<std::pair<std::string, std::uint32_t>> Table::groups() const {
    std::vector<std::pair<std::string, std::uint32_t>> out;
    if (!hdr_) return out;
    out.reserve(hdr_->group_count);
    for (std::uint32_t g = hdr_->group_head; g != kNone; g = groups_[g].next_group)
        out.emplace_back(std::string(groups_[g].name, groups_[g].name_len), groups_[g].count);
    return out;
}

std::uint32_t Table::group_count() const {
    return hdr_ ? hdr_->group_count : 0;
}
std::uint32_t Table::member_count() const {
    return hdr_ ? hdr_->member_count : 0;
}
std::uint64_t Table::generation() const {
    return hdr_ ? hdr_->generation : 0;
}
pid_t Table::writer_pid() const {
    return hdr_ ? hdr_->writer_pid : 0;
}
std::string_view Table::name() const {
    return hdr_ ? std::string_view(hdr_->name) : std::string_view();
}

}  // namespace chip::registry
