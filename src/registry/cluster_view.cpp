#include "registry/cluster_view.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/names.hpp"
#include "registry/layout.hpp"
#include "registry/seqlock.hpp"

namespace chip::registry {

namespace {

static_assert(sizeof(chip_cluster_header) == 152);
static_assert(offsetof(chip_cluster_header, seq) == 120);
static_assert(offsetof(chip_cluster_header, count) == 140);
static_assert(sizeof(chip_cluster_entry) == 136);
static_assert(offsetof(chip_cluster_entry, pid) == 132);

constexpr std::uint32_t kMaxEntriesLimit = kMaxMembersLimit;

std::uint64_t entries_offset() {
    return align_up(sizeof(chip_cluster_header));
}

// A name field of the (untrusted) region: its length up to the NUL, or -1.
int name_len(const char *field) {
    for (int i = 0; i <= CHIP_REGISTRY_NAME_MAX; ++i)
        if (load(field[i]) == '\0') return i == 0 ? -1 : i;
    return -1;
}

bool same_name(const char *field, std::string_view name) {
    for (std::size_t i = 0; i < name.size(); ++i)
        if (load(field[i]) != name[i]) return false;
    return load(field[name.size()]) == '\0';
}

}  // namespace

std::size_t ClusterView::region_size(std::uint32_t max_entries) {
    if (max_entries == 0 || max_entries > kMaxEntriesLimit) return 0;
    return align_up(entries_offset() + std::uint64_t{max_entries} * sizeof(chip_cluster_entry));
}

int ClusterView::init(std::span<std::byte> region, std::string_view name, std::uint32_t max_entries,
                      pid_t writer_pid) {
    std::size_t size = region_size(max_entries);
    if (size == 0 || region.size() < size || !valid_group_name(name) ||
        reinterpret_cast<std::uintptr_t>(region.data()) % 8 != 0)
        return -EINVAL;
    std::memset(region.data(), 0, size);
    auto *h = reinterpret_cast<chip_cluster_header *>(region.data());
    h->version = CHIP_CLUSTER_VERSION;
    h->header_size = sizeof(chip_cluster_header);
    h->total_size = size;
    h->max_entries = max_entries;
    h->entry_size = sizeof(chip_cluster_entry);
    h->entries_offset = entries_offset();
    h->writer_pid = writer_pid;
    std::memcpy(h->name, name.data(), name.size());
    hdr_ = h;
    entries_ = reinterpret_cast<chip_cluster_entry *>(region.data() + entries_offset());
    max_entries_ = max_entries;
    seq_ = 0;
    // Magic last: a reader that sees it sees the static fields.
    store_release(h->magic, CHIP_CLUSTER_MAGIC);
    return 0;
}

int ClusterView::adopt(std::span<std::byte> region, std::string *why) {
    auto fail = [&](std::string reason) {
        if (why) *why = std::move(reason);
        return -EINVAL;
    };
    if (region.size() < sizeof(chip_cluster_header) ||
        reinterpret_cast<std::uintptr_t>(region.data()) % 8 != 0)
        return fail("not a chip cluster view (too small)");
    auto *h = reinterpret_cast<chip_cluster_header *>(region.data());
    if (load_acquire(h->magic) != CHIP_CLUSTER_MAGIC) return fail("not a chip cluster view");
    if (std::uint32_t v = load(h->version); v != CHIP_CLUSTER_VERSION)
        return fail("cluster layout version " + std::to_string(v) + ", this chipd writes " +
                    std::to_string(CHIP_CLUSTER_VERSION));
    const std::uint32_t max = load(h->max_entries);
    const std::size_t size = region_size(max);
    if (size == 0 || load(h->header_size) != sizeof(chip_cluster_header) ||
        load(h->entry_size) != sizeof(chip_cluster_entry) ||
        load(h->entries_offset) != entries_offset() || load(h->total_size) != size)
        return fail("not a chip cluster view (inconsistent header)");
    if (region.size() < size)
        return fail("truncated: " + std::to_string(region.size()) + " of " + std::to_string(size) +
                    " bytes");
    if (name_len(h->name) < 0 || !valid_group_name(h->name))
        return fail("not a chip cluster view (bad name)");
    if (load_acquire(h->dead) != 0) return fail("flagged dead");
    const std::uint64_t seq = load(h->seq);
    if (seq % 2 != 0) return fail("a write was left unfinished (seq " + std::to_string(seq) + ")");
    if (load(h->count) > max) return fail("more entries than slots");
    hdr_ = h;
    entries_ = reinterpret_cast<chip_cluster_entry *>(region.data() + entries_offset());
    max_entries_ = max;
    seq_ = seq;
    return 0;
}

std::string_view ClusterView::name() const {
    return hdr_ ? std::string_view(hdr_->name) : std::string_view();
}

void ClusterView::open_write() {
    store(hdr_->seq, seq_ + 1);
    std::atomic_thread_fence(std::memory_order_release);
}

void ClusterView::close_write() {
    seq_ += 2;
    store_release(hdr_->seq, seq_);
}

std::size_t ClusterView::replace(std::vector<ClusterMember> members) {
    if (!hdr_) return members.size();
    std::sort(members.begin(), members.end());
    std::size_t n = std::min<std::size_t>(members.size(), max_entries_);
    open_write();
    for (std::size_t i = 0; i < n; ++i) {
        auto &e = entries_[i];
        const auto &m = members[i];
        for (std::size_t k = 0; k <= CHIP_REGISTRY_NAME_MAX; ++k) {
            store(e.group[k], k < m.group.size() ? m.group[k] : '\0');
            store(e.node[k], k < m.node.size() ? m.node[k] : '\0');
        }
        store(e.pid, m.pid);
    }
    store(hdr_->count, n);
    store(hdr_->generation, load(hdr_->generation) + 1);
    close_write();
    return members.size() - n;
}

void ClusterView::set_connected(bool connected) {
    if (hdr_) store_release(hdr_->connected, connected ? 1u : 0u);
}

void ClusterView::mark_dead() {
    if (hdr_) store_release(hdr_->dead, 1u);
}

int ClusterReader::attach(std::span<const std::byte> region, std::string *why) {
    auto fail = [&](const char *reason) {
        hdr_ = nullptr;
        if (why) *why = reason;
        return -ESTALE;
    };
    hdr_ = nullptr;
    if (region.size() < sizeof(chip_cluster_header) ||
        reinterpret_cast<std::uintptr_t>(region.data()) % 8 != 0)
        return fail("not a chip cluster view (too small)");
    const auto *h = reinterpret_cast<const chip_cluster_header *>(region.data());
    if (load_acquire(h->magic) != CHIP_CLUSTER_MAGIC) return fail("not a chip cluster view");
    if (load(h->version) != CHIP_CLUSTER_VERSION)
        return fail("a cluster view of another layout version");
    std::uint32_t max = load(h->max_entries);
    std::size_t size = ClusterView::region_size(max);
    if (size == 0 || load(h->header_size) != sizeof(chip_cluster_header) ||
        load(h->entry_size) != sizeof(chip_cluster_entry) ||
        load(h->entries_offset) != entries_offset() || load(h->total_size) != size)
        return fail("not a chip cluster view (inconsistent header)");
    if (region.size() < size) return fail("chip cluster view truncated");
    entries_ = reinterpret_cast<const chip_cluster_entry *>(region.data() + entries_offset());
    max_entries_ = max;
    hdr_ = h;
    return 0;
}

bool ClusterReader::dead() const {
    return hdr_ && load_acquire(hdr_->dead) != 0;
}

bool ClusterReader::connected() const {
    return hdr_ && load_acquire(hdr_->connected) != 0;
}

ssize_t ClusterReader::members(std::string_view group, chip_cluster_member *out,
                               std::size_t cap) const {
    if (!hdr_) return -EINVAL;
    if (!valid_group_name(group) || (!out && cap > 0)) return -EINVAL;
    return read_consistent(hdr_->seq, [&](bool *bad) -> ssize_t {
        std::uint32_t count = load(hdr_->count);
        if (count > max_entries_) {
            *bad = true;
            return 0;
        }
        std::size_t n = 0;
        for (std::uint32_t i = 0; i < count; ++i) {
            const auto &e = entries_[i];
            if (!same_name(e.group, group)) continue;
            if (n < cap) {
                int len = name_len(e.node);
                if (len < 0) {
                    *bad = true;
                    return 0;
                }
                for (int k = 0; k < len; ++k) out[n].node[k] = load(e.node[k]);
                out[n].node[len] = '\0';
                out[n].pid = load(e.pid);
            }
            ++n;
        }
        return static_cast<ssize_t>(n);
    });
}

ssize_t ClusterReader::groups(chip_group_info *out, std::size_t cap) const {
    if (!hdr_) return -EINVAL;
    if (!out && cap > 0) return -EINVAL;
    return read_consistent(hdr_->seq, [&](bool *bad) -> ssize_t {
        std::uint32_t count = load(hdr_->count);
        if (count > max_entries_) {
            *bad = true;
            return 0;
        }
        std::size_t n = 0;
        char last[CHIP_REGISTRY_NAME_MAX + 1] = {};
        for (std::uint32_t i = 0; i < count; ++i) {
            const auto &e = entries_[i];
            int len = name_len(e.group);
            if (len < 0) {
                *bad = true;
                return 0;
            }
            if (n > 0 && same_name(e.group, std::string_view(last))) {
                if (n <= cap) ++out[n - 1].count;
                continue;
            }
            for (int k = 0; k < len; ++k) last[k] = load(e.group[k]);
            last[len] = '\0';
            if (n < cap) {
                std::memcpy(out[n].name, last, static_cast<std::size_t>(len) + 1);
                out[n].count = 1;
            }
            ++n;
        }
        return static_cast<ssize_t>(n);
    });
}

}  // namespace chip::registry
