// The engine with real processes: chipd, its workers (chip_test_helper) and
// exact outcomes (order of starts and stops, pids, exit codes, log lines).
#include <doctest/doctest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

std::string rec_line(const char *word, pid_t pid) {
    return std::string(word) + " " + std::to_string(pid);
}

// The record of a start: "start PID PATH INSTANCE".
std::string start_line(pid_t pid, const std::string &path, int instance = 0) {
    return "start " + std::to_string(pid) + " " + path + " " + std::to_string(instance);
}

// The records of LINES that are about one of PIDS (their second word), in order.
std::vector<std::string> records_of(const std::vector<std::string> &lines,
                                    std::initializer_list<pid_t> pids) {
    std::vector<std::string> out;
    for (const auto &l : lines) {
        auto w = split_words(l);
        for (pid_t p : pids)
            if (w.size() >= 2 && w[1] == std::to_string(p)) out.push_back(l);
    }
    return out;
}

// The index of the first line of LINES starting with PREFIX, or -1.
long index_of(const std::vector<std::string> &lines, const std::string &prefix) {
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (lines[i].rfind(prefix, 0) == 0) return static_cast<long>(i);
    return -1;
}

// How many lines of chipd's stderr contain every one of PARTS.
std::size_t count_log(const Chipd &d, std::initializer_list<std::string> parts) {
    std::size_t n = 0;
    for (const auto &line : d.stderr_lines()) {
        bool all = true;
        for (const auto &p : parts) all = all && line.find(p) != std::string::npos;
        n += all;
    }
    return n;
}

pid_t read_pid(const std::string &file) {
    std::string s = read_file(file);
    return s.empty() ? 0 : static_cast<pid_t>(std::stol(s));
}

// A worker that records its start before it is ready (so the records' order
// is the start order) and its stop on SIGTERM.
json recorder(const std::string &name, const std::string &rec, const json &extra = json::object()) {
    json e = extra;
    e["ready"] = "notify";
    return worker(name, helper({"record:" + rec, "notify"}), e);
}

json three_sleepers(const std::string &rec, const std::string &strategy) {
    return spec(json::array({recorder("a", rec), recorder("b", rec), recorder("c", rec)}),
                {{"strategy", strategy}, {"max_restarts", 3}, {"period", 5}});
}

}  // namespace

// ---- start and stop order ---------------------------------------------------------

TEST_CASE(
    "workers start in spec order and stop in reverse order at SIGTERM; chipd exits 0 and "
    "removes its socket and shared memory") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array({recorder("a", rec), recorder("b", rec), recorder("c", rec)}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");
    auto shm = d.shm_files();
    REQUIRE(shm.size() == 1);
    CHECK(file_exists(shm[0]));
    CHECK(file_exists(d.socket()));
    CHECK(d.stop() == 0);
    INFO(d.stderr_text());
    // Each record is caused by the one before it (a notify worker gates its
    // next sibling; the next stop waits for the exit of the one before), so
    // the whole sequence is guaranteed.
    CHECK(read_lines(rec) ==
          std::vector<std::string>{start_line(a, "a"), rec_line("ready", a), start_line(b, "b"),
                                   rec_line("ready", b), start_line(c, "c"), rec_line("ready", c),
                                   rec_line("stop", c), rec_line("stop", b), rec_line("stop", a)});
    CHECK_FALSE(file_exists(d.socket()));
    CHECK_FALSE(file_exists(shm[0]));
}

TEST_CASE("a notify worker gates its next sibling: B starts only after A sent READY=1") {
    TempDir scratch;
    std::string rec = scratch.file("rec"), go = scratch.file("go");
    // A sends READY=1 only once the test creates GO.
    Chipd d(spec(json::array(
        {worker("a", helper({"record:" + rec, "wait-file:" + go, "notify"}), {{"ready", "notify"}}),
         worker("b", helper("record:" + rec))})));
    d.start();
    REQUIRE(wait_until([&] { return index_of(read_lines(rec), "start") >= 0; }));
    // A has started and not sent READY=1: it is `starting`, and B is not started.
    CHECK(d.wait_state("a", "starting"));
    CHECK(d.pid_of("b") == 0);
    CHECK(d.state_of("b") == "stopped");
    CHECK(read_lines(rec).size() == 1);
    write_file(go, "");
    REQUIRE(d.wait_ready());
    // B is `ready: started`: it may write its record after chipd saw its exec.
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 3; }));
    pid_t a = d.pid_of("a"), b = d.pid_of("b");
    INFO(d.stderr_text());
    CHECK(read_lines(rec) ==
          std::vector<std::string>{start_line(a, "a"), rec_line("ready", a), start_line(b, "b")});
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "a notify worker that never sends READY=1 fails the root's start after start_timeout: "
    "chipd exits 1") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(
        spec(json::array({worker("n", helper({"record:" + rec, "never-ready"}),
                                 {{"ready", "notify"}, {"start_timeout", 1}, {"stop_timeout", 1}}),
                          worker("after", helper("record:" + rec))})));
    d.start();
    auto code = d.wait_exit();
    INFO(d.stderr_text());
    CHECK(code == 1);
    CHECK(d.log_has({"start-failed", "n"}));
    auto lines = read_lines(rec);
    CHECK(index_of(lines, "start") == 0);
    CHECK(lines.size() == 1);  // its start; it went by SIGKILL at start_timeout
    CHECK(d.log_has({"kill n", "start_timeout"}));
    for (const auto &l : lines) CHECK(l.find(" after ") == std::string::npos);
}

TEST_CASE("each worker leads its own process group") {
    TempDir scratch;
    Chipd d(spec(json::array({worker("a", helper("pgid:" + scratch.file("a"))),
                              worker("b", helper("pgid:" + scratch.file("b")))})));
    d.start_ready();
    for (const char *name : {"a", "b"}) {
        pid_t pid = d.pid_of(name);
        REQUIRE(pid > 0);
        CHECK(pgid_of(pid) == pid);
        REQUIRE(wait_until([&] { return file_exists(scratch.file(name)); }));
        auto w = split_words(read_file(scratch.file(name)));
        REQUIRE(w.size() == 2);
        CHECK(w[0] == std::to_string(pid));
    }
    CHECK(pgid_of(d.pid_of("a")) != pgid_of(d.pid()));
    CHECK(d.stop() == 0);
}

// ---- strategies -------------------------------------------------------------------

TEST_CASE("one_for_one: a worker killed with SIGKILL is restarted alone") {
    TempDir scratch;
    Chipd d(three_sleepers(scratch.file("rec"), "one_for_one"));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");
    REQUIRE(::kill(b, SIGKILL) == 0);
    pid_t b2 = d.wait_new_pid("b", b);
    INFO(d.stderr_text());
    CHECK(b2 > 0);
    CHECK(d.pid_of("a") == a);
    CHECK(d.pid_of("c") == c);
    CHECK(d.restarts_of("b") == 1);
    CHECK(d.restarts_of("a") == 0);
    CHECK(d.restarts_of("c") == 0);
    CHECK(d.node("b")["last_exit"] == json{{"signal", "KILL"}});
    CHECK(d.log_has({"restart b"}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "one_for_all: a worker killed with SIGKILL makes all siblings stop in reverse order "
    "and start again in order") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(three_sleepers(rec, "one_for_all"));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");
    REQUIRE(::kill(b, SIGKILL) == 0);
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 14; }));
    REQUIRE(d.wait_ready());
    pid_t a2 = d.pid_of("a"), b2 = d.pid_of("b"), c2 = d.pid_of("c");
    INFO(d.stderr_text());
    CHECK(a2 != a);
    CHECK(b2 != b);
    CHECK(c2 != c);
    // After the first six (the first starts): c then a stop (b is dead), then
    // each start waits for the READY=1 of the one before.
    auto lines = read_lines(rec);
    REQUIRE(lines.size() == 14);
    CHECK(std::vector<std::string>(lines.begin() + 6, lines.end()) ==
          std::vector<std::string>{rec_line("stop", c), rec_line("stop", a), start_line(a2, "a"),
                                   rec_line("ready", a2), start_line(b2, "b"),
                                   rec_line("ready", b2), start_line(c2, "c"),
                                   rec_line("ready", c2)});
    CHECK(d.restarts_of("b") == 1);
    CHECK_FALSE(process_alive(a));
    CHECK_FALSE(process_alive(c));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "rest_for_one: a worker killed with SIGKILL restarts it and the siblings after it, "
    "not those before") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(three_sleepers(rec, "rest_for_one"));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");
    REQUIRE(::kill(b, SIGKILL) == 0);
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 11; }));
    REQUIRE(d.wait_ready());
    pid_t b2 = d.pid_of("b"), c2 = d.pid_of("c");
    INFO(d.stderr_text());
    CHECK(d.pid_of("a") == a);
    CHECK(b2 != b);
    CHECK(c2 != c);
    // After the first six (the first starts): c stops (b is dead), then b and
    // c start again in order; a has no record since.
    auto lines = read_lines(rec);
    REQUIRE(lines.size() == 11);
    CHECK(std::vector<std::string>(lines.begin() + 6, lines.end()) ==
          std::vector<std::string>{rec_line("stop", c), start_line(b2, "b"), rec_line("ready", b2),
                                   start_line(c2, "c"), rec_line("ready", c2)});
    CHECK(records_of(lines, {a}) ==
          std::vector<std::string>{start_line(a, "a"), rec_line("ready", a)});
    CHECK(d.restarts_of("a") == 0);
    CHECK(d.restarts_of("b") == 1);
    CHECK(d.stop() == 0);
}

// ---- intensity --------------------------------------------------------------------

TEST_CASE(
    "intensity: a permanent worker that keeps failing makes the root give up after "
    "max_restarts restarts: chipd exits 1") {
    // A long period: the failures fall within it however slow the machine is.
    Chipd d(spec(json::array({worker("w", helper("exit-after:100:1"))}),
                 {{"max_restarts", 2}, {"period", 600}}));
    d.start();
    auto code = d.wait_exit();
    INFO(d.stderr_text());
    CHECK(code == 1);
    CHECK(count_log(d, {"chipd: start w pid"}) == 3);
    CHECK(count_log(d, {"restart w"}) == 2);
    CHECK(d.log_has({"give-up /"}));
    CHECK_FALSE(file_exists(d.socket()));
}

TEST_CASE(
    "intensity: an inner supervisor that gives up is restarted by its parent, which "
    "finally gives up too: chipd exits 1") {
    // w fails at once, but its third run (the first after inner's restart)
    // only once the test creates GO: the test sees inner's restart count
    // without racing chipd's exit. Long periods: the failures fall within
    // them however slow the machine is.
    TempDir scratch;
    std::string count = scratch.file("count"), go = scratch.file("go");
    std::string script =
        "n=$(cat \"$0\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0\"; "
        "if [ $n -eq 3 ]; then while [ ! -e \"$1\" ]; do sleep 0.01; done; fi; exit 1";
    Chipd d(spec(json::array({supervisor(
                     "inner", json::array({worker("w", {"/bin/sh", "-c", script, count, go})}),
                     {{"max_restarts", 1}, {"period", 600}})}),
                 {{"max_restarts", 1}, {"period", 600}}));
    d.start();
    // The outer supervisor restarted inner once: inner's restarts reach 1.
    CHECK(wait_until([&] { return read_file(count) == "3\n"; }));
    CHECK(d.restarts_of("inner") == 1);
    write_file(go, "");
    auto code = d.wait_exit();
    INFO(d.stderr_text());
    CHECK(code == 1);
    CHECK(count_log(d, {"give-up inner"}) == 2);
    CHECK(count_log(d, {"restart inner ("}) == 1);
    CHECK(count_log(d, {"give-up /"}) == 1);
    CHECK(count_log(d, {"chipd: start inner/w pid"}) == 4);
}

// ---- restart types ----------------------------------------------------------------

TEST_CASE(
    "restart types: transient exit 0 and temporary exits show `exited` and are not "
    "restarted; transient exit 1 is restarted") {
    TempDir scratch;
    Chipd d(
        spec(json::array({worker("t0", helper("exit-after:100:0"), {{"restart", "transient"}}),
                          worker("tmp", helper("exit-after:100:3"), {{"restart", "temporary"}}),
                          worker("t1", helper({"pid:" + scratch.file("t1"), "exit-after:100:1"}),
                                 {{"restart", "transient"}}),
                          worker("keep", helper("sleep"))}),
             {{"max_restarts", 100}, {"period", 1}}));
    d.start_ready();
    CHECK(d.wait_state("t0", "exited"));
    CHECK(d.wait_state("tmp", "exited"));
    CHECK(wait_until([&] { return d.restarts_of("t1") >= 2; }));
    json t0 = d.node("t0"), tmp = d.node("tmp");
    CHECK(t0["last_exit"] == json{{"code", 0}});
    CHECK(t0["pid"].is_null());
    CHECK(tmp["last_exit"] == json{{"code", 3}});
    CHECK(d.stop() == 0);
    INFO(d.stderr_text());
    CHECK(count_log(d, {"chipd: start t0 pid"}) == 1);
    CHECK(count_log(d, {"chipd: start tmp pid"}) == 1);
    CHECK_FALSE(d.log_has({"restart t0"}));
    CHECK_FALSE(d.log_has({"restart tmp"}));
}

TEST_CASE("a missing executable is a start failure: chipd exits 1 naming the errno text") {
    Chipd d(spec(json::array({worker("x", json::array({"/nonexistent/x"}))})));
    d.start();
    auto code = d.wait_exit();
    INFO(d.stderr_text());
    CHECK(code == 1);
    CHECK(d.log_has({"x", "No such file or directory"}));
}

// ---- stop and shutdown ------------------------------------------------------------

TEST_CASE(
    "stop_timeout: a worker ignoring SIGTERM is killed after stop_timeout and chipd "
    "exits 0") {
    TempDir scratch;
    Chipd d(spec(json::array({worker("w", helper({"ignore-term", "pid:" + scratch.file("w")}),
                                     {{"stop_timeout", 1}})})));
    d.start_ready();
    REQUIRE(wait_until([&] { return file_exists(scratch.file("w")); }));
    pid_t w = d.pid_of("w");
    auto t0 = std::chrono::steady_clock::now();
    CHECK(d.stop() == 0);
    auto took = std::chrono::steady_clock::now() - t0;
    INFO(d.stderr_text());
    CHECK(took >= 900ms);
    CHECK(d.log_has({"kill w"}));
    CHECK(d.log_has({"exit w", "signal KILL"}));
    CHECK_FALSE(process_alive(w));
}

TEST_CASE("a second SIGTERM during shutdown hurries it: SIGKILL at once, chipd exits 0") {
    TempDir scratch;
    // A stop_timeout far above the bound below, even scaled for a sanitizer run.
    Chipd d(spec(json::array({worker("w", helper({"ignore-term", "pid:" + scratch.file("w")}),
                                     {{"stop_timeout", 3600}})})));
    d.start_ready();
    REQUIRE(wait_until([&] { return file_exists(scratch.file("w")); }));
    auto t0 = std::chrono::steady_clock::now();
    d.signal(SIGTERM);
    REQUIRE(d.wait_log({"stop w"}));
    // One within a second of the first is the same request (ignored): repeat
    // until one counts.
    REQUIRE(wait_until([&] {
        d.signal(SIGTERM);
        return d.log_has({"SIGTERM again: killing what is left"});
    }));
    auto code = d.wait_exit(20000ms);
    auto took = std::chrono::steady_clock::now() - t0;
    INFO(d.stderr_text());
    CHECK(code == 0);
    CHECK(took < scaled(20000ms));
    CHECK(d.log_has({"kill w"}));
}

TEST_CASE(
    "two SIGTERMs at once (a process-group kill) are one request: the shutdown is not "
    "hurried") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array({worker("w", helper("record:" + rec))})));
    d.start_ready();
    pid_t w = d.pid_of("w");
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 1; }));
    d.signal(SIGTERM);
    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
    INFO(d.stderr_text());
    CHECK_FALSE(d.log_has({"killing what is left"}));
    // w went by its own SIGTERM handler, not by SIGKILL.
    CHECK(index_of(read_lines(rec), rec_line("stop", w)) >= 1);
}

TEST_CASE("SIGKILL to chipd: its workers get SIGTERM (parent-death signal) and go") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(
        json::array({worker("a", helper("record:" + rec)), worker("b", helper("record:" + rec))})));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b");
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 2; }));
    d.signal(SIGKILL);
    CHECK(d.wait_exit() == 128 + SIGKILL);
    CHECK(wait_until([&] { return !process_alive(a) && !process_alive(b); }));
    // They went by SIGTERM: the helper records its stop on SIGTERM.
    CHECK(wait_until([&] { return read_lines(rec).size() == 4; }));
    auto lines = read_lines(rec);
    CHECK(index_of(lines, rec_line("stop", a)) >= 2);
    CHECK(index_of(lines, rec_line("stop", b)) >= 2);
}

TEST_CASE("orphans: a worker's orphaned child is adopted and reaped by chipd") {
    TempDir scratch;
    std::string file = scratch.file("orphan");
    Chipd d(spec(json::array({worker("o", helper({"fork-orphan:" + file + ":600", "exit:0"}),
                                     {{"restart", "temporary"}}),
                              worker("keep", helper("sleep"))})));
    // Process groups only: with a cgroup, the worker's exit kills the child
    // at once (cgroup_test).
    d.start_ready({"--no-cgroups"});
    REQUIRE(wait_until([&] { return read_pid(file) > 0; }));
    pid_t g = read_pid(file);
    CHECK(d.wait_state("o", "exited"));
    // While it lives (or is a zombie), its parent is chipd (the child
    // subreaper); -1 once it is gone.
    pid_t parent = parent_of(g);
    if (parent != -1) CHECK(parent == d.pid());
    // After it exits it is reaped: gone, never a lingering zombie.
    CHECK(wait_until([&] { return process_state(g) == 0; }));
    CHECK(d.stop() == 0);
}

// ---- environment, cwd, instances --------------------------------------------------

TEST_CASE(
    "environment: CHIP_SOCKET, CHIP_PATH, CHIP_INSTANCE for all, NOTIFY_SOCKET only for "
    "notify workers, spec env on top, cwd honoured, instances numbered") {
    TempDir scratch;
    std::filesystem::create_directory(scratch.file("wd"));
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array(
        {worker("plain", helper("env:" + scratch.file("plain")),
                {{"env", {{"CHIP_TEST_FOO", "bar"}, {"HOME", "/elsewhere"}}},
                 {"cwd", scratch.file("wd")}}),
         supervisor("sup", json::array({worker("n", helper({"env:" + scratch.file("n"), "notify"}),
                                               {{"ready", "notify"}})})),
         recorder("inst", rec, {{"instances", 3}})})));
    d.start_ready();
    REQUIRE(wait_until(
        [&] { return file_exists(scratch.file("plain")) && file_exists(scratch.file("n")); }));
    auto plain = read_lines(scratch.file("plain"));
    auto n = read_lines(scratch.file("n"));
    auto has = [](const std::vector<std::string> &env, const std::string &kv) {
        return std::find(env.begin(), env.end(), kv) != env.end();
    };
    CHECK(has(plain, "CHIP_SOCKET=" + d.socket()));
    CHECK(has(plain, "CHIP_PATH=plain"));
    CHECK(has(plain, "CHIP_INSTANCE=0"));
    CHECK(has(plain, "CHIP_TEST_FOO=bar"));
    CHECK(has(plain, "HOME=/elsewhere"));
    CHECK(index_of(plain, "NOTIFY_SOCKET=") < 0);
    CHECK(has(plain, "PATH=" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "")));
    CHECK(has(n, "CHIP_PATH=sup/n"));
    CHECK(has(n, "CHIP_SOCKET=" + d.socket()));
    CHECK(index_of(n, "NOTIFY_SOCKET=") >= 0);
    CHECK(index_of(n, "CHIP_TEST_FOO=") < 0);
    pid_t p = d.pid_of("plain");
    CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(p) + "/cwd").string() ==
          scratch.file("wd"));

    // The instances are siblings: each starts once the one before is ready.
    std::vector<std::string> starts, want;
    for (const auto &l : read_lines(rec))
        if (l.rfind("start ", 0) == 0) starts.push_back(l);
    for (int i = 0; i < 3; ++i) {
        std::string path = "inst." + std::to_string(i);
        want.push_back(start_line(d.pid_of(path), path, i));
    }
    CHECK(starts == want);
    CHECK(d.node("inst").is_null());
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "output: inherited stdout and stderr lines reach chipd's, prefixed with the path; "
    "null shows nothing") {
    TempDir scratch;
    Chipd d(spec(json::array(
        {worker("quiet", helper({"print:hush", "pid:" + scratch.file("quiet")}),
                {{"stdout", "null"}, {"stderr", "null"}}),
         supervisor("s", json::array({worker(
                             "loud", helper({"print:hello", "pid:" + scratch.file("loud")}))}))})));
    d.start_ready();
    REQUIRE(wait_until(
        [&] { return file_exists(scratch.file("quiet")) && file_exists(scratch.file("loud")); }));
    CHECK(wait_until(
        [&] { return d.stdout_text().find("s/loud: out:hello\n") != std::string::npos; }));
    CHECK(wait_until(
        [&] { return d.stderr_text().find("s/loud: err:hello\n") != std::string::npos; }));
    CHECK(d.stop() == 0);
    CHECK(d.stdout_text().find("err:hello") == std::string::npos);
    CHECK(d.stderr_text().find("out:hello") == std::string::npos);
    CHECK(d.stdout_text().find("hush") == std::string::npos);
    CHECK(d.stderr_text().find("hush") == std::string::npos);
}

TEST_CASE("user: a worker whose spec names the user nobody runs as nobody") {
    if (::geteuid() != 0) skip("chipd must run as root to switch users");
    const passwd *pw = ::getpwnam("nobody");
    if (!pw) skip("no user nobody");
    // The default cwd, the spec's folder, is a 0700 temp dir nobody cannot enter.
    Chipd d(spec(json::array(
        {worker("w", json::array({"sleep", "60"}), {{"user", "nobody"}, {"cwd", "/"}})})));
    d.start_ready();
    pid_t w = d.pid_of("w");
    REQUIRE(w > 0);
    CHECK(uid_of(w) == static_cast<long>(pw->pw_uid));
    CHECK(d.stop() == 0);
}

// ---- spec errors ------------------------------------------------------------------

TEST_CASE("chipd --check accepts every example spec in config/") {
    for (const auto &e :
         std::filesystem::directory_iterator(std::string(CHIP_SOURCE_ROOT) + "/config")) {
        std::string p = e.path().string();
        if (e.path().extension() != ".json" || p.find("schema") != std::string::npos) continue;
        auto r = run_process({chipd_path(), "--check", p});
        INFO(p << "\n" << r.out << r.err);
        CHECK(r.exit_code == 0);
    }
}

TEST_CASE(
    "an invalid spec: --check and a real run both exit 2 with FILE: POINTER lines, and "
    "nothing starts") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array({worker("ok", helper("record:" + rec)),
                              worker("bad", helper("sleep"), {{"restart", "always"}}),
                              worker("ok", helper("sleep"))})));
    auto r = run_process({chipd_path(), "--check", d.spec_path()});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    auto lines = split_lines(r.err);
    CHECK(index_of(lines, d.spec_path() + ": /root/children/1/restart: ") >= 0);
    CHECK(index_of(lines, d.spec_path() + ": /root/children/2/name: ") >= 0);

    d.start();
    CHECK(d.wait_exit() == 2);
    CHECK(d.log_has({d.spec_path() + ": /root/children/1/restart: "}));
    CHECK_FALSE(file_exists(rec));
    CHECK_FALSE(file_exists(d.socket()));
}

TEST_CASE("a crash loop of workers that exit at once never stops chipd from answering") {
    // Each replacement exits before the reaping of the others is over: chipd
    // reaps in bounded batches and serves requests and signals between them.
    json children = json::array();
    for (int i = 0; i < 24; ++i)
        children.push_back(worker("w" + std::to_string(i), helper("exit:1"),
                                  {{"stdout", "null"}, {"stderr", "null"}}));
    Chipd d(spec(children, {{"max_restarts", 1000000}, {"period", 1}}));
    d.start();
    REQUIRE(wait_until([&] { return d.log_has({"restart w23"}); }));
    for (int i = 0; i < 3; ++i) {
        auto r = d.run_ctl({"status", "w0", "--json"});
        INFO(r.err);
        CHECK(r.exit_code == 0);
    }
    CHECK(d.stop() == 0);
}
