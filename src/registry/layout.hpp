// Shared by the registry's writer (Table) and reader (Reader): the geometry of
// a region (where each table starts for given capacities), compile-time checks
// that include/chip/registry.h has the layout it documents, and the relaxed
// atomic accessors both sides use on the shared bytes.
//
// Not for use outside src/registry: it is the one place that knows offsets.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "chip/registry.h"

namespace chip::registry {

// Accepted capacities. The upper bounds keep every offset far below 2^32 slots
// and the region below a few hundred MiB.
inline constexpr std::uint32_t kMaxGroupsLimit = 1u << 20;
inline constexpr std::uint32_t kMaxMembersLimit = 1u << 24;
inline constexpr std::uint32_t kNone = CHIP_REGISTRY_NONE;
inline constexpr std::size_t kAlign = 64;  // each table starts on a cache line

// Where everything lives for given capacities.
struct Geometry {
    std::uint32_t index_size = 0;  // power of two >= 2 * max_groups
    std::uint64_t index_offset = 0;
    std::uint64_t groups_offset = 0;
    std::uint64_t members_offset = 0;
    std::uint64_t total_size = 0;
};

constexpr std::uint64_t align_up(std::uint64_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

// nullopt when a capacity is 0 or over its limit.
constexpr std::optional<Geometry> geometry(std::uint32_t max_groups, std::uint32_t max_members) {
    if (max_groups == 0 || max_groups > kMaxGroupsLimit) return std::nullopt;
    if (max_members == 0 || max_members > kMaxMembersLimit) return std::nullopt;
    Geometry g;
    g.index_size = 2;
    while (g.index_size < 2 * max_groups) g.index_size *= 2;
    g.index_offset = align_up(sizeof(chip_registry_header));
    g.groups_offset =
        align_up(g.index_offset + std::uint64_t{g.index_size} * sizeof(std::uint32_t));
    g.members_offset =
        align_up(g.groups_offset + std::uint64_t{max_groups} * sizeof(chip_registry_group));
    g.total_size =
        align_up(g.members_offset + std::uint64_t{max_members} * sizeof(chip_registry_member));
    return g;
}

// The layout promised by registry.h's comment; a change here is a new
// CHIP_REGISTRY_VERSION.
static_assert(sizeof(pid_t) == sizeof(std::int32_t));
static_assert(sizeof(chip_registry_header) == 184);
static_assert(offsetof(chip_registry_header, version) == 8);
static_assert(offsetof(chip_registry_header, total_size) == 16);
static_assert(offsetof(chip_registry_header, max_groups) == 24);
static_assert(offsetof(chip_registry_header, writer_pid) == 44);
static_assert(offsetof(chip_registry_header, index_offset) == 48);
static_assert(offsetof(chip_registry_header, name) == 72);
static_assert(offsetof(chip_registry_header, seq) == 144);
static_assert(offsetof(chip_registry_header, generation) == 152);
static_assert(offsetof(chip_registry_header, dead) == 160);
static_assert(offsetof(chip_registry_header, group_head) == 172);
static_assert(sizeof(chip_registry_group) == 96);
static_assert(offsetof(chip_registry_group, name_len) == 65);
static_assert(offsetof(chip_registry_group, hash) == 68);
static_assert(offsetof(chip_registry_group, count) == 72);
static_assert(offsetof(chip_registry_group, first_member) == 76);
static_assert(offsetof(chip_registry_group, next_group) == 88);
static_assert(sizeof(chip_registry_member) == 16);
static_assert(offsetof(chip_registry_member, next) == 12);
static_assert(alignof(chip_registry_header) == 8);

// Every access to the shared fields goes through these: the region is written
// by chipd while other processes read it, so plain accesses would be data races.
// Relaxed atomic loads and stores compile to plain moves; the seqlock's fences
// give the ordering (see Reader). std::atomic_ref<const T> only arrives in
// C++26: a load never writes, so the const_cast is sound even on PROT_READ pages.
template <typename T>
inline T load(const T &field) {
    return std::atomic_ref<T>(const_cast<T &>(field)).load(std::memory_order_relaxed);
}
template <typename T>
inline T load_acquire(const T &field) {
    return std::atomic_ref<T>(const_cast<T &>(field)).load(std::memory_order_acquire);
}
template <typename T, typename V>
inline void store(T &field, V value) {
    std::atomic_ref<T>(field).store(static_cast<T>(value), std::memory_order_relaxed);
}
template <typename T, typename V>
inline void store_release(T &field, V value) {
    std::atomic_ref<T>(field).store(static_cast<T>(value), std::memory_order_release);
}

}  // namespace chip::registry
