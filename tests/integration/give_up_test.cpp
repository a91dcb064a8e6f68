// on_give_up: a supervisor with "stay_failed" that gives up stays failed, and
// the rest of the tree (and chipd) goes on; "escalate", the default, ends the
// tree as OTP does.
#include <doctest/doctest.h>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// A worker that fails (exit 1) until FLAG exists, then runs.
json flaky_until(const std::string &flag) {
    return json::array(
        {"/bin/sh", "-c", "test -e '" + flag + "' || exit 1; exec '" + helper_path() + "' sleep"});
}

// The idiom: the flaky service wrapped in a one-child supervisor that stays
// failed.
json wrapped(const std::string &name, const json &command) {
    return supervisor(name, json::array({worker("svc", command)}),
                      {{"on_give_up", "stay_failed"}, {"max_restarts", 2}, {"period", 3600}});
}

}  // namespace

TEST_CASE(
    "stay_failed: a failing service stays failed with its reason; the rest and chipd go on; "
    "start tries it again") {
    TempDir scratch;
    std::string flag = scratch.file("flag");
    Chipd d(spec(json::array({worker("db", helper("sleep")), wrapped("cache", flaky_until(flag)),
                              worker("web", helper("sleep"))})));
    d.start();
    REQUIRE(d.wait_state("cache", "failed"));
    REQUIRE(d.wait_state("/", "running"));
    CHECK(d.state_of("db") == "running");
    CHECK(d.state_of("web") == "running");
    CHECK(d.running());
    json cache = d.node("cache");
    INFO(cache.dump());
    CHECK(cache["reason"] == "more than 2 restarts within 3600 s; the last: svc (exit status 1)");
    CHECK(d.log_has({"failed cache", "stays failed"}));
    auto table = d.run_ctl({"status"});
    CHECK(table.out.find("cache: failed: more than 2 restarts") != std::string::npos);
    // Fixed, then started again by the operator.
    write_file(flag, "");
    auto r = d.run_ctl({"start", "cache"});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("cache") == "running");
    CHECK(d.state_of("cache/svc") == "running");
    CHECK(d.node("cache").count("reason") == 0);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "stay_failed: a service that cannot start at all leaves its wrapper failed and lets "
    "the rest start") {
    Chipd d(spec(json::array({wrapped("broken", json::array({"/nonexistent/program"})),
                              worker("web", helper("notify"), {{"ready", "notify"}})})));
    d.start_ready();
    CHECK(d.state_of("broken") == "failed");
    CHECK(d.state_of("web") == "running");
    std::string reason = d.node("broken").value("reason", "");
    CHECK(reason.find("child svc failed to start") == 0);
    // chipctl wait on the whole tree: it is up.
    CHECK(d.run_ctl({"wait", "/", "--timeout", scaled_seconds(30000ms)}).exit_code == 0);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "stay_failed on the root: chipd keeps running and answering with the tree failed; "
    "shutdown exits 0") {
    Chipd d(spec(json::array({worker("svc", helper("exit:1"))}),
                 {{"on_give_up", "stay_failed"}, {"max_restarts", 1}, {"period", 3600}}));
    d.start();
    REQUIRE(d.wait_state("/", "failed"));
    CHECK(d.running());
    CHECK(d.request({{"op", "status"}})["ok"] == true);
    CHECK(d.node("/")["reason"] ==
          "more than 1 restarts within 3600 s; the last: svc (exit status 1)");
    CHECK(d.run_ctl({"shutdown"}).exit_code == 0);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("escalate (the default): the failing service ends the tree and chipd exits 1") {
    Chipd d(spec(json::array({worker("db", helper("sleep")),
                              supervisor("cache", json::array({worker("svc", helper("exit:1"))}),
                                         {{"max_restarts", 2}, {"period", 3600}}),
                              worker("web", helper("sleep"))})));
    d.start();
    CHECK(d.wait_exit() == 1);
}
