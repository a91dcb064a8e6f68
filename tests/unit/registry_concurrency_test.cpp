// The registry's seqlock under fire: one writer thread mutating as fast as it
// can while reader threads take snapshots and check invariants that the writer
// keeps in every committed state, so that a torn snapshot would break them.
//
// The writer keeps group "g" = some data pids (each in 1..kMaxData) followed by
// one checksum member whose pid is kChecksumBase + the sum of the others, and
// group "mirror" = the same data pids (so in groups(), count(g) is always
// count(mirror) + 1). Each step changes data pids and re-appends the checksum
// inside one batch (begin/commit). Unrelated single mutations on churn groups
// run between batches. Every 2000 steps the writer waits until a reader has
// seen its latest generation, so readers observe at least 100 generations.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "registry/reader.hpp"
#include "registry/table.hpp"

using chip::registry::Reader;
using chip::registry::Table;

namespace {

constexpr pid_t kMaxData = 1000;
constexpr pid_t kChecksumBase = 1'000'000;
constexpr int kIterations = 200'000;
constexpr int kReaders = 3;

struct ReaderStats {
    long snapshots = 0;
    long violations = 0;
    long errors = 0;       // failures other than EAGAIN
    long gave_up = 0;      // EAGAIN: the writer held the seqlock past the budget
    long generations = 0;  // distinct generations observed (changes seen)
};

// Returns false when the snapshot of g breaks the checksum invariant.
bool checksum_holds(const pid_t *pids, ssize_t n) {
    if (n < 1) return false;
    long sum = 0;
    std::set<pid_t> seen;
    for (ssize_t i = 0; i + 1 < n; ++i) {
        if (pids[i] < 1 || pids[i] > kMaxData || !seen.insert(pids[i]).second) return false;
        sum += pids[i];
    }
    return pids[n - 1] == kChecksumBase + sum;
}

void read_loop(const Reader &reader, const std::atomic<bool> &done, std::atomic<int> &started,
               std::atomic<std::uint64_t> &seen, ReaderStats &st, int which) {
    started.fetch_add(1, std::memory_order_release);
    std::vector<pid_t> pids(kMaxData + 8);
    std::vector<chip_group_info> groups(64);
    std::uint64_t last_gen = ~0ull;
    while (!done.load(std::memory_order_acquire)) {
        std::uint64_t gen = reader.generation();
        if (gen != last_gen) {
            ++st.generations;
            last_gen = gen;
            if (gen > seen.load(std::memory_order_relaxed))
                seen.store(gen, std::memory_order_release);
        }
        if ((st.snapshots + which) % 2 == 0) {
            ssize_t n = reader.members("g", pids.data(), pids.size());
            if (n == -EAGAIN) {
                ++st.gave_up;
            } else if (n < 0) {
                ++st.errors;
            } else if (static_cast<std::size_t>(n) > pids.size() ||
                       !checksum_holds(pids.data(), n)) {
                ++st.violations;
            }
        } else {
            ssize_t n = reader.groups(groups.data(), groups.size());
            if (n == -EAGAIN) {
                ++st.gave_up;
            } else if (n < 0) {
                ++st.errors;
            } else {
                long g = -1, mirror = 0;
                for (ssize_t i = 0; i < n && i < 64; ++i) {
                    if (std::strcmp(groups[i].name, "g") == 0) g = groups[i].count;
                    if (std::strcmp(groups[i].name, "mirror") == 0) mirror = groups[i].count;
                }
                if (n > 64 || g != mirror + 1) ++st.violations;
            }
        }
        ++st.snapshots;
    }
}

}  // namespace

TEST_CASE("readers never see a torn snapshot while a writer mutates as fast as it can") {
    const std::uint32_t kGroups = 64, kMembers = 4096;
    std::size_t size = Table::region_size(kGroups, kMembers);
    auto words = std::make_unique<std::uint64_t[]>(size / 8 + 1);
    std::span<std::byte> region(reinterpret_cast<std::byte *>(words.get()), size);
    Table table;
    REQUIRE(table.init(region, "conc", kGroups, kMembers, 1) == 0);
    REQUIRE(table.join("g", kChecksumBase) == 0);  // empty data, checksum 0
    Reader reader;
    REQUIRE(reader.attach(region) == 0);

    std::atomic<bool> done{false};
    std::atomic<int> started{0};
    std::atomic<std::uint64_t> seen{0};  // the latest generation a reader saw
    std::vector<ReaderStats> stats(kReaders);
    std::vector<std::thread> readers;
    for (int i = 0; i < kReaders; ++i)
        readers.emplace_back(read_loop, std::cref(reader), std::cref(done), std::ref(started),
                             std::ref(seen), std::ref(stats[i]), i);
    // The writer starts once every reader is reading (a spin, not a sleep).
    while (started.load(std::memory_order_acquire) < kReaders) std::this_thread::yield();

    long writer_failures = 0;
    {
        std::mt19937 rng(2024);
        std::set<pid_t> data;
        long sum = 0;
        for (int it = 0; it < kIterations; ++it) {
            pid_t p = static_cast<pid_t>(1 + rng() % kMaxData);
            unsigned op = rng() % 8;
            table.begin();
            table.leave("g", static_cast<pid_t>(kChecksumBase + sum));
            if (op < 4 && !data.count(p) && data.size() < 500) {
                writer_failures += table.join("g", p) != 0;
                writer_failures += table.join("mirror", p) != 0;
                writer_failures += table.join("c" + std::to_string(p % 16), p) != 0;
                data.insert(p);
                sum += p;
            } else if (op < 6 && data.count(p)) {
                writer_failures += table.leave("g", p) != 0;
                writer_failures += table.leave("mirror", p) != 0;
                writer_failures += table.leave("c" + std::to_string(p % 16), p) != 0;
                data.erase(p);
                sum -= p;
            } else if (data.count(p)) {
                // Death: out of g, mirror and its churn group in one go.
                writer_failures += table.remove_pid(p) != 3;
                data.erase(p);
                sum -= p;
            }
            writer_failures += table.join("g", static_cast<pid_t>(kChecksumBase + sum)) != 0;
            table.commit();
            // Unbatched churn on groups the readers do not check.
            std::string x = "x" + std::to_string((it / 2) % 8);
            pid_t xp = 2'000'000 + (it / 2) % 5;
            writer_failures += (it % 2 == 0 ? table.join(x, xp) : table.leave(x, xp)) != 0;
            // Now and then let the readers catch up, so that they observe many
            // generations whatever the scheduler does (a handshake, not a sleep).
            if (it % 2000 == 1999)
                while (seen.load(std::memory_order_acquire) < table.generation())
                    std::this_thread::yield();
        }
    }
    done.store(true, std::memory_order_release);
    for (auto &t : readers) t.join();

    CHECK(writer_failures == 0);
    long snapshots = 0, generations = 0;
    for (const auto &st : stats) {
        CHECK(st.violations == 0);
        CHECK(st.errors == 0);
        snapshots += st.snapshots;
        generations += st.generations;
    }
    MESSAGE("snapshots: " << snapshots << ", generation changes seen: " << generations
                          << ", final generation: " << table.generation());
    CHECK(snapshots > 1000);
    CHECK(generations >= kIterations / 2000);
}
