// The engine with real processes: chipd, its workers (chip_test_helper) and
// exact outcomes (order of starts and stops, pids, exit codes, log lines).
#include <doctest/doctest.h>
#include <signal.h>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// The "start"/"stop" records of FILE as (word, path) pairs, in file order.
std::vector<std::string> records(const std::string &file) { return read_lines(file); }

}  // namespace

TEST_CASE("workers start in spec order and stop in reverse order at SIGTERM; chipd exits 0 and "
          "removes its socket and shared memory") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array({worker("a", helper("record:" + rec)),
                              worker("b", helper("record:" + rec)),
                              worker("c", helper("record:" + rec))}),
                 {}, {{"registries", {"r"}}}));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");
    CHECK(wait_until([&] { return records(rec).size() == 3; }));
    auto shm = d.shm_files();
    REQUIRE(shm.size() == 1);
    CHECK(file_exists(shm[0]));
    CHECK(file_exists(d.socket()));
    CHECK(d.stop() == 0);
    auto lines = records(rec);
    INFO(d.stderr_text());
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] == "start " + std::to_string(a) + " a 0");
    CHECK(lines[1] == "start " + std::to_string(b) + " b 0");
    CHECK(lines[2] == "start " + std::to_string(c) + " c 0");
    CHECK(lines[3] == "stop " + std::to_string(c));
    CHECK(lines[4] == "stop " + std::to_string(b));
    CHECK(lines[5] == "stop " + std::to_string(a));
    CHECK_FALSE(file_exists(d.socket()));
    CHECK_FALSE(file_exists(shm[0]));
}
