// The registry's writer (Table) and reader (Reader) on heap memory.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chip/registry.h"
#include "registry/cluster_view.hpp"
#include "registry/reader.hpp"
#include "registry/table.hpp"

using chip::registry::ClusterReader;
using chip::registry::ClusterView;
using chip::registry::Reader;
using chip::registry::Table;

namespace {

// A formatted region on the heap (8-byte aligned) with its writer and reader.
struct Fixture {
    explicit Fixture(std::uint32_t max_groups = 16, std::uint32_t max_members = 64)
        : size(Table::region_size(max_groups, max_members)),
          words(std::make_unique<std::uint64_t[]>(size / 8 + 1)) {
        REQUIRE(size > 0);
        REQUIRE(table.init(bytes(), "reg", max_groups, max_members, 4242) == 0);
        REQUIRE(reader.attach(bytes()) == 0);
    }
    std::span<std::byte> bytes() { return {reinterpret_cast<std::byte *>(words.get()), size}; }
    chip_registry_header &header() {
        return *reinterpret_cast<chip_registry_header *>(words.get());
    }

    std::vector<pid_t> members(const std::string &g) {
        std::vector<pid_t> out(256);
        ssize_t n = reader.members(g, out.data(), out.size());
        REQUIRE(n >= 0);
        out.resize(static_cast<std::size_t>(n));
        CHECK(out == table.members(g));
        return out;
    }
    std::map<std::string, std::uint32_t> groups() {
        std::vector<chip_group_info> out(1024);
        ssize_t n = reader.groups(out.data(), out.size());
        REQUIRE(n >= 0);
        std::map<std::string, std::uint32_t> m;
        for (ssize_t i = 0; i < n; ++i) m[out[i].name] = out[i].count;
        return m;
    }

    std::size_t size;
    std::unique_ptr<std::uint64_t[]> words;
    Table table;
    Reader reader;
};

using Pids = std::vector<pid_t>;

}  // namespace

TEST_CASE("a fresh registry is empty and describes itself in its header") {
    Fixture f(10, 100);
    CHECK(f.header().magic == CHIP_REGISTRY_MAGIC);
    CHECK(f.header().version == CHIP_REGISTRY_VERSION);
    CHECK(f.header().max_groups == 10);
    CHECK(f.header().max_members == 100);
    CHECK(f.header().index_size == 32);
    CHECK(f.header().writer_pid == 4242);
    CHECK(f.header().seq % 2 == 0);
    CHECK(f.header().total_size == f.size);
    CHECK(f.reader.name() == "reg");
    CHECK(f.reader.writer_pid() == 4242);
    CHECK_FALSE(f.reader.dead());
    CHECK(f.groups().empty());
    CHECK(f.members("nobody").empty());
}

TEST_CASE("join is idempotent and keeps join order") {
    Fixture f;
    CHECK(f.table.join("g", 30) == 0);
    CHECK(f.table.join("g", 10) == 0);
    CHECK(f.table.join("g", 20) == 0);
    auto gen = f.reader.generation();
    auto seq = f.header().seq;
    CHECK(f.table.join("g", 10) == 0);
    CHECK(f.reader.generation() == gen);
    CHECK(f.header().seq == seq);
    CHECK(f.members("g") == Pids{30, 10, 20});
    CHECK(f.groups() == std::map<std::string, std::uint32_t>{{"g", 3}});
    CHECK(f.table.member_count() == 3);
}

TEST_CASE("every change bumps the generation and leaves seq even") {
    Fixture f;
    auto gen = f.reader.generation();
    CHECK(f.table.join("a", 1) == 0);
    CHECK(f.reader.generation() == gen + 1);
    CHECK(f.table.leave("a", 1) == 0);
    CHECK(f.reader.generation() == gen + 2);
    CHECK(f.header().seq % 2 == 0);
    CHECK(f.table.leave("a", 1) == 0);  // a no-op changes nothing
    CHECK(f.reader.generation() == gen + 2);
}

TEST_CASE("a batch publishes several changes as one generation") {
    Fixture f;
    auto gen = f.reader.generation();
    f.table.begin();
    CHECK(f.table.join("a", 1) == 0);
    CHECK(f.header().seq % 2 == 1);  // readers wait while the batch is open
    CHECK(f.table.join("b", 1) == 0);
    CHECK(f.table.join("a", 2) == 0);
    f.table.commit();
    CHECK(f.header().seq % 2 == 0);
    CHECK(f.reader.generation() == gen + 1);
    CHECK(f.members("a") == Pids{1, 2});
}

TEST_CASE("leave removes only that membership; leaving a group one is not in succeeds") {
    Fixture f;
    f.table.join("g", 1);
    f.table.join("g", 2);
    f.table.join("g", 3);
    f.table.join("h", 2);
    CHECK(f.table.leave("g", 2) == 0);
    CHECK(f.members("g") == Pids{1, 3});
    CHECK(f.members("h") == Pids{2});
    CHECK(f.table.leave("g", 2) == 0);
    CHECK(f.table.leave("nosuch", 2) == 0);
    CHECK(f.table.leave("g", 99) == 0);
    CHECK(f.table.leave("g", 3) == 0);
    CHECK(f.table.leave("g", 1) == 0);
    CHECK(f.members("g").empty());
}

TEST_CASE("a group with no member left disappears") {
    Fixture f;
    f.table.join("a", 1);
    f.table.join("b", 1);
    f.table.join("c", 2);
    CHECK(f.table.leave("b", 1) == 0);
    CHECK(f.groups() == std::map<std::string, std::uint32_t>{{"a", 1}, {"c", 1}});
    CHECK(f.table.group_count() == 2);
    CHECK(f.members("b").empty());
}

TEST_CASE("groups are listed in creation order") {
    Fixture f;
    for (const char *g : {"zeta", "alpha", "mid"}) f.table.join(g, 7);
    std::vector<chip_group_info> out(8);
    REQUIRE(f.reader.groups(out.data(), out.size()) == 3);
    CHECK(std::string(out[0].name) == "zeta");
    CHECK(std::string(out[1].name) == "alpha");
    CHECK(std::string(out[2].name) == "mid");
    auto tg = f.table.groups();
    REQUIRE(tg.size() == 3);
    CHECK(tg[0].first == "zeta");
}

TEST_CASE("remove_pid removes the pid from all its groups") {
    Fixture f;
    f.table.join("a", 5);
    f.table.join("b", 5);
    f.table.join("b", 6);
    f.table.join("c", 5);
    CHECK(f.table.groups_of(5) == std::vector<std::string>{"a", "b", "c"});
    CHECK(f.table.has_member(5));
    CHECK(f.table.remove_pid(5) == 3);
    CHECK_FALSE(f.table.has_member(5));
    CHECK(f.table.groups_of(5).empty());
    CHECK(f.groups() == std::map<std::string, std::uint32_t>{{"b", 1}});
    CHECK(f.members("b") == Pids{6});
    CHECK(f.table.remove_pid(5) == 0);
    CHECK(f.table.member_count() == 1);
}

TEST_CASE("join past max_members fails with ENOSPC and changes nothing") {
    Fixture f(8, 3);
    CHECK(f.table.join("a", 1) == 0);
    CHECK(f.table.join("a", 2) == 0);
    CHECK(f.table.join("b", 3) == 0);
    auto gen = f.reader.generation();
    CHECK(f.table.join("a", 4) == -ENOSPC);
    CHECK(f.table.join("new", 4) == -ENOSPC);
    CHECK(f.table.join("a", 1) == 0);  // still idempotent when full
    CHECK(f.reader.generation() == gen);
    CHECK(f.members("a") == Pids{1, 2});
    CHECK(f.groups().size() == 2);
    CHECK_FALSE(f.table.has_member(4));
    f.table.leave("a", 2);
    CHECK(f.table.join("a", 4) == 0);  // a freed slot is usable again
    CHECK(f.members("a") == Pids{1, 4});
}

TEST_CASE("join past max_groups fails with ENOSPC and changes nothing") {
    Fixture f(2, 10);
    CHECK(f.table.join("a", 1) == 0);
    CHECK(f.table.join("b", 1) == 0);
    auto gen = f.reader.generation();
    CHECK(f.table.join("c", 1) == -ENOSPC);
    CHECK(f.reader.generation() == gen);
    CHECK(f.table.join("a", 2) == 0);  // existing groups still take members
    CHECK(f.groups() == std::map<std::string, std::uint32_t>{{"a", 2}, {"b", 1}});
    CHECK(f.table.groups_of(1) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("bad group names are refused with EINVAL") {
    Fixture f;
    for (std::string bad : {std::string(""), std::string(65, 'x'), std::string("a b"),
                            std::string("a/b"), std::string("é"), std::string("a\0b", 3)}) {
        CAPTURE(bad);
        CHECK(f.table.join(bad, 1) == -EINVAL);
        CHECK(f.table.leave(bad, 1) == -EINVAL);
        pid_t out[1];
        CHECK(f.reader.members(bad, out, 1) == -EINVAL);
    }
    CHECK(f.table.join(std::string(64, 'x'), 1) == 0);
    CHECK(f.table.join("A-z_0.9:x", 1) == 0);
    CHECK(f.table.join("g", 0) == -EINVAL);
    CHECK(f.table.join("g", -3) == -EINVAL);
    CHECK(f.groups().size() == 2);
}

TEST_CASE("init refuses bad capacities, names and short regions") {
    Table t;
    std::vector<std::uint64_t> mem(1024);
    std::span<std::byte> region(reinterpret_cast<std::byte *>(mem.data()), mem.size() * 8);
    CHECK(Table::region_size(0, 10) == 0);
    CHECK(t.init(region, "r", 0, 10, 1) == -EINVAL);
    CHECK(t.init(region, "r", 10, 0, 1) == -EINVAL);
    CHECK(t.init(region, "bad name", 4, 4, 1) == -EINVAL);
    CHECK(t.init(region.first(100), "r", 4, 4, 1) == -EINVAL);
    CHECK(t.init(region.subspan(4, 2048), "r", 4, 4, 1) == -EINVAL);  // misaligned
    CHECK(t.init(region, "r", 4, 4, 1) == 0);
}

TEST_CASE("a reader refuses a region with the wrong magic") {
    Fixture f;
    std::string why;
    f.header().magic = 0x1234;
    Reader r;
    CHECK(r.attach(f.bytes(), &why) == -ESTALE);
    CHECK(why == "not a chip registry");
    CHECK_FALSE(r.attached());
    std::vector<std::byte> tiny(16);
    CHECK(r.attach(tiny, &why) == -ESTALE);
}

TEST_CASE("a reader refuses a region with another layout version") {
    Fixture f;
    std::string why;
    f.header().version = 2;
    Reader r;
    CHECK(r.attach(f.bytes(), &why) == -ESTALE);
    CHECK(why == "layout version 2, this reader knows 1");
}

TEST_CASE("a reader refuses an inconsistent or truncated header") {
    Fixture f;
    Reader r;
    std::string why;
    CHECK(r.attach(f.bytes().first(f.size - 64), &why) == -ESTALE);
    CHECK(why == "chip registry truncated");
    f.header().max_members = 1u << 30;
    CHECK(r.attach(f.bytes(), &why) == -ESTALE);
    CHECK(why == "not a chip registry (inconsistent header)");
}

TEST_CASE("members and groups with a cap smaller than the count write cap and return the count") {
    Fixture f;
    for (pid_t p = 1; p <= 5; ++p) f.table.join("g", p);
    f.table.join("h", 9);
    pid_t out[3] = {0, 0, 0};
    CHECK(f.reader.members("g", out, 2) == 5);
    CHECK(out[0] == 1);
    CHECK(out[1] == 2);
    CHECK(out[2] == 0);
    CHECK(f.reader.members("g", nullptr, 0) == 5);
    CHECK(f.reader.members("g", nullptr, 1) == -EINVAL);
    chip_group_info gi[1] = {};
    CHECK(f.reader.groups(gi, 1) == 2);
    CHECK(std::string(gi[0].name) == "g");
    CHECK(gi[0].count == 5);
    CHECK(f.reader.groups(nullptr, 0) == 2);
}

TEST_CASE("the dead flag is seen by readers") {
    Fixture f;
    CHECK_FALSE(f.reader.dead());
    f.table.mark_dead();
    CHECK(f.reader.dead());
    CHECK(f.header().dead == 1);
}

TEST_CASE("a reader survives a garbage region without hanging or reading out of bounds") {
    Fixture f(8, 16);
    for (pid_t p = 1; p <= 10; ++p) f.table.join("g" + std::to_string(p % 3), p);
    auto *base = reinterpret_cast<unsigned char *>(f.words.get());
    std::mt19937 rng(7);
    std::size_t payload = f.header().index_offset;
    pid_t out[64];
    chip_group_info gi[16];
    for (int round = 0; round < 200; ++round) {
        // Scribble over the tables (not the header's geometry), keeping seq even.
        for (int k = 0; k < 40; ++k) {
            std::size_t at = payload + rng() % (f.size - payload);
            base[at] = static_cast<unsigned char>(rng());
        }
        if (round % 3 == 0) f.header().group_head = static_cast<std::uint32_t>(rng());
        ssize_t n = f.reader.members("g1", out, 64);
        CHECK((n >= -EIO && n <= 16));
        n = f.reader.groups(gi, 16);
        CHECK((n >= -EIO && n <= 8));
    }
}

TEST_CASE("a reader gives up with EAGAIN when the writer never finishes") {
    Fixture f;
    f.table.join("g", 1);
    f.header().seq += 1;  // a chipd killed mid-write
    pid_t out[4];
    CHECK(f.reader.members("g", out, 4) == -EAGAIN);
}

TEST_CASE("a freed group slot is reused and the hash index still finds every group") {
    // A model (std::map) against the table through many random joins, leaves
    // and deaths, with few group slots so that slots and buckets are reused and
    // deletions shift clusters.
    constexpr std::uint32_t kGroups = 24, kMembers = 200;
    Fixture f(kGroups, kMembers);
    std::map<std::string, std::vector<pid_t>> model;
    std::mt19937 rng(12345);
    auto total = [&] {
        std::size_t n = 0;
        for (auto &[g, v] : model) n += v.size();
        return n;
    };
    for (int step = 0; step < 20000; ++step) {
        std::string g = "grp" + std::to_string(rng() % 40);
        pid_t pid = static_cast<pid_t>(1 + rng() % 60);
        unsigned op = rng() % 10;
        if (op < 5) {
            auto it = model.find(g);
            bool member = it != model.end() &&
                          std::find(it->second.begin(), it->second.end(), pid) != it->second.end();
            bool full =
                !member && (total() >= kMembers || (it == model.end() && model.size() >= kGroups));
            int rc = f.table.join(g, pid);
            if (full) {
                REQUIRE(rc == -ENOSPC);
            } else {
                REQUIRE(rc == 0);
                if (!member) model[g].push_back(pid);
            }
        } else if (op < 9) {
            REQUIRE(f.table.leave(g, pid) == 0);
            auto it = model.find(g);
            if (it != model.end()) {
                std::erase(it->second, pid);
                if (it->second.empty()) model.erase(it);
            }
        } else {
            std::size_t expect = 0;
            for (auto it = model.begin(); it != model.end();) {
                expect += std::erase(it->second, pid);
                it = it->second.empty() ? model.erase(it) : std::next(it);
            }
            REQUIRE(f.table.remove_pid(pid) == expect);
        }
        if (step % 97 == 0 || step > 19900) {
            std::map<std::string, std::uint32_t> counts;
            for (auto &[name, v] : model) {
                counts[name] = static_cast<std::uint32_t>(v.size());
                REQUIRE(f.members(name) == v);
            }
            REQUIRE(f.groups() == counts);
            REQUIRE(f.table.group_count() == model.size());
            REQUIRE(f.table.member_count() == total());
        }
    }
}

// ---- adopt: taking over a region across chipd's re-exec -----------------------

namespace {

// What readers and the writer say of a table, groups_of as a set (after adopt
// it follows creation order, not join order).
struct Seen {
    std::vector<std::pair<std::string, std::uint32_t>> groups;
    std::map<std::string, Pids> members;
    std::map<pid_t, std::set<std::string>> groups_of;
    bool operator==(const Seen &) const = default;
};

Seen seen(Fixture &f, const Table &t, pid_t max_pid) {
    Seen s;
    s.groups = t.groups();
    std::vector<chip_group_info> gi(1024);
    ssize_t n = f.reader.groups(gi.data(), gi.size());
    REQUIRE(n == static_cast<ssize_t>(s.groups.size()));
    for (ssize_t i = 0; i < n; ++i) {
        CHECK(s.groups[static_cast<std::size_t>(i)].first == gi[static_cast<std::size_t>(i)].name);
        CHECK(s.groups[static_cast<std::size_t>(i)].second ==
              gi[static_cast<std::size_t>(i)].count);
    }
    for (const auto &[g, count] : s.groups) {
        std::vector<pid_t> out(256);
        ssize_t k = f.reader.members(g, out.data(), out.size());
        REQUIRE(k == static_cast<ssize_t>(count));
        out.resize(static_cast<std::size_t>(k));
        CHECK(out == t.members(g));
        s.members[g] = out;
    }
    for (pid_t p = 1; p <= max_pid; ++p) {
        auto gs = t.groups_of(p);
        CHECK(t.has_member(p) == !gs.empty());
        if (!gs.empty()) s.groups_of[p] = std::set<std::string>(gs.begin(), gs.end());
    }
    return s;
}

// The same joins, leaves and deaths on a fixture's table.
void play(Table &t, std::uint32_t seed, int steps) {
    std::mt19937 rng(seed);
    for (int step = 0; step < steps; ++step) {
        std::string g = "grp" + std::to_string(rng() % 12);
        pid_t pid = static_cast<pid_t>(1 + rng() % 30);
        unsigned op = rng() % 10;
        if (op < 6)
            (void)t.join(g, pid);
        else if (op < 9)
            (void)t.leave(g, pid);
        else
            (void)t.remove_pid(pid);
    }
}

}  // namespace

TEST_CASE("adopt takes over a region as it stands, writing nothing to it") {
    Fixture f(8, 32);
    for (pid_t p : {10, 20, 30}) f.table.join("g1", p);
    f.table.join("g2", 20);
    f.table.join("g2", 40);
    f.table.join("g3", 50);
    f.table.leave("g3", 50);  // a freed group slot, a hole in the index
    f.table.join("g4", 60);
    f.table.join("g4", 10);
    const std::vector<std::uint64_t> before(f.words.get(), f.words.get() + f.size / 8);
    const auto gen = f.reader.generation();

    Table t;
    std::string why;
    REQUIRE(t.adopt(f.bytes(), &why) == 0);
    CHECK(std::equal(before.begin(), before.end(), f.words.get()));
    CHECK(t.initialized());
    CHECK(t.name() == "reg");
    CHECK(t.max_groups() == 8);
    CHECK(t.max_members() == 32);
    CHECK(t.writer_pid() == 4242);
    CHECK(t.generation() == gen);
    CHECK(t.group_count() == 3);
    CHECK(t.member_count() == 7);
    CHECK(seen(f, t, 100) == seen(f, f.table, 100));
    CHECK(t.members("g1") == Pids{10, 20, 30});
    CHECK(t.groups_of(10) == std::vector<std::string>{"g1", "g4"});

    // From now on it writes like the original: readers see each change.
    CHECK(t.join("g1", 20) == 0);  // already a member: no change
    CHECK(f.reader.generation() == gen);
    CHECK(t.join("g5", 70) == 0);
    CHECK(f.reader.generation() == gen + 1);
    CHECK(f.header().seq % 2 == 0);
    CHECK(t.leave("g2", 40) == 0);
    CHECK(t.remove_pid(10) == 2);
    CHECK(f.members("g1") == Pids{20, 30});
    CHECK(f.members("g4") == Pids{60});
    CHECK(f.groups() ==
          std::map<std::string, std::uint32_t>{{"g1", 2}, {"g2", 1}, {"g4", 1}, {"g5", 1}});
    CHECK(f.reader.generation() == gen + 3);
    t.begin();
    t.join("g6", 1);
    t.join("g6", 2);
    t.commit();
    CHECK(f.reader.generation() == gen + 4);
    CHECK(f.header().seq % 2 == 0);
}

TEST_CASE("an adopted table goes on exactly as the original would") {
    // Two regions brought to the same state; one is adopted by a fresh table,
    // then both tables take the same random changes and must answer alike,
    // full registries (ENOSPC) included.
    constexpr std::uint32_t kGroups = 6, kMembers = 20;
    for (std::uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
        CAPTURE(seed);
        Fixture a(kGroups, kMembers), b(kGroups, kMembers);
        play(a.table, seed, 400);
        play(b.table, seed, 400);
        Table t;
        REQUIRE(t.adopt(b.bytes()) == 0);
        REQUIRE(seen(b, t, 30) == seen(a, a.table, 30));
        std::mt19937 rng(seed * 77);
        for (int step = 0; step < 3000; ++step) {
            std::string g = "grp" + std::to_string(rng() % 12);
            pid_t pid = static_cast<pid_t>(1 + rng() % 30);
            unsigned op = rng() % 10;
            if (op < 6)
                REQUIRE(t.join(g, pid) == a.table.join(g, pid));
            else if (op < 9)
                REQUIRE(t.leave(g, pid) == a.table.leave(g, pid));
            else
                REQUIRE(t.remove_pid(pid) == a.table.remove_pid(pid));
            if (step % 50 == 0) REQUIRE(seen(b, t, 30) == seen(a, a.table, 30));
        }
        REQUIRE(seen(b, t, 30) == seen(a, a.table, 30));
        CHECK(t.member_count() == a.table.member_count());
        CHECK(t.generation() == a.table.generation());
    }
}

TEST_CASE("adopt refuses garbage, another layout, a truncated, dead or half-written region") {
    auto refused = [](std::span<std::byte> region, const std::string &expect) {
        Table t;
        std::string why;
        CHECK(t.adopt(region, &why) == -EINVAL);
        CHECK(why.find(expect) != std::string::npos);
        CHECK_FALSE(t.initialized());
        return why;
    };
    {
        std::vector<std::uint64_t> zero(1024);
        refused({reinterpret_cast<std::byte *>(zero.data()), zero.size() * 8},
                "not a chip registry");
        refused({reinterpret_cast<std::byte *>(zero.data()), 16}, "too small");
        std::mt19937_64 rng(3);
        for (auto &w : zero) w = rng();
        refused({reinterpret_cast<std::byte *>(zero.data()), zero.size() * 8},
                "not a chip registry");
    }
    {
        Fixture f;
        f.header().version = 2;
        CHECK(refused(f.bytes(), "layout version 2") == "layout version 2, this chipd writes 1");
    }
    {
        Fixture f;
        f.header().max_groups = 17;
        refused(f.bytes(), "inconsistent header");
    }
    {
        Fixture f;
        refused(f.bytes().first(f.size - 64), "truncated");
    }
    {
        Fixture f;
        f.table.join("g", 1);
        f.table.mark_dead();
        refused(f.bytes(), "flagged dead");
    }
    {
        Fixture f;
        f.table.join("g", 1);
        f.header().seq += 1;
        refused(f.bytes(), "a write was left unfinished");
    }
    {
        Fixture f;
        f.table.join("g", 1);
        f.table.join("g", 2);
        f.header().member_count = 5;
        refused(f.bytes(), "counts");
    }
    {
        // A member list that loops back on itself is refused, not walked forever.
        Fixture f;
        f.table.join("g", 1);
        f.table.join("g", 2);
        auto *groups = reinterpret_cast<chip_registry_group *>(
            reinterpret_cast<std::byte *>(f.words.get()) + f.header().groups_offset);
        auto *members = reinterpret_cast<chip_registry_member *>(
            reinterpret_cast<std::byte *>(f.words.get()) + f.header().members_offset);
        members[groups[f.header().group_head].last_member].next =
            groups[f.header().group_head].first_member;
        refused(f.bytes(), "member list is broken");
    }
    {
        // A group the hash index cannot find.
        Fixture f;
        f.table.join("g", 1);
        auto *index = reinterpret_cast<std::uint32_t *>(
            reinterpret_cast<std::byte *>(f.words.get()) + f.header().index_offset);
        for (std::uint32_t b = 0; b < f.header().index_size; ++b) index[b] = CHIP_REGISTRY_NONE;
        refused(f.bytes(), "hash index");
    }
    {
        Fixture f;
        f.table.join("g", 1);
        auto *members = reinterpret_cast<chip_registry_member *>(
            reinterpret_cast<std::byte *>(f.words.get()) + f.header().members_offset);
        members[0].pid = 0;
        refused(f.bytes(), "member slot 0 is broken");
    }
}

TEST_CASE("a cluster view is adopted as it stands and written on") {
    const std::uint32_t max = 4;
    const std::size_t size = ClusterView::region_size(max);
    std::vector<std::uint64_t> words(size / 8 + 1);
    std::span<std::byte> region(reinterpret_cast<std::byte *>(words.data()), size);
    ClusterView old;
    REQUIRE(old.init(region, "reg", max, 4242) == 0);
    old.set_connected(true);
    CHECK(old.replace({{"g", "host-b", 7}, {"g", "host-a", 9}, {"h", "host-a", 3}}) == 0);
    ClusterReader reader;
    REQUIRE(reader.attach(region) == 0);
    const std::vector<std::uint64_t> before = words;

    ClusterView v;
    std::string why;
    REQUIRE(v.adopt(region, &why) == 0);
    CHECK(words == before);
    CHECK(v.name() == "reg");
    CHECK(v.max_entries() == max);
    CHECK(reader.connected());
    chip_cluster_member out[8];
    REQUIRE(reader.members("g", out, 8) == 2);
    CHECK(std::string(out[0].node) == "host-a");
    CHECK(out[1].pid == 7);

    const auto *h = reinterpret_cast<const chip_cluster_header *>(words.data());
    const auto gen = h->generation;
    CHECK(v.replace({{"g", "host-c", 1}}) == 0);
    CHECK(h->generation == gen + 1);
    CHECK(h->seq % 2 == 0);
    REQUIRE(reader.members("g", out, 8) == 1);
    CHECK(std::string(out[0].node) == "host-c");
    CHECK(reader.members("h", out, 8) == 0);
    v.set_connected(false);
    CHECK_FALSE(reader.connected());
}

TEST_CASE("a cluster view that is garbage, dead or half-written is not adopted") {
    const std::size_t size = ClusterView::region_size(4);
    std::vector<std::uint64_t> words(size / 8 + 1);
    std::span<std::byte> region(reinterpret_cast<std::byte *>(words.data()), size);
    auto *h = reinterpret_cast<chip_cluster_header *>(words.data());
    ClusterView v;
    std::string why;
    CHECK(v.adopt(region, &why) == -EINVAL);
    CHECK(why == "not a chip cluster view");
    ClusterView w;
    REQUIRE(w.init(region, "reg", 4, 1) == 0);
    CHECK(v.adopt(region.first(size - 8), &why) == -EINVAL);
    CHECK(why.find("truncated") != std::string::npos);
    h->seq = 3;
    CHECK(v.adopt(region, &why) == -EINVAL);
    CHECK(why.find("unfinished") != std::string::npos);
    h->seq = 4;
    h->count = 5;
    CHECK(v.adopt(region, &why) == -EINVAL);
    h->count = 0;
    w.mark_dead();
    CHECK(v.adopt(region, &why) == -EINVAL);
    CHECK(why == "flagged dead");
    CHECK_FALSE(v.initialized());
}
