// Restart backoff with the real chipd: the gaps between the restarts of a
// crash-looping worker grow as its backoff says, status shows the wait, and a
// restart during the wait starts it at once.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// chipd's JSON log lines (--log-format json) of EVENT for PATH.
std::vector<json> events(const Chipd &d, const std::string &event, const std::string &path) {
    std::vector<json> out;
    for (const auto &line : d.stderr_lines()) {
        json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.value("event", "") == event && j.value("path", "") == path)
            out.push_back(j);
    }
    return out;
}

// The "time" of a log line, in seconds since midnight UTC.
double seconds_of(const json &j) {
    int h = 0, m = 0, s = 0, ms = 0;
    std::string t = j.at("time").get<std::string>();
    REQUIRE(std::sscanf(t.c_str() + 11, "%d:%d:%d.%dZ", &h, &m, &s, &ms) == 4);
    return h * 3600 + m * 60 + s + ms / 1000.0;
}

json crash_loop(const json &backoff) {
    return spec(json::array({worker("w", helper("exit:1"), {{"backoff", backoff}})}),
                {{"max_restarts", 1000}, {"period", 1}});
}

}  // namespace

TEST_CASE("backoff: the restart gaps of a crash-looping worker grow by factor up to max") {
    Chipd d(crash_loop({{"initial", 0.2}, {"factor", 2}, {"max", 0.8}, {"jitter", 0.1}}));
    d.start({"--log-format", "json"});
    REQUIRE(wait_until([&] { return events(d, "start", "w").size() >= 6; }));
    CHECK(d.stop() == 0);
    INFO(d.stderr_text());
    auto starts = events(d, "start", "w");
    auto waits = events(d, "backoff", "w");
    REQUIRE(waits.size() >= 5);
    const double base[] = {0.2, 0.4, 0.8, 0.8, 0.8};
    const double slack = scaled(Ms(2000)).count() / 1000.0;
    for (std::size_t k = 0; k < 5; ++k) {
        INFO("restart " << k + 1);
        // The delay chipd chose: within the jitter's bounds.
        double delay = waits[k].at("delay_s").get<double>();
        CHECK(delay >= base[k] * 0.9 - 1e-9);
        CHECK(delay <= base[k] * 1.1 + 1e-9);
        // The gap between two starts is at least the delay (to the log's
        // millisecond), and not much more on an idle machine.
        double gap = seconds_of(starts[k + 1]) - seconds_of(starts[k]);
        if (gap < 0) gap += 86400;  // midnight passed
        CHECK(gap >= base[k] * 0.9 - 0.002);
        CHECK(gap <= base[k] * 1.1 + slack);
    }
}

TEST_CASE("backoff: status shows the wait with retry_in_s; chipctl restart starts it at once") {
    Chipd d(crash_loop({{"initial", 60}, {"max", 60}}));
    d.start({"--log-format", "json"});
    bool waiting = d.wait_state("w", "backoff");
    INFO(d.stderr_text());
    INFO(d.status_json().dump());
    REQUIRE(waiting);
    json n = d.node("w");
    INFO(n.dump());
    REQUIRE(n.contains("retry_in_s"));
    CHECK(n["retry_in_s"].is_number());
    CHECK(n["retry_in_s"].get<double>() > 0);
    CHECK(n["retry_in_s"].get<double>() <= 66);
    CHECK(n["pid"].is_null());
    CHECK(d.log_has({"\"event\":\"backoff\"", "\"path\":\"w\""}));
    // The text status names the state too.
    auto st = d.run_ctl({"status"});
    CHECK(st.out.find("backoff") != std::string::npos);

    REQUIRE(events(d, "start", "w").size() == 1);
    auto r = d.run_ctl({"restart", "w"});
    CHECK(r.exit_code == 0);
    // Started again long before its 54 s or more of waiting would end.
    CHECK(wait_until([&] { return events(d, "start", "w").size() == 2; }, Ms(10000)));
    REQUIRE(d.wait_state("w", "backoff"));
    CHECK(d.node("w").contains("retry_in_s"));
    // Nodes not waiting have no retry_in_s.
    CHECK_FALSE(d.node("/").contains("retry_in_s"));
    CHECK(d.stop() == 0);
}

TEST_CASE("backoff: chipctl stop cancels the wait, and chipd shuts down at once during one") {
    Chipd d(crash_loop({{"initial", 60}, {"max", 60}}));
    d.start({"--log-format", "json"});
    REQUIRE(d.wait_state("w", "backoff"));
    CHECK(d.run_ctl({"stop", "w"}).exit_code == 0);
    CHECK(d.state_of("w") == "stopped");
    CHECK_FALSE(d.node("w").contains("retry_in_s"));
    CHECK(d.run_ctl({"start", "w"}).exit_code == 0);
    REQUIRE(d.wait_state("w", "backoff"));
    CHECK(d.stop(Ms(10000)) == 0);
}
