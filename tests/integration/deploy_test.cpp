// chipd deployed as a real service (issue 4): systemd's notify protocol and
// watchdog played by the test with its own datagram socket, JOURNAL_STREAM
// log lines, log capture to rotated files (no line lost across restarts,
// rotation names and sizes, a full disk), `chipctl logs -n/-f`, spec errors
// of the output options, and chipd as PID 1 of a new PID namespace.
//
// Cases that need root powers (mount a tmpfs, unshare a PID namespace) are
// skipped (skip(): meson's SKIP, with the reason) when the host refuses them.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <sstream>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// Sets NAME=VALUE in this process (chipd inherits it) until destroyed.
class EnvVar {
public:
    EnvVar(const char *name, const std::string &value) : name_(name) {
        ::setenv(name, value.c_str(), 1);
    }
    ~EnvVar() { ::unsetenv(name_); }
    EnvVar(const EnvVar &) = delete;
    EnvVar &operator=(const EnvVar &) = delete;

private:
    const char *name_;
};

// systemd's side of sd_notify: a datagram socket that records what arrives.
class NotifyListener {
public:
    explicit NotifyListener(const std::string &path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    }
    ~NotifyListener() { ::close(fd_); }
    NotifyListener(const NotifyListener &) = delete;
    NotifyListener &operator=(const NotifyListener &) = delete;

    // Reads what has arrived; each datagram is one message.
    void pump() {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0) return;
            got_.push_back({std::chrono::steady_clock::now(), std::string(buf, n)});
        }
    }
    bool wait_for(const std::function<bool()> &pred, Ms deadline = kDeadline) {
        return wait_until(
            [&] {
                pump();
                return pred();
            },
            deadline);
    }
    // Index of the first message equal to MSG (or starting with it when
    // PREFIX), -1 if none.
    long index_of(const std::string &msg, bool prefix = false) const {
        for (std::size_t i = 0; i < got_.size(); ++i)
            if (prefix ? got_[i].text.rfind(msg, 0) == 0 : got_[i].text == msg)
                return static_cast<long>(i);
        return -1;
    }
    std::size_t count(const std::string &msg) const {
        std::size_t n = 0;
        for (const auto &m : got_) n += m.text == msg;
        return n;
    }
    std::vector<std::string> statuses() const {
        std::vector<std::string> v;
        for (const auto &m : got_)
            if (m.text.rfind("STATUS=", 0) == 0) v.push_back(m.text.substr(7));
        return v;
    }
    std::string dump() const {
        std::string s;
        for (const auto &m : got_) s += m.text + "\n";
        return s;
    }
    struct Msg {
        std::chrono::steady_clock::time_point at;
        std::string text;
    };
    const std::vector<Msg> &messages() const { return got_; }

private:
    std::string path_;
    int fd_ = -1;
    std::vector<Msg> got_;
};

// The restart count of a STATUS= text ("...; N restarts in the last minute"), -1 if none.
long restarts_in(const std::string &status) {
    auto semi = status.find("; ");
    if (semi == std::string::npos || status.find("in the last minute") == std::string::npos)
        return -1;
    return std::strtol(status.c_str() + semi + 2, nullptr, 10);
}

// ARGV in the background with stdout and stderr to OUT.
std::unique_ptr<Child> spawn_to_file(const std::vector<std::string> &argv, const std::string &out) {
    ChildOptions opts;
    opts.out_file = out;
    opts.err_to_out = true;
    return std::make_unique<Child>(argv, opts);
}

std::string shell_quote(const std::string &s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

long file_size(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

// The pids listed in /proc/PID/task/*/children (PID's children).
std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> kids;
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR *d = ::opendir(dir.c_str());
    if (!d) return kids;
    while (dirent *e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::istringstream in(read_file(dir + "/" + e->d_name + "/children"));
        pid_t k;
        while (in >> k) kids.push_back(k);
    }
    ::closedir(d);
    return kids;
}

// The pid of PID as seen in its innermost PID namespace (last NSpid field).
pid_t inner_pid(pid_t pid) {
    for (const auto &line : read_lines("/proc/" + std::to_string(pid) + "/status"))
        if (line.rfind("NSpid:", 0) == 0) {
            auto w = split_words(line);
            for (auto it = w.rbegin(); it != w.rend(); ++it)
                if (!it->empty()) return static_cast<pid_t>(std::atol(it->c_str()));
        }
    return -1;
}

}  // namespace

// ---- systemd ---------------------------------------------------------------------

TEST_CASE(
    "under systemd: READY=1 only once every worker is ready, STATUS= summaries with "
    "restarts, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 at shutdown") {
    TempDir scratch;
    NotifyListener sd(scratch.file("notify"));
    EnvVar notify("NOTIFY_SOCKET", scratch.file("notify"));
    EnvVar watchdog("WATCHDOG_USEC", "200000");
    std::string rec = scratch.file("rec"), env = scratch.file("env"), go = scratch.file("go");
    // "late" becomes ready only when the test creates GO.
    std::string late = "while [ ! -e " + shell_quote(go) + " ]; do sleep 0.01; done; exec " +
                       shell_quote(helper_path()) + " record:" + shell_quote(rec) + ",notify";
    Chipd d(spec(json::array({worker("a", helper("env:" + env)),
                              worker("late", json::array({"/bin/sh", "-c", late}),
                                     {{"ready", "notify"}, {"start_timeout", 3600}}),
                              worker("flap", helper("exit-after:100:1"))}),
                 {{"max_restarts", 1000}, {"period", 1}}));
    d.start();
    // While "late" is starting: chipd has said it is starting, and not READY=1
    // (a premature READY=1 would come before the STATUS= of the same turn).
    REQUIRE(sd.wait_for([&] {
        auto st = sd.statuses();
        return !st.empty() && st.back().find("1 starting") != std::string::npos &&
               d.state_of("late") == "starting";
    }));
    sd.pump();
    CHECK(sd.index_of("READY=1") == -1);
    CHECK(d.state_of("flap") == "stopped");  // not started before "late" is ready
    write_file(go, "");
    REQUIRE(sd.wait_for([&] { return sd.index_of("READY=1") >= 0; }));
    // The notify worker had said READY=1 before chipd did.
    CHECK(read_file(rec).find("ready ") != std::string::npos);
    CHECK(d.state_of("a") == "running");
    CHECK(d.state_of("late") == "running");
    CHECK(sd.count("READY=1") == 1);

    // STATUS= follows the restarts of "flap".
    CHECK(sd.wait_for([&] {
        for (const auto &s : sd.statuses())
            if (restarts_in(s) >= 2) return true;
        return false;
    }));
    for (const auto &s : sd.statuses()) {
        INFO(s);
        CHECK(s.find(" running, ") != std::string::npos);
        CHECK(restarts_in(s) >= 0);
    }

    // WATCHDOG=1 repeats, about every 100 ms (never faster).
    CHECK(sd.wait_for([&] { return sd.count("WATCHDOG=1") >= 5; }));
    std::vector<std::chrono::steady_clock::time_point> pings;
    for (const auto &m : sd.messages())
        if (m.text == "WATCHDOG=1") pings.push_back(m.at);
    REQUIRE(pings.size() >= 5);
    auto span = std::chrono::duration_cast<Ms>(pings.back() - pings.front());
    CHECK(span.count() / static_cast<double>(pings.size() - 1) >= 80.0);

    // chipd's own systemd variables are not the workers'.
    REQUIRE(wait_until([&] { return file_exists(env); }));
    std::string wenv = read_file(env);
    CHECK(wenv.find("WATCHDOG_USEC=") == std::string::npos);
    CHECK(wenv.find("NOTIFY_SOCKET=") == std::string::npos);

    d.signal(SIGTERM);
    CHECK(d.wait_exit() == std::optional<int>(0));
    sd.pump();
    INFO(sd.dump());
    long stopping = sd.index_of("STOPPING=1");
    CHECK(stopping > sd.index_of("READY=1"));
    CHECK(sd.count("STOPPING=1") == 1);
}

TEST_CASE(
    "a notify socket that refuses datagrams (nobody listening, or a full queue) never "
    "stalls chipd; WATCHDOG_PID of another process turns the watchdog off") {
    SUBCASE("nobody listening") {
        TempDir scratch;
        EnvVar notify("NOTIFY_SOCKET", scratch.file("nobody"));
        EnvVar watchdog("WATCHDOG_USEC", "2000");
        Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
        d.start_ready();
        for (int i = 0; i < 10; ++i) CHECK(d.run_ctl({"status"}).exit_code == 0);
        CHECK(d.stop() == 0);
    }
    SUBCASE("a socket that is never read") {
        TempDir scratch;
        NotifyListener sd(scratch.file("notify"));  // bound, never pumped
        EnvVar notify("NOTIFY_SOCKET", scratch.file("notify"));
        EnvVar watchdog("WATCHDOG_USEC", "2000");  // a ping every millisecond fills it
        Chipd d(spec(json::array({worker("a", helper("sleep"))})));
        d.start_ready();
        for (int i = 0; i < 20; ++i) CHECK(d.run_ctl({"status"}).exit_code == 0);
        CHECK(d.run_ctl({"restart", "a"}).exit_code == 0);
        CHECK(d.stop() == 0);
    }
    SUBCASE("WATCHDOG_PID names another process") {
        TempDir scratch;
        NotifyListener sd(scratch.file("notify"));
        EnvVar notify("NOTIFY_SOCKET", scratch.file("notify"));
        EnvVar watchdog("WATCHDOG_USEC", "20000");
        EnvVar wpid("WATCHDOG_PID", "1");
        Chipd d(spec(json::array({worker("a", helper("sleep"))})));
        d.start_ready();
        REQUIRE(sd.wait_for([&] { return sd.index_of("READY=1") >= 0; }));
        // Ten periods of 10 ms (scaled) without a ping: absence needs a window
        // to watch, not a synchronisation.
        wait_until([] { return false; }, 100ms);
        sd.pump();
        CHECK(sd.count("WATCHDOG=1") == 0);
        CHECK(d.stop() == 0);
    }
}

TEST_CASE(
    "with JOURNAL_STREAM set, every log line carries a <N> priority and no timestamp; "
    "SIGHUP reloads the spec") {
    EnvVar journal("JOURNAL_STREAM", "8:12345");
    TempDir scratch;
    std::string env = scratch.file("env");
    Chipd d(
        spec(json::array({worker("a", helper("env:" + env)),
                          worker("b", helper("exit-after:50:3"), {{"restart", "temporary"}})})));
    d.start_ready();
    REQUIRE(d.wait_state("b", "exited"));
    d.signal(SIGHUP);
    REQUIRE(d.wait_log({"<5>chipd: reload "}));
    REQUIRE(d.wait_log({"<5>chipd: reloaded"}));
    CHECK(d.running());
    CHECK(d.stop() == 0);
    auto lines = d.stderr_lines();
    REQUIRE(lines.size() >= 4);
    for (const auto &l : lines) {
        INFO(l);
        REQUIRE(l.size() > 10);
        CHECK(l[0] == '<');
        CHECK(l[1] >= '0');
        CHECK(l[1] <= '7');
        CHECK(l.substr(2, 8) == ">chipd: ");
    }
    CHECK(d.log_has({"<4>chipd: exit b", "status 3"}));
    CHECK(read_file(env).find("JOURNAL_STREAM=") == std::string::npos);
}

// ---- log capture -----------------------------------------------------------------

TEST_CASE(
    "under systemd: a reexec keeps the watchdog going, READY=1 said once and the restarts "
    "STATUS= counts") {
    TempDir scratch;
    NotifyListener sd(scratch.file("notify"));
    EnvVar notify("NOTIFY_SOCKET", scratch.file("notify"));
    EnvVar watchdog("WATCHDOG_USEC", "200000");
    Chipd d(
        spec(json::array({worker("a", helper("sleep")), worker("flap", helper("exit-after:50:1"))}),
             {{"max_restarts", 1000}, {"period", 1}}));
    d.start();
    // Some restarts, then none: STATUS= counts them for a minute.
    REQUIRE(wait_until([&] { return d.restarts_of("flap") >= 3; }));
    REQUIRE(d.run_ctl({"stop", "flap"}).exit_code == 0);
    long before = 0;
    REQUIRE(sd.wait_for([&] {
        auto st = sd.statuses();
        before = st.empty() ? -1 : restarts_in(st.back());
        return sd.count("READY=1") == 1 && before >= 3 &&
               st.back().find("0 starting") != std::string::npos;
    }));
    std::size_t pings = sd.count("WATCHDOG=1");
    std::size_t messages = sd.messages().size();
    pid_t chipd = d.pid();

    auto r = d.run_ctl({"reexec"});
    INFO(r.out << r.err << d.stderr_text());
    REQUIRE(r.exit_code == 0);
    CHECK(d.pid() == chipd);
    // The watchdog goes on from the same pid; STATUS= is said again with the
    // restarts of before; READY=1 is not said twice.
    CHECK(sd.wait_for([&] { return sd.count("WATCHDOG=1") >= pings + 5; }));
    REQUIRE(sd.wait_for([&] {
        auto st = sd.statuses();
        for (std::size_t i = messages; i < sd.messages().size(); ++i)
            if (sd.messages()[i].text.rfind("STATUS=", 0) == 0) return true;
        return false;
    }));
    INFO(sd.dump());
    CHECK(restarts_in(sd.statuses().back()) >= before);
    CHECK(sd.count("READY=1") == 1);
    CHECK(sd.count("STOPPING=1") == 0);
    CHECK(d.stop() == 0);
}

TEST_CASE("under systemd: a reload sends RELOADING=1 with MONOTONIC_USEC, then READY=1 once done") {
    TempDir scratch;
    NotifyListener sd(scratch.file("notify"));
    EnvVar notify("NOTIFY_SOCKET", scratch.file("notify"));
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    REQUIRE(sd.wait_for([&] { return sd.count("READY=1") == 1; }));
    pid_t a = d.pid_of("a");
    write_file(d.spec_path(),
               spec(json::array({worker("a", helper("sleep"), {{"env", {{"X", "1"}}}})})).dump());
    d.signal(SIGHUP);
    REQUIRE(sd.wait_for([&] { return sd.count("READY=1") == 2; }));
    INFO(sd.dump());
    long reloading = sd.index_of("RELOADING=1\nMONOTONIC_USEC=", true);
    CHECK(reloading > 0);
    // READY=1 again only once the changed worker runs anew.
    long ready = -1;
    for (std::size_t i = 0; i < sd.messages().size(); ++i)
        if (sd.messages()[i].text == "READY=1") ready = static_cast<long>(i);
    CHECK(ready > reloading);
    CHECK(d.pid_of("a") != a);
    CHECK(d.stop() == 0);
}

TEST_CASE("log capture: stdout and stderr to one file, no line lost across five restarts") {
    // Each run prints "RUN SEQ" lines, SEQ 0..2999 alternating stdout and
    // stderr, and exits 0 (permanent: restarted); the sixth run just sleeps.
    TempDir scratch;
    std::string count = scratch.file("count");
    std::string script =
        "n=$(cat " + shell_quote(count) + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " +
        shell_quote(count) +
        "; if [ $n -gt 5 ]; then exec sleep 1000; fi; i=0; while [ $i -lt 3000 ]; do "
        "echo \"$$ $i\"; i=$((i+1)); echo \"$$ $i\" >&2; i=$((i+1)); done";
    json file{{"file", scratch.file("w.log")}, {"max_bytes", 100 << 20}, {"keep", 2}};
    Chipd d(spec(json::array({worker("w", json::array({"/bin/sh", "-c", script}),
                                     {{"stdout", file}, {"stderr", file}})}),
                 {{"max_restarts", 100}, {"period", 1}}));
    d.start();
    REQUIRE(wait_until([&] { return read_file(count) == "6\n" && d.state_of("w") == "running"; },
                       60000ms));
    CHECK(d.stop() == 0);
    std::map<std::string, std::vector<long>> runs;
    std::size_t bad = 0;
    for (const auto &l : read_lines(scratch.file("w.log"))) {
        auto w = split_words(l);
        if (w.size() != 2) {
            ++bad;
            continue;
        }
        runs[w[0]].push_back(std::atol(w[1].c_str()));
    }
    CHECK(bad == 0);
    CHECK(runs.size() == 5);
    for (const auto &kv : runs) {
        const std::string &run = kv.first;
        const std::vector<long> &seqs = kv.second;
        INFO("run " << run);
        REQUIRE(seqs.size() == 3000);
        for (long i = 0; i < 3000; ++i)
            if (seqs[static_cast<std::size_t>(i)] != i) {
                FAIL_CHECK("line " << i << " of run " << run << " is " << seqs[i]);
                break;
            }
    }
    CHECK_FALSE(file_exists(scratch.file("w.log.1")));
}

TEST_CASE(
    "log capture: two workers naming one file share it: every line of both, none torn, "
    "one rotation") {
    // Each worker prints 2,000 "NAME SEQ" lines of 12 bytes or so and sleeps;
    // with max_bytes 8192 and keep 10 the file rotates a few times. Two
    // writers each rotating it on their own would lose or tear lines.
    TempDir scratch;
    std::string log = scratch.file("shared.log");
    auto printer = [](const std::string &name) {
        return json::array({"/bin/sh", "-c",
                            "i=0; while [ $i -lt 2000 ]; do echo \"" + name +
                                " $i\"; i=$((i+1)); done; exec sleep 1000"});
    };
    json file{{"file", log}, {"max_bytes", 8192}, {"keep", 10}};
    Chipd d(spec(json::array({worker("a", printer("a"), {{"stdout", file}}),
                              worker("b", printer("b"), {{"stdout", file}})})));
    d.start_ready();
    auto all_lines = [&] {
        std::vector<std::string> lines;
        for (int k = 10; k >= 1; --k)
            for (auto &l : read_lines(log + "." + std::to_string(k))) lines.push_back(l);
        for (auto &l : read_lines(log)) lines.push_back(l);
        return lines;
    };
    REQUIRE(wait_until([&] { return all_lines().size() >= 4000; }, 60000ms));
    CHECK(d.stop() == 0);
    // One owner rotates: no file grows past max_bytes behind another's back.
    CHECK(file_exists(log + ".1"));
    for (int k = 0; k <= 10; ++k) {
        std::string f = k == 0 ? log : log + "." + std::to_string(k);
        INFO(f);
        CHECK(read_file(f).size() <= 8192);
    }
    std::map<std::string, std::vector<long>> seqs;
    for (const auto &l : all_lines()) {
        auto w = split_words(l);
        REQUIRE(w.size() == 2);
        seqs[w[0]].push_back(std::atol(w[1].c_str()));
    }
    REQUIRE(seqs.size() == 2);
    for (const auto &kv : seqs) {
        INFO("worker " << kv.first);
        REQUIRE(kv.second.size() == 2000);
        for (long i = 0; i < 2000; ++i) CHECK(kv.second[static_cast<std::size_t>(i)] == i);
    }
}

TEST_CASE(
    "log rotation: PATH, PATH.1 ... PATH.keep, the oldest dropped, none over max_bytes "
    "but a single longer line written whole to a fresh file") {
    // 400 lines of 50 bytes (81 fit in 4096), then a 6001-byte line, then "after".
    TempDir scratch;
    std::string log = scratch.file("w.log");
    std::string script =
        "i=0; while [ $i -lt 400 ]; do printf '%049d\\n' $i; i=$((i+1)); done; "
        "head -c 6000 /dev/zero | tr '\\0' x; echo; echo after; exec sleep 1000";
    Chipd d(spec(
        json::array({worker("w", json::array({"/bin/sh", "-c", script}),
                            {{"stdout", {{"file", log}, {"max_bytes", 4096}, {"keep", 3}}}})})));
    d.start_ready();
    REQUIRE(wait_until([&] { return read_file(log) == "after\n"; }));
    CHECK(file_size(log + ".1") == 6001);
    CHECK(read_file(log + ".1") == std::string(6000, 'x') + "\n");
    // The numbered lines: 400 = 4 files of 81 and one of 76; keep 3 keeps the last.
    auto two = read_lines(log + ".2"), three = read_lines(log + ".3");
    CHECK(file_size(log + ".2") == 76 * 50);
    CHECK(file_size(log + ".3") == 81 * 50);
    REQUIRE(two.size() == 76);
    REQUIRE(three.size() == 81);
    for (std::size_t i = 0; i < 81; ++i) CHECK(std::atol(three[i].c_str()) == long(243 + i));
    for (std::size_t i = 0; i < 76; ++i) CHECK(std::atol(two[i].c_str()) == long(324 + i));
    CHECK_FALSE(file_exists(log + ".4"));

    // chipctl logs -n shows the live file's tail.
    auto r = d.run_ctl({"logs", "w", "-n", "5"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "after\n");
    CHECK(d.stop() == 0);
}

TEST_CASE("chipctl logs -n N prints the last lines; -f prints new lines across many rotations") {
    // 10 lines, then, once GO exists, 1000 more as fast as the shell goes
    // (several rotations between two polls of -f).
    TempDir scratch;
    std::string log = scratch.file("w.log"), go = scratch.file("go");
    std::string script =
        "i=0; while [ $i -lt 10 ]; do printf '%049d\\n' $i; i=$((i+1)); done; while [ ! -e " +
        shell_quote(go) +
        " ]; do sleep 0.01; done; while [ $i -lt 1010 ]; do printf '%049d\\n' $i; i=$((i+1)); "
        "done; exec sleep 1000";
    // Only stderr goes to the file (the script's stdout joins it): logs
    // shows the stderr file then.
    Chipd e(spec(json::array({worker(
        "w", json::array({"/bin/sh", "-c", "exec 1>&2; " + script}),
        {{"stderr", {{"file", log}, {"max_bytes", 4096}, {"keep", 20}}}, {"stdout", "null"}})})));
    e.start_ready();
    REQUIRE(wait_until([&] { return read_lines(log).size() == 10; }));
    auto r = e.run_ctl({"logs", "w", "-n", "3"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == std::string(48, '0') + "7\n" + std::string(48, '0') + "8\n" +
                       std::string(48, '0') + "9\n");

    std::string out = scratch.file("follow.out");
    auto f =
        spawn_to_file({chipctl_path(), "--socket", e.socket(), "logs", "w", "-n", "2", "-f"}, out);
    REQUIRE(wait_until([&] { return read_lines(out).size() == 2; }));
    write_file(go, "");
    bool all = wait_until([&] {
        auto l = read_lines(out);
        return !l.empty() && std::atol(l.back().c_str()) == 1009;
    });
    f->kill();
    CHECK(all);
    auto lines = read_lines(out);
    REQUIRE(lines.size() == 1002);
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (std::atol(lines[i].c_str()) != long(8 + i)) {
            FAIL_CHECK("line " << i << " of -f is " << lines[i]);
            break;
        }
    CHECK(file_exists(log + ".10"));  // it did rotate, many times
    CHECK(e.stop() == 0);
}

TEST_CASE(
    "a full disk: output is dropped and counted, reported, never blocks the worker or "
    "chipd, and writing resumes when there is room again") {
    TempDir scratch;
    std::string disk = scratch.file("disk");
    REQUIRE(::mkdir(disk.c_str(), 0755) == 0);
    if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=64k") != 0)
        skip("cannot mount a tmpfs (" + std::string(std::strerror(errno)) + "; needs root)");
    struct Unmount {
        std::string path;
        ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } unmount{disk};
    // Fill it up.
    {
        int fd = ::open((disk + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        REQUIRE(fd >= 0);
        std::string block(4096, 'f');
        while (::write(fd, block.data(), block.size()) > 0) {
        }
        ::close(fd);
    }
    std::string log = disk + "/w.log", done = scratch.file("done"), go = scratch.file("go");
    // 20,000 lines (well over a pipe's 64 KiB), then DONE; after GO, "after".
    std::string script =
        "i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done; : > " +
        shell_quote(done) + "; while [ ! -e " + shell_quote(go) +
        " ]; do sleep 0.01; done; echo after; exec sleep 1000";
    Chipd d(spec(
        json::array({worker("w", json::array({"/bin/sh", "-c", script}),
                            {{"stdout", {{"file", log}, {"max_bytes", 1 << 20}, {"keep", 1}}}}),
                     worker("b", helper("sleep"))})));
    d.start_ready();
    // The worker got through all its output: chipd kept reading and dropped it.
    REQUIRE(wait_until([&] { return file_exists(done); }, 60000ms));
    CHECK(d.wait_log({"warning: cannot write log file " + log, "No space left on device"}));
    CHECK(d.run_ctl({"status"}).exit_code == 0);
    CHECK(d.run_ctl({"restart", "b"}).exit_code == 0);
    CHECK(read_file(log).empty());
    // Room again: the next line is written and the drop is counted.
    REQUIRE(::unlink((disk + "/filler").c_str()) == 0);
    write_file(go, "");
    CHECK(wait_until([&] { return read_file(log) == "after\n"; }));
    long bytes = 0;
    for (int i = 0; i < 20000; ++i) bytes += static_cast<long>(6 + std::to_string(i).size());
    CHECK(d.wait_log({"log file " + log + " is written again; 20000 lines (" +
                      std::to_string(bytes) + " bytes) dropped so far"}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "chipd --check refuses output files in a missing folder, keep 0 and a max_bytes "
    "under 4096, all at once") {
    TempDir scratch;
    json bad = spec(
        json::array({worker("a", json::array({"/bin/true"}),
                            {{"stdout", {{"file", scratch.file("missing/a.log")}}}}),
                     worker("b", json::array({"/bin/true"}),
                            {{"stdout", {{"file", scratch.file("b.log")}, {"keep", 0}}}}),
                     worker("c", json::array({"/bin/true"}),
                            {{"stderr", {{"file", scratch.file("c.log")}, {"max_bytes", 100}}}})}));
    write_file(scratch.file("bad.json"), bad.dump());
    auto r = run_process({chipd_path(), "--check", scratch.file("bad.json")});
    CHECK(r.exit_code == 2);
    INFO(r.err);
    CHECK(r.err.find("/root/children/0/stdout/file: expected") != std::string::npos);
    CHECK(r.err.find("/root/children/1/stdout/keep: expected") != std::string::npos);
    CHECK(r.err.find("/root/children/2/stderr/max_bytes: expected") != std::string::npos);
    CHECK_FALSE(file_exists(scratch.file("b.log")));
}

// ---- PID 1 -----------------------------------------------------------------------

namespace {

std::string unshare_path() {
    for (const char *p : {"/usr/bin/unshare", "/bin/unshare", "/usr/sbin/unshare"})
        if (::access(p, X_OK) == 0) return p;
    return "unshare";
}

// chipd as PID 1 of a new PID namespace: unshare --pid --fork --mount-proc.
class Pid1 {
public:
    explicit Pid1(const json &spec) {
        write_file(dir_.file("spec.json"), spec.dump(2));
        socket_ = dir_.file("chipd.sock");
    }
    // SIGKILLs chipd, which ends the whole namespace; unshare_'s destructor
    // kills and reaps unshare.
    ~Pid1() {
        if (chipd_ > 0) ::kill(chipd_, SIGKILL);
    }
    Pid1(const Pid1 &) = delete;
    Pid1 &operator=(const Pid1 &) = delete;

    // Whether this host lets us make PID namespaces.
    static bool available(std::string &why) {
        auto r = run_process({unshare_path(), "--pid", "--fork", "--mount-proc", "/bin/true"});
        if (r.exit_code == 0) return true;
        why = "unshare --pid --fork --mount-proc failed (" + std::to_string(r.exit_code) +
              "): " + r.err;
        return false;
    }
    // Runs chipd [EXTRA...] in it.
    void start(const std::vector<std::string> &extra = {}) {
        std::vector<std::string> argv{unshare_path(), "--pid", "--fork", "--mount-proc",
                                      chipd_path()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.insert(argv.end(), {"--socket", socket_, dir_.file("spec.json")});
        unshare_ = spawn_to_file(argv, dir_.file("chipd.err"));
        // chipd is unshare's only child.
        REQUIRE(wait_until([&] {
            auto kids = children_of(unshare_->pid());
            if (kids.size() != 1) return false;
            chipd_ = kids[0];
            return true;
        }));
        CHECK(inner_pid(chipd_) == 1);
    }
    // unshare's exit code (chipd's), nullopt after the deadline.
    std::optional<int> wait_exit(Ms deadline = kDeadline) {
        auto code = unshare_->wait(deadline);
        if (code) chipd_ = -1;
        return code;
    }
    pid_t chipd() const { return chipd_; }
    const std::string &socket() const { return socket_; }
    std::string file(const std::string &n) const { return dir_.file(n); }

private:
    TempDir dir_;
    std::string socket_;
    std::unique_ptr<Child> unshare_;
    pid_t chipd_ = -1;
};

}  // namespace

TEST_CASE(
    "PID 1 of a PID namespace: orphans are reaped (no zombie left), SIGTERM shuts down "
    "with exit 0") {
    std::string why;
    if (!Pid1::available(why)) skip(why);
    TempDir scratch;
    std::string o1 = scratch.file("orphan1"), o2 = scratch.file("orphan2");
    // "leaver" forks two children that outlive it by 300 and 600 ms; it exits
    // 0 (transient: not restarted), so they are orphaned to PID 1: chipd.
    Pid1 ns(spec(json::array(
        {worker("leaver",
                helper({"fork-orphan:" + o1 + ":300", "fork-orphan:" + o2 + ":600", "exit:0"}),
                {{"restart", "transient"}}),
         worker("stay", helper("sleep"))})));
    // Process groups only: with a cgroup, leaver's exit would kill them at once.
    ns.start({"--no-cgroups"});
    REQUIRE(
        run_ctl_at(ns.socket(), {"wait", "/", "--timeout", scaled_seconds(kDeadline)}).exit_code ==
        0);
    REQUIRE(wait_until([&] { return file_exists(o1) && file_exists(o2); }));
    pid_t p1 = std::atoi(read_file(o1).c_str()), p2 = std::atoi(read_file(o2).c_str());
    CHECK(p1 > 1);
    CHECK(p2 > 1);
    // Only "stay" remains a child of chipd once the orphans died and were reaped.
    auto settled = [&] {
        auto kids = children_of(ns.chipd());
        if (kids.size() != 1) return false;
        for (pid_t k : kids)
            if (process_state(k) == 'Z' || inner_pid(k) == p1 || inner_pid(k) == p2) return false;
        return true;
    };
    CHECK(wait_until(settled));
    {
        auto st = run_ctl_at(ns.socket(), {"--json", "status", "leaver"});
        CHECK(st.exit_code == 0);
        CHECK(st.out.find("\"exited\"") != std::string::npos);
    }
    ::kill(ns.chipd(), SIGTERM);
    CHECK(ns.wait_exit() == std::optional<int>(0));
    INFO(read_file(ns.file("chipd.err")));
    CHECK(read_file(ns.file("chipd.err")).find("stop") != std::string::npos);
    CHECK_FALSE(file_exists(ns.socket()));
}

TEST_CASE("PID 1 of a PID namespace: a root that gives up exits 1") {
    std::string why;
    if (!Pid1::available(why)) skip(why);
    Pid1 ns(
        spec(json::array({worker("a", helper("sleep")), worker("b", helper("exit-after:50:1"))}),
             {{"max_restarts", 1}, {"period", 600}}));
    ns.start();
    CHECK(ns.wait_exit() == std::optional<int>(1));
}
