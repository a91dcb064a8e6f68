// The event stream (README.md, "chipctl events"): the op "events" and
// `chipctl events`, its order, its path filter, its end at chipd's exit, and
// subscribers that do not read (dropped at 8 MiB, never waited for).
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using Events = std::vector<json>;

// Subscribes C to PATH's events; the response must be ok.
void subscribe(Client &c, const std::string &path = "/") {
    json resp = c.request(json{{"op", "events"}, {"path", path}});
    REQUIRE(resp == json{{"ok", true}});
}

// Reads C's stream into OUT until DONE(OUT) holds; false on EOF or timeout.
bool read_until(Client &c, Events &out, const std::function<bool(const Events &)> &done,
                Ms deadline = kDeadline) {
    auto end = std::chrono::steady_clock::now() + scaled(deadline);
    while (!done(out)) {
        auto left = std::chrono::duration_cast<Ms>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) return false;
        auto line = c.read_line(left);
        if (!line) return false;
        out.push_back(json::parse(*line));
    }
    return true;
}

// The index of the first event from FROM on with every field of MATCH, or -1.
long find(const Events &evs, const json &match, long from = 0) {
    for (long i = from; i < static_cast<long>(evs.size()); ++i) {
        bool all = true;
        for (const auto &[k, v] : match.items()) all = all && evs[i].value(k, json()) == v;
        if (all) return i;
    }
    return -1;
}

// A worker that crashes at once, over and over: a flood of events. Each
// crash also makes it leave and join many groups of long names, so that a
// few thousand crashes make megabytes of stream.
json flood_spec(int groups) {
    std::vector<std::string> names;
    for (int i = 0; i < groups; ++i) names.push_back(std::string(60, 'g') + std::to_string(i));
    return spec(
        json::array({worker(std::string(60, 'w'), helper("exit:1"), {{"join", {{"r", names}}}}),
                     worker("calm", helper("sleep"))}),
        {{"max_restarts", 1000000}, {"period", 1}},
        {{"registries",
          json::array({json{{"name", "r"}, {"max_groups", 64}, {"max_members", 256}}})}});
}

// The time `chipctl status` takes.
Ms status_time(Chipd &d) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = d.run_ctl({"status"});
    CHECK(r.exit_code == 0);
    return std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0);
}

// Reads and discards what FD has until EOF (true) or the scaled DEADLINE.
bool drain_to_eof(int fd, Ms deadline = kDeadline) {
    auto end = std::chrono::steady_clock::now() + scaled(deadline);
    char buf[65536];
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
    }
    return false;
}

}  // namespace

TEST_CASE("the stream shows a crash in order: leave, exit, restart, start and the new pid's join") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"a"}}}}})}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    Client c(d.socket());
    subscribe(c);
    pid_t old = d.pid_of("w");
    REQUIRE(::kill(old, SIGKILL) == 0);
    Events evs;
    REQUIRE(read_until(c, evs, [](const Events &e) {
        return find(e, {{"event", "join"}}) >= 0 && find(e, {{"event", "start"}}) >= 0;
    }));
    long leave = find(evs, {{"event", "leave"}, {"registry", "r"}, {"group", "a"}, {"pid", old}});
    long exit = find(evs, {{"event", "exit"}, {"path", "w"}, {"pid", old}, {"signal", "KILL"}});
    long restart = find(evs, {{"event", "restart"}, {"path", "w"}, {"count", 1}});
    long start = find(evs, {{"event", "start"}, {"path", "w"}});
    REQUIRE(start >= 0);
    pid_t now = evs[start]["pid"].get<pid_t>();
    d.track(now);
    long join = find(evs, {{"event", "join"}, {"group", "a"}, {"pid", now}, {"path", "w"}});
    CHECK(leave >= 0);
    CHECK(leave < exit);
    CHECK(exit < restart);
    CHECK(restart < start);
    CHECK(restart < join);
    CHECK(now != old);
    // Every object carries the time, as chipd --log-format json writes it.
    for (const auto &e : evs) CHECK(e.contains("time"));
    // A join by hand, and a leave, come through too.
    auto joined = d.run_ctl({"join", "-r", "r", "extra", "--pid", std::to_string(now)});
    REQUIRE_MESSAGE(joined.exit_code == 0, joined.err);
    REQUIRE(d.run_ctl({"leave", "-r", "r", "extra", "--pid", std::to_string(now)}).exit_code == 0);
    REQUIRE(read_until(c, evs, [&](const Events &e) {
        return find(e, {{"event", "leave"}, {"group", "extra"}, {"pid", now}}) >= 0;
    }));
    CHECK(find(evs, {{"event", "join"}, {"group", "extra"}, {"pid", now}}) <
          find(evs, {{"event", "leave"}, {"group", "extra"}, {"pid", now}}));
}

TEST_CASE("a stream of PATH shows PATH's subtree only; an unknown path is ENOENT and no stream") {
    Chipd d(spec(json::array({supervisor("a", json::array({worker("x", helper("sleep"))})),
                              worker("b", helper("sleep"))})));
    d.start_ready();
    Client c(d.socket());
    subscribe(c, "a");
    REQUIRE(d.run_ctl({"restart", "b"}).exit_code == 0);
    REQUIRE(d.run_ctl({"restart", "a/x"}).exit_code == 0);
    Events evs;
    REQUIRE(read_until(c, evs, [](const Events &e) {
        return find(e, {{"event", "start"}, {"path", "a/x"}}) >= 0;
    }));
    for (const auto &e : evs) CHECK(e["path"].get<std::string>().starts_with("a/"));

    Client bad(d.socket());
    json resp = bad.request(json{{"op", "events"}, {"path", "nope"}});
    CHECK(resp["ok"] == false);
    CHECK(resp["errno"] == "ENOENT");
    // No stream: the connection takes requests as before.
    CHECK(bad.request(json{{"op", "status"}, {"path", "b"}})["ok"] == true);
}

TEST_CASE(
    "chipctl events prints chipd's own log lines, ends after chipd's last event and exits 0; "
    "exit 3 without chipd") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();
    std::string out = d.file("events.out");
    ChildOptions opts;
    opts.out_file = out;
    Child ctl({chipctl_path(), "--socket", d.socket(), "events"}, opts);
    // Subscribed once a restart shows up in its output.
    REQUIRE(wait_until([&] {
        REQUIRE(d.run_ctl({"restart", "w"}).exit_code == 0);
        return read_file(out).find(" chipd: start w pid ") != std::string::npos;
    }));
    REQUIRE(d.run_ctl({"shutdown"}).exit_code == 0);
    CHECK(ctl.wait() == 0);
    REQUIRE(d.wait_exit() == 0);
    auto lines = read_lines(out);
    REQUIRE(!lines.empty());
    CHECK(lines.back().find(" chipd: stopped /") != std::string::npos);
    // Each line is one of chipd's own (restarts aside, they carry no limits).
    auto log = d.stderr_lines();
    for (const auto &l : lines) {
        bool found = false;
        for (const auto &x : log) found = found || x == l;
        CHECK_MESSAGE(found, l);
    }
    CHECK(run_ctl_at(d.file("nobody.sock"), {"events"}).exit_code == 3);
}

TEST_CASE("the JSON stream ends with the root's stopped event when chipd exits") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();
    Client c(d.socket());
    subscribe(c);
    // Lines after the subscription are ignored.
    c.send_raw("{\"op\": \"status\"}\n");
    REQUIRE(d.request(json{{"op", "shutdown"}})["ok"] == true);
    Events evs;
    read_until(c, evs, [](const Events &) { return false; });
    REQUIRE(!evs.empty());
    CHECK(evs.back()["event"] == "stopped");
    CHECK(evs.back()["path"] == "/");
    CHECK(find(evs, {{"event", "exit"}, {"path", "w"}}) >= 0);
    for (const auto &e : evs) CHECK(e.contains("event"));
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("a subscriber that vanishes at once is forgotten; chipd goes on") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();
    for (int i = 0; i < 20; ++i) {
        Client c(d.socket());
        c.send_raw("{\"op\": \"events\"}\n");
    }
    REQUIRE(d.run_ctl({"restart", "w"}).exit_code == 0);
    CHECK(d.running());
    CHECK(d.state_of("w") == "running");
}

TEST_CASE(
    "a subscriber that does not read is dropped at 8 MiB unread, while chipctl status stays "
    "fast") {
    Chipd d(flood_spec(40));
    d.start();
    REQUIRE(wait_until([&] { return file_exists(d.socket()); }));
    Client stuck(d.socket());
    subscribe(stuck);
    Ms worst{0};
    // chipd says so when it drops a subscriber; status is asked meanwhile.
    bool dropped = false;
    auto end = std::chrono::steady_clock::now() + scaled(90s);
    while (!dropped && std::chrono::steady_clock::now() < end) {
        worst = std::max(worst, status_time(d));
        dropped = d.log_has({"warning: event stream", "8 MiB unread"});
    }
    REQUIRE(dropped);
    // What chipd had sent before is there to read, then the end.
    CHECK(drain_to_eof(stuck.fd()));
    CHECK(worst < scaled(2000ms));
    CHECK(d.running());
}

TEST_CASE(
    "100 subscribers of which 99 never read: the reader gets every event, status stays fast") {
    Chipd d(flood_spec(8));
    d.start();
    REQUIRE(wait_until([&] { return file_exists(d.socket()); }));
    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 99; ++i) {
        idle.push_back(std::make_unique<Client>(d.socket()));
        subscribe(*idle.back());
    }
    Client reader(d.socket());
    subscribe(reader);
    Events evs;
    Ms worst{0};
    const std::string w(60, 'w');
    // A few hundred crashes, read as they come, with status asked meanwhile.
    REQUIRE(read_until(
        reader, evs,
        [&](const Events &e) {
            if (e.size() % 500 == 0) worst = std::max(worst, status_time(d));
            return e.size() >= 4000;
        },
        90s));
    CHECK(worst < scaled(2000ms));
    // Nothing lost: the worker's starts and exits alternate, pid for pid.
    pid_t started = 0;
    int crashes = 0;
    for (const auto &e : evs) {
        if (e.value("path", "") != w) continue;
        if (e["event"] == "start") {
            CHECK(started == 0);
            started = e["pid"].get<pid_t>();
        } else if (e["event"] == "exit") {
            if (crashes > 0 || started != 0) CHECK(e["pid"].get<pid_t>() == started);
            started = 0;
            ++crashes;
        }
    }
    CHECK(crashes > 100);
    CHECK(d.running());
}
