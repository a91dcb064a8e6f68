// chipctl's output formatting and log tailing, without a chipd.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "ctl/format.hpp"
#include "ctl/tail.hpp"

using chip::ctl::format_groups;
using chip::ctl::format_last_exit;
using chip::ctl::format_status_table;
using chip::ctl::format_uptime;
using nlohmann::json;

TEST_CASE("uptime: seconds, then two units with the smaller zero-padded") {
    CHECK(format_uptime(0) == "0s");
    CHECK(format_uptime(5) == "5s");
    CHECK(format_uptime(59) == "59s");
    CHECK(format_uptime(60) == "1m00s");
    CHECK(format_uptime(192) == "3m12s");
    CHECK(format_uptime(3599) == "59m59s");
    CHECK(format_uptime(3600) == "1h00m");
    CHECK(format_uptime(2 * 3600 + 4 * 60 + 59) == "2h04m");
    CHECK(format_uptime(86399) == "23h59m");
    CHECK(format_uptime(86400) == "1d00h");
    CHECK(format_uptime(3 * 86400 + 4 * 3600 + 3599) == "3d04h");
    CHECK(format_uptime(400 * 86400) == "400d00h");
}

TEST_CASE("uptime from JSON: fractions are floored, null and junk are -") {
    CHECK(format_uptime(json(12.9)) == "12s");
    CHECK(format_uptime(json(192)) == "3m12s");
    CHECK(format_uptime(json(nullptr)) == "-");
    CHECK(format_uptime(json("5")) == "-");
    CHECK(format_uptime(json(-3)) == "0s");
}

TEST_CASE("last exit: an exit code, a signal by name, or -") {
    CHECK(format_last_exit(json{{"code", 3}}) == "exit 3");
    CHECK(format_last_exit(json{{"code", 0}}) == "exit 0");
    CHECK(format_last_exit(json{{"signal", "TERM"}}) == "signal TERM");
    CHECK(format_last_exit(json{{"signal", 9}}) == "signal KILL");
    CHECK(format_last_exit(json(nullptr)) == "-");
    CHECK(format_last_exit(json::object()) == "-");
}

TEST_CASE("path depth: the root is 0, each name one more") {
    CHECK(chip::ctl::path_depth("/") == 0);
    CHECK(chip::ctl::path_depth("db") == 1);
    CHECK(chip::ctl::path_depth("sessions/session.3") == 2);
}

namespace {

json node(const std::string &path, const std::string &kind, const std::string &state, json pid,
          int restarts, json uptime, json last_exit) {
    return json{{"path", path},
                {"kind", kind},
                {"state", state},
                {"pid", std::move(pid)},
                {"restarts", restarts},
                {"uptime_s", std::move(uptime)},
                {"last_exit", std::move(last_exit)}};
}

}  // namespace

TEST_CASE("status table: the whole tree, indented by depth, aligned, - for nulls") {
    json nodes = json::array({
        node("/", "supervisor", "running", nullptr, 0, 7384, nullptr),
        node("db", "worker", "running", 4242, 0, 7384, nullptr),
        node("sessions", "supervisor", "running", nullptr, 1, 7380, nullptr),
        node("sessions/session.0", "worker", "running", 4250, 2, 192, json{{"code", 3}}),
        node("sessions/session.1", "worker", "stopped", nullptr, 0, nullptr,
             json{{"signal", "TERM"}}),
        node("sessions/session.2", "worker", "starting", 51234, 12, 5, nullptr),
    });
    CHECK(format_status_table(nodes) ==
          "PATH           STATE     PID    UPTIME  RESTARTS  LAST EXIT\n"
          "/              running   -      2h03m   0         -\n"
          "  db           running   4242   2h03m   0         -\n"
          "  sessions     running   -      2h03m   1         -\n"
          "    session.0  running   4250   3m12s   2         exit 3\n"
          "    session.1  stopped   -      -       0         signal TERM\n"
          "    session.2  starting  51234  5s      12        -\n");
}

TEST_CASE("status table: a subtree starts at its own path, unindented") {
    json nodes = json::array({
        node("sessions", "supervisor", "failed", nullptr, 4, nullptr, nullptr),
        node("sessions/session", "worker", "exited", nullptr, 0, nullptr, json{{"code", 0}}),
    });
    CHECK(format_status_table(nodes) ==
          "PATH       STATE   PID  UPTIME  RESTARTS  LAST EXIT\n"
          "sessions   failed  -    -       4         -\n"
          "  session  exited  -    -       0         exit 0\n");
}

TEST_CASE("status table: the instances of one worker are all top-level rows") {
    json nodes = json::array({
        node("sessions/session.0", "worker", "running", 10, 0, 61, nullptr),
        node("sessions/session.1", "worker", "running", 11, 0, 61, nullptr),
    });
    CHECK(format_status_table(nodes) ==
          "PATH                STATE    PID  UPTIME  RESTARTS  LAST EXIT\n"
          "sessions/session.0  running  10   1m01s   0         -\n"
          "sessions/session.1  running  11   1m01s   0         -\n");
}

TEST_CASE("status table: no nodes is the header alone; junk fields are -") {
    CHECK(format_status_table(json::array()) == "PATH  STATE  PID  UPTIME  RESTARTS  LAST EXIT\n");
    CHECK(format_status_table(json::array({json{{"path", "x"}}})) ==
          "PATH  STATE  PID  UPTIME  RESTARTS  LAST EXIT\n"
          "x     -      -    -       -         -\n");
}

TEST_CASE("groups: sorted by name, counts in one column") {
    CHECK(format_groups({{"players", 16}, {"lobby", 3}, {"a:long.group-name", 1024}}) ==
          "a:long.group-name  1024\n"
          "lobby              3\n"
          "players            16\n");
    CHECK(format_groups({}).empty());
}

namespace {

// A temp file holding CONTENT, removed at the end of the test.
struct TempFile {
    std::string path;
    int fd = -1;
    explicit TempFile(const std::string &content) {
        char tmpl[] = "/tmp/ctl_format_test.XXXXXX";
        fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        path = tmpl;
        REQUIRE(::write(fd, content.data(), content.size()) ==
                static_cast<ssize_t>(content.size()));
    }
    ~TempFile() {
        ::close(fd);
        ::unlink(path.c_str());
    }
    std::string from_last(std::size_t lines) const {
        auto size = static_cast<off_t>(::lseek(fd, 0, SEEK_END));
        auto at = chip::ctl::last_lines_offset(fd, size, lines);
        REQUIRE(at.ok());
        std::string all(static_cast<std::size_t>(size), '\0');
        REQUIRE(::pread(fd, all.data(), all.size(), 0) == size);
        return all.substr(static_cast<std::size_t>(*at));
    }
};

}  // namespace

TEST_CASE("tail: the last N lines, a final line without newline counting as one") {
    TempFile f("one\ntwo\nthree\n");
    CHECK(f.from_last(0) == "");
    CHECK(f.from_last(1) == "three\n");
    CHECK(f.from_last(2) == "two\nthree\n");
    CHECK(f.from_last(3) == "one\ntwo\nthree\n");
    CHECK(f.from_last(10) == "one\ntwo\nthree\n");

    TempFile partial("one\ntwo\nthr");
    CHECK(partial.from_last(1) == "thr");
    CHECK(partial.from_last(2) == "two\nthr");

    TempFile empty("");
    CHECK(empty.from_last(10) == "");

    TempFile blank("\n\n\n");
    CHECK(blank.from_last(2) == "\n\n");
}

TEST_CASE("tail: lines spanning the 64 KiB read blocks") {
    std::string content;
    for (int i = 0; i < 20000; ++i) content += "line " + std::to_string(i) + "\n";
    TempFile f(content);
    CHECK(f.from_last(1) == "line 19999\n");
    CHECK(f.from_last(3) == "line 19997\nline 19998\nline 19999\n");
    std::string last_15000 = f.from_last(15000);
    CHECK(last_15000.substr(0, 10) == "line 5000\n");
    CHECK(f.from_last(20000) == content);

    std::string big(200000, 'x');
    TempFile one_long_line("a\n" + big + "\n");
    CHECK(one_long_line.from_last(1) == big + "\n");
}

TEST_CASE("event stream objects as chipd's text log lines") {
    using chip::ctl::format_event_line;
    const std::string t = "2024-05-01T12:00:00.123Z";
    auto line = [&](json j) {
        j["time"] = t;
        return format_event_line(j);
    };
    CHECK(line({{"event", "start"}, {"path", "web"}, {"pid", 42}}) ==
          t + " chipd: start web pid 42\n");
    CHECK(line({{"event", "exit"}, {"path", "web"}, {"pid", 42}, {"code", 1}}) ==
          t + " chipd: exit web pid 42 status 1\n");
    CHECK(line({{"event", "exit"}, {"path", "a/b"}, {"pid", 7}, {"signal", "KILL"}}) ==
          t + " chipd: exit a/b pid 7 signal KILL\n");
    CHECK(line({{"event", "restart"}, {"path", "web"}, {"count", 3}}) ==
          t + " chipd: restart web (restart 3)\n");
    CHECK(line({{"event", "give-up"}, {"path", "/"}, {"count", 11}, {"message", "too many"}}) ==
          t + " chipd: give-up /: too many\n");
    CHECK(line({{"event", "stopped"}, {"path", "/"}}) == t + " chipd: stopped /\n");
    CHECK(line({{"event", "stop"}, {"path", "/"}, {"message", "shutdown requested"}}) ==
          t + " chipd: stop /: shutdown requested\n");
    CHECK(line({{"event", "join"}, {"registry", "r"}, {"group", "g"}, {"pid", 5}, {"path", "w"}}) ==
          t + " chipd: join r/g pid 5 (w)\n");
    CHECK(line({{"event", "leave"}, {"registry", "r"}, {"group", "g"}, {"pid", 5}}) ==
          t + " chipd: leave r/g pid 5\n");
    CHECK(line({{"event", "reload"},
                {"spec", "/etc/chip.json"},
                {"changes", {{{"path", "a"}, {"change", "add"}}}}}) ==
          t + " chipd: reload /etc/chip.json (1 change)\n" + t + " chipd: reload: add a\n");
    CHECK(line({{"event", "reloaded"}}) == t + " chipd: reloaded\n");
    CHECK(line({{"event", "reload-failed"}, {"message", "no"}}) ==
          t + " chipd: reload failed: no\n");
    // Junk is no throw.
    CHECK(format_event_line(json(3)) == "");
    CHECK_NOTHROW(format_event_line(json{{"event", 3}, {"pid", "x"}, {"changes", 2}}));
}

TEST_CASE("usage columns: CPU, memory, command shortened") {
    using chip::ctl::format_bytes;
    using chip::ctl::format_command;
    using chip::ctl::format_cpu;
    CHECK(format_cpu(json(0.123)) == "0.12s");
    CHECK(format_cpu(json(125.0)) == "2m05s");
    CHECK(format_cpu(json()) == "-");
    CHECK(format_bytes(json(512)) == "512B");
    CHECK(format_bytes(json(4.5 * 1024 * 1024)) == "4.5M");
    CHECK(format_bytes(json()) == "-");
    json argv = json::array({"/usr/bin/redis-server", "--save", "", "--port", "6380"});
    CHECK(format_command(argv, 0) == "/usr/bin/redis-server --save '' --port 6380");
    CHECK(format_command(argv, 20) == "redis-server --sa...");
}
