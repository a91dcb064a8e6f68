// chipd's event log lines (src/daemon/events.hpp): every event kind in text
// and JSON, with and without the journal's priorities, at a fixed wall-clock
// time. Nodes are plain core::Node values: no tree, no process, no clock.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/events.hpp"

using namespace std::chrono_literals;
using chip::core::Event;
using chip::core::Node;
using chip::core::SupervisorSpec;
using chip::daemon::format_event;
using chip::daemon::format_warning;
using chip::daemon::LogStyle;
using chip::daemon::seconds_text;
using chip::daemon::timestamp;
using chip::daemon::WallTime;
using K = Event::Kind;

namespace {

// 2024-05-01T12:34:56.789Z
const WallTime kWhen =
    WallTime(std::chrono::sys_days(std::chrono::year(2024) / 5 / 1)) + 12h + 34min + 56s + 789ms;
const std::string kStamp = "2024-05-01T12:34:56.789Z";

const LogStyle kText{false, false};
const LogStyle kJson{true, false};
const LogStyle kJournal{false, true};
const LogStyle kJournalJson{true, true};

// A root supervisor with worker "sessions/w" under supervisor "sessions".
struct Fixture {
    Node root, sessions, w;
    Fixture(unsigned max_restarts = 3, chip::core::Duration period = 5s) {
        root.path = "/";
        auto spec = std::make_shared<SupervisorSpec>();
        spec->max_restarts = max_restarts;
        spec->period = period;
        root.is_supervisor = true;
        root.sup = spec;
        sessions.path = "sessions";
        sessions.parent = &root;
        sessions.is_supervisor = true;
        sessions.sup = spec;
        w.path = "sessions/w";
        w.parent = &sessions;
    }
};

Event event(K kind, const Node &n, pid_t pid = 0, std::size_t count = 0, std::string msg = {}) {
    return Event{kind, &n, pid, {}, count, std::move(msg)};
}

}  // namespace

TEST_CASE("timestamps are UTC to the millisecond") {
    CHECK(timestamp(kWhen) == kStamp);
    CHECK(timestamp(WallTime{}) == "1970-01-01T00:00:00.000Z");
    CHECK(timestamp(WallTime(std::chrono::sys_days(std::chrono::year(2000) / 2 / 29)) + 23h +
                    59min + 59s + 999ms) == "2000-02-29T23:59:59.999Z");
}

TEST_CASE("text lines: every kind") {
    Fixture f;
    auto line = [&](const Event &e) { return format_event(e, kWhen, kText); };
    CHECK(line(event(K::Start, f.w, 42)) == kStamp + " chipd: start sessions/w pid 42\n");
    CHECK(line(event(K::Ready, f.w, 42)) == kStamp + " chipd: ready sessions/w pid 42\n");
    Event exit = event(K::Exit, f.w, 42);
    exit.status = {false, 3};
    CHECK(line(exit) == kStamp + " chipd: exit sessions/w pid 42 status 3\n");
    exit.status = {true, SIGKILL};
    CHECK(line(exit) == kStamp + " chipd: exit sessions/w pid 42 signal KILL\n");
    CHECK(line(event(K::StartFailed, f.w, 0, 0, "cannot execute /x: No such file or directory")) ==
          kStamp +
              " chipd: start-failed sessions/w: cannot execute /x: No such file or directory\n");
    CHECK(line(event(K::GiveUp, f.sessions, 0, 4)) == kStamp + " chipd: give-up sessions\n");
    CHECK(line(event(K::Stop, f.root, 0, 0, "shutdown requested")) ==
          kStamp + " chipd: stop /: shutdown requested\n");
    CHECK(line(event(K::Stopped, f.w)) == kStamp + " chipd: stopped sessions/w\n");
    CHECK(line(event(K::Kill, f.w, 42)) == kStamp + " chipd: kill sessions/w pid 42\n");
    CHECK(line(event(K::Started, f.sessions)) == kStamp + " chipd: started sessions\n");
    Event orphan{K::Stop, nullptr, 0, {}, 0, {}};
    CHECK(line(orphan) == kStamp + " chipd: stop /\n");
}

TEST_CASE("text lines: the restart line names the supervisor's limit and period") {
    Fixture f;
    CHECK(format_event(event(K::Restart, f.w, 42, 2), kWhen, kText) ==
          kStamp + " chipd: restart sessions/w pid 42 (restart 2 of at most 3 within 5 s)\n");
    Fixture quick(1, 250ms);
    CHECK(format_event(event(K::Restart, quick.w, 0, 1), kWhen, kText) ==
          kStamp + " chipd: restart sessions/w (restart 1 of at most 1 within 0.25 s)\n");
    Fixture slow(1000, 100000s);
    CHECK(format_event(event(K::Restart, slow.w, 0, 7), kWhen, kText) ==
          kStamp + " chipd: restart sessions/w (restart 7 of at most 1000 within 100000 s)\n");
}

TEST_CASE("periods are printed exactly, without trailing zeros") {
    CHECK(seconds_text(5s) == "5");
    CHECK(seconds_text(1s) == "1");
    CHECK(seconds_text(250ms) == "0.25");
    CHECK(seconds_text(1500ms) == "1.5");
    CHECK(seconds_text(100000s) == "100000");
    CHECK(seconds_text(1000000000s) == "1000000000");
    CHECK(seconds_text(1ns) == "0.000000001");
    CHECK(seconds_text(12s + 345678901ns) == "12.345678901");
    CHECK(seconds_text(0s) == "0");
}

TEST_CASE("journal lines carry a priority and no timestamp") {
    Fixture f;
    auto line = [&](const Event &e) { return format_event(e, kWhen, kJournal); };
    CHECK(line(event(K::Start, f.w, 42)) == "<6>chipd: start sessions/w pid 42\n");
    Event exit = event(K::Exit, f.w, 42);
    CHECK(line(exit) == "<6>chipd: exit sessions/w pid 42 status 0\n");
    exit.status = {false, 1};
    CHECK(line(exit).rfind("<4>", 0) == 0);
    exit.status = {true, SIGTERM};
    CHECK(line(exit).rfind("<4>", 0) == 0);
    CHECK(line(event(K::Restart, f.w, 0, 1)).rfind("<5>chipd: restart sessions/w (", 0) == 0);
    CHECK(line(event(K::GiveUp, f.sessions, 0, 4)) == "<3>chipd: give-up sessions\n");
    CHECK(line(event(K::StartFailed, f.w, 0, 0, "x")) == "<3>chipd: start-failed sessions/w: x\n");
    CHECK(line(event(K::Kill, f.w, 42)) == "<4>chipd: kill sessions/w pid 42\n");
    CHECK(line(event(K::Stopped, f.w)) == "<6>chipd: stopped sessions/w\n");
}

TEST_CASE("JSON lines: one object per event") {
    Fixture f;
    auto obj = [&](const Event &e, LogStyle style) {
        std::string line = format_event(e, kWhen, style);
        REQUIRE(!line.empty());
        CHECK(line.back() == '\n');
        return line;
    };
    CHECK(obj(event(K::Start, f.w, 42), kJson) ==
          R"({"event":"start","path":"sessions/w","pid":42,"time":")" + kStamp + "\"}\n");
    Event exit = event(K::Exit, f.w, 42);
    exit.status = {false, 3};
    CHECK(obj(exit, kJson) ==
          R"({"code":3,"event":"exit","path":"sessions/w","pid":42,"time":")" + kStamp + "\"}\n");
    exit.status = {true, SIGTERM};
    CHECK(obj(exit, kJournalJson) ==
          R"(<4>{"event":"exit","path":"sessions/w","pid":42,"signal":"TERM"})"
          "\n");
    CHECK(obj(event(K::Restart, f.w, 0, 2), kJournalJson) ==
          R"(<5>{"count":2,"event":"restart","path":"sessions/w"})"
          "\n");
    CHECK(obj(event(K::StartFailed, f.w, 0, 0, "cannot \"x\""), kJournalJson) ==
          R"(<3>{"event":"start-failed","message":"cannot \"x\"","path":"sessions/w"})"
          "\n");
    // Bytes that are not UTF-8 (a worker's name cannot have them, a message can).
    std::string bad = obj(event(K::StartFailed, f.w, 0, 0, "\xff"), kJson);
    CHECK(nlohmann::json::parse(bad, nullptr, false).is_object());
}

TEST_CASE("backoff lines carry the delay in seconds, priority 5") {
    Fixture f;
    Event e = event(K::Backoff, f.w);
    e.delay = 1234567890ns;
    CHECK(format_event(e, kWhen, kText) == kStamp + " chipd: backoff sessions/w 1.235 s\n");
    CHECK(format_event(e, kWhen, kJournal) == "<5>chipd: backoff sessions/w 1.235 s\n");
    auto j = nlohmann::json::parse(format_event(e, kWhen, kJson));
    CHECK(j["event"] == "backoff");
    CHECK(j["path"] == "sessions/w");
    CHECK(j["delay_s"].get<double>() == doctest::Approx(1.23456789));
    CHECK(j["time"] == kStamp);
    CHECK(format_event(e, kWhen, kJournalJson).rfind("<5>{", 0) == 0);
}

TEST_CASE("warnings") {
    CHECK(format_warning("SIGHUP ignored", kWhen, kText) ==
          kStamp + " chipd: warning: SIGHUP ignored\n");
    CHECK(format_warning("SIGHUP ignored", kWhen, kJson) ==
          R"({"event":"warning","message":"SIGHUP ignored","time":")" + kStamp + "\"}\n");
    // Any bytes: invalid UTF-8 is replaced, never thrown on.
    CHECK(format_warning("a\xff", kWhen, kJson).find("\"a\xef\xbf\xbd\"") != std::string::npos);
    CHECK(format_warning("x", kWhen, kJournal) == "<4>chipd: warning: x\n");
}
