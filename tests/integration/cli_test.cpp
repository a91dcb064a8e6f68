// chipctl against a real chipd, and the control protocol spoken directly:
// output shapes, exit codes, control commands' effects on real processes,
// and robustness against bad or stuck clients.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// a, b, c under a one_for_all root, and g { i × 2 } (one_for_one).
json tree_spec() {
    return spec(
        json::array(
            {worker("a", helper("sleep"), {{"stop_timeout", 1}}),
             worker("b", helper("sleep"), {{"stop_timeout", 1}}),
             worker("c", helper("sleep"), {{"stop_timeout", 1}}),
             supervisor("g", json::array({worker("i", helper("sleep"),
                                                 {{"instances", 2}, {"stop_timeout", 1}})}))}),
        {{"strategy", "one_for_all"}, {"max_restarts", 1}, {"period", 10}});
}

std::vector<std::string> paths_of(const json &nodes) {
    std::vector<std::string> paths;
    for (const auto &n : nodes) paths.push_back(n.value("path", ""));
    return paths;
}

}  // namespace

// ---- status -----------------------------------------------------------------------

TEST_CASE(
    "status prints a table of the tree and --json prints node objects of the contract's "
    "shape; status PATH shows a subtree; an unknown path fails with 1") {
    Chipd d(tree_spec());
    d.start_ready();
    auto t = d.run_ctl({"status"});
    INFO(t.out << t.err);
    CHECK(t.exit_code == 0);
    auto lines = split_lines(t.out);
    REQUIRE(lines.size() == 8);
    for (const char *col : {"PATH", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"})
        CHECK(lines[0].find(col) != std::string::npos);
    CHECK(split_words(lines[1])[0] == "/");
    CHECK(lines[2].rfind("  a ", 0) == 0);
    CHECK(lines[2].find(std::to_string(d.pid_of("a"))) != std::string::npos);
    CHECK(lines[2].find("running") != std::string::npos);
    CHECK(lines[5].rfind("  g ", 0) == 0);
    CHECK(lines[6].rfind("    i.0 ", 0) == 0);

    auto j = d.run_ctl({"--json", "status"});
    REQUIRE(j.exit_code == 0);
    json nodes = json::parse(j.out);
    REQUIRE(nodes.is_array());
    CHECK(paths_of(nodes) == std::vector<std::string>{"/", "a", "b", "c", "g", "g/i.0", "g/i.1"});
    std::set<std::string> keys{"path", "kind", "state", "pid", "restarts", "uptime_s", "last_exit"};
    for (const auto &n : nodes) {
        std::set<std::string> got;
        for (const auto &[k, v] : n.items()) got.insert(k);
        bool sup = n["path"] == "/" || n["path"] == "g";
        // A worker's cgroup and CPU time (null without cgroups), and what
        // chipctl status asks for: its command, start, memory.
        std::set<std::string> want = keys;
        if (!sup) want.insert({"cgroup", "cpu_s", "command", "started_at", "rss_bytes"});
        CHECK(got == want);
        if (!sup) {
            CHECK(n["command"] == json::array({helper_path(), "sleep"}));
            CHECK(n["started_at"].get<std::string>().size() == 24);  // 2024-05-01T12:00:00.123Z
            CHECK(n["rss_bytes"].get<std::uint64_t>() > 0);
            CHECK(n["cpu_s"].is_number());
        }
        CHECK(n["kind"] == (sup ? "supervisor" : "worker"));
        CHECK(n["state"] == "running");
        CHECK(n["restarts"] == 0);
        CHECK(n["last_exit"].is_null());
        CHECK(n["uptime_s"].is_number());
        if (sup)
            CHECK(n["pid"].is_null());
        else
            CHECK(n["pid"].is_number_integer());
    }
    CHECK(nodes[1]["pid"] == d.pid_of("a"));

    auto sub = d.run_ctl({"--json", "status", "g"});
    REQUIRE(sub.exit_code == 0);
    CHECK(paths_of(json::parse(sub.out)) == std::vector<std::string>{"g", "g/i.0", "g/i.1"});

    auto bad = d.run_ctl({"status", "nope"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("nope") != std::string::npos);
    // A name without its supervisor: "did you mean" its path.
    auto near = d.run_ctl({"signal", "HUP", "i"});
    CHECK(near.exit_code == 1);
    CHECK(near.err.find("unknown path \"i\"; did you mean \"g/i\"?") != std::string::npos);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "status shows each worker's CPU, memory, start and command; -v its cwd, user, files, "
    "processes, exports and last log lines") {
    TempDir logs;
    std::string log = logs.file("w.log");
    Chipd d(
        spec(json::array({worker("w",
                                 helper({"print:one", "print:two",
                                         "fork-orphan:" + logs.file("child") + ":600000", "sleep"}),
                                 {{"stdout", {{"file", log}}}, {"cwd", "/"}})})));
    d.start_ready();
    REQUIRE(
        wait_until([&] { return read_lines(log).size() == 2 && file_exists(logs.file("child")); }));
    auto t = d.run_ctl({"status"});
    INFO(t.out << t.err);
    CHECK(t.exit_code == 0);
    auto lines = split_lines(t.out);
    REQUIRE(lines.size() >= 3);
    for (const char *col : {"CPU", "RSS", "STARTED", "COMMAND"})
        CHECK(lines[0].find(col) != std::string::npos);
    CHECK(lines[2].find("chip_test_helper print:one") != std::string::npos);  // shortened
    auto v = d.run_ctl({"status", "w", "-v"});
    INFO(v.out << v.err);
    CHECK(v.exit_code == 0);
    CHECK(v.out.find("  command:   " + helper_path() + " print:one,print:two") !=
          std::string::npos);
    CHECK(v.out.find("  cwd:       /\n") != std::string::npos);
    CHECK(v.out.find("  stdout:    " + log) != std::string::npos);
    // The worker and the child it forked (still in its cgroup or process group).
    std::string child = read_file(logs.file("child"));
    while (!child.empty() && child.back() == '\n') child.pop_back();
    CHECK(v.out.find("    " + std::to_string(d.pid_of("w")) + "  ") != std::string::npos);
    CHECK(v.out.find("    " + child + "  ") != std::string::npos);
    CHECK(v.out.find("last lines of " + log + ":\n   : out:one\n   : out:two\n") !=
          std::string::npos);
    CHECK(d.stop() == 0);
}

// ---- stop, start, restart ---------------------------------------------------------

TEST_CASE(
    "stop PATH stops a worker for good until start PATH; restart PATH gives a new pid "
    "without touching one_for_all siblings and without counting towards intensity") {
    Chipd d(tree_spec());
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");

    auto r = d.run_ctl({"stop", "b"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("b") == "stopped");
    CHECK(d.node("b")["pid"].is_null());
    CHECK(wait_until([&] { return !process_alive(b); }));
    // Its siblings (one_for_all) were not touched, and it is not restarted.
    CHECK(d.pid_of("a") == a);
    CHECK(d.pid_of("c") == c);
    CHECK(d.state_of("b") == "stopped");

    r = d.run_ctl({"start", "b"});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("b") == "running");
    pid_t b2 = d.pid_of("b");
    CHECK(b2 > 0);
    CHECK(b2 != b);

    // max_restarts is 1: three manual restarts must not make the root give up.
    for (int i = 0; i < 3; ++i) {
        pid_t before = d.pid_of("b");
        r = d.run_ctl({"restart", "b"});
        CHECK(r.exit_code == 0);
        pid_t after = d.pid_of("b");
        CHECK(after > 0);
        CHECK(after != before);
        CHECK_FALSE(process_alive(before));
    }
    CHECK(d.pid_of("a") == a);
    CHECK(d.pid_of("c") == c);
    CHECK(d.running());
    CHECK_FALSE(d.log_has({"give-up"}));
    CHECK_FALSE(d.log_has({"restart a"}));
    CHECK(d.state_of("/") == "running");
    CHECK(d.stop() == 0);
    CHECK_FALSE(d.log_has({"restart b ("}));
}

TEST_CASE("stop and start act on a whole subtree and on an instance group's bare name") {
    Chipd d(tree_spec());
    d.start_ready();
    pid_t i0 = d.pid_of("g/i.0"), i1 = d.pid_of("g/i.1"), a = d.pid_of("a");

    auto r = d.run_ctl({"stop", "g"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    for (const char *p : {"g", "g/i.0", "g/i.1"}) CHECK(d.state_of(p) == "stopped");
    CHECK_FALSE(process_alive(i0));
    CHECK_FALSE(process_alive(i1));
    CHECK(d.pid_of("a") == a);
    r = d.run_ctl({"start", "g"});
    CHECK(r.exit_code == 0);
    for (const char *p : {"g", "g/i.0", "g/i.1"}) CHECK(d.state_of(p) == "running");

    i0 = d.pid_of("g/i.0");
    i1 = d.pid_of("g/i.1");
    r = d.run_ctl({"stop", "g/i"});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("g/i.0") == "stopped");
    CHECK(d.state_of("g/i.1") == "stopped");
    CHECK(d.state_of("g") == "running");
    CHECK_FALSE(process_alive(i0));
    CHECK_FALSE(process_alive(i1));
    r = d.run_ctl({"start", "g/i"});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("g/i.0") == "running");
    CHECK(d.state_of("g/i.1") == "running");
    CHECK(d.pid_of("a") == a);
    CHECK(d.stop() == 0);
}

// ---- signal -----------------------------------------------------------------------

TEST_CASE("signal TERM PATH makes the worker exit and it is restarted; bad usage exits 2") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();
    pid_t w = d.pid_of("w");
    auto r = d.run_ctl({"signal", "TERM", "w"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    pid_t w2 = d.wait_new_pid("w", w);
    CHECK(w2 > 0);
    CHECK(d.restarts_of("w") == 1);
    CHECK(d.node("w")["last_exit"] == json{{"code", 0}});

    CHECK(d.run_ctl({"signal", "BOGUS", "w"}).exit_code == 2);
    CHECK(d.run_ctl({"signal", "TERM"}).exit_code == 2);
    CHECK(d.pid_of("w") == w2);
    CHECK(d.stop() == 0);
}

// ---- wait -------------------------------------------------------------------------

TEST_CASE("wait PATH: 0 once ready, 1 when --timeout passes first") {
    Chipd d(spec(json::array(
        {worker("up", helper("sleep")),
         worker("n", helper("never-ready"),
                {{"ready", "notify"}, {"start_timeout", 3600}, {"stop_timeout", 1}})})));
    d.start();
    REQUIRE(d.wait_state("n", "starting"));
    auto r = d.run_ctl({"wait", "up", "--timeout", scaled_seconds(kDeadline)});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    auto t0 = std::chrono::steady_clock::now();
    r = d.run_ctl({"wait", "n", "--timeout", "0.5"});
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(r.exit_code == 1);
    CHECK(took >= 450ms);
    CHECK(d.state_of("n") == "starting");
    CHECK(d.stop() == 0);
}

// ---- shutdown and exit codes ------------------------------------------------------

TEST_CASE("shutdown: chipctl exits 0 and chipd stops the tree and exits 0") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();
    pid_t w = d.pid_of("w");
    auto r = d.run_ctl({"shutdown"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(d.wait_exit() == 0);
    CHECK_FALSE(process_alive(w));
}

TEST_CASE("chipctl exits 3 when chipd is unreachable and 2 without a subcommand") {
    TempDir dir;
    auto r = run_ctl_at(dir.file("none.sock"), {"status"});
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("none.sock") != std::string::npos);
    CHECK(run_process({chipctl_path()}).exit_code == 2);
    CHECK(run_ctl_at(dir.file("none.sock"), {}).exit_code == 2);
}

// ---- the protocol, spoken directly ------------------------------------------------

TEST_CASE(
    "protocol: malformed JSON and unknown ops get errors; a stuck client delays nobody; chipd "
    "keeps supervising") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();

    Client c(d.socket());
    c.send_raw("{not json\n");
    auto line = c.read_line();
    REQUIRE(line);
    json e = json::parse(*line);
    CHECK(e["ok"] == false);
    CHECK(e["errno"] == "EPROTO");
    // The same connection still works.
    json s = c.request({{"op", "status"}});
    CHECK(s["ok"] == true);
    json u = c.request({{"op", "frobnicate"}});
    CHECK(u["ok"] == false);
    CHECK(u["errno"] == "EOPNOTSUPP");
    json notobj = c.request(json::array({1, 2}));
    CHECK(notobj["ok"] == false);

    // A client that never reads while it floods requests, and one that
    // connects and sends half a line: others are still answered at once (in
    // milliseconds; the bound is for a busy machine, far below forever).
    Client stuck(d.socket());
    Client half(d.socket());
    half.send_raw("{\"op\": \"sta");
    ::fcntl(stuck.fd(), F_SETFL, O_NONBLOCK);
    std::string req = "{\"op\":\"status\"}\n";
    std::string flood;
    for (int i = 0; i < 4096; ++i) flood += req;
    std::size_t sent = 0;
    for (int round = 0; round < 64; ++round) {
        ssize_t n = ::send(stuck.fd(), flood.data(), flood.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
    }
    CHECK(sent > 0);
    auto t0 = std::chrono::steady_clock::now();
    Client other(d.socket());
    json o = other.request({{"op", "status"}});
    CHECK(o["ok"] == true);
    CHECK(std::chrono::steady_clock::now() - t0 < scaled(10000ms));
    auto ctl = d.run_ctl({"status"});
    CHECK(ctl.exit_code == 0);

    // Still supervising: a killed worker is restarted.
    pid_t w = d.pid_of("w");
    REQUIRE(::kill(w, SIGKILL) == 0);
    CHECK(d.wait_new_pid("w", w) > 0);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "protocol: a request line over 64 KiB is answered with EMSGSIZE and the connection closed") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.start_ready();
    Client big(d.socket());
    big.send_raw(std::string(70 * 1024, 'x') + "\n");
    auto resp = big.read_line();
    REQUIRE(resp);
    json m = json::parse(*resp);
    CHECK(m["ok"] == false);
    CHECK(m["errno"] == "EMSGSIZE");
    // Then chipd closes the connection, without waiting for the client.
    CHECK(big.wait_closed());
    CHECK(d.run_ctl({"status"}).exit_code == 0);
    CHECK(d.stop() == 0);
}

namespace {

// The sockets chipd (PID) has open.
std::size_t open_sockets(pid_t pid) {
    std::size_t n = 0;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto &e : std::filesystem::directory_iterator(dir)) {
        std::error_code ec;
        auto target = std::filesystem::read_symlink(e.path(), ec);
        n += !ec && target.string().starts_with("socket:");
    }
    return n;
}

}  // namespace

TEST_CASE(
    "protocol: a client gone while its wait or event stream is quiet is forgotten at once; a "
    "half-closed one still gets its events") {
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
    d.start_ready();
    REQUIRE(d.run_ctl({"stop", "a"}).exit_code == 0);
    // Once chipctl's connection is dropped (at the end of a later loop turn),
    // chipd holds one socket: the listening one (no notify worker, no cluster).
    const std::size_t before = 1;
    REQUIRE(wait_until([&] { return open_sockets(d.pid()) == before; }));
    {
        // Waits that never end and streams of a stopped worker: nothing would
        // ever be written to them.
        std::vector<std::unique_ptr<Client>> gone;
        for (int i = 0; i < 5; ++i) {
            gone.push_back(std::make_unique<Client>(d.socket()));
            gone.back()->send_raw("{\"op\": \"wait\", \"path\": \"a\"}\n");
            gone.push_back(std::make_unique<Client>(d.socket()));
            CHECK(gone.back()->request({{"op", "events"}, {"path", "a"}})["ok"] == true);
        }
        REQUIRE(wait_until([&] { return open_sockets(d.pid()) == before + 10; }));
    }
    CHECK(wait_until([&] { return open_sockets(d.pid()) == before; }));

    // Only its writing side shut: the stream goes on.
    Client half(d.socket());
    CHECK(half.request({{"op", "events"}, {"path", "b"}})["ok"] == true);
    REQUIRE(::shutdown(half.fd(), SHUT_WR) == 0);
    REQUIRE(d.run_ctl({"restart", "b"}).exit_code == 0);
    auto ev = half.read_line();
    REQUIRE(ev.has_value());
    CHECK(json::parse(*ev)["path"] == "b");
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "protocol: a client that shuts its writing side after its requests gets every answer, then "
    "EOF") {
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    Client c(d.socket());
    c.send_raw(
        "{\"op\": \"status\", \"path\": \"a\"}\n{\"op\": \"wait\", \"path\": \"/\"}\n\n"
        "{\"op\": \"frobnicate\"}\n");
    REQUIRE(::shutdown(c.fd(), SHUT_WR) == 0);
    std::vector<json> answers;
    for (int i = 0; i < 3; ++i) {
        auto line = c.read_line();
        REQUIRE(line.has_value());
        answers.push_back(json::parse(*line));
    }
    CHECK(answers[0]["ok"] == true);
    CHECK(answers[0]["nodes"][0]["path"] == "a");
    CHECK(answers[1] == json{{"ok", true}});
    CHECK(answers[2]["errno"] == "EOPNOTSUPP");
    CHECK(c.wait_closed());
    CHECK(d.running());

    // `echo '{"op":"shutdown"}' | nc -UN SOCKET` is carried out.
    Client s(d.socket());
    s.send_raw("{\"op\": \"shutdown\"}\n");
    REQUIRE(::shutdown(s.fd(), SHUT_WR) == 0);
    auto ok = s.read_line();
    REQUIRE(ok.has_value());
    CHECK(json::parse(*ok)["ok"] == true);
    CHECK(d.wait_exit() == 0);
}
