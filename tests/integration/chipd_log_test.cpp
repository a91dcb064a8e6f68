// chipd's own log: --log-format json makes every line chipd writes JSON
// (events, warnings, inherited worker output), --log-file keeps its lines in a
// rotated file too; `chipctl logs` on a worker without a log file says where
// its output goes.
#include <doctest/doctest.h>

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
