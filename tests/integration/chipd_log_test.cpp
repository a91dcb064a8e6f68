// chipd's own log: --log-format json makes every line chipd writes JSON
// (events, warnings, inherited worker output), --log-file keeps its lines in a
// rotated file too; `chipctl logs` on a worker without a log file says where
// its output goes.
#include <doctest/doctest.h>

#include <algorithm>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// Every line of TEXT parsed as JSON; a line that does not parse fails the test.
std::vector<json> json_lines(const std::string &text) {
    std::vector<json> out;
    for (const auto &line : split_lines(text)) {
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, false);
        INFO(line);
        CHECK_FALSE(j.is_discarded());
        if (!j.is_discarded()) out.push_back(j);
    }
    return out;
}

bool has_output(const std::vector<json> &lines, const std::string &path, const std::string &stream,
                const std::string &line) {
    for (const auto &j : lines)
        if (j.value("event", "") == "output" && j.value("path", "") == path &&
            j.value("stream", "") == stream && j.value("line", "") == line)
            return true;
    return false;
}

}  // namespace

TEST_CASE(
    "--log-format json: every line chipd writes is JSON, inherited worker output and "
    "warnings included") {
    // A worker printing on both streams, and an invalid byte.
    json w = worker("talker",
                    json::array({"/bin/sh", "-c",
                                 "echo hello; echo oops >&2; printf 'bad \\377 byte\\n'; exec '" +
                                     helper_path() + "' sleep"}));
    Chipd d(spec(json::array({w})));
    d.start_ready({"--log-format", "json"});
    REQUIRE(wait_until([&] { return d.stdout_text().find("bad") != std::string::npos; }));
    REQUIRE(d.wait_log({"oops"}));
    // A warning: SIGHUP with the spec file deleted is logged, nothing changes.
    std::remove(d.spec_path().c_str());
    d.signal(SIGHUP);
    REQUIRE(d.wait_log({"warning"}));
    CHECK(d.stop() == 0);

    auto out = json_lines(d.stdout_text());
    auto err = json_lines(d.stderr_text());
    CHECK(has_output(out, "talker", "stdout", "hello"));
    CHECK(has_output(out, "talker", "stdout", "bad \xef\xbf\xbd byte"));
    CHECK(has_output(err, "talker", "stderr", "oops"));
    bool warning = false;
    for (const auto &j : err)
        warning = warning || (j.value("event", "") == "warning" &&
                              j.value("message", "").find("not reloaded") != std::string::npos);
    CHECK(warning);
}

TEST_CASE(
    "--log-file: chipd's own lines also go to a file, rotated by --log-max-bytes and "
    "--log-keep") {
    TempDir scratch;
    std::string log = scratch.file("chipd.log");
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready({"--log-file", log, "--log-max-bytes", "400", "--log-keep", "2"});
    // Enough events to rotate: restarts of a.
    for (int i = 0; i < 6; ++i) {
        pid_t old = d.pid_of("a");
        REQUIRE(d.run_ctl({"restart", "a"}).exit_code == 0);
        REQUIRE(d.wait_new_pid("a", old) != 0);
    }
    CHECK(d.stop() == 0);
    // The file has the last lines chipd wrote on stderr, the rotations older ones.
    auto live = read_lines(log);
    REQUIRE_FALSE(live.empty());
    CHECK(live.back().find("stopped /") != std::string::npos);
    CHECK(file_exists(log + ".1"));
    CHECK(file_exists(log + ".2"));
    CHECK_FALSE(file_exists(log + ".3"));
    for (const auto &f : {log, log + ".1", log + ".2"}) CHECK(read_file(f).size() <= 400);
    // Every line of the files is a line of stderr.
    std::string err = d.stderr_text();
    for (const auto &f : {log, log + ".1", log + ".2"})
        for (const auto &line : read_lines(f)) {
            INFO(line);
            CHECK(err.find(line) != std::string::npos);
        }
}

TEST_CASE("--log-file in a folder that does not exist: chipd does not start, and says why") {
    TempDir scratch;
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start({"--log-file", scratch.file("missing/chipd.log")});
    CHECK(d.wait_exit() == 1);
    CHECK(d.log_has({"--log-file", "missing/chipd.log"}));
}

TEST_CASE("chipctl logs on a worker without a log file says where its output goes") {
    Chipd d(spec(json::array({worker("a", helper("sleep"), {{"stderr", "null"}})})));
    d.start_ready();
    auto r = d.run_ctl({"logs", "a"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("a: no log file; its stdout goes to chipd's own stdout, its stderr to "
                     "nowhere (discarded)") != std::string::npos);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "{instance} and {name} in a log file: one file per worker of a pool; chipctl logs POOL "
    "shows each, prefixed, and follows them all") {
    TempDir logs;
    json pool = worker("web", helper({"print:hello", "sleep"}),
                       {{"instances", 2},
                        {"stdout", {{"file", logs.path() + "/{name}.{instance}.log"}}},
                        {"stderr", {{"file", logs.path() + "/{name}.{instance}.log"}}}});
    Chipd d(spec(json::array({pool})));
    d.start_ready();
    std::string f0 = logs.path() + "/web.0.log", f1 = logs.path() + "/web.1.log";
    REQUIRE(wait_until([&] { return read_lines(f0).size() == 2 && read_lines(f1).size() == 2; }));
    CHECK(read_lines(f0) == std::vector<std::string>{"out:hello", "err:hello"});
    // One instance: its file, as it is.
    auto one = d.run_ctl({"logs", "web.1"});
    CHECK(one.exit_code == 0);
    CHECK(split_lines(one.out) == std::vector<std::string>{"out:hello", "err:hello"});
    // The pool: every instance's lines, each with its worker.
    auto all = d.run_ctl({"logs", "web", "-n", "1"});
    INFO(all.out << all.err);
    CHECK(all.exit_code == 0);
    CHECK(split_lines(all.out) == std::vector<std::string>{"web.0: err:hello", "web.1: err:hello"});
    // Followed: a restart of web.1 prints again, and it shows with its prefix.
    std::string out = logs.path() + "/followed";
    ChildOptions opts;
    opts.out_file = out;
    opts.err_to_out = true;
    Child f({chipctl_path(), "--socket", d.socket(), "logs", "web", "-n", "1", "-f"}, opts);
    REQUIRE(wait_until([&] { return read_lines(out).size() == 2; }));
    pid_t old = d.pid_of("web.1");
    REQUIRE(d.run_ctl({"restart", "web.1"}).exit_code == 0);
    REQUIRE(d.wait_new_pid("web.1", old) != 0);
    bool seen = wait_until([&] {
        auto l = read_lines(out);
        return std::count(l.begin(), l.end(), "web.1: out:hello") == 1 &&
               std::count(l.begin(), l.end(), "web.1: err:hello") == 2;
    });
    f.kill();
    INFO(read_file(out));
    CHECK(seen);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "log file placeholders: {instance} outside a pool, an unknown one, one in the folder "
    "are spec errors") {
    TempDir logs;
    auto check = [&](const json &w) {
        TempDir dir;
        write_file(dir.file("spec.json"), spec(json::array({w})).dump());
        return run_process({chipd_path(), "--check", dir.file("spec.json")});
    };
    auto single = check(
        worker("w", helper("sleep"), {{"stdout", {{"file", logs.path() + "/w.{instance}.log"}}}}));
    CHECK(single.exit_code == 2);
    CHECK(single.err.find("/stdout/file: expected {instance} only in a pool's log file") !=
          std::string::npos);
    auto unknown =
        check(worker("w", helper("sleep"), {{"stdout", {{"file", logs.path() + "/{host}.log"}}}}));
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err.find("expected no braces but the placeholders {name} and {instance}") !=
          std::string::npos);
    auto named =
        check(worker("w", helper("sleep"), {{"stdout", {{"file", logs.path() + "/{name}.log"}}}}));
    CHECK(named.exit_code == 0);
}
