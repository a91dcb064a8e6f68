// chipctl reexec with the real chipd: chipd executes its program again in the
// same process without stopping a worker, and everything goes on: output
// (no line lost or doubled, also across rotations and unfinished lines),
// workers still starting or stopping, backoff waits, registry members,
// dynamic children, pools, held nodes, restart counts and intensity
// histories; its file descriptors and signal dispositions are a fresh
// chipd's. A reexec that cannot be made changes nothing; one during a
// shutdown or a reload is refused. The new process refuses a hand-off that is
// truncated, corrupted or of an unknown version without touching a worker
// (forge_handoff plays the old chipd's part).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
using Pids = std::vector<pid_t>;

std::string str(long n) {
    return std::to_string(n);
}

std::string shell_quote(const std::string &s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// A shell worker: /bin/sh -c SCRIPT [ARGS as $0, $1, ...].
json sh(const std::string &script, const std::vector<std::string> &args = {}) {
    json cmd = json::array({"/bin/sh", "-c", script});
    for (const auto &a : args) cmd.push_back(a);
    return cmd;
}

// SIGKILLs a process that is not the test's child, by pid, at the end of scope.
struct KillAtEnd {
    pid_t pid = 0;
    ~KillAtEnd() {
        if (pid > 0 && process_alive(pid)) ::kill(pid, SIGKILL);
    }
};

// chipctl reexec at D's socket.
ProcResult reexec(Chipd &d) {
    return d.run_ctl({"reexec"});
}

// A reexec that must succeed: chipctl says so and exits 0.
void require_reexec(Chipd &d) {
    ProcResult r = reexec(d);
    INFO("chipctl reexec: exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err
                                 << "\nchipd's stderr:\n"
                                 << d.stderr_text());
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.rfind("chipd re-executed: version ", 0) == 0);
    REQUIRE(d.running());
}

// The reexec request's answer over a connection of its own.
json reexec_request(Chipd &d) {
    return d.request({{"op", "reexec"}});
}

// Every node's pid (workers that have one), by path.
std::map<std::string, pid_t> worker_pids(Chipd &d) {
    std::map<std::string, pid_t> out;
    for (const auto &n : d.status_json())
        if (n.value("kind", "") == "worker" && n["pid"].is_number())
            out[n.value("path", "")] = n["pid"].get<pid_t>();
    return out;
}

// Every node's state, by path.
std::map<std::string, std::string> states(Chipd &d) {
    std::map<std::string, std::string> out;
    for (const auto &n : d.status_json()) out[n.value("path", "")] = n.value("state", "");
    return out;
}

// The number of open file descriptors of PID.
long fd_count(pid_t pid) {
    std::error_code ec;
    long n = 0;
    for (auto it = fs::directory_iterator("/proc/" + str(pid) + "/fd", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
        ++n;
    return ec ? -1 : n;
}

// Marks every descriptor of the test process above stderr close-on-exec, so
// that a chipd it starts has only its own (and stdin, stdout, stderr): the
// test runner may leave some open, which a fresh chipd would inherit and a
// re-executed one close.
void inherit_no_fds() {
    std::vector<int> fds;
    std::error_code ec;
    for (auto it = fs::directory_iterator("/proc/self/fd", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
        fds.push_back(std::stoi(it->path().filename().string()));
    for (int fd : fds)
        if (fd > 2) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
}

// PID's number of open file descriptors once it holds still: the same in ten
// reads in a row (chipd closes a connection a moment after its client does).
long quiet_fd_count(pid_t pid) {
    long last = -2;
    int same = 0;
    wait_until([&] {
        long now = fd_count(pid);
        same = now == last ? same + 1 : 0;
        last = now;
        return same >= 10;
    });
    return last;
}

// Whether chipd ends the connection C (EOF) before the scaled deadline,
// whatever it sends before.
bool ends(Client &c) {
    auto t0 = std::chrono::steady_clock::now();
    while (c.read_line()) {
    }
    return std::chrono::steady_clock::now() - t0 < scaled(kDeadline);
}

// The last BYTES bytes of the file PATH ("" if it does not exist).
std::string tail_of(const std::string &path, std::size_t bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    in.seekg(0, std::ios::end);
    auto size = static_cast<std::size_t>(in.tellg());
    std::size_t from = size > bytes ? size - bytes : 0;
    in.seekg(static_cast<std::streamoff>(from));
    std::string out(size - from, '\0');
    in.read(out.data(), static_cast<std::streamsize>(out.size()));
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out;
}

// The signal mask and dispositions of PID: its SigBlk, SigIgn and SigCgt lines.
std::string signal_lines(pid_t pid) {
    std::string out;
    for (const auto &line : read_lines("/proc/" + str(pid) + "/status"))
        if (line.rfind("SigBlk:", 0) == 0 || line.rfind("SigIgn:", 0) == 0 ||
            line.rfind("SigCgt:", 0) == 0)
            out += line + "\n";
    return out;
}

// Whether PID ignores SIGTERM yet (chip_test_helper ignore-term sets it up a
// moment after its exec, which is when chipd takes it as started).
bool ignores_term(pid_t pid) {
    for (const auto &line : read_lines("/proc/" + str(pid) + "/status"))
        if (line.rfind("SigIgn:", 0) == 0)
            return (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1)) & 1;
    return false;
}

// chipctl --json members GROUP (registry r): the pids, or nullopt on failure.
std::optional<Pids> members(Chipd &d, const std::string &group) {
    ProcResult r = d.run_ctl({"--json", "members", group});
    if (r.exit_code != 0) return std::nullopt;
    return json::parse(r.out).get<Pids>();
}

// Lines of the log file PATH and its rotations, oldest first: PATH.K ... PATH.1, PATH.
std::vector<std::string> log_lines(const std::string &path, int keep) {
    std::vector<std::string> out;
    for (int k = keep; k >= 1; --k) {
        std::string f = path + "." + str(k);
        if (!file_exists(f)) continue;
        auto l = read_lines(f);
        out.insert(out.end(), l.begin(), l.end());
    }
    auto l = read_lines(path);
    out.insert(out.end(), l.begin(), l.end());
    return out;
}

// Where LINES, less PREFIX, stop being "0", "1", ..., "end N" (N the count):
// "" when they are exactly that, else what is wrong.
std::string check_count(const std::vector<std::string> &lines, const std::string &prefix) {
    long next = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string &l = lines[i];
        if (l.rfind(prefix, 0) != 0) return "line " + str(long(i)) + " lacks its prefix: " + l;
        std::string v = l.substr(prefix.size());
        if (v == "end " + str(next)) {
            if (i + 1 != lines.size()) return "lines after the end: " + lines[i + 1];
            return "";
        }
        if (v != str(next)) {
            std::string around;
            for (std::size_t j = i >= 3 ? i - 3 : 0; j < lines.size() && j < i + 3; ++j)
                around += "[" + lines[j] + "] ";
            return "line " + str(long(i)) + ": expected " + str(next) + ", got \"" + v +
                   "\"; around it: " + around;
        }
        ++next;
    }
    return "no end line after " + str(next) + " numbers";
}

// The last number a counting writer's log shows (-1 for none yet).
long last_number(const std::vector<std::string> &lines, const std::string &prefix) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
        if (it->rfind(prefix, 0) != 0) continue;
        std::string v = it->substr(prefix.size());
        if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos)
            return std::stol(v);
    }
    return -1;
}

// A writer that counts 0, 1, 2, ... one number a line, in bursts of 100 lines
// (every tenth line written in two pieces: the number, then its newline) with
// 10 ms between bursts, until the file $0 exists; then "end N" and it sleeps.
json counter(const std::string &stop) {
    return sh(
        "i=0; while [ ! -e \"$0\" ]; do j=0; while [ $j -lt 100 ]; do "
        "if [ $((i % 10)) -eq 3 ]; then printf '%d' $i; printf '\\n'; else echo $i; fi; "
        "i=$((i+1)); j=$((j+1)); done; sleep 0.01; done; echo \"end $i\"; exec sleep 1000",
        {stop});
}

// A writer of one unfinished line "head-" (then the file $1), finished with
// "tail" once the file $0 exists.
json half_line(const std::string &go, const std::string &wrote) {
    return sh(
        "printf 'head-'; : > \"$1\"; while [ ! -e \"$0\" ]; do sleep 0.01; done; "
        "printf 'tail\\n'; exec sleep 1000",
        {go, wrote});
}

// Sets $CHIPD (the program Chipd::start runs) for its lifetime.
class ChipdProgram {
public:
    explicit ChipdProgram(const std::string &path) {
        if (const char *v = std::getenv("CHIPD")) saved_ = v;
        ::setenv("CHIPD", path.c_str(), 1);
    }
    ~ChipdProgram() {
        if (saved_)
            ::setenv("CHIPD", saved_->c_str(), 1);
        else
            ::unsetenv("CHIPD");
    }
    ChipdProgram(const ChipdProgram &) = delete;
    ChipdProgram &operator=(const ChipdProgram &) = delete;

private:
    std::optional<std::string> saved_;
};

// Puts an executable file with TEXT at PATH, replacing what is there (renamed
// over it: a running program's file cannot be written).
void put_program(const std::string &path, const std::string &text) {
    std::string tmp = path + ".new";
    write_file(tmp, text);
    REQUIRE(::chmod(tmp.c_str(), 0755) == 0);
    REQUIRE(::rename(tmp.c_str(), path.c_str()) == 0);
}

// A copy of the real chipd at PATH (replacing what is there).
void put_chipd_copy(const std::string &path, const std::string &real) {
    std::string tmp = path + ".new";
    fs::copy_file(real, tmp, fs::copy_options::overwrite_existing);
    REQUIRE(::chmod(tmp.c_str(), 0755) == 0);
    REQUIRE(::rename(tmp.c_str(), path.c_str()) == 0);
}

}  // namespace

// ---- output ------------------------------------------------------------------------

TEST_CASE(
    "reexec: workers writing without pause to rotating log files and to chipd's own stdout "
    "lose no line and double none across three reexecs; an unfinished line is finished") {
    TempDir scratch;
    std::string logs = scratch.file("logs");
    REQUIRE(::mkdir(logs.c_str(), 0755) == 0);
    std::string log = logs + "/count.log", stop = scratch.file("stop"), go = scratch.file("go");
    const int keep = 1000;
    json out_file = {{"file", log}, {"max_bytes", 4096}, {"keep", keep}};
    Chipd d(spec(json::array(
        {worker("count", counter(stop), {{"stdout", out_file}}),
         worker("inh", counter(stop), {{"stdout", "inherit"}}),
         worker("half", half_line(go, scratch.file("wrote1")),
                {{"stdout", {{"file", logs + "/half.log"}}}}),
         worker("halfinh", half_line(go, scratch.file("wrote2")), {{"stdout", "inherit"}})})));
    d.start_ready();
    auto before = worker_pids(d);
    REQUIRE(before.size() == 4);
    REQUIRE(wait_until([&] {
        return file_exists(scratch.file("wrote1")) && file_exists(scratch.file("wrote2"));
    }));
    // Writing, and rotated at least once, before the first reexec.
    REQUIRE(wait_until([&] { return file_exists(log + ".1"); }));

    for (int k = 0; k < 3; ++k) {
        INFO("reexec " << k + 1);
        require_reexec(d);
        // The writers go on, and the new process writes what they write.
        long seen = last_number(read_lines(log), "");
        auto inh_now = [&] {
            return last_number(split_lines(tail_of(d.file("chipd.out"), 4096)), "inh: ");
        };
        long seen_inh = inh_now();
        CHECK(wait_until([&] { return last_number(read_lines(log), "") > seen + 200; }));
        CHECK(wait_until([&] { return inh_now() > seen_inh + 200; }));
    }
    write_file(go, "");
    write_file(stop, "");
    CHECK(wait_until([&] {
        auto l = read_lines(log);
        return !l.empty() && l.back().rfind("end ", 0) == 0;
    }));
    CHECK(wait_until(
        [&] { return tail_of(d.file("chipd.out"), 4096).find("inh: end ") != std::string::npos; }));
    CHECK(wait_until([&] { return read_file(logs + "/half.log") == "head-tail\n"; }));
    CHECK(wait_until(
        [&] { return d.stdout_text().find("halfinh: head-tail\n") != std::string::npos; }));
    CHECK(worker_pids(d) == before);

    auto lines = log_lines(log, keep);
    INFO("log lines: " << lines.size());
    CHECK_FALSE(file_exists(log + "." + str(keep)));  // nothing dropped by the rotation
    CHECK(check_count(lines, "") == "");
    std::vector<std::string> inh;
    for (const auto &l : split_lines(d.stdout_text()))
        if (l.rfind("inh: ", 0) == 0) inh.push_back(l);
    INFO("inherited lines: " << inh.size());
    CHECK(check_count(inh, "inh: ") == "");
    CHECK(read_file(logs + "/half.log") == "head-tail\n");
    CHECK(d.stop() == 0);
}

// ---- workers in the middle of something ----------------------------------------------

TEST_CASE(
    "reexec: a notify worker still starting sends READY=1 to the new chipd and becomes "
    "running; a chipctl wait in flight and an events follower are ended, not hung") {
    TempDir scratch;
    std::string go = scratch.file("go");
    Chipd d(spec(json::array({worker("a", helper("sleep")),
                              worker("n", helper({"wait-file:" + go, "notify"}),
                                     {{"ready", "notify"}, {"start_timeout", 600}})}),
                 {}, {{"registries", {"r"}}}));
    d.start();
    REQUIRE(wait_until([&] { return d.state_of("n") == "starting" && d.pid_of("n") > 0; }));
    pid_t n = d.pid_of("n"), a = d.pid_of("a");

    // A follower: chipctl events.
    std::string events_out = scratch.file("events.out");
    ChildOptions to_file;
    to_file.out_file = events_out;
    Child follower({chipctl_path(), "--socket", d.socket(), "events"}, to_file);
    // A raw one, and a wait in flight: accepted (the status answered) before
    // the wait is sent.
    Client raw_events(d.socket());
    REQUIRE(raw_events.request({{"op", "events"}}).value("ok", false));
    Client waiter(d.socket());
    REQUIRE(waiter.request({{"op", "status"}}).value("ok", false));
    waiter.send_raw(json({{"op", "wait"}, {"path", "n"}}).dump() + "\n");
    // Following once a join (an event of its own) shows.
    REQUIRE(wait_until([&] {
        if (read_file(events_out).find("join r/g") != std::string::npos) return true;
        d.run_ctl({"leave", "g", "--pid", str(a)});
        d.run_ctl({"join", "g", "--pid", str(a)});
        return false;
    }));
    REQUIRE(d.pid_of("a") == a);

    require_reexec(d);
    // The connections other than the requester's are closed: all end.
    CHECK(ends(raw_events));
    CHECK(ends(waiter));
    auto code = follower.wait();
    INFO("chipctl events: " << (code ? str(*code) : "still running") << "\n"
                            << read_file(events_out));
    CHECK(code.has_value());

    CHECK(d.state_of("n") == "starting");
    write_file(go, "");
    CHECK(d.wait_state("n", "running"));
    CHECK(d.wait_state("/", "running"));
    CHECK(d.pid_of("n") == n);
    CHECK(d.pid_of("a") == a);
    CHECK(parent_of(n) == d.pid());
    CHECK(d.run_ctl({"wait", "/", "--timeout", scaled_seconds(10000ms)}).exit_code == 0);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reexec: a worker stopping past its stop signal still gets SIGKILL at stop_timeout from "
    "the new chipd, and the node ends stopped") {
    Chipd d(spec(json::array({worker("a", helper("sleep")),
                              worker("w", helper("ignore-term"), {{"stop_timeout", 3}})})));
    d.start_ready();
    pid_t w = d.pid_of("w"), a = d.pid_of("a");
    REQUIRE(w > 0);
    REQUIRE(wait_until([&] { return ignores_term(w); }));
    ChildOptions capture;
    capture.capture = true;
    auto t0 = Clock::now();
    Child stopper({chipctl_path(), "--socket", d.socket(), "stop", "w"}, capture);
    REQUIRE(d.wait_state("w", "stopping"));
    require_reexec(d);
    // Not killed at the reexec (unless the reexec itself took that long).
    if (Clock::now() - t0 < 2500ms) CHECK(process_alive(w));

    bool gone = wait_until([&] { return !process_alive(w) && d.state_of("w") == "stopped"; },
                           Ms(3000) + scaled(20000ms));
    double took = std::chrono::duration<double>(Clock::now() - t0).count();
    INFO("killed after " << took << " s; chipd's stderr:\n" << d.stderr_text());
    CHECK(gone);
    CHECK(took >= 2.9);
    CHECK(d.log_has({"kill w"}));
    // Held stopped, and the rest untouched.
    CHECK(d.state_of("w") == "stopped");
    CHECK(d.pid_of("a") == a);
    CHECK(stopper.wait().has_value());
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reexec: a worker waiting in backoff is restarted when the wait ends, and its restart "
    "count goes on from before") {
    TempDir scratch;
    std::string count = scratch.file("count");
    // Fails its first two runs, then stays up.
    json cmd =
        sh("n=$(cat \"$0\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0\"; "
           "if [ $n -ge 3 ]; then exec \"$1\" sleep; fi; exit 1",
           {count, helper_path()});
    Chipd d(spec(json::array({worker(
                     "w", cmd, {{"backoff", {{"initial", 3}, {"factor", 1}, {"jitter", 0}}}})}),
                 {{"max_restarts", 10}, {"period", 600}}));
    d.start();
    // In its second wait.
    REQUIRE(wait_until([&] { return read_file(count) == "2\n" && d.state_of("w") == "backoff"; }));
    int restarts = d.restarts_of("w");
    CHECK((restarts == 1 || restarts == 2));
    require_reexec(d);
    json n = d.node("w");
    INFO(n.dump() << "\n" << d.stderr_text());
    CHECK(n.value("state", "") == "backoff");
    CHECK(n.value("restarts", -1) == restarts);
    CHECK(n.contains("retry_in_s"));
    // The wait ends in the new process, and the worker runs.
    CHECK(d.wait_state("w", "running"));
    // (running from the exec of sh on, a moment before it counts)
    CHECK(wait_until([&] { return read_file(count) == "3\n"; }));
    CHECK(d.restarts_of("w") == 2);
    CHECK(d.stop() == 0);
}

// ---- registries ----------------------------------------------------------------------

TEST_CASE(
    "reexec: a worker's declared group and a non-child member joined with --pid are still "
    "listed, under the same shared-memory names, and both are removed when they die") {
    TempDir scratch;
    std::string gc_file = scratch.file("gc");
    // p forks a sleep it never reaps: the member that is not chipd's child.
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"g"}}}}}),
                              worker("p", sh("sleep 1000 & echo $! > \"$0.tmp\" && mv \"$0.tmp\" "
                                             "\"$0\"; exec sleep 1000",
                                             {gc_file}))}),
                 {}, {{"registries", {"r"}}}));
    d.start_ready();
    pid_t w = d.pid_of("w");
    pid_t gc = wait_pid_file(gc_file);
    REQUIRE(gc > 0);
    d.track(gc);
    KillAtEnd gc_guard{gc};
    REQUIRE(d.run_ctl({"join", "h", "--pid", str(gc)}).exit_code == 0);
    REQUIRE(members(d, "g") == Pids{w});
    REQUIRE(members(d, "h") == Pids{gc});
    auto shm = d.shm_files();
    REQUIRE(shm.size() == 1);
    std::string index = read_file(d.socket() + ".registries");
    REQUIRE(!index.empty());

    require_reexec(d);
    CHECK(d.shm_files() == shm);
    CHECK(read_file(d.socket() + ".registries") == index);
    CHECK(file_exists(shm[0]));
    CHECK(members(d, "g") == Pids{w});
    CHECK(members(d, "h") == Pids{gc});
    CHECK(json::parse(d.run_ctl({"--json", "groups"}).out, nullptr, false) ==
          json({{"g", 1}, {"h", 1}}));

    // The non-child member's death is seen through its pidfd, handed over.
    REQUIRE(::kill(gc, SIGKILL) == 0);
    CHECK(wait_until([&] { return members(d, "h") == Pids{}; }));
    // The worker's through SIGCHLD: its replacement joins instead.
    REQUIRE(::kill(w, SIGKILL) == 0);
    pid_t now = d.wait_new_pid("w", w);
    REQUIRE(now > 0);
    CHECK(wait_until([&] { return members(d, "g") == Pids{now}; }));
    CHECK(d.shm_files() == shm);
    CHECK(d.stop() == 0);
}

// ---- the tree's shape and history ----------------------------------------------------

TEST_CASE(
    "reexec: children added with chipctl add and a pool scaled with chipctl scale keep their "
    "pids; a node held with chipctl stop stays stopped") {
    Chipd d(spec(json::array(
        {worker("pool", helper("sleep"), {{"instances", 2}}), worker("held", helper("sleep"))})));
    d.start_ready({"--log-format", "json"});
    REQUIRE(d.run_ctl({"add", "/", worker("dyn", helper("sleep")).dump()}).exit_code == 0);
    REQUIRE(d.run_ctl({"scale", "pool", "4"}).exit_code == 0);
    REQUIRE(d.run_ctl({"stop", "held"}).exit_code == 0);
    auto pids = worker_pids(d);
    REQUIRE(pids.size() == 5);  // pool.0-3, dyn
    auto before = states(d);

    require_reexec(d);
    CHECK(worker_pids(d) == pids);
    CHECK(states(d) == before);
    CHECK(d.state_of("held") == "stopped");
    CHECK(d.node("dyn").value("dynamic", false));
    // Both processes' reexec lines, as JSON objects like every other event.
    int reexec_lines = 0;
    for (const auto &line : d.stderr_lines()) {
        json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.value("event", "") == "reexec") ++reexec_lines;
    }
    INFO(d.stderr_text());
    CHECK(reexec_lines == 2);
    for (const auto &p : pids) {
        INFO(p.first);
        CHECK(parent_of(p.second) == d.pid());
    }
    // Still a pool of 4 that scales, and a held node that starts on demand.
    CHECK(d.run_ctl({"scale", "pool", "3"}).exit_code == 0);
    CHECK(d.node("pool.3").is_null());
    CHECK(d.pid_of("pool.2") == pids["pool.2"]);
    CHECK(d.run_ctl({"start", "held"}).exit_code == 0);
    CHECK(d.state_of("held") == "running");
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reexec: restart counts and intensity histories carry over: two crashes before and one "
    "after exceed max_restarts 2 and the supervisor gives up") {
    json s = supervisor("s", json::array({worker("w", helper("sleep"))}),
                        {{"max_restarts", 2}, {"period", 3600}, {"on_give_up", "stay_failed"}});
    Chipd d(spec(json::array({s, worker("k", helper("sleep"))}),
                 {{"max_restarts", 10}, {"period", 3600}}));
    d.start_ready();
    pid_t k = d.pid_of("k");
    REQUIRE(::kill(k, SIGKILL) == 0);
    k = d.wait_new_pid("k", k);
    REQUIRE(k > 0);
    pid_t w = d.pid_of("s/w");
    for (int i = 0; i < 2; ++i) {
        REQUIRE(::kill(w, SIGKILL) == 0);
        w = d.wait_new_pid("s/w", w);
        REQUIRE(w > 0);
    }
    REQUIRE(d.restarts_of("k") == 1);
    REQUIRE(d.restarts_of("s/w") == 2);

    require_reexec(d);
    CHECK(d.restarts_of("k") == 1);
    CHECK(d.restarts_of("s/w") == 2);
    CHECK(d.pid_of("k") == k);
    CHECK(d.pid_of("s/w") == w);

    // A crash after the reexec: restarted, counted on.
    REQUIRE(::kill(k, SIGKILL) == 0);
    pid_t k2 = d.wait_new_pid("k", k);
    CHECK(k2 > 0);
    CHECK(d.restarts_of("k") == 2);
    // The third within the period: s gives up, as it would have without the reexec.
    REQUIRE(::kill(w, SIGKILL) == 0);
    INFO(d.stderr_text());
    CHECK(d.wait_state("s", "failed"));
    CHECK(d.log_has({"give-up s"}));
    CHECK_FALSE(process_alive(w));
    CHECK(d.state_of("/") == "running");
    CHECK(d.stop() == 0);
}

// ---- the process itself --------------------------------------------------------------

TEST_CASE(
    "reexec three times: the same chipd pid and worker pids, the same number of open file "
    "descriptors, the signal mask and dispositions of a fresh chipd, and the reexec logged") {
    Chipd d(spec(json::array(
        {worker("a", helper("sleep")), worker("b", helper("sleep"), {{"stdout", "inherit"}})})));
    inherit_no_fds();
    d.start_ready();
    pid_t chipd = d.pid();
    auto pids = worker_pids(d);
    REQUIRE(pids.size() == 2);
    const std::string fresh = signal_lines(chipd);
    REQUIRE(!fresh.empty());
    // Once the status connections are closed on chipd's side.
    long fds = quiet_fd_count(chipd);
    REQUIRE(fds > 0);

    for (int k = 0; k < 3; ++k) {
        INFO("reexec " << k + 1);
        INFO("chipd's stderr:\n" << d.stderr_text());
        if (k == 1) {
            // Over the protocol: the new process answers on the same
            // connection, which then takes further requests.
            Client c(d.socket());
            json reply = c.request({{"op", "reexec"}});
            INFO(reply.dump());
            CHECK(reply == json({{"ok", true}, {"version", CHIP_VERSION}}));
            CHECK(c.request({{"op", "status"}, {"path", "a"}}).value("ok", false));
        } else {
            ProcResult r = d.run_ctl({"--json", "reexec"});
            INFO(r.out << r.err);
            REQUIRE(r.exit_code == 0);
            json reply = json::parse(r.out, nullptr, false);
            CHECK(reply.value("ok", false));
            CHECK(reply.value("version", "") == CHIP_VERSION);
        }
        CHECK(d.running());
        CHECK(d.pid() == chipd);
        CHECK(worker_pids(d) == pids);
        for (const auto &p : pids) CHECK(parent_of(p.second) == chipd);
        CHECK(d.run_ctl({"status"}).exit_code == 0);
        long now = -1;
        bool same = wait_until([&] {
            now = fd_count(chipd);
            return now == fds;
        });
        INFO("fds before: " << fds << ", after: " << now);
        CHECK(same);
        CHECK(signal_lines(chipd) == fresh);
    }
    CHECK(d.log_has({"reexec: executing " + chipd_path(), "(hand-off version 2)"}));
    CHECK(d.log_has({"reexec: chipd " CHIP_VERSION " took over 2 workers"}));
    CHECK(d.stop() == 0);
    for (const auto &p : pids) CHECK_FALSE(process_alive(p.second));
}

TEST_CASE(
    "reexec with a program that is gone, not executable, or reads no hand-off version chipd "
    "writes: EIO, and chipd goes on as it was; the program put back, it succeeds") {
    std::string real = chipd_path();
    auto versions = run_process({real, "--handoff-versions"});
    CHECK(versions.exit_code == 0);
    CHECK(versions.out == "1 2\n");

    TempDir bin;
    std::string copy = bin.file("chipd");
    put_chipd_copy(copy, real);
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
    {
        ChipdProgram program(copy);
        d.start_ready();
    }
    pid_t chipd = d.pid();
    auto pids = worker_pids(d);
    REQUIRE(pids.size() == 2);

    auto refused = [&](const std::string &what) {
        INFO(what << "; chipd's stderr:\n" << d.stderr_text());
        ProcResult r = reexec(d);
        INFO("chipctl reexec: " << r.exit_code << " " << r.out << r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.err != "");
        json j = reexec_request(d);
        INFO(j.dump());
        CHECK_FALSE(j.value("ok", true));
        CHECK(j.value("errno", "") == "EIO");
        CHECK(j.value("error", "") != "");
        CHECK(d.running());
        CHECK(d.pid() == chipd);
        CHECK(worker_pids(d) == pids);
        CHECK(d.run_ctl({"status"}).exit_code == 0);
        return j.value("error", "");
    };

    REQUIRE(::unlink(copy.c_str()) == 0);
    std::string why = refused("the program is gone");
    CHECK(why.find(copy) != std::string::npos);

    put_chipd_copy(copy, real);
    REQUIRE(::chmod(copy.c_str(), 0644) == 0);
    refused("the program is not executable");

    put_program(copy, "#!/bin/sh\necho 7\n");
    why = refused("the program reads only version 7");
    CHECK(why.find("7") != std::string::npos);

    put_program(copy, "#!/bin/sh\necho 'not a version'\n");
    refused("the program prints garbage");

    put_program(copy, "#!/bin/sh\necho 2\nexit 3\n");
    refused("the program exits 3");

    // Back: the next reexec takes the file as it is now.
    put_chipd_copy(copy, real);
    require_reexec(d);
    CHECK(d.pid() == chipd);
    CHECK(worker_pids(d) == pids);
    CHECK(d.log_has({"reexec: executing " + copy, "(hand-off version 2)"}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reexec with a program that reads only hand-off version 1 writes version 1 (a "
    "downgrade), and the workers carry on under it with their pids") {
    std::string real = chipd_path();
    TempDir bin;
    std::string copy = bin.file("chipd");
    put_chipd_copy(copy, real);
    TempDir scratch;
    std::string go = scratch.file("go");
    Chipd d(spec(json::array({worker("a", helper("sleep"), {{"join", {{"r", {"g"}}}}}),
                              worker("n", helper({"wait-file:" + go, "notify"}),
                                     {{"ready", "notify"}, {"start_timeout", 600}})}),
                 {}, {{"registries", {"r"}}}));
    {
        ChipdProgram program(copy);
        d.start();
    }
    REQUIRE(wait_until([&] { return d.state_of("n") == "starting" && d.pid_of("n") > 0; }));
    pid_t chipd = d.pid();
    auto pids = worker_pids(d);
    REQUIRE(pids.size() == 2);

    put_program(copy,
                "#!/bin/sh\nif [ \"$1\" = --handoff-versions ]; then echo 1; exit 0; fi\n"
                "exec " +
                    shell_quote(real) + " \"$@\"\n");
    require_reexec(d);
    INFO(d.stderr_text());
    CHECK(d.log_has({"reexec: executing " + copy, "(hand-off version 1)"}));
    CHECK(d.pid() == chipd);
    CHECK(worker_pids(d) == pids);
    CHECK(members(d, "g") == Pids{pids["a"]});
    write_file(go, "");
    CHECK(d.wait_state("n", "running"));
    CHECK(d.pid_of("n") == pids["n"]);
    pid_t a = pids["a"];
    REQUIRE(::kill(a, SIGKILL) == 0);
    pid_t a2 = d.wait_new_pid("a", a);
    CHECK(a2 > 0);
    CHECK(wait_until([&] { return members(d, "g") == Pids{a2}; }));
    CHECK(d.stop() == 0);
}

// ---- refused while something else runs -----------------------------------------------

TEST_CASE("reexec during a shutdown is refused with ECANCELED") {
    Chipd d(
        spec(json::array({worker("a", helper("sleep")),
                          worker("stubborn", helper("ignore-term"), {{"stop_timeout", 600}})})));
    d.start_ready();
    pid_t stubborn = d.pid_of("stubborn");
    REQUIRE(stubborn > 0);
    REQUIRE(wait_until([&] { return ignores_term(stubborn); }));
    REQUIRE(d.request({{"op", "shutdown"}}).value("ok", false));
    REQUIRE(d.wait_state("stubborn", "stopping"));
    json j = reexec_request(d);
    INFO(j.dump() << "\n" << d.stderr_text());
    CHECK_FALSE(j.value("ok", true));
    CHECK(j.value("errno", "") == "ECANCELED");
    CHECK(reexec(d).exit_code == 1);
    CHECK(d.running());
    // The shutdown goes on once the stubborn worker is gone.
    REQUIRE(::kill(stubborn, SIGKILL) == 0);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("reexec during a reload is refused with EBUSY; once the reload is done, it succeeds") {
    TempDir scratch;
    std::string go = scratch.file("go");
    json children = json::array({worker("a", helper("sleep"))});
    Chipd d(spec(children));
    d.start_ready();
    pid_t a = d.pid_of("a");
    children.push_back(worker("slow", helper({"wait-file:" + go, "notify"}),
                              {{"ready", "notify"}, {"start_timeout", 600}}));
    write_file(d.spec_path(), spec(children).dump());
    ChildOptions capture;
    capture.capture = true;
    Child reload({chipctl_path(), "--socket", d.socket(), "reload"}, capture);
    REQUIRE(d.wait_state("slow", "starting"));

    json j = reexec_request(d);
    INFO(j.dump() << "\n" << d.stderr_text());
    CHECK_FALSE(j.value("ok", true));
    CHECK(j.value("errno", "") == "EBUSY");
    CHECK(reexec(d).exit_code == 1);
    CHECK(reload.running());

    write_file(go, "");
    CHECK(reload.collect());
    CHECK(reload.wait() == 0);
    CHECK(reload.out() == "add slow\n");
    CHECK(d.state_of("slow") == "running");
    require_reexec(d);
    CHECK(d.pid_of("a") == a);
    CHECK(d.stop() == 0);
}

// ---- the new process's side: hand-offs it must refuse --------------------------------

TEST_CASE(
    "chipd --handoff refuses a hand-off that is truncated, corrupted, of an unknown version "
    "or no hand-off at all: exit 1 with the reason, and the worker it names is untouched") {
    struct Case {
        std::string mutation, reason;
    };
    const Case cases[] = {
        {"truncate-half", "truncated"},
        {"truncate-header", "truncated"},
        {"flip", "checksum"},
        {"version:99", "version 99"},
        {"garbage", "not a hand-off"},
        // Sound bytes, refused for what they say.
        {"other-pid", "written by pid"},
        {"closed-fd", "fd 1000"},
        {"bad-registry", "jobs"},
    };
    for (const auto &c : cases) {
        INFO("mutation " << c.mutation);
        TempDir dir;
        std::string spec_file = dir.file("spec.json");
        write_file(spec_file,
                   spec(json::array({worker("w", json::array({"sleep", "1000"}))})).dump());
        std::string pidfile = dir.file("worker.pid"), socket = dir.file("chipd.sock");
        ChildOptions capture;
        capture.capture = true;
        Child forge({FORGE_HANDOFF_PATH, c.mutation, pidfile, chipd_path(), socket, spec_file},
                    capture);
        pid_t worker_pid = wait_pid_file(pidfile);
        KillAtEnd guard{worker_pid};
        REQUIRE(worker_pid > 0);
        CHECK(forge.collect());
        auto code = forge.wait();
        INFO("exit " << (code ? str(*code) : "none") << "\nstdout: " << forge.out()
                     << "\nstderr: " << forge.err());
        CHECK(code == 1);
        CHECK(forge.err().find("chipd: fatal: hand-off refused: ") != std::string::npos);
        if (!c.reason.empty()) CHECK(forge.err().find(c.reason) != std::string::npos);
        // Not signalled, not killed: still asleep.
        CHECK(process_alive(worker_pid));
        CHECK(process_state(worker_pid) == 'S');
        CHECK_FALSE(file_exists(socket));
    }
}

TEST_CASE(
    "after a reexec, SIGKILL to chipd still sends its workers their parent-death signal "
    "(SIGTERM): they stay the children of the same process") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(
        json::array({worker("a", helper("record:" + rec)), worker("b", helper("record:" + rec))})));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b");
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 2; }));
    require_reexec(d);
    require_reexec(d);
    d.signal(SIGKILL);
    CHECK(d.wait_exit() == 128 + SIGKILL);
    CHECK(wait_until([&] { return !process_alive(a) && !process_alive(b); }));
    // They went by SIGTERM: the helper records its stop on SIGTERM.
    CHECK(wait_until([&] { return read_lines(rec).size() == 4; }));
    auto lines = read_lines(rec);
    CHECK(std::count(lines.begin(), lines.end(), "stop " + std::to_string(a)) == 1);
    CHECK(std::count(lines.begin(), lines.end(), "stop " + std::to_string(b)) == 1);
}

TEST_CASE(
    "exports and the spec file carry over: a sibling restarted after a reexec gets the "
    "exporter's values, and chipctl reload rereads the same spec file") {
    json notify{{"ready", "notify"}, {"start_timeout", 30}};
    auto make = [&](const json &client_extra) {
        return spec(json::array({worker("db", helper({"export:DB_PORT=5432", "notify"}), notify),
                                 worker("client", helper("sleep"), client_extra)}));
    };
    Chipd d(make(json::object()));
    d.start_ready();
    pid_t db = d.pid_of("db");
    pid_t client = d.pid_of("client");
    auto env_of = [&](pid_t pid, const std::string &name) {
        wait_until([&] { return environ_of(pid, "CHIP_PATH").has_value(); });
        return environ_of(pid, name).value_or("<unset>");
    };
    REQUIRE(env_of(client, "DB_PORT") == "5432");
    require_reexec(d);
    CHECK(d.node("db")["exports"] == json{{"DB_PORT", "5432"}});
    // A restart after the reexec hands the exporter's value on as before.
    REQUIRE(d.run_ctl({"restart", "client"}).exit_code == 0);
    pid_t client2 = d.pid_of("client");
    CHECK(client2 != client);
    CHECK(env_of(client2, "DB_PORT") == "5432");
    CHECK(d.pid_of("db") == db);
    // chipd's spec file is the same one: a reload rereads it.
    write_file(d.spec_path(), make({{"env", {{"X", "1"}}}}).dump());
    auto r = d.run_ctl({"reload"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("client") != std::string::npos);
    pid_t client3 = d.pid_of("client");
    CHECK(client3 != client2);
    CHECK(env_of(client3, "X") == "1");
    CHECK(env_of(client3, "DB_PORT") == "5432");
    CHECK(d.pid_of("db") == db);
}
