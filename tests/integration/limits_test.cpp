// chipd at its limits: a start of thousands of workers (each deadline counts
// from when it is set, not from the event that began the start), the file
// descriptor limit (connections beyond it are closed at once, without a busy
// loop), and a chipd that does not answer (every chipctl command has a
// deadline and exits 3).
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.hpp"
#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// Enough workers that starting them takes seconds, more than the deadlines below.
constexpr unsigned kPool = 2000;

// The time of chipd's text log line that contains every one of PARTS, in
// seconds since midnight UTC; -1 when there is none.
double log_time(const Chipd &d, std::initializer_list<std::string> parts) {
    for (const auto &line : d.stderr_lines()) {
        bool all = true;
        for (const auto &p : parts) all = all && line.find(p) != std::string::npos;
        int h = 0, m = 0, s = 0, ms = 0;
        if (all && line.size() > 24 &&
            std::sscanf(line.c_str() + 11, "%d:%d:%d.%dZ", &h, &m, &s, &ms) == 4)
            return h * 3600 + m * 60 + s + ms / 1000.0;
    }
    return -1;
}

// How long chipd took from spawning p.0 to the line of PARTS (a note when the
// start was quicker than DEADLINE_S: then a clock frozen at the start's event
// would not have shown either, and the case proves less).
void note_start_duration(const Chipd &d, std::initializer_list<std::string> parts,
                         double deadline_s) {
    double t0 = log_time(d, {"start p.0 "}), t1 = log_time(d, parts);
    if (t0 < 0 || t1 < 0) return;
    if (t1 < t0) t1 += 86400;  // midnight passed
    WARN_MESSAGE(t1 - t0 > deadline_s, "the pool started in "
                                           << t1 - t0 << " s, within the deadline of " << deadline_s
                                           << " s");
}

}  // namespace

// ---- deadlines through a long start -------------------------------------------------

TEST_CASE("long start: a notify worker spawned after thousands is not killed by start_timeout") {
    const double timeout_s = 2 * timeout_multiplier();
    Chipd d(spec(json::array({worker("p", helper("sleep"), {{"instances", kPool}}),
                              worker("n", helper("notify-after:200"),
                                     {{"ready", "notify"}, {"start_timeout", timeout_s}})})));
    d.start();
    bool ready = d.wait_ready(Ms(240000));
    INFO(d.stderr_text().substr(d.stderr_text().size() > 4000 ? d.stderr_text().size() - 4000 : 0));
    CHECK(ready);
    CHECK(d.state_of("n") == "running");
    CHECK_FALSE(d.log_has({"kill n ", "start_timeout passed"}));
    note_start_duration(d, {"start n "}, timeout_s);
    CHECK(d.stop(Ms(240000)) == 0);
}

TEST_CASE("long start: a stop late in a long start waits stop_timeout before SIGKILL") {
    // f cannot be spawned: the root's start fails after p's thousands and w,
    // and w is stopped in the same event, just spawned. Its stop signal is one
    // it ignores (it may come before the process could install a handler for
    // one), and it exits by itself 300 ms after its start: well within its
    // stop_timeout, counted from the signal.
    const double timeout_s = 2 * timeout_multiplier();
    Chipd d(spec(json::array({worker("p", helper("sleep"), {{"instances", kPool}}),
                              worker("w", helper("exit-after:300:0"),
                                     {{"stop_signal", "URG"}, {"stop_timeout", timeout_s}}),
                              worker("f", json::array({"/nonexistent/chip-limits-test"}))})));
    d.start();
    auto code = d.wait_exit(Ms(240000));
    std::string err = d.stderr_text();
    INFO(err.substr(err.size() > 4000 ? err.size() - 4000 : 0));
    CHECK(code == 1);  // the root's start failed
    CHECK(d.log_has({"stop w "}));
    CHECK(d.log_has({"exit w ", "status 0"}));
    CHECK_FALSE(d.log_has({"kill w "}));
    note_start_duration(d, {"stop w "}, timeout_s);
}

// ---- the file descriptor limit ---------------------------------------------------------

namespace {

// What became of a connection that sent a request: chipd answered, closed it,
// or neither (yet).
enum class Fate { Pending, Answered, Closed };

Fate fate_of(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return Fate::Pending;
    char c;
    ssize_t r = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0) return Fate::Answered;
    if (r == 0 || errno == ECONNRESET) return Fate::Closed;
    return Fate::Pending;
}

std::size_t count_lines(const Chipd &d, const std::string &part) {
    std::size_t n = 0;
    for (const auto &line : d.stderr_lines()) n += line.find(part) != std::string::npos;
    return n;
}

}  // namespace

TEST_CASE("fd limit: connections beyond RLIMIT_NOFILE are closed at once, one warning, no spin") {
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.limit_fds(40);
    d.start_ready();
    // Far more connections than chipd has descriptors left.
    constexpr std::size_t kClients = 150;
    std::vector<std::unique_ptr<Client>> clients;
    for (std::size_t i = 0; i < kClients; ++i)
        clients.push_back(std::make_unique<Client>(d.socket()));
    const std::string req = json{{"op", "status"}, {"path", "a"}}.dump() + "\n";
    for (auto &c : clients)  // a refused one may be closed already: EPIPE, no SIGPIPE
        (void)!::send(c->fd(), req.data(), req.size(), MSG_NOSIGNAL);
    // Every one is answered or closed: none waits in the listen queue for ever.
    std::vector<Fate> fates(kClients, Fate::Pending);
    bool settled = wait_until([&] {
        bool all = true;
        for (std::size_t i = 0; i < kClients; ++i) {
            if (fates[i] == Fate::Pending) fates[i] = fate_of(clients[i]->fd());
            all = all && fates[i] != Fate::Pending;
        }
        return all;
    });
    std::size_t answered = std::count(fates.begin(), fates.end(), Fate::Answered);
    std::size_t closed = std::count(fates.begin(), fates.end(), Fate::Closed);
    INFO("answered " << answered << ", closed " << closed);
    INFO(d.stderr_text().substr(0, 4000));
    CHECK(settled);
    CHECK(answered > 0);
    CHECK(closed > 0);
    // While they are held, chipctl is told at once, not left hanging.
    ProcResult held = d.run_ctl({"status"});
    CHECK(held.exit_code == 3);
    CHECK(held.err.find("closed the connection") != std::string::npos);
    // The refusals are counted in a warning or two, not one line each (a
    // spinning loop writes thousands).
    std::size_t warnings = count_lines(d, "out of file descriptors");
    CHECK(warnings >= 1);
    CHECK(warnings <= 3);
    CHECK(count_lines(d, "control socket") <= 3);
    // Freed, chipd answers again.
    clients.clear();
    CHECK(wait_until([&] { return d.run_ctl({"status"}).exit_code == 0; }));
    CHECK(d.running());
    CHECK(d.stop() == 0);
}

TEST_CASE("fd limit: chipd raises its own soft limit, its workers keep the one it was given") {
    Chipd d(spec(json::array({worker("w", helper("sleep"))})));
    d.limit_fds(256, 8192);
    d.start_ready();
    // "Max open files            SOFT                 HARD                 files"
    auto soft_hard = [](pid_t pid) {
        for (const auto &line : split_lines(read_file("/proc/" + std::to_string(pid) + "/limits")))
            if (line.rfind("Max open files", 0) == 0) {
                auto words = split_words(line.substr(14));
                std::vector<std::string> w;
                for (auto &x : words)
                    if (!x.empty()) w.push_back(x);
                return w.size() >= 2 ? w[0] + "/" + w[1] : std::string();
            }
        return std::string();
    };
    CHECK(soft_hard(d.pid()) == "8192/8192");
    CHECK(soft_hard(d.pid_of("w")) == "256/8192");
    CHECK(d.stop() == 0);
}

TEST_CASE("fd limit: chipd --check warns when the spec needs more descriptors, and exits 0") {
    TempDir dir;
    write_file(dir.file("spec.json"),
               spec(json::array({worker("p", helper("sleep"), {{"instances", 200}})})).dump());
    ChildOptions opts;
    opts.capture = true;
    opts.max_fds = 256;  // 200 workers x 2 pipes do not fit
    Child check({chipd_path(), "--check", dir.file("spec.json")}, opts);
    REQUIRE(check.collect());
    CHECK(check.wait() == 0);
    INFO(check.err());
    CHECK(check.out() == dir.file("spec.json") + ": ok\n");
    CHECK(check.err().find("chipd: warning: " + dir.file("spec.json") +
                           ": its 200 workers may need about 464 file descriptors") !=
          std::string::npos);
    CHECK(check.err().find("RLIMIT_NOFILE allows (256)") != std::string::npos);
    // Within the limit: no warning.
    opts.max_fds = 1024;
    Child fits({chipd_path(), "--check", dir.file("spec.json")}, opts);
    REQUIRE(fits.collect());
    CHECK(fits.wait() == 0);
    CHECK(fits.err().empty());
}

// ---- a chipd that does not answer ----------------------------------------------------

namespace {

// SIGSTOPs chipd, and SIGCONTs it when it goes, whatever happens in between.
struct Stopped {
    Chipd &d;
    explicit Stopped(Chipd &chipd) : d(chipd) {
        d.signal(SIGSTOP);
        REQUIRE(wait_until([&] { return process_state(d.pid()) == 'T'; }));
    }
    ~Stopped() { d.signal(SIGCONT); }
    Stopped(const Stopped &) = delete;
    Stopped &operator=(const Stopped &) = delete;
};

}  // namespace

TEST_CASE("stopped chipd: chipctl status, wait and events give up at --timeout with exit 3") {
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    {
        Stopped stopped(d);
        const std::string says = "chipd at " + d.socket() + " did not answer within 1 s";
        // Each would block for ever; the harness's own deadline only bounds a failure.
        ProcResult status = d.run_ctl({"status", "--timeout", "1"});
        CHECK(status.exit_code == 3);
        CHECK(status.err.find(says) != std::string::npos);
        ProcResult wait = d.run_ctl({"wait", "a", "--timeout", "1"});
        CHECK(wait.exit_code == 3);
        CHECK(wait.err.find(says) != std::string::npos);
        ProcResult events = d.run_ctl({"--timeout", "1", "events"});
        CHECK(events.exit_code == 3);
        CHECK(events.err.find(says) != std::string::npos);
        ProcResult half = d.run_ctl({"--timeout", "0.5", "status", "a"});
        CHECK(half.exit_code == 3);
        CHECK(half.err.find("within 0.5 s") != std::string::npos);
    }
    // Resumed, it answers what is asked from then on.
    CHECK(wait_until([&] { return d.run_ctl({"status"}).exit_code == 0; }));
    ProcResult wait = d.run_ctl({"wait", "a", "--timeout", "1"});
    CHECK(wait.exit_code == 0);
    CHECK(d.stop() == 0);
}

TEST_CASE("stopped chipd: a live chipd's wait timeout is exit 1, not 3") {
    Chipd d(spec(json::array({worker("n", helper("never-ready"), {{"ready", "notify"}})})));
    d.start();
    REQUIRE(d.wait_state("n", "starting"));
    ProcResult wait = d.run_ctl({"wait", "n", "--timeout", "0.3"});
    CHECK(wait.exit_code == 1);
    CHECK(wait.err.find("timed out waiting for n") != std::string::npos);
}

TEST_CASE("stopped chipd: a library call times out, and its connection is not reused") {
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    Stopped stopped(d);
    using namespace chip::client;
    // The listen queue takes the connection; nobody answers.
    auto conn = Connection::open(d.socket(), deadline_in(scaled(Ms(5000))));
    REQUIRE(conn.ok());
    auto r = conn->request(json{{"op", "status"}}, deadline_in(Ms(300)));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ETIMEDOUT);
    // Its answer may still come: the next request must not read it as its own.
    auto again = conn->request(json{{"op", "status"}}, deadline_in(Ms(300)));
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == ENOTCONN);
    CHECK_FALSE(conn->is_open());
}
