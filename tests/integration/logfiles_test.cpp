// Log files where another user could plant something (issue 9, hole 1): a
// symbolic link as the live file or as a rotation, a FIFO, a folder others
// can write to or that another user owns, a file another user made in a
// shared folder. chipd never writes through a link, refuses what it must not
// trust with the folder or file named, and goes on supervising.
//
// Cases that need another user (chown) run only as root; elsewhere they are
// skipped (skip(): meson's SKIP, with the reason).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// A uid no test file belongs to ("nobody" on most systems).
constexpr uid_t kOtherUid = 65534;

std::string shell_quote(const std::string &s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

void make_folder(const std::string &path, mode_t mode) {
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);
    // chmod, not mkdir's mode: the umask would take bits off.
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

bool is_symlink(const std::string &path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A victim file only the test's user may write, with known contents.
std::string make_victim(const TempDir &scratch) {
    std::string victim = scratch.file("victim");
    write_file(victim, "precious\n");
    REQUIRE(::chmod(victim.c_str(), 0600) == 0);
    return victim;
}

// "uid N" of this process, as chipd's messages name its user.
std::string my_uid() {
    return "uid " + std::to_string(::geteuid());
}

// A shell script: N lines of 50 bytes, once GO exists when given, then sleeps.
json printer(int n, const std::string &go = "") {
    std::string wait =
        go.empty() ? "" : "while [ ! -e " + shell_quote(go) + " ]; do sleep 0.01; done; ";
    return json::array({"/bin/sh", "-c",
                        "echo first; " + wait + "i=0; while [ $i -lt " + std::to_string(n) +
                            " ]; do printf '%049d\\n' $i; i=$((i+1)); done; exec sleep 1000"});
}

}  // namespace

TEST_CASE(
    "a live log file that is a symbolic link is not written through: the worker's start fails "
    "naming the link, and chipd goes on") {
    TempDir scratch;
    std::string victim = make_victim(scratch), logs = scratch.file("logs");
    make_folder(logs, 0755);
    std::string log = logs + "/app.log";
    REQUIRE(::symlink(victim.c_str(), log.c_str()) == 0);
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a");

    // Temporary: its failed start is not retried (a permanent one's would be,
    // until the root gave up, as for any failed start).
    json w = worker("w", helper({"print:leak", "sleep"}),
                    {{"stdout", {{"file", log}}}, {"restart", "temporary"}});
    auto r = d.run_ctl({"add", "/", w.dump()});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 1);
    CHECK(d.wait_log(
        {"start-failed w: cannot open log file " + log + ": is a symbolic link; refused"}));
    CHECK(read_file(victim) == "precious\n");
    CHECK(is_symlink(log));
    // Still supervising: the other worker untouched, requests answered.
    CHECK(d.pid_of("a") == a);
    CHECK(d.run_ctl({"status"}).exit_code == 0);
    CHECK(d.stop() == 0);
    CHECK(read_file(victim) == "precious\n");
}

TEST_CASE(
    "a symbolic link as the log file at chipd's start: the root fails to start (exit 1) "
    "naming the link; the file it points to is untouched") {
    TempDir scratch;
    std::string victim = make_victim(scratch), logs = scratch.file("logs");
    make_folder(logs, 0755);
    std::string log = logs + "/app.log";
    REQUIRE(::symlink(victim.c_str(), log.c_str()) == 0);
    Chipd d(spec(json::array(
        {worker("w", helper({"print:leak", "sleep"}), {{"stderr", {{"file", log}}}})})));
    d.start();
    auto code = d.wait_exit();
    INFO(d.stderr_text());
    CHECK(code == 1);
    CHECK(d.log_has(
        {"start-failed w: cannot open log file " + log + ": is a symbolic link; refused"}));
    CHECK(read_file(victim) == "precious\n");
}

TEST_CASE(
    "a FIFO as the live log file is refused without chipd blocking on it; the worker's start "
    "fails") {
    TempDir scratch;
    std::string logs = scratch.file("logs");
    make_folder(logs, 0755);
    std::string fifo = logs + "/fifo.log";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();

    json w = worker("w", helper("sleep"), {{"stdout", {{"file", fifo}}}, {"restart", "temporary"}});
    auto r = d.run_ctl({"add", "/", w.dump()});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 1);
    CHECK(d.wait_log({"start-failed w: cannot open log file " + fifo +
                      ": is not a regular file but a FIFO; refused"}));
    CHECK(d.run_ctl({"status"}).exit_code == 0);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "log rotation with a symbolic link planted as PATH.1: the link itself is renamed, the file "
    "it points to keeps its contents") {
    // 200 lines of 50 bytes, max_bytes 4096 (81 lines a file): two rotations,
    // which move the link from PATH.1 to PATH.2, then PATH.3.
    TempDir scratch;
    std::string victim = make_victim(scratch), logs = scratch.file("logs");
    make_folder(logs, 0755);
    std::string log = logs + "/app.log";
    REQUIRE(::symlink(victim.c_str(), (log + ".1").c_str()) == 0);
    Chipd d(spec(json::array({worker(
        "w", printer(200), {{"stdout", {{"file", log}, {"max_bytes", 4096}, {"keep", 3}}}})})));
    d.start_ready();
    std::string last = std::string(46, '0') + "199";
    REQUIRE(wait_until([&] {
        auto l = read_lines(log);
        return !l.empty() && l.back() == last;
    }));
    INFO(d.stderr_text());
    CHECK(read_file(victim) == "precious\n");
    CHECK(is_symlink(log + ".3"));
    CHECK_FALSE(is_symlink(log + ".1"));
    CHECK_FALSE(is_symlink(log + ".2"));
    CHECK(read_lines(log + ".1").size() == 81);
    CHECK(d.stop() == 0);
    CHECK(read_file(victim) == "precious\n");
}

TEST_CASE(
    "a symbolic link put in place of the live log file while chipd writes it is refused at the "
    "next open (rotation), never written through; the lines are dropped and reported") {
    // Before GO: PATH is replaced by a link to the victim, and PATH.1 is made
    // a folder, so that renaming PATH to PATH.1 fails and PATH, the link, is
    // still there when the new live file is opened.
    TempDir scratch;
    std::string victim = make_victim(scratch), logs = scratch.file("logs");
    make_folder(logs, 0755);
    std::string log = logs + "/app.log", go = scratch.file("go");
    Chipd d(spec(json::array({worker(
        "w", printer(100, go), {{"stdout", {{"file", log}, {"max_bytes", 4096}, {"keep", 1}}}})})));
    d.start_ready();
    REQUIRE(wait_until([&] { return read_file(log) == "first\n"; }));
    make_folder(log + ".1", 0755);
    std::string tmp = logs + "/link";
    REQUIRE(::symlink(victim.c_str(), tmp.c_str()) == 0);
    REQUIRE(::rename(tmp.c_str(), log.c_str()) == 0);
    write_file(go, "");
    INFO(d.stderr_text());
    CHECK(d.wait_log({"warning: cannot open log file " + log + ": is a symbolic link; refused"}));
    CHECK(read_file(victim) == "precious\n");
    CHECK(d.run_ctl({"status"}).exit_code == 0);
    CHECK(d.stop() == 0);
    CHECK(read_file(victim) == "precious\n");
}

TEST_CASE(
    "a log folder writable by others and not sticky is refused by chipd --check and chipd, "
    "naming the folder, its owner and mode; a sticky one of chipd's user is accepted") {
    TempDir scratch;
    std::string logs = scratch.file("logs");
    make_folder(logs, 0777);
    std::string log = logs + "/app.log";
    write_file(scratch.file("spec.json"),
               spec(json::array(
                        {worker("w", helper({"print:x", "sleep"}), {{"stdout", {{"file", log}}}})}))
                   .dump());
    auto r = run_process({chipd_path(), "--check", scratch.file("spec.json")});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("/root/children/0/stdout/file: expected") != std::string::npos);
    CHECK(r.err.find("folder " + logs + " (owner " + my_uid() +
                     ", mode 0777) is writable by its group and others and not sticky") !=
          std::string::npos);
    {
        Chipd refused(spec(json::array(
            {worker("w", helper({"print:x", "sleep"}), {{"stdout", {{"file", log}}}})})));
        refused.start();
        CHECK(refused.wait_exit() == 2);
        CHECK(refused.log_has({"folder " + logs, "mode 0777", "not sticky"}));
    }
    CHECK_FALSE(file_exists(log));

    REQUIRE(::chmod(logs.c_str(), 01777) == 0);
    r = run_process({chipd_path(), "--check", scratch.file("spec.json")});
    CHECK(r.exit_code == 0);
    // A folder named through a link of chipd's user's own (like /var/run ->
    // /run) is the folder it points to.
    std::string link = scratch.file("link");
    REQUIRE(::symlink(logs.c_str(), link.c_str()) == 0);
    write_file(scratch.file("link.json"),
               spec(json::array({worker("w", helper("sleep"),
                                        {{"stdout", {{"file", link + "/app.log"}}}})}))
                   .dump());
    r = run_process({chipd_path(), "--check", scratch.file("link.json")});
    CHECK(r.exit_code == 0);
    Chipd d(spec(
        json::array({worker("w", helper({"print:x", "sleep"}), {{"stdout", {{"file", log}}}})})));
    d.start_ready();
    CHECK(wait_until([&] { return read_file(log) == "out:x\n"; }));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "a log folder made writable by others while chipd runs: the next open (rotation) is "
    "refused and reported, and the worker's next start fails naming the folder") {
    TempDir scratch;
    std::string logs = scratch.file("logs");
    make_folder(logs, 0755);
    std::string log = logs + "/app.log", go = scratch.file("go");
    Chipd d(spec(json::array({worker(
        "w", printer(100, go), {{"stdout", {{"file", log}, {"max_bytes", 4096}, {"keep", 2}}}})})));
    d.start_ready();
    REQUIRE(wait_until([&] { return read_file(log) == "first\n"; }));
    REQUIRE(::chmod(logs.c_str(), 0775) == 0);
    write_file(go, "");
    std::string why = "folder " + logs + " (owner " + my_uid() +
                      ", mode 0775) is writable by its group and not sticky; refused";
    INFO(d.stderr_text());
    CHECK(d.wait_log({"warning: cannot open log file " + log + ": " + why}));
    auto r = d.run_ctl({"restart", "w"});
    CHECK(r.exit_code == 1);
    CHECK(d.wait_log({"start-failed w: cannot open log file " + log + ": " + why}));
    CHECK(d.run_ctl({"status"}).exit_code == 0);
    // Trusted again: the worker starts and writes.
    REQUIRE(::chmod(logs.c_str(), 0755) == 0);
    CHECK(d.run_ctl({"start", "w"}).exit_code == 0);
    std::string last = std::string(47, '0') + "99";
    CHECK(wait_until([&] {
        auto l = read_lines(log);
        return !l.empty() && l.back() == last;
    }));
    CHECK(d.log_has({"log file " + log + " is written again"}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "a log folder owned by another user is refused naming the folder and its owner; in a "
    "shared sticky folder, a log file another user made is refused") {
    if (::geteuid() != 0) skip("needs root to give a folder to another user (chown)");
    TempDir scratch;
    std::string theirs = scratch.file("theirs");
    make_folder(theirs, 0755);
    REQUIRE(::chown(theirs.c_str(), kOtherUid, kOtherUid) == 0);
    write_file(scratch.file("spec.json"),
               spec(json::array({worker("w", helper("sleep"),
                                        {{"stdout", {{"file", theirs + "/app.log"}}}})}))
                   .dump());
    auto r = run_process({chipd_path(), "--check", scratch.file("spec.json")});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("folder " + theirs +
                     " (owner uid 65534, mode 0755) is owned by uid 65534, "
                     "not by chipd's user (uid 0) or root") != std::string::npos);

    // The same through a link another user made: refused, whatever it points to.
    std::string link = scratch.file("link");
    make_folder(scratch.file("mine-logs"), 0755);
    REQUIRE(::symlink(scratch.file("mine-logs").c_str(), link.c_str()) == 0);
    REQUIRE(::lchown(link.c_str(), kOtherUid, kOtherUid) == 0);
    write_file(scratch.file("link.json"),
               spec(json::array({worker("w", helper("sleep"),
                                        {{"stdout", {{"file", link + "/app.log"}}}})}))
                   .dump());
    r = run_process({chipd_path(), "--check", scratch.file("link.json")});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("folder " + link +
                     " is a symbolic link of uid 65534, not of chipd's user "
                     "(uid 0) or root") != std::string::npos);

    // A sticky folder anyone can write to (like /tmp): another user's file
    // there may be bait (or a hard link to one of root's).
    std::string shared = scratch.file("shared");
    make_folder(shared, 01777);
    std::string planted = shared + "/app.log";
    write_file(planted, "theirs\n");
    REQUIRE(::chown(planted.c_str(), kOtherUid, kOtherUid) == 0);
    std::string mine = scratch.file("mine");
    write_file(mine, "root's\n");
    std::string linked = shared + "/linked.log";
    REQUIRE(::link(mine.c_str(), linked.c_str()) == 0);
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    json w = worker("w", helper({"print:leak", "sleep"}),
                    {{"stdout", {{"file", planted}}}, {"restart", "temporary"}});
    r = d.run_ctl({"add", "/", w.dump()});
    CHECK(r.exit_code == 1);
    CHECK(d.wait_log({"start-failed w: cannot open log file " + planted +
                      ": is owned by uid 65534, not by chipd's user (uid 0), in a folder others "
                      "can write to; refused"}));
    json v = worker("v", helper({"print:leak", "sleep"}),
                    {{"stdout", {{"file", linked}}}, {"restart", "temporary"}});
    r = d.run_ctl({"add", "/", v.dump()});
    CHECK(r.exit_code == 1);
    CHECK(d.wait_log({"start-failed v: cannot open log file " + linked +
                      ": has 2 hard links, in a folder others can write to; refused"}));
    CHECK(read_file(planted) == "theirs\n");
    CHECK(read_file(mine) == "root's\n");
    CHECK(d.stop() == 0);
}
