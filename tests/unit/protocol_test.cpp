// The control protocol's operations (src/daemon/requests.hpp), driven without
// a socket: a real core::Tree built from a spec, fake processes (a FakeEffects
// that hands out pids), a fake machine for the registries' permission rule and
// pid watches, registries in heap memory, and a fake clock. Every op of
// README.md, "Protocol", is asserted by its exact JSON responses, errors
// included, and deferred answers (start, stop, restart, wait) by settle().
#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bare_host.hpp"
#include "core/tree.hpp"
#include "daemon/registries.hpp"
#include "daemon/requests.hpp"
#include "spec/loader.hpp"

using namespace std::chrono_literals;
using chip::Result;
using chip::core::Event;
using chip::core::ExitStatus;
using chip::core::Node;
using chip::core::Time;
using chip::core::Tree;
using chip::daemon::Processes;
using chip::daemon::Registries;
using chip::daemon::RequestEffects;
using chip::daemon::Requests;
using chip::os::PeerCred;
using nlohmann::json;

namespace doctest {
template <>
struct StringMaker<json> {
    static String convert(const json &j) { return j.dump().c_str(); }
};
}  // namespace doctest

namespace {

// The machine as the spec loader sees it: every path is a writable folder but
// log files ("*.log").
struct TestHost : chip::test::BareHost {
    TestHost() : BareHost("/bin") {}
};

// The core's world: pids from 100 on, failures on demand.
struct FakeEffects : chip::core::Effects {
    pid_t next_pid = 100;
    std::set<std::string> failing;  // paths whose spawn fails
    std::vector<std::pair<pid_t, int>> group_kills;
    std::vector<std::string> removed_paths;
    std::vector<int> exits;

    Result<pid_t> spawn(const Node &w) override {
        if (failing.count(w.path))
            return chip::make_error(ENOENT, "cannot execute /bin/x: No such file or directory");
        return next_pid++;
    }
    void kill_group(pid_t pgid, int sig) override { group_kills.emplace_back(pgid, sig); }
    void log(const Event &) override {}
    void exit(int code) override { exits.push_back(code); }
    void removed(const Node &n) override { removed_paths.push_back(n.path); }
};

// The machine behind the permission rule: /proc as a table, pidfds as a set.
struct FakeProcesses : Processes {
    uid_t uid = 1000;
    std::map<pid_t, pid_t> parents;
    std::map<pid_t, std::pair<uid_t, uid_t>> uids;
    std::set<pid_t> exited;   // exist (zombies) but can no longer be watched
    std::set<pid_t> watched;  // what a pidfd watches now

    uid_t own_uid() const override { return uid; }
    std::optional<pid_t> parent_of(pid_t pid) const override {
        auto it = parents.find(pid);
        if (it == parents.end()) return std::nullopt;
        return it->second;
    }
    std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid) const override {
        auto it = uids.find(pid);
        if (it == uids.end()) return std::nullopt;
        return it->second;
    }
    bool watch(pid_t pid) override {
        if (exited.count(pid)) return false;
        watched.insert(pid);
        return true;
    }
    void unwatch(pid_t pid) override { watched.erase(pid); }
};

// What the handlers do beyond the tree: kill(2) on a table of live pids, and
// the shutdown chipd would begin.
struct FakeRequestEffects : RequestEffects {
    Tree *tree = nullptr;
    Time *now = nullptr;
    std::set<pid_t> dead;  // kill fails with ESRCH
    std::vector<std::pair<pid_t, int>> kills;
    int shutdowns = 0;

    pid_t max_pid = 4194304;  // what pid_max() says
    pid_t pid_max() override { return max_pid; }
    int kill(pid_t pid, int sig) override {
        if (dead.count(pid)) return -ESRCH;
        kills.emplace_back(pid, sig);
        return 0;
    }
    void shutdown() override {
        ++shutdowns;
        tree->shutdown(*now);
    }
    // Specs by path ("" is chipd's own file), loaded with the test's host.
    std::map<std::string, std::string> files;
    const chip::spec::Host *host = nullptr;
    std::vector<std::string> refusals;
    std::vector<std::string> reloads;  // "begins N", "ends ok" / "ends failed"
    Loaded load_spec(const std::string &path) override {
        try {
            return {chip::spec::load_string(files.at(path), path.empty() ? "own.json" : path,
                                            "/srv", *host),
                    {}};
        } catch (const chip::spec::SpecError &e) {
            return {std::nullopt, e.errors()};
        }
    }
    std::vector<std::string> refused(const chip::spec::Spec &) override { return refusals; }
    void reload_begins(const chip::spec::Spec &,
                       const std::vector<chip::core::Change> &changes) override {
        reloads.push_back("begins " + std::to_string(changes.size()));
    }
    void reload_ends(const chip::Result<void> &result, chip::spec::Spec) override {
        reloads.push_back(result ? "ends ok" : "ends failed");
    }
    std::string spec_dir() override { return "/srv"; }
    std::map<std::uint64_t, CgroupUsage> cgroups;  // by node id
    std::optional<CgroupUsage> cgroup_of(std::uint64_t id) override {
        auto it = cgroups.find(id);
        if (it == cgroups.end()) return std::nullopt;
        return it->second;
    }
};

// a (started, stdout to a file), n (notify), pool.0/pool.1, sup/b. At the
// start a runs and n is starting; once n is ready the rest start in order.
const char *const kSpec = R"({
  "root": {"strategy": "one_for_one", "max_restarts": 10, "children": [
    {"name": "a", "command": ["/bin/a"], "stdout": {"file": "/logs/a.log"}},
    {"name": "n", "command": ["/bin/n"], "ready": "notify"},
    {"name": "pool", "command": ["/bin/p"], "instances": 2},
    {"name": "sup", "supervisor": {"children": [{"name": "b", "command": ["/bin/b"]}]}}
  ]}
})";

const PeerCred kOwner{5000, 1000, 1000};  // a process of chipd's user

struct World {
    TestHost host;
    chip::spec::Spec spec = chip::spec::load_string(kSpec, "test.json", "/srv", host);
    FakeEffects fx;
    Tree tree{spec.root, fx};
    FakeProcesses procs;
    Registries registries{procs, [this](pid_t p) { return tree.node_by_pid(p) != nullptr; },
                          [this](const std::string &m) { warnings.push_back(m); }};
    std::vector<std::string> warnings;
    std::vector<std::vector<std::uint64_t>> memory;  // the registries' regions
    FakeRequestEffects rfx;
    Requests requests{tree, registries, rfx};
    Time now = 1000s;

    World() {
        rfx.tree = &tree;
        rfx.now = &now;
        rfx.host = &host;
        rfx.files[""] = kSpec;
        tree.start(now);
    }

    void add_registry(const std::string &name, std::uint32_t max_groups = 8,
                      std::uint32_t max_members = 16) {
        chip::spec::RegistrySpec rs{name, max_groups, max_members};
        std::size_t size = chip::registry::Table::region_size(max_groups, max_members);
        memory.emplace_back(size / 8 + 1);
        auto bytes = std::as_writable_bytes(std::span(memory.back()));
        REQUIRE(registries.add(rs, bytes.first(size), 42).ok());
    }

    Node &node(const std::string &path) {
        auto nodes = tree.resolve(path);
        REQUIRE(nodes.ok());
        REQUIRE(nodes->size() == 1);
        return *(*nodes)[0];
    }
    void ready(const std::string &path) { tree.on_ready(node(path).id, now); }
    void exited(pid_t pid, ExitStatus how) { tree.on_exit(pid, how, now); }

    Requests::Reply ask(const json &req, std::uint64_t conn = 1, const PeerCred &peer = kOwner) {
        return requests.handle(conn, peer, req, now);
    }
    // The immediate answer to REQ.
    json answer(const json &req, std::uint64_t conn = 1, const PeerCred &peer = kOwner) {
        auto r = ask(req, conn, peer);
        REQUIRE(r.body.has_value());
        return *r.body;
    }
    // The answers due now, as "conn: body" texts.
    std::vector<std::string> settle() {
        std::vector<std::string> out;
        for (auto &a : requests.settle(now))
            out.push_back(std::to_string(a.conn) + ": " + Requests::text(a.body));
        return out;
    }
};

json parse(const char *text) {
    return json::parse(text);
}

const json kOk = json{{"ok", true}};

json error(const std::string &message, const std::string &code) {
    return json{{"ok", false}, {"error", message}, {"errno", code}};
}

}  // namespace

TEST_CASE("malformed requests, unknown ops and over-long lines") {
    World w;
    auto line = [&](std::string_view text) {
        auto r = w.requests.handle_line(1, kOwner, text, w.now);
        REQUIRE(r.body.has_value());
        return Requests::text(*r.body);
    };
    CHECK(line("{not json") ==
          R"({"errno":"EPROTO","error":"malformed request: not a JSON object","ok":false})");
    CHECK(
        line("[1,2]") ==
        R"({"errno":"EPROTO","error":"malformed request: expected an object with a string \"op\"","ok":false})");
    CHECK(line("{}") == line("[1,2]"));
    CHECK(line(R"({"op": 3})") == line("[1,2]"));
    CHECK(line(R"({"op": "frobnicate"})") ==
          R"({"errno":"EOPNOTSUPP","error":"unknown operation \"frobnicate\"","ok":false})");
    CHECK(line(R"({"op": "status", "path": 5})") ==
          R"({"errno":"EINVAL","error":"bad request: \"path\" must be a string","ok":false})");
    CHECK(Requests::text(Requests::oversized()) ==
          R"({"errno":"EMSGSIZE","error":"request over 64 KiB","ok":false})");
}

TEST_CASE("every op of the protocol is dispatched") {
    World w;
    w.add_registry("r");
    for (const char *op : {"status", "start", "stop", "restart", "signal", "wait", "join", "leave",
                           "members", "groups", "logs", "registries", "reload", "scale", "add",
                           "remove", "shutdown", "events"}) {
        CAPTURE(op);
        auto r = w.ask({{"op", op}, {"path", "nope"}, {"group", "g"}});
        if (r.body) CHECK((*r.body)["errno"] != "EOPNOTSUPP");
    }
}

TEST_CASE("status: the nodes of a path in tree order") {
    World w;
    w.now += 1500ms;
    CHECK(w.answer({{"op", "status"}, {"path", "a"}}) == parse(R"({"ok": true, "nodes": [
        {"path": "a", "kind": "worker", "state": "running", "pid": 100, "restarts": 0,
         "uptime_s": 1.5, "last_exit": null, "cgroup": null, "cpu_s": null}]})"));
    CHECK(w.answer({{"op", "status"}, {"path", "sup"}}) == parse(R"({"ok": true, "nodes": [
        {"path": "sup", "kind": "supervisor", "state": "stopped", "pid": null, "restarts": 0,
         "uptime_s": null, "last_exit": null},
        {"path": "sup/b", "kind": "worker", "state": "stopped", "pid": null, "restarts": 0,
         "uptime_s": null, "last_exit": null, "cgroup": null, "cpu_s": null}]})"));
    w.ready("n");
    json all = w.answer({{"op", "status"}});
    std::vector<std::string> paths, states;
    for (const auto &n : all["nodes"]) {
        paths.push_back(n["path"]);
        states.push_back(n["state"]);
    }
    CHECK(paths == std::vector<std::string>{"/", "a", "n", "pool.0", "pool.1", "sup", "sup/b"});
    CHECK(states == std::vector<std::string>(7, "running"));
    CHECK(w.answer({{"op", "status"}, {"path", nullptr}}) == all);
    // An instance group by its base name; an unknown path.
    CHECK(w.answer({{"op", "status"}, {"path", "pool"}})["nodes"].size() == 2);
    CHECK(w.answer({{"op", "status"}, {"path", "web/x"}}) ==
          error("unknown path \"web/x\"", "ENOENT"));
    // The last exit: a code, or a signal by name.
    w.exited(100, {false, 3});
    CHECK(w.answer({{"op", "status"}, {"path", "a"}})["nodes"][0]["last_exit"] ==
          parse(R"({"code": 3})"));
    pid_t again = w.node("a").pid;
    w.exited(again, {true, SIGKILL});
    json a = w.answer({{"op", "status"}, {"path", "a"}})["nodes"][0];
    CHECK(a["last_exit"] == parse(R"({"signal": "KILL"})"));
    CHECK(a["restarts"] == 2);
}

TEST_CASE("status: a worker's cgroup and CPU seconds, when it has a cgroup") {
    World w;
    w.rfx.cgroups[w.node("a").id] = {"/chip-0123/a", 0.25};
    w.rfx.cgroups[w.node("n").id] = {"/chip-0123/n", std::nullopt};
    json a = w.answer({{"op", "status"}, {"path", "a"}})["nodes"][0];
    CHECK(a["cgroup"] == "/chip-0123/a");
    CHECK(a["cpu_s"] == 0.25);
    json n = w.answer({{"op", "status"}, {"path", "n"}})["nodes"][0];
    CHECK(n["cgroup"] == "/chip-0123/n");
    CHECK(n["cpu_s"].is_null());  // cpu.stat could not be read
    json root = w.answer({{"op", "status"}, {"path", "/"}})["nodes"][0];
    CHECK_FALSE(root.contains("cgroup"));
    CHECK_FALSE(root.contains("cpu_s"));
}

TEST_CASE("stop, start and restart are answered when the core has finished them") {
    World w;
    w.ready("n");
    // stop: deferred until the worker's exit.
    auto r = w.ask({{"op", "stop"}, {"path", "a"}}, 7);
    CHECK_FALSE(r.body.has_value());
    CHECK_FALSE(r.last);
    CHECK(w.fx.group_kills.at(0) == std::pair<pid_t, int>{100, SIGTERM});
    CHECK(w.settle().empty());
    w.exited(100, {true, SIGTERM});
    CHECK(w.settle() == std::vector<std::string>{R"(7: {"ok":true})"});
    CHECK(w.settle().empty());  // handed out once
    // start: a started worker is up at once.
    CHECK_FALSE(w.ask({{"op", "start"}, {"path", "a"}}, 7).body);
    CHECK(w.settle() == std::vector<std::string>{R"(7: {"ok":true})"});
    // restart of a notify worker: stopped, spawned, and answered at READY=1.
    pid_t old = w.node("n").pid;
    CHECK_FALSE(w.ask({{"op", "restart"}, {"path", "n"}}, 8).body);
    w.exited(old, {true, SIGTERM});
    CHECK(w.node("n").pid != old);
    CHECK(w.settle().empty());
    w.ready("n");
    CHECK(w.settle() == std::vector<std::string>{R"(8: {"ok":true})"});
}

TEST_CASE("commands that fail") {
    World w;
    w.ready("n");
    CHECK(w.answer({{"op", "start"}, {"path", "nope"}}) ==
          error("unknown path \"nope\"", "ENOENT"));
    // A start that fails is answered with EIO and not retried.
    CHECK_FALSE(w.ask({{"op", "stop"}, {"path", "a"}}).body);
    w.exited(100, {true, SIGTERM});
    w.settle();
    w.fx.failing.insert("a");
    CHECK_FALSE(w.ask({{"op", "start"}, {"path", "a"}}).body);
    CHECK(w.settle() ==
          std::vector<std::string>{
              R"x(1: {"errno":"EIO","error":"a failed to start (failed)","ok":false})x"});
    // Under a supervisor that is not running.
    CHECK_FALSE(w.ask({{"op", "stop"}, {"path", "sup"}}).body);
    w.exited(w.node("sup/b").pid, {true, SIGTERM});
    w.settle();
    CHECK(w.answer({{"op", "start"}, {"path", "sup/b"}}) ==
          error("cannot start sup/b: its supervisor sup is stopped", "EBUSY"));
    // While chipd shuts down.
    w.answer({{"op", "shutdown"}}, 2);
    CHECK(w.answer({{"op", "restart"}, {"path", "n"}}) ==
          error("chipd is shutting down", "ECANCELED"));
}

TEST_CASE("a closed connection's deferred answers are dropped") {
    World w;
    CHECK_FALSE(w.ask({{"op", "stop"}, {"path", "a"}}, 3).body);
    CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "sup"}}, 4).body);
    w.requests.forget(3);
    w.requests.forget(4);
    w.exited(100, {true, SIGTERM});
    CHECK(w.settle().empty());
}

TEST_CASE("wait: at once when ready, at READY=1, at the timeout, or when the node is removed") {
    World w;
    CHECK(w.answer({{"op", "wait"}, {"path", "a"}}) == kOk);
    // Until READY=1.
    CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "/"}}, 2).body);
    CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "n"}, {"timeout", 2}}, 3).body);
    CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "n"}, {"timeout", 0.5}}, 4).body);
    CHECK(w.requests.next_deadline() == w.now + 500ms);
    w.now += 499ms;
    CHECK(w.settle().empty());
    w.now += 1ms;
    CHECK(w.settle() ==
          std::vector<std::string>{
              R"(4: {"errno":"ETIMEDOUT","error":"timed out waiting for readiness","ok":false})"});
    CHECK(w.requests.next_deadline() == w.now + 1500ms);
    w.ready("n");
    CHECK(w.settle() == std::vector<std::string>{R"(2: {"ok":true})", R"(3: {"ok":true})"});
    CHECK_FALSE(w.requests.next_deadline());
    // Timeout 0: answered by the next settle().
    CHECK_FALSE(w.ask({{"op", "stop"}, {"path", "a"}}, 9).body);
    CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "a"}, {"timeout", 0}}, 5).body);
    CHECK(w.settle() ==
          std::vector<std::string>{
              R"(5: {"errno":"ETIMEDOUT","error":"timed out waiting for readiness","ok":false})"});
    // A node removed while it is waited for.
    CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "a"}}, 6).body);
    auto removal = w.tree.remove(w.node("a"), w.now);
    REQUIRE(removal.ok());
    w.exited(100, {true, SIGTERM});
    CHECK(w.fx.removed_paths == std::vector<std::string>{"a"});
    CHECK(w.settle() ==
          std::vector<std::string>{R"(9: {"ok":true})",
                                   R"(6: {"errno":"ENOENT","error":"a was removed","ok":false})"});
    // Bad timeouts (checked when the wait is not over at once).
    CHECK_FALSE(w.ask({{"op", "stop"}, {"path", "pool.1"}}).body);
    w.exited(103, {true, SIGTERM});
    w.settle();
    for (json t : {json("1"), json(-1), json::array()}) {
        CAPTURE(t);
        CHECK(w.answer({{"op", "wait"}, {"path", "n"}, {"timeout", t}}) == kOk);
        CHECK(w.answer({{"op", "wait"}, {"path", "pool.1"}, {"timeout", t}}) ==
              error("\"timeout\" must be a number of seconds >= 0", "EINVAL"));
    }
    CHECK(w.answer({{"op", "wait"}, {"path", "x"}}) == error("unknown path \"x\"", "ENOENT"));
}

TEST_CASE("signal: the running workers of a path") {
    World w;
    w.ready("n");
    CHECK(w.answer({{"op", "signal"}, {"signal", "TERM"}, {"path", "pool"}}) ==
          parse(R"({"ok": true, "pids": [102, 103]})"));
    CHECK(w.rfx.kills == std::vector<std::pair<pid_t, int>>{{102, SIGTERM}, {103, SIGTERM}});
    for (json s : {json("SIGHUP"), json("1"), json(1), json("HUP")}) {
        CAPTURE(s);
        w.rfx.kills.clear();
        CHECK(w.answer({{"op", "signal"}, {"signal", s}, {"path", "sup"}}) ==
              parse(R"({"ok": true, "pids": [104]})"));
        CHECK(w.rfx.kills == std::vector<std::pair<pid_t, int>>{{104, SIGHUP}});
    }
    // The whole tree when asked for, never by default.
    CHECK(w.answer({{"op", "signal"}, {"signal", 10}, {"path", "/"}})["pids"] ==
          parse("[100, 101, 102, 103, 104]"));
    CHECK(w.answer({{"op", "signal"}, {"signal", 10}})["errno"] == "EINVAL");
    const json bad = error("expected \"signal\": a signal name or number", "EINVAL");
    for (json s : {json(0), json(65), json(-9), json("BOGUS"), json(nullptr), json(9.5)}) {
        CAPTURE(s);
        CHECK(w.answer({{"op", "signal"}, {"signal", s}, {"path", "a"}}) == bad);
    }
    CHECK(w.answer({{"op", "signal"}, {"path", "a"}}) == bad);
    CHECK(w.answer({{"op", "signal"}, {"signal", "TERM"}, {"path", "x"}}) ==
          error("unknown path \"x\"", "ENOENT"));
    // Nothing running there, or the kill fails.
    CHECK_FALSE(w.ask({{"op", "stop"}, {"path", "a"}}).body);
    w.exited(100, {true, SIGTERM});
    CHECK(w.answer({{"op", "signal"}, {"signal", "TERM"}, {"path", "a"}}) ==
          error("no running worker at a", "ESRCH"));
    w.rfx.dead.insert(104);
    CHECK(w.answer({{"op", "signal"}, {"signal", "TERM"}, {"path", "sup"}}) ==
          error("no running worker at sup", "ESRCH"));
}

TEST_CASE("join, leave, members, groups: the registry in heap memory") {
    World w;
    w.add_registry("r", 8, 4);
    w.ready("n");
    // A worker, by chipd's user; the peer itself by default (a worker's child).
    CHECK(w.answer({{"op", "join"}, {"group", "g"}, {"pid", 100}}) == kOk);
    w.procs.parents[5000] = 101;
    CHECK(w.answer({{"op", "join"}, {"registry", "r"}, {"group", "g"}}) == kOk);
    CHECK(w.procs.watched == std::set<pid_t>{5000});  // workers need no pidfd
    CHECK(w.answer({{"op", "join"}, {"group", "g"}, {"pid", 100}}) == kOk);  // idempotent
    CHECK(w.answer({{"op", "join"}, {"group", "h:1"}, {"pid", 102}}) == kOk);
    CHECK(w.answer({{"op", "members"}, {"group", "g"}}) ==
          parse(R"({"ok": true, "pids": [100, 5000]})"));
    CHECK(w.answer({{"op", "groups"}}) == parse(R"({"ok": true, "groups": {"g": 2, "h:1": 1}})"));
    CHECK(w.answer({{"op", "members"}, {"group", "none"}}) == parse(R"({"ok": true, "pids": []})"));
    // The registry is full (4 memberships).
    CHECK(w.answer({{"op", "join"}, {"group", "i"}, {"pid", 103}}) == kOk);
    CHECK(w.answer({{"op", "join"}, {"group", "i"}, {"pid", 104}}) ==
          error("registry r is full", "ENOSPC"));
    // Signal a group.
    CHECK(w.answer({{"op", "signal"}, {"signal", "USR1"}, {"group", "g"}}) ==
          parse(R"({"ok": true, "pids": [100, 5000]})"));
    CHECK(w.answer({{"op", "signal"}, {"signal", "USR1"}, {"group", "g h"}}) ==
          error("invalid group name", "EINVAL"));
    CHECK(w.answer({{"op", "signal"}, {"signal", "USR1"}, {"group", "g"}, {"registry", "q"}}) ==
          error("unknown registry \"q\"", "ENOENT"));
    // Leave: idempotent; an empty group disappears.
    CHECK(w.answer({{"op", "leave"}, {"group", "h:1"}, {"pid", 102}}) == kOk);
    CHECK(w.answer({{"op", "leave"}, {"group", "h:1"}, {"pid", 102}}) == kOk);
    CHECK(w.answer({{"op", "groups"}}) == parse(R"({"ok": true, "groups": {"g": 2, "i": 1}})"));
    // A member that dies leaves every group, and its watch ends.
    w.registries.member_died(5000);
    CHECK(w.procs.watched.empty());
    CHECK(w.answer({{"op", "members"}, {"group", "g"}}) == parse(R"({"ok": true, "pids": [100]})"));
}

TEST_CASE("join and leave: who may act on which pid") {
    World w;
    w.add_registry("r");
    const json join_pid = {{"op", "join"}, {"group", "g"}};
    auto join = [&](pid_t pid, const PeerCred &peer) {
        json req = join_pid;
        req["pid"] = pid;
        return w.answer(req, 1, peer);
    };
    w.procs.parents = {{6000, 1}, {5002, 100}, {5003, 100}, {5004, 5002}};
    w.procs.uids = {{100, {1000, 1000}}, {5002, {2000, 2000}}, {5004, {2000, 2000}}};
    // Outside the tree, or no such process.
    CHECK(join(6000, kOwner) ==
          error("pid 6000 is not a worker of this chipd nor a descendant of one", "EPERM"));
    CHECK(join(7000, kOwner) == error("no process 7000", "ESRCH"));
    // Another user: only on its own processes.
    const PeerCred other{5001, 2000, 2000};
    CHECK(join(100, other) == error("uid 2000 may not act on pid 100 (runs as uid 1000)", "EPERM"));
    CHECK(join(7000, other) == error("no process 7000", "ESRCH"));
    CHECK(join(5004, other) == kOk);  // a grandchild of worker a
    CHECK(w.answer({{"op", "leave"}, {"group", "g"}, {"pid", 100}}, 1, other) ==
          error("uid 2000 may not act on pid 100 (runs as uid 1000)", "EPERM"));
    // Root may; a process that has exited (a zombie) is refused.
    CHECK(join(100, PeerCred{1, 0, 0}) == kOk);
    w.procs.exited.insert(5003);
    CHECK(join(5003, kOwner) == error("pid 5003 has exited", "ESRCH"));
    // Bad input.
    const json bad_pid =
        error("\"pid\" must be an integer from 1 to 4194304 (kernel.pid_max)", "EINVAL");
    for (json p : {json(0), json(-1), json("100"), json(4194305), json(0x40000000), json(1.5),
                   json(std::numeric_limits<std::uint64_t>::max())}) {
        CAPTURE(p);
        CHECK(w.answer({{"op", "join"}, {"group", "g"}, {"pid", p}}) == bad_pid);
        CHECK(w.answer({{"op", "leave"}, {"group", "g"}, {"pid", p}}) == bad_pid);
    }
    const json bad_group = error("invalid group name (expected [A-Za-z0-9_.:-]{1,64})", "EINVAL");
    for (json g : {json(""), json("a b"), json(std::string(65, 'g')), json(5), json(nullptr)}) {
        CAPTURE(g);
        CHECK(w.answer({{"op", "join"}, {"group", g}, {"pid", 100}}) == bad_group);
        CHECK(w.answer({{"op", "leave"}, {"group", g}, {"pid", 100}}) == bad_group);
        CHECK(w.answer({{"op", "members"}, {"group", g}}) == bad_group);
    }
    CHECK(w.answer({{"op", "join"}, {"pid", 100}}) == bad_group);
}

TEST_CASE("join and leave: any pid up to the kernel's pid_max is taken, none above it") {
    World w;
    w.add_registry("r");
    auto join = [&](long long pid) {
        return w.answer({{"op", "join"}, {"group", "g"}, {"pid", pid}}, 1, kOwner);
    };
    // The largest pids a 64-bit kernel hands out reach the permission rule.
    w.procs.parents = {{4194304, 100}, {4000000, 100}};
    CHECK(join(4194304) == kOk);
    CHECK(join(4000000) == kOk);
    CHECK(join(4194305) ==
          error("\"pid\" must be an integer from 1 to 4194304 (kernel.pid_max)", "EINVAL"));
    // A kernel with a lower pid_max: the limit is its own.
    w.rfx.max_pid = 32768;
    CHECK(join(32768) == error("no process 32768", "ESRCH"));
    CHECK(join(32769) ==
          error("\"pid\" must be an integer from 1 to 32768 (kernel.pid_max)", "EINVAL"));
    CHECK(w.answer({{"op", "leave"}, {"group", "g"}, {"pid", 40000}}, 1, kOwner) ==
          error("\"pid\" must be an integer from 1 to 32768 (kernel.pid_max)", "EINVAL"));
}

TEST_CASE("which registry a request means") {
    World none;
    const json join = {{"op", "join"}, {"group", "g"}, {"pid", 100}};
    CHECK(none.answer(join) == error("the spec declares no registry", "EINVAL"));
    CHECK(none.answer({{"op", "groups"}}) == error("the spec declares no registry", "EINVAL"));
    CHECK(none.answer({{"op", "registries"}}) == parse(R"({"ok": true, "registries": []})"));

    World two;
    two.add_registry("r", 8, 16);
    two.add_registry("s", 2, 3);
    const json several = error("several registries: name one with \"registry\"", "EINVAL");
    CHECK(two.answer(join) == several);
    CHECK(two.answer({{"op", "members"}, {"group", "g"}, {"registry", nullptr}}) == several);
    CHECK(two.answer({{"op", "groups"}, {"registry", "zz"}}) ==
          error("unknown registry \"zz\"", "ENOENT"));
    CHECK(two.answer({{"op", "groups"}, {"registry", 1}}) ==
          error("\"registry\" must be a string", "EINVAL"));
    json in_s = join;
    in_s["registry"] = "s";
    CHECK(two.answer(in_s) == kOk);
    CHECK(two.answer({{"op", "groups"}, {"registry", "s"}}) ==
          parse(R"({"ok": true, "groups": {"g": 1}})"));
    CHECK(two.answer({{"op", "groups"}, {"registry", "r"}}) ==
          parse(R"({"ok": true, "groups": {}})"));
    // Regions in heap memory have no shared-memory name.
    CHECK(two.answer({{"op", "registries"}}) == parse(R"({"ok": true, "registries": [
        {"name": "r", "shm": null, "max_groups": 8, "max_members": 16},
        {"name": "s", "shm": null, "max_groups": 2, "max_members": 3}]})"));
}

TEST_CASE("logs: each worker's files, or where its output goes; a pool's instances in order") {
    World w;
    w.ready("n");
    CHECK(w.answer({{"op", "logs"}, {"path", "a"}}) == parse(R"({"ok": true,
        "stdout": "/logs/a.log", "stderr": null,
        "workers": [{"path": "a", "stdout": "/logs/a.log", "stderr": null,
                     "stdout_to": "file", "stderr_to": "inherit"}]})"));
    CHECK(w.answer({{"op", "logs"}, {"path", "pool.1"}}) == parse(R"({"ok": true,
        "stdout": null, "stderr": null,
        "workers": [{"path": "pool.1", "stdout": null, "stderr": null,
                     "stdout_to": "inherit", "stderr_to": "inherit"}]})"));
    json pool = w.answer({{"op", "logs"}, {"path", "pool"}});
    REQUIRE(pool["workers"].size() == 2);
    CHECK(pool["workers"][0]["path"] == "pool.0");
    CHECK(pool["workers"][1]["path"] == "pool.1");
    CHECK(w.answer({{"op", "logs"}, {"path", "sup"}}) ==
          error("sup is a supervisor: name a worker or a pool", "EINVAL"));
    CHECK(w.answer({{"op", "logs"}, {"path", "/"}}) ==
          error("/ is a supervisor: name a worker or a pool", "EINVAL"));
    CHECK(w.answer({{"op", "logs"}, {"path", "x"}}) == error("unknown path \"x\"", "ENOENT"));
}

TEST_CASE("shutdown: answered at once, begun once, the connection's last request") {
    World w;
    w.ready("n");
    auto r = w.ask({{"op", "shutdown"}}, 1);
    REQUIRE(r.body);
    CHECK(*r.body == kOk);
    CHECK(r.last);
    CHECK(w.rfx.shutdowns == 1);
    CHECK(w.tree.shutting_down());
    r = w.ask({{"op", "shutdown"}}, 2);
    CHECK(*r.body == kOk);
    CHECK(r.last);
    CHECK(w.rfx.shutdowns == 1);
    // The tree stops in reverse order; chipd exits 0 when it is down.
    for (pid_t pid : {104, 103, 102, 101, 100}) {
        CAPTURE(pid);
        REQUIRE(!w.fx.group_kills.empty());
        CHECK(w.fx.group_kills.back().first == pid);
        w.exited(pid, {true, SIGTERM});
    }
    CHECK(w.fx.exits == std::vector<int>{0});
}

// ---- a live tree ------------------------------------------------------------------

namespace {

// Stops complete and notify workers become ready until nothing is in transition.
void settle_tree(World &w) {
    for (int i = 0; i < 100; ++i) {
        Node *busy = nullptr;
        Tree::walk(w.tree.root(), [&](Node &n) {
            if (!busy && !n.is_supervisor &&
                (n.state == chip::core::State::Stopping || n.state == chip::core::State::Starting))
                busy = &n;
        });
        if (!busy) return;
        if (busy->state == chip::core::State::Stopping)
            w.exited(busy->pid, ExitStatus{true, SIGTERM});
        else
            w.ready(busy->path);
    }
}

}  // namespace

TEST_CASE("reload: invalid spec, dry run, refusal, busy, and a reload answered when done") {
    World w;
    settle_tree(w);
    w.settle();
    w.rfx.files["/bad.json"] = R"({"root": {"strategy": "x"}})";
    auto bad = w.answer({{"op", "reload"}, {"spec", "/bad.json"}});
    CHECK(bad["errno"] == "EINVAL");
    CHECK(bad["errors"] == json::array({"/bad.json: /root/strategy: expected one of one_for_one, "
                                        "one_for_all, rest_for_one; got \"x\""}));
    std::string next = kSpec;
    next.replace(next.find(R"(["/bin/a"])"), 10, R"(["/bin/a2"])");
    w.rfx.files["/next.json"] = next;
    auto dry = w.answer({{"op", "reload"}, {"spec", "/next.json"}, {"dry_run", true}});
    CHECK(dry == parse(R"({"ok": true, "changes": [{"path": "a", "change": "restart"}]})"));
    CHECK(w.rfx.reloads.empty());
    w.rfx.refusals = {"the control socket cannot change"};
    CHECK(w.answer({{"op", "reload"}, {"spec", "/next.json"}})["errno"] == "EINVAL");
    w.rfx.refusals.clear();
    CHECK(w.answer({{"op", "reload"}, {"dry_run", "yes"}})["errno"] == "EINVAL");

    pid_t a = w.node("a").pid;
    CHECK_FALSE(w.ask({{"op", "reload"}, {"spec", "/next.json"}}, 7).body);
    CHECK(w.answer({{"op", "reload"}}, 8)["errno"] == "EBUSY");
    CHECK(w.settle().empty());
    w.exited(a, ExitStatus{true, SIGTERM});
    CHECK(w.settle() == std::vector<std::string>{
                            R"(7: {"changes":[{"change":"restart","path":"a"}],"ok":true})"});
    CHECK(w.node("a").pid != a);
    CHECK(w.rfx.reloads == std::vector<std::string>{"begins 1", "ends ok"});
    // Without a connection (SIGHUP): chipd's own file, nothing to answer.
    CHECK_FALSE(w.requests.reload_self(w.now).has_value());
    CHECK(w.settle().empty());
    w.tree.shutdown(w.now);
    CHECK(w.answer({{"op", "reload"}})["errno"] == "ECANCELED");
}

TEST_CASE("scale: a pool's size, answered when done with its changes") {
    World w;
    settle_tree(w);
    w.settle();
    CHECK_FALSE(w.ask({{"op", "scale"}, {"path", "pool"}, {"count", 3}}).body);
    CHECK(w.settle() == std::vector<std::string>{
                            R"(1: {"changes":[{"change":"add","path":"pool.2"}],"ok":true})"});
    CHECK_FALSE(w.ask({{"op", "scale"}, {"path", "pool"}, {"count", 1}}).body);
    settle_tree(w);
    CHECK(
        w.settle() ==
        std::vector<std::string>{
            R"(1: {"changes":[{"change":"remove","path":"pool.2"},{"change":"remove","path":"pool.1"}],"ok":true})"});
    CHECK(w.answer({{"op", "scale"}, {"path", "a"}, {"count", 2}}) ==
          error("a is not a pool", "EINVAL"));
    CHECK(w.answer({{"op", "scale"}, {"path", "pool"}, {"count", -1}})["errno"] == "EINVAL");
    CHECK(w.answer({{"op", "scale"}, {"path", "pool"}, {"count", "2"}})["errno"] == "EINVAL");
    CHECK(w.answer({{"op", "scale"}, {"path", "sup/none"}, {"count", 1}})["errno"] == "EINVAL");
}

TEST_CASE("add and remove: checked children, dynamic in status, pools and the root refused") {
    World w;
    settle_tree(w);
    w.settle();
    CHECK_FALSE(w.ask({{"op", "add"},
                       {"path", "sup"},
                       {"child", parse(R"({"name": "x", "command": ["./x"]})")},
                       {"dir", "/home/me"}})
                    .body);
    CHECK(w.settle() == std::vector<std::string>{
                            R"(1: {"changes":[{"change":"add","path":"sup/x"}],"ok":true})"});
    CHECK(chip::spec::launch_of(*w.node("sup/x").worker).command[0] == "/home/me/x");
    auto status = w.answer({{"op", "status"}, {"path", "sup/x"}});
    CHECK(status["nodes"][0]["dynamic"] == true);
    CHECK_FALSE(w.answer({{"op", "status"}, {"path", "a"}})["nodes"][0].contains("dynamic"));

    CHECK(w.answer({{"op", "add"},
                    {"path", "/"},
                    {"child", parse(R"({"name": "a", "command": ["x"]})")}}) ==
          error("a child named a already exists under /", "EEXIST"));
    auto bad = w.answer(
        {{"op", "add"}, {"path", "/"}, {"child", parse(R"({"name": "y", "command": []})")}});
    CHECK(bad["errno"] == "EINVAL");
    CHECK(bad["error"] ==
          "child: /command: expected a non-empty array of strings (the program and its "
          "arguments); got []");
    CHECK(w.answer(
              {{"op", "add"},
               {"path", "/"},
               {"child",
                parse(R"({"name": "y", "command": ["y"], "join": {"nope": ["g"]}})")}})["errno"] ==
          "EINVAL");
    CHECK(w.answer({{"op", "add"},
                    {"path", "a"},
                    {"child", parse(R"({"name": "y", "command": ["y"]})")}}) ==
          error("a is not a supervisor", "EINVAL"));

    CHECK(w.answer({{"op", "remove"}, {"path", "/"}})["errno"] == "EINVAL");
    CHECK(w.answer({{"op", "remove"}, {"path", "pool.1"}})["errno"] == "EINVAL");
    CHECK(w.answer({{"op", "remove"}, {"path", "nope"}})["errno"] == "ENOENT");
    CHECK_FALSE(w.ask({{"op", "remove"}, {"path", "sup"}}).body);
    settle_tree(w);
    CHECK(w.settle() == std::vector<std::string>{
                            R"(1: {"changes":[{"change":"remove","path":"sup"}],"ok":true})"});
    CHECK_FALSE(w.tree.resolve("sup").ok());
    CHECK_FALSE(w.ask({{"op", "remove"}, {"path", "pool"}}).body);
    settle_tree(w);
    CHECK(
        w.settle() ==
        std::vector<std::string>{
            R"(1: {"changes":[{"change":"remove","path":"pool.1"},{"change":"remove","path":"pool.0"}],"ok":true})"});
}

TEST_CASE("scale and remove of stopped nodes: gone at once, answered with their paths") {
    // Until n is ready, pool.0, pool.1 and sup are stopped: the core erases
    // them within the request (found by tests/fuzz/request.cpp).
    World w;
    CHECK_FALSE(w.ask({{"op", "scale"}, {"path", "pool"}, {"count", 1}}).body);
    CHECK(w.settle() == std::vector<std::string>{
                            R"(1: {"changes":[{"change":"remove","path":"pool.1"}],"ok":true})"});
    CHECK_FALSE(w.ask({{"op", "remove"}, {"path", "pool"}}).body);
    CHECK(w.settle() == std::vector<std::string>{
                            R"(1: {"changes":[{"change":"remove","path":"pool.0"}],"ok":true})"});
    CHECK_FALSE(w.ask({{"op", "remove"}, {"path", "sup/b"}}).body);
    CHECK(w.settle() == std::vector<std::string>{
                            R"(1: {"changes":[{"change":"remove","path":"sup/b"}],"ok":true})"});
}

TEST_CASE("events: a subscription to a path, a pool or everything; the connection's last request") {
    World w;
    using Conns = std::vector<std::uint64_t>;
    auto all = w.ask({{"op", "events"}}, 1);
    CHECK(all.body == kOk);
    CHECK(all.last);
    CHECK(w.answer({{"op", "events"}, {"path", "sup"}}, 2) == kOk);
    CHECK(w.answer({{"op", "events"}, {"path", "pool"}}, 3) == kOk);
    CHECK(w.requests.subscribers().size() == 3);
    CHECK(w.requests.subscribers().of(&w.node("sup/b")) == Conns{1, 2});
    CHECK(w.requests.subscribers().of(&w.node("sup")) == Conns{1, 2});
    CHECK(w.requests.subscribers().of(&w.node("a")) == Conns{1});
    CHECK(w.requests.subscribers().of(&w.node("pool.1")) == Conns{1, 3});
    // Events of no node (reloads, registry changes of other processes): to "/" only.
    CHECK(w.requests.subscribers().of(nullptr) == Conns{1});
    // Instances a later scale adds are the pool's too.
    CHECK_FALSE(w.ask({{"op", "scale"}, {"path", "pool"}, {"count", 3}}).body);
    CHECK(w.requests.subscribers().of(&w.node("pool.2")) == Conns{1, 3});

    CHECK(w.answer({{"op", "events"}, {"path", "nope"}}, 4) ==
          error("unknown path \"nope\"", "ENOENT"));
    CHECK(w.answer({{"op", "events"}, {"path", 7}}, 4)["errno"] == "EINVAL");
    CHECK(w.requests.subscribers().size() == 3);
    // A closed connection follows nothing.
    w.requests.forget(2);
    CHECK(w.requests.subscribers().of(&w.node("sup/b")) == Conns{1});
}

TEST_CASE("ops that act on nodes need a path; signal takes a path or a group, not both") {
    World w;
    w.add_registry("r");
    for (const char *op : {"start", "stop", "restart", "wait", "logs", "scale", "add", "remove"}) {
        CAPTURE(op);
        // A misspelt key must never mean the whole tree.
        auto r = w.answer({{"op", op}, {"Path", "/"}, {"count", 1}});
        CHECK(r == error("bad request: \"path\" is required (\"/\" for the whole tree)", "EINVAL"));
    }
    CHECK(w.answer({{"op", "signal"}, {"signal", "TERM"}})["errno"] == "EINVAL");
    CHECK(w.answer({{"op", "signal"}, {"signal", "TERM"}, {"path", "a"}, {"group", "g"}}) ==
          error("give \"path\" or \"group\", not both", "EINVAL"));
    CHECK(w.answer({{"op", "status"}})["ok"] == true);      // status alone defaults to the root
    CHECK(w.tree.node_by_pid(w.node("a").pid) != nullptr);  // nothing was stopped
}

TEST_CASE("wait: a timeout too large for the clock waits without a deadline, not fails") {
    World w;
    for (double huge : {1.85e10, 1e300}) {
        CAPTURE(huge);
        CHECK_FALSE(w.ask({{"op", "wait"}, {"path", "n"}, {"timeout", huge}}).body);
        CHECK_FALSE(w.requests.next_deadline().has_value());
        CHECK(w.settle().empty());
        w.requests.forget(1);
    }
    CHECK(w.answer({{"op", "wait"}, {"path", "n"}, {"timeout", -1}})["errno"] == "EINVAL");
}
