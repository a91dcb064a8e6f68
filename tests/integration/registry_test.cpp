// The registry with real processes: chipd, chipctl, libchip and workers.
// Declarative join, chipctl join/leave/members/groups/signal --group, death of
// children and of other members (pidfds), restarts, permissions (SO_PEERCRED,
// /proc ancestry, a second user through setpriv), bad input, capacities, the
// shared-memory files (names, SIGSTOP, stale and foreign regions), the
// reference client and libchip called from the test process itself.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>

#include "chip/chip.h"
#include "chip/registry.h"
#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

using Pids = std::vector<pid_t>;

// chipctl [--json] members [-r REG] GROUP at SOCKET: the pids, or nullopt if
// chipctl failed.
std::optional<Pids> members_at(const std::string &socket, const std::string &group,
                               const std::string &reg = "") {
    std::vector<std::string> args{"--json", "members"};
    if (!reg.empty()) args.insert(args.end(), {"-r", reg});
    args.push_back(group);
    ProcResult r = run_ctl_at(socket, args);
    if (r.exit_code != 0) return std::nullopt;
    return json::parse(r.out).get<Pids>();
}

std::optional<Pids> members(Chipd &d, const std::string &group, const std::string &reg = "") {
    return members_at(d.socket(), group, reg);
}

// chipctl --json groups [-r REG]: the object, or null if chipctl failed.
json groups_at(const std::string &socket, const std::string &reg = "") {
    std::vector<std::string> args{"--json", "groups"};
    if (!reg.empty()) args.insert(args.end(), {"-r", reg});
    ProcResult r = run_ctl_at(socket, args);
    if (r.exit_code != 0) return nullptr;
    return json::parse(r.out);
}

json groups(Chipd &d, const std::string &reg = "") {
    return groups_at(d.socket(), reg);
}

std::string str(pid_t pid) {
    return std::to_string(pid);
}

// chipctl join/leave GROUP --pid PID [-r REG].
ProcResult membership(Chipd &d, const std::string &op, const std::string &group, pid_t pid,
                      const std::string &reg = "") {
    std::vector<std::string> args{op, group, "--pid", str(pid)};
    if (!reg.empty()) args.insert(args.end(), {"-r", reg});
    return d.run_ctl(args);
}

std::set<pid_t> as_set(const Pids &pids) {
    return {pids.begin(), pids.end()};
}

// A pid that just died and was reaped (no process has it, barring reuse).
pid_t dead_pid() {
    Child c({helper_path(), "exit:0"});
    REQUIRE(c.wait() == 0);
    return c.pid();
}

// A shell worker: /bin/sh -c SCRIPT [ARGS as $0, $1, ...].
json sh(const std::string &script, const std::vector<std::string> &args = {}) {
    json cmd = json::array({"/bin/sh", "-c", script});
    for (const auto &a : args) cmd.push_back(a);
    return cmd;
}

// Whether FILE is "/dev/shm/chip-<32 lowercase hex>-<REGISTRY>".
bool is_shm_of(const std::string &file, const std::string &registry) {
    const std::string lead = "/dev/shm/chip-";
    if (file.size() != lead.size() + 32 + 1 + registry.size()) return false;
    if (file.rfind(lead, 0) != 0) return false;
    if (file.substr(lead.size(), 32).find_first_not_of("0123456789abcdef") != std::string::npos)
        return false;
    return file.substr(lead.size() + 32) == "-" + registry;
}

// Resumes a SIGSTOPped process whatever happens.
struct Continue {
    pid_t pid;
    ~Continue() { ::kill(pid, SIGCONT); }
};

// The sessions.json tree: five workers joining a, b, c, a, b of "sessions".
json five_sessions() {
    json children = json::array();
    const char *groups[] = {"a", "b", "c", "a", "b"};
    for (int i = 0; i < 5; ++i)
        children.push_back(worker("session-" + std::to_string(i + 1), helper("sleep"),
                                  {{"join", {{"sessions", {groups[i]}}}}}));
    return spec(children, {{"strategy", "rest_for_one"}, {"max_restarts", 5}, {"period", 1}},
                {{"registries", {"sessions"}}});
}

bool have_user_nobody() {
    return ::getpwnam("nobody") && ::getgrnam("nogroup");
}

bool have_setpriv() {
    return ::access("/usr/bin/setpriv", X_OK) == 0 || ::access("/bin/setpriv", X_OK) == 0;
}

// chipctl ARGS at SOCKET run as nobody:nogroup (no supplementary groups).
ProcResult ctl_as_nobody(const std::string &socket, const std::vector<std::string> &args) {
    std::vector<std::string> argv{"setpriv",      "--reuid",  "nobody",
                                  "--regid",      "nogroup",  "--clear-groups",
                                  chipctl_path(), "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    argv[0] = ::access("/usr/bin/setpriv", X_OK) == 0 ? "/usr/bin/setpriv" : "/bin/setpriv";
    return run_process(argv);
}

// The protocol's answer to REQ sent by a process running as nobody:nogroup
// (chip_test_helper request:SOCKET under setpriv): the response's "errno" (""
// when ok, "connect" when it could not connect).
std::string request_as_nobody(const std::string &socket, const json &req) {
    std::vector<std::string> argv{"setpriv", "--reuid",        "nobody",      "--regid",
                                  "nogroup", "--clear-groups", helper_path(), "request:" + socket};
    argv[0] = ::access("/usr/bin/setpriv", X_OK) == 0 ? "/usr/bin/setpriv" : "/bin/setpriv";
    ProcResult r = run_process(argv, kDeadline, req.dump() + "\n");
    INFO("request as nobody: " << r.exit_code << " " << r.out << r.err);
    if (r.exit_code == 3) return "connect";
    REQUIRE(r.exit_code == 0);
    json resp = json::parse(r.out);
    return resp.value("ok", false) ? "" : resp.value("errno", "?");
}

// The reference client: $CHIP_REFERENCE_WORKER, else the one meson built.
std::string reference_worker_path() {
    if (const char *e = std::getenv("CHIP_REFERENCE_WORKER"); e && *e) return e;
    return REFERENCE_WORKER_PATH;
}

}  // namespace

// ---- declarative join, restarts, deaths -------------------------------------------

TEST_CASE(
    "declarative join: five workers joining a, b, c, a, b are listed in join order and "
    "counted per group, in plain and --json output") {
    Chipd d(five_sessions());
    d.start_ready();
    pid_t s[5];
    for (int i = 0; i < 5; ++i) s[i] = d.pid_of("session-" + std::to_string(i + 1));

    ProcResult a = d.run_ctl({"members", "a"});
    CHECK(a.exit_code == 0);
    CHECK(a.out == str(s[0]) + "\n" + str(s[3]) + "\n");
    CHECK(d.run_ctl({"members", "-r", "sessions", "b"}).out == str(s[1]) + "\n" + str(s[4]) + "\n");
    CHECK(members(d, "a") == Pids{s[0], s[3]});
    CHECK(members(d, "b") == Pids{s[1], s[4]});
    CHECK(members(d, "c") == Pids{s[2]});
    ProcResult aj = d.run_ctl({"--json", "members", "a"});
    CHECK(json::parse(aj.out) == json::array({s[0], s[3]}));

    ProcResult g = d.run_ctl({"groups"});
    CHECK(g.exit_code == 0);
    CHECK(g.out == "a  2\nb  2\nc  1\n");
    CHECK(groups(d) == json{{"a", 2}, {"b", 2}, {"c", 1}});
    CHECK(groups(d).is_object());

    // A group nobody joined has no members: empty output, success.
    ProcResult none = d.run_ctl({"members", "nobody-here"});
    CHECK(none.exit_code == 0);
    CHECK(none.out == "");
    CHECK(d.run_ctl({"--json", "members", "nobody-here"}).out == "[]\n");
}

TEST_CASE(
    "a restarted worker rejoins its join groups with its new pid, not the groups it was "
    "joined to by hand") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"a", "b"}}}}})}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    pid_t old = d.pid_of("w");
    REQUIRE(membership(d, "join", "extra", old).exit_code == 0);
    REQUIRE(members(d, "extra") == Pids{old});

    REQUIRE(::kill(old, SIGKILL) == 0);
    pid_t now = d.wait_new_pid("w", old);
    REQUIRE(now > 0);
    d.track(now);
    CHECK(wait_until([&] { return members(d, "a") == Pids{now} && members(d, "b") == Pids{now}; }));
    CHECK(members(d, "extra") == Pids{});
    CHECK(groups(d) == json{{"a", 1}, {"b", 1}});
}

TEST_CASE("a worker that exits leaves all its groups at once, and an empty group disappears") {
    Chipd d(spec(json::array({worker("keep", helper("sleep"), {{"join", {{"r", {"g"}}}}}),
                              worker("w", helper("sleep"),
                                     {{"restart", "temporary"}, {"join", {{"r", {"g", "h"}}}}})}),
                 {}, {{"registries", {"r"}}}));
    d.start_ready();
    pid_t keep = d.pid_of("keep"), w = d.pid_of("w");
    REQUIRE(members(d, "g") == Pids{keep, w});
    REQUIRE(members(d, "h") == Pids{w});

    REQUIRE(::kill(w, SIGTERM) == 0);
    REQUIRE(d.wait_state("w", "exited"));
    // Removed when chipd reaped it: as soon as status says so, no polling.
    CHECK(members(d, "g") == Pids{keep});
    CHECK(members(d, "h") == Pids{});
    CHECK(groups(d) == json{{"g", 1}});
}

TEST_CASE(
    "a member that is not chipd's child (a worker's child joined with --pid) is removed "
    "when it dies, although its parent never reaps it") {
    TempDir scratch;
    std::string file = scratch.file("gc");
    // The worker forks a sleep, writes its pid, then execs a sleep that never
    // reaps it: the grandchild stays a zombie after its death.
    Chipd d(spec(json::array({worker("w", sh("sleep 1000 & echo $! > \"$0.tmp\" && mv \"$0.tmp\" "
                                             "\"$0\"; exec sleep 1000",
                                             {file}))}),
                 {}, {{"registries", {"r"}}}));
    d.start_ready();
    pid_t w = d.pid_of("w");
    pid_t gc = wait_pid_file(file);
    REQUIRE(gc > 0);
    d.track(gc);
    REQUIRE(parent_of(gc) == w);

    ProcResult j = membership(d, "join", "g", gc);
    CHECK(j.exit_code == 0);
    CHECK(j.err == "");
    REQUIRE(membership(d, "join", "h", gc).exit_code == 0);
    REQUIRE(membership(d, "join", "g", w).exit_code == 0);
    REQUIRE(members(d, "g") == Pids{gc, w});

    REQUIRE(::kill(gc, SIGKILL) == 0);
    CHECK(wait_until([&] { return members(d, "g") == Pids{w} && members(d, "h") == Pids{}; }));
    CHECK(process_state(gc) == 'Z');  // still unreaped: removal came from the pidfd
    CHECK(groups(d) == json{{"g", 1}});
    CHECK(d.state_of("w") == "running");

    // Joining the zombie again: refused (ESRCH), never listed.
    ProcResult z = membership(d, "join", "z", gc);
    CHECK(z.exit_code == 1);
    CHECK(z.err.find("exited") != std::string::npos);
    CHECK(wait_until([&] { return members(d, "z") == Pids{}; }));
}

TEST_CASE("a descendant joined with --pid that exits normally and is reaped is removed too") {
    TempDir scratch;
    std::string file = scratch.file("gc");
    // sh waits for its child: the grandchild is reaped by the worker itself.
    Chipd d(spec(json::array({worker("w", sh("sleep 1000 & echo $! > \"$0.tmp\" && mv \"$0.tmp\" "
                                             "\"$0\"; wait; exec sleep 1000",
                                             {file}))}),
                 {}, {{"registries", {"r"}}}));
    d.start_ready();
    pid_t gc = wait_pid_file(file);
    REQUIRE(gc > 0);
    d.track(gc);
    REQUIRE(membership(d, "join", "g", gc).exit_code == 0);
    REQUIRE(members(d, "g") == Pids{gc});
    // signal --group reaches a member that is not chipd's child.
    ProcResult sig = d.run_ctl({"signal", "TERM", "--group", "g"});
    CHECK(sig.exit_code == 0);
    CHECK(wait_until([&] { return !process_alive(gc); }));
    CHECK(wait_until([&] { return members(d, "g") == Pids{}; }));
    CHECK(groups(d) == json::object());
    CHECK(d.state_of("w") == "running");
}

// ---- chipctl join / leave ------------------------------------------------------------

TEST_CASE(
    "chipctl join/leave --pid: join is idempotent, a pid may be in many groups, leave of "
    "a non-member succeeds") {
    Chipd d(spec(json::array({worker("w1", helper("sleep")), worker("w2", helper("sleep"))}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    pid_t w1 = d.pid_of("w1"), w2 = d.pid_of("w2");
    CHECK(groups(d) == json::object());

    ProcResult j = membership(d, "join", "g", w2);
    CHECK(j.exit_code == 0);
    CHECK(j.out == "");
    CHECK(j.err == "");
    CHECK(membership(d, "join", "g", w1).exit_code == 0);
    CHECK(membership(d, "join", "g", w2).exit_code == 0);  // again: no change
    CHECK(membership(d, "join", "g", w2, "r").exit_code == 0);
    CHECK(members(d, "g") == Pids{w2, w1});

    CHECK(membership(d, "join", "h", w1).exit_code == 0);
    CHECK(membership(d, "join", "x.y:z-1_2", w1).exit_code == 0);
    CHECK(members(d, "h") == Pids{w1});
    CHECK(members(d, "x.y:z-1_2") == Pids{w1});
    CHECK(groups(d) == json{{"g", 2}, {"h", 1}, {"x.y:z-1_2", 1}});

    ProcResult l = membership(d, "leave", "g", w2);
    CHECK(l.exit_code == 0);
    CHECK(l.err == "");
    CHECK(members(d, "g") == Pids{w1});
    CHECK(membership(d, "leave", "g", w2).exit_code == 0);  // not a member: fine
    CHECK(membership(d, "leave", "never", w2).exit_code == 0);
    CHECK(membership(d, "leave", "h", w1).exit_code == 0);
    CHECK(members(d, "g") == Pids{w1});
    CHECK(groups(d) == json{{"g", 1}, {"x.y:z-1_2", 1}});

    // Rejoining puts the pid at the end of the join order.
    CHECK(membership(d, "join", "g", w2).exit_code == 0);
    CHECK(membership(d, "leave", "g", w1).exit_code == 0);
    CHECK(membership(d, "join", "g", w1).exit_code == 0);
    CHECK(members(d, "g") == Pids{w2, w1});
}

TEST_CASE("chipctl join and leave without --pid act on chipctl's parent: the worker's shell") {
    TempDir scratch;
    std::string done = scratch.file("done");
    std::string script =
        "\"$0\" --socket \"$1\" join g && \"$0\" --socket \"$1\" join h && "
        "\"$0\" --socket \"$1\" leave h && echo ok > \"$2\"; exec sleep 1000";
    // The socket is only known from the Chipd object: its spec is written again.
    Chipd w(spec(json::array(), {}, {{"registries", {"r"}}}));
    json s = spec(json::array({worker("w", sh(script, {chipctl_path(), w.socket(), done}))}), {},
                  {{"registries", {"r"}}});
    write_file(w.spec_path(), s.dump(2));
    w.start_ready();
    pid_t pid = w.pid_of("w");
    REQUIRE(wait_until([&] { return file_exists(done); }));
    CHECK(members(w, "g") == Pids{pid});
    CHECK(members(w, "h") == Pids{});
    CHECK(groups(w) == json{{"g", 1}});
}

// ---- refusals --------------------------------------------------------------------------

TEST_CASE(
    "refused joins: a pid outside the tree (EPERM), a pid that does not exist (ESRCH); the "
    "registry is unchanged") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"g"}}}}})}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    pid_t w = d.pid_of("w");
    Child outsider({"/bin/sleep", "1000"});

    ProcResult out = membership(d, "join", "g", outsider.pid());
    CHECK(out.exit_code == 1);
    CHECK(out.out == "");
    CHECK(out.err.find(str(outsider.pid())) != std::string::npos);
    CHECK(out.err.find("not a worker") != std::string::npos);
    CHECK(membership(d, "join", "other", outsider.pid()).exit_code == 1);
    CHECK(membership(d, "join", "g", 1).exit_code == 1);  // init: outside too
    // chipctl's default pid is its parent: the test process, outside the tree.
    CHECK(d.run_ctl({"join", "g"}).exit_code == 1);

    pid_t gone = dead_pid();
    ProcResult nosuch = membership(d, "join", "g", gone);
    CHECK(nosuch.exit_code == 1);
    CHECK(nosuch.err.find("no process") != std::string::npos);
    CHECK(nosuch.err.find(str(gone)) != std::string::npos);

    // The protocol's codes.
    json r =
        d.request({{"op", "join"}, {"registry", "r"}, {"group", "g"}, {"pid", outsider.pid()}});
    CHECK(r.value("ok", true) == false);
    CHECK(r.value("errno", "") == "EPERM");
    r = d.request({{"op", "join"}, {"registry", "r"}, {"group", "g"}, {"pid", gone}});
    CHECK(r.value("errno", "") == "ESRCH");

    CHECK(members(d, "g") == Pids{w});
    CHECK(groups(d) == json{{"g", 1}});
}

TEST_CASE(
    "a second user: nobody cannot reach the 0660 socket; with the socket's group it reaches "
    "chipd and is refused (EPERM) for root's worker, allowed for its own") {
    if (!have_setpriv() || !have_user_nobody() || ::geteuid() != 0)
        skip("needs root, setpriv and the user nobody with the group nogroup");
    Chipd d(spec(json::array({worker("root_w", helper("sleep")),
                              worker("nobody_w", json::array({"/bin/sleep", "1000"}),
                                     {{"user", "nobody"}, {"group", "nogroup"}, {"cwd", "/"}})}),
                 {}, {{"registries", {"r"}}}));
    REQUIRE(::chmod(d.dir().path().c_str(), 0755) == 0);  // let nobody reach the socket
    d.start_ready();
    pid_t root_w = d.pid_of("root_w"), nobody_w = d.pid_of("nobody_w");
    REQUIRE(uid_of(nobody_w) == 65534);

    struct stat st {};
    REQUIRE(::stat(d.socket().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
    CHECK(st.st_uid == 0);

    // Outside chipd's group: not even a connection.
    ProcResult denied = ctl_as_nobody(d.socket(), {"join", "g", "--pid", str(root_w)});
    CHECK(denied.exit_code == 3);
    CHECK(denied.err.find("Permission denied") != std::string::npos);
    // The registry is read without a connection (the published index).
    ProcResult unconnected = ctl_as_nobody(d.socket(), {"members", "g"});
    CHECK(unconnected.exit_code == 0);
    CHECK(unconnected.out == "");

    // Give the socket's group to nogroup: nobody connects, and chipd decides
    // from SO_PEERCRED.
    REQUIRE(::chown(d.socket().c_str(), static_cast<uid_t>(-1), 65534) == 0);
    ProcResult refused = ctl_as_nobody(d.socket(), {"join", "g", "--pid", str(root_w)});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err != "");
    INFO("nobody's refused join said: " << refused.err);
    CHECK(request_as_nobody(d.socket(),
                            {{"op", "join"}, {"registry", "r"}, {"group", "g"}, {"pid", root_w}}) ==
          "EPERM");
    CHECK(members(d, "g") == Pids{});

    // Its own pid (same user): allowed, and readable by nobody.
    ProcResult own = ctl_as_nobody(d.socket(), {"join", "g", "--pid", str(nobody_w)});
    CHECK(own.exit_code == 0);
    CHECK(own.err == "");
    CHECK(members(d, "g") == Pids{nobody_w});
    ProcResult read = ctl_as_nobody(d.socket(), {"members", "g"});
    CHECK(read.exit_code == 0);
    CHECK(read.out == str(nobody_w) + "\n");
    // Root may leave anyone's pid; nobody may not leave root's.
    CHECK(membership(d, "join", "g", root_w).exit_code == 0);
    CHECK(ctl_as_nobody(d.socket(), {"leave", "g", "--pid", str(root_w)}).exit_code == 1);
    CHECK(members(d, "g") == Pids{nobody_w, root_w});
    CHECK(membership(d, "leave", "g", nobody_w).exit_code == 0);
    CHECK(members(d, "g") == Pids{root_w});
}

// ---- bad input ---------------------------------------------------------------------------

TEST_CASE(
    "bad input: unknown registry and invalid group names fail (1), several registries "
    "without -r is a usage error (2); nothing changes") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"sessions", {"a"}}}}})}), {},
                 {{"registries", {"sessions", "other"}}}));
    d.start_ready();
    pid_t w = d.pid_of("w");
    std::string p = str(w);

    for (auto args : std::vector<std::vector<std::string>>{{"members", "a"},
                                                           {"groups"},
                                                           {"join", "a", "--pid", p},
                                                           {"leave", "a", "--pid", p},
                                                           {"signal", "TERM", "--group", "a"}}) {
        ProcResult r = d.run_ctl(args);
        INFO(args[0] << ": " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("several registries") != std::string::npos);
    }
    for (auto args : std::vector<std::vector<std::string>>{
             {"members", "-r", "nosuch", "a"},
             {"groups", "-r", "nosuch"},
             {"join", "-r", "nosuch", "a", "--pid", p},
             {"leave", "-r", "nosuch", "a", "--pid", p},
             {"signal", "TERM", "--group", "a", "-r", "nosuch"}}) {
        ProcResult r = d.run_ctl(args);
        INFO(args[0] << ": " << r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("unknown registry") != std::string::npos);
    }
    std::string long_name(65, 'g');
    for (const std::string &bad : {std::string("bad name!"), std::string("a/b"), long_name}) {
        for (auto args : std::vector<std::vector<std::string>>{
                 {"members", "-r", "sessions", bad},
                 {"join", "-r", "sessions", bad, "--pid", p},
                 {"leave", "-r", "sessions", bad, "--pid", p},
                 {"signal", "TERM", "--group", bad, "-r", "sessions"}}) {
            ProcResult r = d.run_ctl(args);
            INFO(args[0] << " " << bad << ": " << r.err);
            CHECK(r.exit_code == 1);
            CHECK(r.err.find("invalid group name") != std::string::npos);
        }
    }
    // The protocol: a null registry with several is EINVAL, an unknown one ENOENT.
    CHECK(d.request({{"op", "join"}, {"group", "a"}, {"pid", w}}).value("errno", "") == "EINVAL");
    CHECK(d.request({{"op", "join"}, {"registry", "nosuch"}, {"group", "a"}, {"pid", w}})
              .value("errno", "") == "ENOENT");
    CHECK(d.request({{"op", "join"}, {"registry", "sessions"}, {"group", "bad name!"}, {"pid", w}})
              .value("errno", "") == "EINVAL");

    // 64 characters is the longest valid name.
    std::string longest(64, 'g');
    CHECK(membership(d, "join", longest, w, "other").exit_code == 0);
    CHECK(members(d, longest, "other") == Pids{w});
    CHECK(membership(d, "leave", longest, w, "other").exit_code == 0);

    CHECK(members(d, "a", "sessions") == Pids{w});
    CHECK(groups(d, "sessions") == json{{"a", 1}});
    CHECK(groups(d, "other") == json::object());
    CHECK(d.state_of("w") == "running");
}

TEST_CASE(
    "a full registry: a join past max_groups or max_members fails with ENOSPC and changes "
    "nothing; freed slots are usable again") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"instances", 4}})}), {},
                 {{"registries", {{{"name", "small"}, {"max_groups", 2}, {"max_members", 3}}}}}));
    d.start_ready();
    pid_t w[4];
    for (int i = 0; i < 4; ++i) w[i] = d.pid_of("w." + std::to_string(i));

    REQUIRE(membership(d, "join", "g1", w[0]).exit_code == 0);
    REQUIRE(membership(d, "join", "g2", w[1]).exit_code == 0);
    // A third group: no group slot left.
    ProcResult g3 = membership(d, "join", "g3", w[0]);
    CHECK(g3.exit_code == 1);
    CHECK(g3.err.find("full") != std::string::npos);
    CHECK(groups(d) == json{{"g1", 1}, {"g2", 1}});
    CHECK(members(d, "g3") == Pids{});

    REQUIRE(membership(d, "join", "g1", w[2]).exit_code == 0);  // the third membership
    ProcResult m4 = membership(d, "join", "g2", w[3]);
    CHECK(m4.exit_code == 1);
    CHECK(m4.err.find("full") != std::string::npos);
    CHECK(d.request({{"op", "join"}, {"group", "g2"}, {"pid", w[3]}}).value("errno", "") ==
          "ENOSPC");
    // Joining again what one is in needs no slot: still fine when full.
    CHECK(membership(d, "join", "g1", w[0]).exit_code == 0);

    CHECK(groups(d) == json{{"g1", 2}, {"g2", 1}});
    CHECK(members(d, "g1") == Pids{w[0], w[2]});
    CHECK(members(d, "g2") == Pids{w[1]});

    // Leave frees a member slot; an emptied group frees its group slot.
    REQUIRE(membership(d, "leave", "g1", w[2]).exit_code == 0);
    CHECK(membership(d, "join", "g2", w[3]).exit_code == 0);
    CHECK(members(d, "g2") == Pids{w[1], w[3]});
    REQUIRE(membership(d, "leave", "g2", w[1]).exit_code == 0);
    REQUIRE(membership(d, "leave", "g2", w[3]).exit_code == 0);
    CHECK(membership(d, "join", "g3", w[3]).exit_code == 0);
    CHECK(groups(d) == json{{"g1", 1}, {"g3", 1}});
}

// ---- signal --group ------------------------------------------------------------------------

TEST_CASE(
    "chipctl signal TERM --group sends to every member; the permanent workers come back "
    "with new pids that rejoin the group") {
    Chipd d(spec(
        json::array({worker("w", helper("sleep"), {{"instances", 3}, {"join", {{"r", {"g"}}}}}),
                     worker("other", helper("sleep"), {{"join", {{"r", {"h"}}}}})}),
        {{"max_restarts", 10}}, {{"registries", {"r"}}}));
    d.start_ready();
    Pids old;
    for (int i = 0; i < 3; ++i) old.push_back(d.pid_of("w." + std::to_string(i)));
    pid_t other = d.pid_of("other");
    REQUIRE(members(d, "g") == old);

    ProcResult r = d.run_ctl({"signal", "TERM", "--group", "g"});
    CHECK(r.exit_code == 0);
    Pids now(3);
    for (int i = 0; i < 3; ++i) {
        now[i] = d.wait_new_pid("w." + std::to_string(i), old[i]);
        CHECK(now[i] > 0);
        d.track(now[i]);
    }
    CHECK(wait_until([&] {
        auto m = members(d, "g");
        return m && m->size() == 3 && as_set(*m) == as_set(now);
    }));
    for (pid_t p : old) CHECK_FALSE(process_alive(p));
    CHECK(d.pid_of("other") == other);
    CHECK(members(d, "h") == Pids{other});
    CHECK(d.restarts_of("w.0") == 1);

    // The protocol answers with the pids signalled.
    json resp = d.request({{"op", "signal"}, {"signal", "USR2"}, {"group", "nosuch-group"}});
    CHECK(resp.value("ok", false));
    CHECK(resp["pids"] == json::array());
}

// ---- shared memory ---------------------------------------------------------------------------

TEST_CASE("members and groups are read from shared memory while chipd is stopped with SIGSTOP") {
    Chipd d(five_sessions());
    d.start_ready();
    pid_t s1 = d.pid_of("session-1"), s4 = d.pid_of("session-4");
    {
        REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
        Continue resume{d.pid()};
        REQUIRE(wait_until([&] { return process_state(d.pid()) == 'T'; }));
        ProcResult a = d.run_ctl({"members", "a"});
        CHECK(a.exit_code == 0);
        CHECK(a.out == str(s1) + "\n" + str(s4) + "\n");
        ProcResult g = d.run_ctl({"--json", "groups", "-r", "sessions"});
        CHECK(g.exit_code == 0);
        CHECK(json::parse(g.out) == json{{"a", 2}, {"b", 2}, {"c", 1}});

        chip_client *c = chip_connect(d.socket().c_str());
        REQUIRE(c != nullptr);
        pid_t buf[4];
        CHECK(chip_members(c, nullptr, "a", buf, 4) == 2);
        CHECK(buf[0] == s1);
        CHECK(buf[1] == s4);
        chip_close(c);
        CHECK(process_state(d.pid()) == 'T');
    }
    CHECK(wait_until([&] { return process_state(d.pid()) != 'T'; }));
    CHECK(d.run_ctl({"status"}).exit_code == 0);
}

TEST_CASE(
    "the shared-memory files have random names, mode 0644, listed in the index beside the socket, "
    "and are removed at a clean shutdown; two chipd with the same registry name do not collide") {
    json s1 = spec(json::array({worker("w", helper("sleep"), {{"join", {{"sessions", {"a"}}}}})}),
                   {}, {{"registries", {"sessions", "more"}}});
    Chipd d1(s1), d2(s1);
    d1.start_ready();
    d2.start_ready();
    pid_t w1 = d1.pid_of("w"), w2 = d2.pid_of("w");

    auto f1 = d1.shm_files(), f2 = d2.shm_files();
    REQUIRE(f1.size() == 2);
    REQUIRE(f2.size() == 2);
    // "/dev/shm/chip-<32 random hex>-<registry>", a token per region.
    CHECK(is_shm_of(f1[0], "sessions"));
    CHECK(is_shm_of(f1[1], "more"));
    CHECK(is_shm_of(f2[0], "sessions"));
    CHECK(f1[0] != f2[0]);
    CHECK(f1[0].substr(0, 46) != f1[1].substr(0, 46));
    for (const auto &f : {f1[0], f1[1], f2[0], f2[1]}) {
        struct stat st {};
        REQUIRE(::stat(f.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0644);
        CHECK(st.st_uid == ::geteuid());
    }
    // The index beside the socket names them, mode 0644.
    const std::string index = d1.socket() + ".registries";
    CHECK(read_file(index) ==
          "chip-registries 1\nsessions " + f1[0].substr(8) + "\nmore " + f1[1].substr(8) + "\n");
    struct stat ist {};
    REQUIRE(::stat(index.c_str(), &ist) == 0);
    CHECK((ist.st_mode & 0777) == 0644);

    CHECK(members(d1, "a", "sessions") == Pids{w1});
    CHECK(members(d2, "a", "sessions") == Pids{w2});
    REQUIRE(membership(d2, "join", "b", w2, "sessions").exit_code == 0);
    CHECK(groups(d1, "sessions") == json{{"a", 1}});
    CHECK(groups(d2, "sessions") == json{{"a", 1}, {"b", 1}});

    CHECK(d1.stop() == 0);
    CHECK_FALSE(file_exists(f1[0]));
    CHECK_FALSE(file_exists(f1[1]));
    CHECK_FALSE(file_exists(d1.socket()));
    CHECK_FALSE(file_exists(index));
    // The other instance is untouched.
    CHECK(file_exists(f2[0]));
    CHECK(members(d2, "a", "sessions") == Pids{w2});
    CHECK(d2.stop() == 0);
    CHECK_FALSE(file_exists(f2[0]));
    CHECK_FALSE(file_exists(f2[1]));
}

TEST_CASE(
    "a stale region left by a killed chipd is replaced by the next chipd on the same socket; "
    "members reflect only the new tree") {
    TempDir scratch;
    std::string file = scratch.file("gc");
    // The worker's child outlives chipd (workers die with chipd: PDEATHSIG).
    json s = spec(json::array({worker("w",
                                      sh("sleep 1000 & echo $! > \"$0.tmp\" && mv \"$0.tmp\" "
                                         "\"$0\"; exec sleep 1000",
                                         {file}),
                                      {{"join", {{"sessions", {"a"}}}}})}),
                  {}, {{"registries", {"sessions"}}});
    Chipd d(s);
    d.start_ready();
    pid_t first_w = d.pid_of("w");
    pid_t old_w = wait_pid_file(file);
    REQUIRE(old_w > 0);
    d.track(old_w);
    REQUIRE(membership(d, "join", "a", old_w).exit_code == 0);
    REQUIRE(members(d, "a") == Pids{first_w, old_w});
    auto files = d.shm_files();
    REQUIRE(files.size() == 1);
    // Whatever happens below, leave no region behind.
    struct Unlink {
        std::string file;
        ~Unlink() { ::unlink(file.c_str()); }
    } unlink_at_end{files[0]};
    d.signal(SIGKILL);
    REQUIRE(d.wait_exit().has_value());
    CHECK(file_exists(files[0]));   // nobody cleaned it up
    REQUIRE(process_alive(old_w));  // the old member lives on
    ::unlink(file.c_str());

    // A reader still mapping the old region must learn it is dead.
    chip_client *old_reader = chip_connect(d.socket().c_str());
    REQUIRE(old_reader != nullptr);
    pid_t buf[4];
    CHECK(chip_members(old_reader, "sessions", "a", buf, 4) == 2);

    Chipd next(s, d.socket());
    next.start();
    REQUIRE_MESSAGE(next.wait_ready(), next.stderr_text());
    pid_t new_w = next.pid_of("w");
    REQUIRE(new_w > 0);
    CHECK(new_w != old_w);
    CHECK(new_w != first_w);
    d.track(wait_pid_file(file));
    // The predecessor's region (listed in its index) is gone; a new one serves.
    CHECK_FALSE(file_exists(files[0]));
    auto new_files = next.shm_files();
    REQUIRE(new_files.size() == 1);
    CHECK(new_files[0] != files[0]);
    CHECK(chip_members(old_reader, "sessions", "a", buf, 4) == 1);
    CHECK(buf[0] == new_w);
    chip_close(old_reader);
    CHECK(members_at(d.socket(), "a") == Pids{new_w});
    CHECK(groups_at(d.socket()) == json{{"a", 1}});

    // The old worker is nothing to the new chipd.
    ProcResult j = run_ctl_at(d.socket(), {"join", "b", "--pid", str(old_w)});
    CHECK(j.exit_code == 1);
    CHECK(members_at(d.socket(), "b") == Pids{});

    CHECK(next.stop() == 0);
    CHECK_FALSE(file_exists(new_files[0]));
    CHECK_FALSE(file_exists(d.socket()));
}

TEST_CASE(
    "a reader refuses a foreign file under the registry's name with a clear error (exit 1), "
    "without crashing or printing garbage") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"sessions", {"a"}}}}})}), {},
                 {{"registries", {"sessions"}}}));
    d.start_ready();
    pid_t w = d.pid_of("w");
    auto files = d.shm_files();
    REQUIRE(files.size() == 1);
    const std::string name = files[0];
    const std::string real = read_file(name);
    REQUIRE(real.size() > 64);
    REQUIRE(members(d, "a") == Pids{w});

    // Swap the name for another file; chipd keeps its own mapping of the old one.
    std::string wrong_version = real;
    wrong_version[offsetof(chip_registry_header, version)] = 99;
    struct Case {
        std::string what, bytes, says;
    };
    const std::string foreign = "not a chip registry";
    std::vector<Case> cases{{"garbage", std::string(8192, '\x5a'), foreign},
                            {"empty", "", foreign},
                            {"wrong layout version", wrong_version, foreign},
                            {"truncated", real.substr(0, 200), foreign},
                            {"half", real.substr(0, real.size() / 2), foreign}};
    for (const auto &c : cases) {
        INFO(c.what);
        REQUIRE(::unlink(name.c_str()) == 0);
        write_file(name, c.bytes);
        for (auto args : std::vector<std::vector<std::string>>{{"members", "-r", "sessions", "a"},
                                                               {"members", "a"},
                                                               {"groups", "-r", "sessions"}}) {
            ProcResult r = d.run_ctl(args);
            INFO(args[0] << " said: " << r.err);
            CHECK(r.exit_code == 1);
            CHECK(r.out == "");
            CHECK(r.err != "");
            CHECK(r.err.size() < 400);
        }
        ProcResult msg = d.run_ctl({"members", "-r", "sessions", "a"});
        CHECK(msg.err.find(c.says) != std::string::npos);
        chip_client *cl = chip_connect(d.socket().c_str());
        REQUIRE(cl != nullptr);
        pid_t buf[4];
        ssize_t n = chip_members(cl, "sessions", "a", buf, 4);
        CHECK(n < 0);
        chip_group_info gi[4];
        CHECK(chip_groups(cl, "sessions", gi, 4) < 0);
        chip_close(cl);
    }

    // chipd itself is unharmed, and its shutdown removes the name.
    CHECK(d.state_of("w") == "running");
    CHECK(d.stop() == 0);
    CHECK_FALSE(file_exists(name));
}

// ---- the reference client and libchip ---------------------------------------------------------

TEST_CASE("the reference client joins its groups through libchip before it is ready") {
    std::string ref = reference_worker_path();
    REQUIRE_MESSAGE(::access(ref.c_str(), X_OK) == 0, "reference_worker not built at " << ref);
    Chipd d(
        spec(json::array({worker("ref", json::array({ref, "--notify", "-r", "sessions", "x", "y"}),
                                 {{"ready", "notify"}}),
                          worker("ref2", json::array({ref, "-r", "other", "z"}))}),
             {}, {{"registries", {"sessions", "other"}}}));
    d.start();
    ProcResult wait = d.run_ctl({"wait", "ref", "--timeout", scaled_seconds(kDeadline)});
    CHECK(wait.exit_code == 0);
    pid_t pid = d.pid_of("ref");
    REQUIRE(pid > 0);
    // Ready only after its joins: no polling needed.
    CHECK(members(d, "x", "sessions") == Pids{pid});
    CHECK(members(d, "y", "sessions") == Pids{pid});
    REQUIRE(d.wait_ready());
    pid_t pid2 = d.pid_of("ref2");
    CHECK(wait_until([&] { return members(d, "z", "other") == Pids{pid2}; }));
    CHECK(groups(d, "sessions") == json{{"x", 1}, {"y", 1}});
    CHECK(wait_until([&] {
        std::string out = d.stdout_text();
        return out.find("joined x") != std::string::npos &&
               out.find("joined y") != std::string::npos;
    }));

    // Stopped: it leaves by dying.
    CHECK(d.run_ctl({"stop", "ref"}).exit_code == 0);
    CHECK(members(d, "x", "sessions") == Pids{});
    CHECK(d.node("ref")["last_exit"] == json{{"code", 0}});
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "libchip from the test process: members with a small buffer, groups, registries, "
    "joins refused for itself and allowed for a worker pid, errors as negative errno") {
    Chipd d(spec(json::array({worker("w", helper("sleep"),
                                     {{"instances", 3}, {"join", {{"sessions", {"g"}}}}})}),
                 {}, {{"registries", {"sessions", "other"}}}));
    d.start_ready();
    Pids w;
    for (int i = 0; i < 3; ++i) w.push_back(d.pid_of("w." + std::to_string(i)));

    chip_client *c = chip_connect(d.socket().c_str());
    REQUIRE(c != nullptr);

    pid_t buf[8] = {0};
    CHECK(chip_members(c, "sessions", "g", buf, 2) == 3);
    CHECK(buf[0] == w[0]);
    CHECK(buf[1] == w[1]);
    CHECK(buf[2] == 0);  // never past cap
    CHECK(chip_members(c, "sessions", "g", buf, 8) == 3);
    CHECK(Pids(buf, buf + 3) == w);
    CHECK(chip_members(c, "sessions", "g", nullptr, 0) == 3);
    CHECK(chip_members(c, "sessions", "nobody-here", buf, 8) == 0);
    CHECK(chip_members(c, nullptr, "g", buf, 8) == -EINVAL);  // several registries
    CHECK(chip_members(c, "nosuch", "g", buf, 8) == -ENOENT);
    CHECK(chip_members(c, "sessions", "bad name!", buf, 8) == -EINVAL);

    chip_group_info gi[4]{};
    CHECK(chip_groups(c, "sessions", gi, 4) == 1);
    CHECK(std::string(gi[0].name) == "g");
    CHECK(gi[0].count == 3);
    CHECK(chip_groups(c, "other", gi, 4) == 0);
    CHECK(chip_groups(c, "nosuch", gi, 4) == -ENOENT);

    char names[4][65]{};
    CHECK(chip_registries(c, names, 4) == 2);
    CHECK(std::set<std::string>{names[0], names[1]} == std::set<std::string>{"sessions", "other"});
    CHECK(chip_registries(c, names, 1) == 2);

    CHECK(chip_join(c, "sessions", "h") == -EPERM);  // the test process is outside the tree
    CHECK(chip_join(c, nullptr, "h") == -EINVAL);
    CHECK(chip_join_pid(c, "sessions", "h", w[2]) == 0);
    // The join is in shared memory by the time it returned.
    CHECK(chip_members(c, "sessions", "h", buf, 8) == 1);
    CHECK(buf[0] == w[2]);
    CHECK(chip_join_pid(c, "sessions", "h", w[2]) == 0);
    CHECK(chip_members(c, "sessions", "h", buf, 8) == 1);
    CHECK(chip_join_pid(c, "other", "h", w[0]) == 0);
    CHECK(chip_join_pid(c, "nosuch", "h", w[0]) == -ENOENT);
    CHECK(chip_join_pid(c, "sessions", "bad name!", w[0]) == -EINVAL);
    CHECK(chip_join_pid(c, "sessions", "h", dead_pid()) == -ESRCH);
    CHECK(chip_leave_pid(c, "sessions", "h", w[2]) == 0);
    CHECK(chip_members(c, "sessions", "h", buf, 8) == 0);
    CHECK(chip_leave_pid(c, "sessions", "h", w[2]) == 0);
    CHECK(members(d, "h", "other") == Pids{w[0]});
    CHECK(members(d, "g", "sessions") == w);

    for (int code : {-EPERM, -ENOENT, -EINVAL, -ENOSPC, -ESRCH, -ESTALE, -12345}) {
        const char *m = chip_strerror(code);
        REQUIRE(m != nullptr);
        CHECK(std::strlen(m) > 0);
    }
    chip_close(c);

    TempDir nowhere;
    errno = 0;
    CHECK(chip_connect(nowhere.file("no.sock").c_str()) == nullptr);
    CHECK(errno == ENOENT);
    if (!std::getenv("NOTIFY_SOCKET")) CHECK(chip_notify_ready() == 0);
}

TEST_CASE(
    "chipctl members lists a group larger than its first buffer (100 members) in join "
    "order") {
    Chipd d(spec(json::array({worker("w", json::array({"/bin/sleep", "1000"}),
                                     {{"instances", 100}, {"join", {{"r", {"big"}}}}})}),
                 {{"max_restarts", 0}}, {{"registries", {"r"}}}));
    d.start();
    REQUIRE_MESSAGE(d.wait_ready(60000ms), d.stderr_text());
    Pids want;
    for (int i = 0; i < 100; ++i) want.push_back(d.pid_of("w." + std::to_string(i)));
    CHECK(members(d, "big") == want);
    std::string plain;
    for (pid_t p : want) plain += str(p) + "\n";
    CHECK(d.run_ctl({"members", "big"}).out == plain);
    CHECK(groups(d) == json{{"big", 100}});
}

TEST_CASE("a declarative join naming an undeclared registry or a bad group is a spec error (2)") {
    Chipd d(spec(json::array({worker("w", json::array({"/bin/sleep", "1000"}),
                                     {{"join", {{"nosuch", {"a"}}, {"r", {"bad name!"}}}}})}),
                 {}, {{"registries", {"r"}}}));
    ProcResult r = run_process({chipd_path(), "--check", d.spec_path()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("/root/children/0/join/nosuch") != std::string::npos);
    CHECK(r.err.find("/root/children/0/join/r/0") != std::string::npos);
}

TEST_CASE(
    "a declarative join past the capacity is skipped with a warning; the worker runs and the "
    "registry holds what fits") {
    Chipd d(spec(json::array({worker("w", json::array({"/bin/sleep", "1000"}),
                                     {{"instances", 3}, {"join", {{"r", {"a"}}}}})}),
                 {}, {{"registries", {{{"name", "r"}, {"max_groups", 1}, {"max_members", 2}}}}}));
    d.start_ready();
    pid_t w0 = d.pid_of("w.0"), w1 = d.pid_of("w.1"), w2 = d.pid_of("w.2");
    CHECK(d.state_of("w.2") == "running");
    CHECK(members(d, "a") == Pids{w0, w1});
    CHECK(d.log_has({"cannot join", "w.2", str(w2)}));
    // Once a slot is free, a join by hand fits.
    REQUIRE(membership(d, "leave", "a", w0).exit_code == 0);
    CHECK(membership(d, "join", "a", w2).exit_code == 0);
    CHECK(members(d, "a") == Pids{w1, w2});
}

// ---- leave refusals, shared-memory names --------------------------------------------------

TEST_CASE(
    "leave for a pid outside the tree is refused (EPERM) and for a pid that does not exist "
    "ESRCH, like join") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"g"}}}}})}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    Child outsider({"/bin/sleep", "1000"});
    json r =
        d.request({{"op", "leave"}, {"registry", "r"}, {"group", "g"}, {"pid", outsider.pid()}});
    CHECK(r.value("errno", "") == "EPERM");
    r = d.request({{"op", "leave"}, {"registry", "r"}, {"group", "g"}, {"pid", dead_pid()}});
    CHECK(r.value("errno", "") == "ESRCH");
    chip_client *c = chip_connect(d.socket().c_str());
    REQUIRE(c != nullptr);
    CHECK(chip_leave(c, "r", "g") == -EPERM);  // the test process is outside the tree
    chip_close(c);
}

TEST_CASE("each start draws new shared-memory names: none can be guessed from the socket path") {
    json s = spec(json::array(), {}, {{"registries", {"sessions", "more"}}});
    Chipd d(s);
    d.start_ready();
    auto first = d.shm_files();
    REQUIRE(first.size() == 2);
    CHECK(is_shm_of(first[0], "sessions"));
    CHECK(is_shm_of(first[1], "more"));
    REQUIRE(d.stop() == 0);
    Chipd again(s, d.socket());
    again.start_ready();
    auto second = again.shm_files();
    REQUIRE(second.size() == 2);
    CHECK(second[0] != first[0]);
    CHECK(second[1] != first[1]);
    CHECK(file_exists(second[0]));
}

// ---- a region left mid-write ------------------------------------------------------------

TEST_CASE(
    "a region left mid-write (odd seqlock) is refused after a short bounded retry, not a long "
    "retry loop") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"a"}}}}})}), {},
                 {{"registries", {"r"}}}));
    d.start_ready();
    auto files = d.shm_files();
    REQUIRE(files.size() == 1);
    std::string mid_write = read_file(files[0]);
    REQUIRE(mid_write.size() > sizeof(chip_registry_header));
    mid_write[offsetof(chip_registry_header, seq)] |= 1;
    REQUIRE(::unlink(files[0].c_str()) == 0);
    write_file(files[0], mid_write);
    ProcResult r = d.run_ctl({"members", "a"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("mid-update") != std::string::npos);
    // The reader gives up after a quarter of a second. Timed here, in this
    // process (no process start in the figure), against a bound far above it
    // for a busy machine.
    chip_client *c = chip_connect(d.socket().c_str());
    REQUIRE(c != nullptr);
    pid_t buf[4];
    auto t0 = std::chrono::steady_clock::now();
    ssize_t n = chip_members(c, "r", "a", buf, 4);
    auto took = std::chrono::steady_clock::now() - t0;
    chip_close(c);
    CHECK(n == -EAGAIN);
    CHECK(took < scaled(3000ms));
}
