// chipd at its limits: a start of thousands of workers (each deadline counts
// from when it is set, not from the event that began the start), the file
// descriptor limit (connections beyond it are closed at once, without a busy
// loop), and a chipd that does not answer (every chipctl command has a
// deadline and exits 3).
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// Enough workers that starting them takes seconds, more than the deadlines below.
constexpr unsigned kPool = 2000;

// The time of chipd's text log line that contains every one of PARTS, in
// seconds since midnight UTC; -1 when there is none.
double log_time(const Chipd &d, std::initializer_list<std::string> parts) {
    for (const auto &line : d.stderr_lines()) {
        bool all = true;
        for (const auto &p : parts) all = all && line.find(p) != std::string::npos;
        int h = 0, m = 0, s = 0, ms = 0;
        if (all && line.size() > 24 &&
            std::sscanf(line.c_str() + 11, "%d:%d:%d.%dZ", &h, &m, &s, &ms) == 4)
            return h * 3600 + m * 60 + s + ms / 1000.0;
    }
    return -1;
}

// How long chipd took from spawning p.0 to the line of PARTS (a note when the
// start was quicker than DEADLINE_S: then a clock frozen at the start's event
// would not have shown either, and the case proves less).
void note_start_duration(const Chipd &d, std::initializer_list<std::string> parts,
                         double deadline_s) {
    double t0 = log_time(d, {"start p.0 "}), t1 = log_time(d, parts);
    if (t0 < 0 || t1 < 0) return;
    if (t1 < t0) t1 += 86400;  // midnight passed
    WARN_MESSAGE(t1 - t0 > deadline_s, "the pool started in "
                                           << t1 - t0 << " s, within the deadline of " << deadline_s
                                           << " s");
}

}  // namespace

// ---- deadlines through a long start -------------------------------------------------

TEST_CASE("long start: a notify worker spawned after thousands is not killed by start_timeout") {
    const double timeout_s = 2 * timeout_multiplier();
    Chipd d(spec(json::array({worker("p", helper("sleep"), {{"instances", kPool}}),
                              worker("n", helper("notify-after:200"),
                                     {{"ready", "notify"}, {"start_timeout", timeout_s}})})));
    d.start();
    bool ready = d.wait_ready(Ms(240000));
    INFO(d.stderr_text().substr(d.stderr_text().size() > 4000 ? d.stderr_text().size() - 4000 : 0));
    CHECK(ready);
    CHECK(d.state_of("n") == "running");
    CHECK_FALSE(d.log_has({"kill n ", "start_timeout passed"}));
    note_start_duration(d, {"start n "}, timeout_s);
    CHECK(d.stop(Ms(240000)) == 0);
}

TEST_CASE("long start: a stop late in a long start waits stop_timeout before SIGKILL") {
    // f cannot be spawned: the root's start fails after p's thousands and w,
    // and w is stopped in the same event. It takes 300 ms to exit on SIGTERM,
    // well within its stop_timeout counted from the signal.
    const double timeout_s = 2 * timeout_multiplier();
    Chipd d(spec(json::array({worker("p", helper("sleep"), {{"instances", kPool}}),
                              worker("w", helper("term-after:300"), {{"stop_timeout", timeout_s}}),
                              worker("f", json::array({"/nonexistent/chip-limits-test"}))})));
    d.start();
    auto code = d.wait_exit(Ms(240000));
    std::string err = d.stderr_text();
    INFO(err.substr(err.size() > 4000 ? err.size() - 4000 : 0));
    CHECK(code == 1);  // the root's start failed
    CHECK(d.log_has({"stop w "}));
    CHECK(d.log_has({"exit w ", "status 0"}));
    CHECK_FALSE(d.log_has({"kill w "}));
    note_start_duration(d, {"stop w "}, timeout_s);
}
