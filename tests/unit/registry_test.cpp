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
#include "registry/reader.hpp"
#include "registry/table.hpp"

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
