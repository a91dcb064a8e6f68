// An operator's first day, through the real chipd and chipctl: chipd --check
// finding what would fail at start; spec files with comments and includes,
// and a reload that re-reads them; a worker run as a user getting that user's
// HOME, USER, LOGNAME and SHELL; "start": false children that wait for chipctl
// start; empty arguments passed through.
#include <doctest/doctest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

using Lines = std::vector<std::string>;

// PATH made executable (or not) for everyone.
void set_mode(const std::string &path, mode_t mode) {
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

}  // namespace

// ---- chipd --check --------------------------------------------------------------

TEST_CASE(
    "chipd --check reports a program not found, one not executable, a missing cwd, an "
    "unknown user and group and a missing log folder, each at its pointer") {
    TempDir scratch;
    std::string script = scratch.file("run.sh");
    write_file(script, "#!/bin/sh\nexit 0\n");
    set_mode(script, 0644);  // there, but not executable
    json children = json::array({
        worker("ok", json::array({"sh", "-c", "exit 0"})),
        worker("missing", json::array({"chip-no-such-program"})),
        worker("no-x", json::array({"./run.sh"})),
        worker("no-x-in-path", json::array({"run.sh"}), {{"env", {{"PATH", scratch.path()}}}}),
        worker("cwd", json::array({"/bin/true"}), {{"cwd", "nowhere"}}),
        worker("user", json::array({"/bin/true"}), {{"user", "chip-no-such-user"}}),
        worker("group", json::array({"/bin/true"}), {{"group", "chip-no-such-group"}}),
        worker("log", json::array({"/bin/true"}),
               {{"stdout", {{"file", scratch.file("missing/out.log")}}}}),
    });
    std::string file = scratch.file("spec.json");
    write_file(file, spec(children).dump(2));
    auto r = run_process({chipd_path(), "--check", file});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    const std::string at = file + ": /root/children/";
    Lines lines = split_lines(r.err);
    CHECK(std::count_if(lines.begin(), lines.end(),
                        [&](const std::string &l) { return l.rfind(at, 0) == 0; }) == 7);
    CHECK(r.err.find(at + "1/command/0: expected a program in PATH (") != std::string::npos);
    CHECK(r.err.find("got \"chip-no-such-program\", not found") != std::string::npos);
    // A path is shown made absolute: where chipd would look.
    CHECK(r.err.find(at + "2/command/0: expected an executable file; got \"" + script +
                     "\" (Permission denied)") != std::string::npos);
    CHECK(r.err.find(at + "3/command/0: expected a program in PATH (" + scratch.path() +
                     "); got \"run.sh\", found but Permission denied") != std::string::npos);
    CHECK(r.err.find(at + "4/cwd: expected an existing folder; got \"nowhere\"") !=
          std::string::npos);
    CHECK(r.err.find(at + "5/user: expected an existing user") != std::string::npos);
    CHECK(r.err.find(at + "6/group: expected an existing group") != std::string::npos);
    CHECK(r.err.find(at + "7/stdout/file: expected a file in an existing, writable folder") !=
          std::string::npos);

    // Made executable: --check has nothing more to say about it.
    set_mode(script, 0755);
    r = run_process({chipd_path(), "--check", file});
    CHECK(r.err.find(at + "2/command/0") == std::string::npos);
    CHECK(r.err.find(at + "3/command/0") == std::string::npos);
}

TEST_CASE("chipd itself meets a missing program as a failed start, not a spec error") {
    // The machine may change between a check and a start: only --check looks.
    Chipd d(spec(json::array({worker("w", json::array({"chip-no-such-program"}))})));
    auto check = run_process({chipd_path(), "--check", d.spec_path()});
    CHECK(check.exit_code == 2);
    d.start();
    CHECK(d.wait_exit() == 1);
    CHECK(d.log_has({"start-failed w: cannot execute chip-no-such-program"}));
}

// ---- comments and includes ------------------------------------------------------

TEST_CASE("a spec with comments and includes runs; a reload re-reads the included files") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    // The spec's folder is chipd's TempDir: conf.d/ goes beside spec.json.
    Chipd d(R"(// the whole tree
{
  "root": {
    /* the main file's own child, then every conf.d/*.json */
    "children": [
      { "name": "main", "command": )" +
            helper("sleep").dump() + R"( },
      { "include": "conf.d/*.json" } // nothing there yet: no children
    ]
  }
})");
    d.start_ready();
    CHECK(d.state_of("main") == "running");
    CHECK(d.status_json().size() == 2);  // the root and main

    // A new file in conf.d/, with comments of its own, then chipctl reload.
    REQUIRE(::mkdir(d.file("conf.d").c_str(), 0755) == 0);
    write_file(d.file("conf.d/10-web.json"), R"(// the web tier
[ { "name": "web", "command": )" + helper("record:" + rec).dump() +
                                                 R"(, "instances": 2 } /* two of them */ ])");
    write_file(d.file("conf.d/20-db.json"),
               R"({ "name": "db", "command": )" + helper("sleep").dump() + " }");
    auto r = d.run_ctl({"reload"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == (Lines{"add web.0", "add web.1", "add db"}));
    CHECK(d.state_of("web.0") == "running");
    CHECK(d.state_of("web.1") == "running");
    CHECK(d.state_of("db") == "running");
    CHECK(wait_until([&] { return read_lines(rec).size() == 2; }));

    // A broken included file: the reload is refused naming it, nothing changes.
    pid_t db = d.pid_of("db");
    write_file(d.file("conf.d/30-bad.json"), "{\n  \"name\": \"bad\",\n  \"command\": [\"x\"\n}");
    r = d.run_ctl({"reload"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(d.file("conf.d/30-bad.json") + ":4:1: syntax error:") != std::string::npos);
    // A duplicate name in another file: refused at the second, naming both files.
    write_file(d.file("conf.d/30-bad.json"),
               R"({"name": "db", "command": )" + helper("sleep").dump() + "}");
    r = d.run_ctl({"reload"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(d.file("conf.d/30-bad.json") +
                     ": /name: expected a name unique among its siblings; got \"db\", already "
                     "used by / in " +
                     d.file("conf.d/20-db.json")) != std::string::npos);
    CHECK(d.pid_of("db") == db);

    // A file removed: its children go with the next reload.
    std::remove(d.file("conf.d/30-bad.json").c_str());
    std::remove(d.file("conf.d/10-web.json").c_str());
    r = d.run_ctl({"reload"});
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == (Lines{"remove web.1", "remove web.0"}));
    CHECK(d.pid_of("db") == db);
    CHECK(d.stop() == 0);
}

TEST_CASE("chipd refuses a spec that is not JSON with its file, line and column") {
    Chipd d(std::string("{\n  \"root\": {}\n  \"socket\": 1\n}"));
    auto r = run_process({chipd_path(), "--check", d.spec_path()});
    CHECK(r.exit_code == 2);
    CHECK(r.err ==
          d.spec_path() + ":3:10: syntax error: unexpected string literal; expected '}'\n");
}

// ---- the worker's user ----------------------------------------------------------

TEST_CASE("a worker run as nobody gets nobody's HOME, USER, LOGNAME and SHELL unless env says") {
    if (::geteuid() != 0) skip("chipd must run as root to switch users");
    const passwd *pw = ::getpwnam("nobody");
    if (!pw) skip("no user nobody");
    std::string home = pw->pw_dir, shell = pw->pw_shell;
    // cwd /: the spec's folder is a 0700 temp dir nobody cannot enter.
    json sleeper = json::array({"sleep", "600"});
    Chipd d(spec(
        json::array({worker("as-nobody", sleeper, {{"user", "nobody"}, {"cwd", "/"}}),
                     worker("own-home", sleeper,
                            {{"user", "nobody"}, {"cwd", "/"}, {"env", {{"HOME", "/srv/nobody"}}}}),
                     worker("as-chipd", sleeper, {{"cwd", "/"}})})));
    d.start_ready();
    pid_t n = d.pid_of("as-nobody"), o = d.pid_of("own-home"), c = d.pid_of("as-chipd");
    REQUIRE(n > 0);
    // "ready: started" is the exec's success, which the kernel reports (the
    // close-on-exec pipe closing) before it lays out the new environment.
    REQUIRE(wait_until(
        [&] { return environ_of(n, "PATH") && environ_of(o, "PATH") && environ_of(c, "PATH"); }));
    CHECK(environ_of(n, "HOME") == home);
    CHECK(environ_of(n, "USER") == std::string("nobody"));
    CHECK(environ_of(n, "LOGNAME") == std::string("nobody"));
    CHECK(environ_of(n, "SHELL") == shell);
    CHECK(environ_of(o, "HOME") == std::string("/srv/nobody"));
    CHECK(environ_of(o, "USER") == std::string("nobody"));
    // Without a user, chipd's own environment.
    const char *own_home = std::getenv("HOME");
    CHECK(environ_of(c, "HOME") ==
          (own_home ? std::optional<std::string>(own_home) : std::nullopt));
    CHECK(d.stop() == 0);
}

// ---- "start": false -------------------------------------------------------------

TEST_CASE("start false: stopped at start, through a reload, until chipctl start runs it") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    json job = worker("job", helper("record:" + rec), {{"start", false}});
    json pool = worker("pool", helper("sleep"), {{"start", false}, {"instances", 2}});
    json sub = supervisor("sub", json::array({worker("x", helper("sleep"))}));
    sub["start"] = false;
    json always = worker("always", helper("sleep"));
    Chipd d(spec(json::array({always, job, pool, sub})));
    d.start_ready();
    for (const char *p : {"job", "pool.0", "pool.1", "sub", "sub/x"}) {
        INFO(p);
        CHECK(d.state_of(p) == "stopped");
    }
    CHECK(d.state_of("always") == "running");
    CHECK(run_ctl_at(d.socket(), {"wait", "/", "--timeout", scaled_seconds(5000ms)}).exit_code ==
          0);
    CHECK_FALSE(file_exists(rec));

    // A reload that changes something else keeps them stopped.
    json job2 = job;
    job2["env"] = {{"X", "1"}};
    std::string next = d.file("next.json");
    write_file(next, spec(json::array({always, job2, pool, sub})).dump());
    auto r = d.run_ctl({"reload", next});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("job") == "stopped");
    CHECK_FALSE(file_exists(rec));

    // chipctl start runs them.
    r = d.run_ctl({"start", "job"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("job") == "running");
    CHECK(wait_until([&] { return read_lines(rec).size() == 1; }));
    CHECK(environ_of(d.pid_of("job"), "X") == std::string("1"));
    CHECK(d.run_ctl({"start", "pool"}).exit_code == 0);
    CHECK(d.state_of("pool.1") == "running");
    CHECK(d.run_ctl({"start", "sub"}).exit_code == 0);
    CHECK(d.state_of("sub/x") == "running");
    CHECK(d.stop() == 0);
}

TEST_CASE("start \"no\" is a spec error at its pointer") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"start", "no"}})})));
    d.start();
    CHECK(d.wait_exit() == 2);
    CHECK(d.log_has(
        {d.spec_path() + ": /root/children/0/start: expected true or false; got \"no\""}));
}

// ---- empty arguments ------------------------------------------------------------

TEST_CASE("an empty argument reaches the program as an argument") {
    TempDir scratch;
    std::string out = scratch.file("args");
    // The shell prints each of its arguments between bars.
    Chipd d(spec(json::array(
        {worker("w", json::array({"/bin/sh", "-c",
                                  "printf '|%s' \"$@\" > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"; "
                                  "exec sleep 600",
                                  out, "--save", "", "x"}))})));
    d.start_ready();
    CHECK(wait_until([&] { return file_exists(out); }));
    CHECK(read_file(out) == "|--save||x");
    CHECK(d.stop() == 0);
}
