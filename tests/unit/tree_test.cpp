// The supervision core against a fake world: fake processes (pids handed out by
// a FakeEffects), a fake clock (`now`, advanced by hand), and exact sequences of
// actions asserted after every event. No fork, no sleep, no thread.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/tree.hpp"
#include "fake_effects.hpp"
#include "string_lists.hpp"

using namespace std::chrono_literals;
using chip::Error;
using chip::core::ChildSpec;
using chip::core::Command;
using chip::core::Effects;
using chip::core::Event;
using chip::core::ExitStatus;
using chip::core::Node;
using chip::core::ReadyMode;
using chip::core::Redefine;
using chip::core::RestartType;
using chip::core::Snapshot;
using chip::core::State;
using chip::core::Strategy;
using chip::core::SupervisorSpec;
using chip::core::Time;
using chip::core::Tree;
using chip::core::WorkerSpec;
using Actions = std::vector<std::string>;
using chip::test::FakeEffects;
using chip::test::signal_text;

// Sequences print in failure messages.

namespace {

// ---- building specs in C++ --------------------------------------------------

struct W {
    std::string name;
    WorkerSpec w;
    explicit W(std::string n) : name(std::move(n)) {}
    W &notify(std::chrono::nanoseconds start_timeout = 10s) {
        w.ready = ReadyMode::Notify;
        w.start_timeout = start_timeout;
        return *this;
    }
    W &transient() {
        w.restart = RestartType::Transient;
        return *this;
    }
    W &temporary() {
        w.restart = RestartType::Temporary;
        return *this;
    }
    W &instances(unsigned n) {
        w.instances = n;
        return *this;
    }
    // "start": false
    W &held() {
        w.start = false;
        return *this;
    }
    W &stop(int sig, std::chrono::nanoseconds timeout = 5s) {
        w.stop_signal = sig;
        w.stop_timeout = timeout;
        return *this;
    }
    operator ChildSpec() const {
        ChildSpec c;
        c.name = name;
        c.worker = std::make_shared<const WorkerSpec>(w);
        return c;
    }
};

SupervisorSpec sup_spec(Strategy s, unsigned max_restarts, std::chrono::nanoseconds period,
                        std::vector<ChildSpec> children) {
    SupervisorSpec sp;
    sp.strategy = s;
    sp.max_restarts = max_restarts;
    sp.period = period;
    sp.children = std::move(children);
    return sp;
}

SupervisorSpec sup_spec(Strategy s, std::vector<ChildSpec> children) {
    return sup_spec(s, 3, 5s, std::move(children));
}

ChildSpec sup(std::string name, SupervisorSpec body, bool start = true) {
    body.start = start;
    ChildSpec c;
    c.name = std::move(name);
    c.is_supervisor = true;
    c.supervisor = std::make_shared<const SupervisorSpec>(std::move(body));
    return c;
}

// ---- the world: a tree, its fake effects and a fake clock -------------------

struct World {
    FakeEffects fx;
    Time now = 1000s;  // arbitrary monotonic origin
    std::unique_ptr<Tree> tree;

    explicit World(SupervisorSpec s) {
        tree = std::make_unique<Tree>(std::make_shared<const SupervisorSpec>(std::move(s)), fx);
    }

    Node &node(const std::string &path) {
        auto r = tree->resolve(path);
        REQUIRE_MESSAGE(r.ok(), "no node " << path);
        REQUIRE(r->size() == 1);
        return *r->front();
    }
    pid_t pid(const std::string &path) { return node(path).pid; }
    std::string state(const std::string &path) { return chip::core::state_name(node(path).state); }

    void start() { tree->start(now); }
    void advance(std::chrono::nanoseconds d) {
        now += d;
        tree->on_time(now);
    }
    void exit_worker(const std::string &path, int code) {
        pid_t p = pid(path);
        REQUIRE_MESSAGE(p != 0, path << " has no process");
        tree->on_exit(p, ExitStatus{false, code}, now);
    }
    void die(const std::string &path, int sig) {
        pid_t p = pid(path);
        REQUIRE_MESSAGE(p != 0, path << " has no process");
        tree->on_exit(p, ExitStatus{true, sig}, now);
    }
    void ready(const std::string &path) { tree->on_ready(node(path).id, now); }
    // The stop signal was sent to PATH's process group: the worker obeys it.
    void stop_completes(const std::string &path) {
        Node &n = node(path);
        REQUIRE_MESSAGE(n.pid != 0, path << " has no process");
        REQUIRE(n.state == chip::core::State::Stopping);
        int sig = n.killed ? SIGKILL : n.worker->stop_signal;
        bool sent = false;
        for (auto &[pg, s] : fx.kills) sent = sent || (pg == n.pid && s == sig);
        REQUIRE_MESSAGE(sent, path << " was not sent " << signal_text(sig));
        tree->on_exit(n.pid, ExitStatus{true, sig}, now);
    }
    std::uint64_t command(Command c, const std::string &path) {
        auto r = tree->command(c, path, now);
        REQUIRE_MESSAGE(r.ok(), "command on " << path << ": " << r.error().message);
        return *r;
    }
    // The outcome of TICKET if it finished since the last call.
    std::optional<chip::Result<void>> finished(std::uint64_t ticket) {
        std::optional<chip::Result<void>> out;
        for (auto &f : tree->take_finished())
            if (f.ticket == ticket) out = f.result;
        return out;
    }
};

Actions stop_of(const std::string &path, const std::string &sig = "TERM") {
    return {"kill " + path + " " + sig, "kill " + path + " CONT"};
}

SupervisorSpec abc(Strategy s, unsigned max_restarts = 3) {
    return sup_spec(s, max_restarts, 5s, {W("a"), W("b"), W("c")});
}

}  // namespace

// ---- start -------------------------------------------------------------------

TEST_CASE("start: children start in order and the supervisor is running once all are") {
    World w(abc(Strategy::OneForOne));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a", "spawn b", "spawn c"});
    CHECK(w.fx.take_logs() ==
          std::vector<std::string>{"start a", "start b", "start c", "started /"});
    CHECK(w.state("/") == "running");
    for (auto p : {"a", "b", "c"}) CHECK(w.state(p) == "running");
    CHECK(w.pid("a") == 100);
    CHECK(w.pid("b") == 101);
    CHECK(w.pid("c") == 102);
    CHECK(w.node("a").restarts == 0);
    CHECK(w.fx.exits.empty());
}

TEST_CASE("start: with ready=notify the next child is not spawned until the first is ready") {
    World w(sup_spec(Strategy::OneForOne, {W("a").notify(), W("b").notify(), W("c")}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a"});
    CHECK(w.state("a") == "starting");
    CHECK(w.state("/") == "starting");
    w.ready("a");
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("a") == "running");
    CHECK(w.state("/") == "starting");
    w.ready("b");
    CHECK(w.fx.take() == Actions{"spawn c"});
    CHECK(w.state("/") == "running");
}

TEST_CASE(
    "start: a child missing start_timeout is killed, and at its exit the start fails: "
    "started children stopped in reverse order, root failed, exit 1") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b"), W("c").notify(10s), W("d")}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a", "spawn b", "spawn c"});
    REQUIRE(w.tree->next_deadline() == w.now + 10s);
    w.advance(9s);
    CHECK(w.fx.take().empty());
    w.advance(1s);
    CHECK(w.fx.take() == Actions{"kill c KILL"});
    CHECK(w.state("c") == "starting");  // the failure is handled at its exit
    w.ready("c");                       // too late: ignored
    CHECK(w.fx.take().empty());
    w.die("c", SIGKILL);
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.state("c") == "failed");
    CHECK(w.state("b") == "stopped");
    CHECK(w.state("a") == "stopped");
    CHECK(w.state("d") == "stopped");
    CHECK(w.state("/") == "failed");
    auto logs = w.fx.take_logs();
    CHECK(std::count(logs.begin(), logs.end(),
                     "start-failed c: did not become ready within 10 s") == 1);
    CHECK(std::count(logs.begin(), logs.end(), "start-failed /: child c failed to start") == 1);
}

TEST_CASE("start: a missing executable fails the start with its errno message, exit 1") {
    World w(abc(Strategy::OneForOne));
    w.fx.failures["b"] = Error{ENOENT, "No such file or directory"};
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn-failed b", "kill a TERM", "kill a CONT"}));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.fx.exits == std::vector<int>{1});
    CHECK(w.state("b") == "failed");
    CHECK(w.state("c") == "stopped");
    CHECK(w.state("/") == "failed");
    auto logs = w.fx.take_logs();
    CHECK(std::count(logs.begin(), logs.end(), "start-failed b: No such file or directory") == 1);
}

TEST_CASE(
    "start: a spawn failure inside a nested supervisor escalates to the root's start "
    "failure") {
    World w(sup_spec(
        Strategy::OneForOne,
        {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x"), W("y"), W("z")})), W("c")}));
    w.fx.failures["sub/y"] = Error{ENOENT, "No such file or directory"};
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn sub/x", "spawn-failed sub/y", "kill sub/x TERM",
                                  "kill sub/x CONT"}));
    w.stop_completes("sub/x");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.state("sub/y") == "failed");
    CHECK(w.state("sub") == "failed");
    CHECK(w.state("/") == "failed");
    CHECK(w.state("sub/z") == "stopped");
    CHECK(w.state("c") == "stopped");
    auto logs = w.fx.take_logs();
    CHECK(std::count(logs.begin(), logs.end(), "start-failed sub/y: No such file or directory") ==
          1);
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("start: a notify child exiting before it is ready fails the start") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").notify()}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a", "spawn b"});
    w.exit_worker("b", 0);
    CHECK(w.fx.take() == stop_of("a"));
    CHECK(w.tree->next_deadline() == w.now + 5s);  // a's stop_timeout, b's start deadline gone
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.state("b") == "failed");
}

// ---- instances -----------------------------------------------------------------

TEST_CASE("instances: NAME.0 .. NAME.N-1 are started in order with instance numbers") {
    World w(sup_spec(Strategy::OneForOne, {W("db"), W("pool").instances(3), W("web")}));
    w.start();
    CHECK(w.fx.take() ==
          (Actions{"spawn db", "spawn pool.0", "spawn pool.1", "spawn pool.2", "spawn web"}));
    for (unsigned i = 0; i < 3; ++i) {
        Node &n = w.node("pool." + std::to_string(i));
        CHECK(n.instance == i);
        CHECK(n.base == "pool");
        CHECK(n.name == "pool." + std::to_string(i));
    }
    CHECK(w.node("db").instance == 0);
    auto group = w.tree->resolve("pool");
    REQUIRE(group.ok());
    CHECK(group->size() == 3);
    CHECK_FALSE(w.tree->resolve("pool.3").ok());
}

// ---- strategies ------------------------------------------------------------------

TEST_CASE("one_for_one: only the exited child restarts, same path, new pid, restarts 1") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    w.fx.take_logs();
    pid_t a = w.pid("a"), b = w.pid("b"), c = w.pid("c");
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.fx.take_logs() == std::vector<std::string>{"exit b", "restart b 1", "start b"});
    CHECK(w.pid("b") != b);
    CHECK(w.pid("b") != 0);
    CHECK(w.pid("a") == a);
    CHECK(w.pid("c") == c);
    CHECK(w.state("b") == "running");
    CHECK(w.node("b").restarts == 1);
    CHECK(w.node("a").restarts == 0);
    REQUIRE(w.node("b").last_exit.has_value());
    CHECK(*w.node("b").last_exit == ExitStatus{false, 1});
    CHECK(w.tree->node_by_pid(b) == nullptr);
}

TEST_CASE("one_for_all: B exits -> C then A stopped in reverse, then A, B, C started in order") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == stop_of("c"));
    CHECK(w.state("b") == "exited");
    CHECK(w.state("c") == "stopping");
    CHECK(w.state("a") == "running");
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn b", "spawn c"}));
    for (auto p : {"a", "b", "c"}) {
        CHECK(w.state(p) == "running");
        CHECK(w.node(p).restarts == 1);
    }
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 1);
}

TEST_CASE("one_for_all: the restart waits for notify children to be ready, in order") {
    World w(sup_spec(Strategy::OneForAll, {W("a").notify(), W("b")}));
    w.start();
    w.ready("a");
    w.fx.take();
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"spawn a"});
    w.ready("a");
    CHECK(w.fx.take() == Actions{"spawn b"});
}

TEST_CASE("rest_for_one: restarting B restarts C, not A") {
    World w(abc(Strategy::RestForOne));
    w.start();
    w.fx.take();
    pid_t a = w.pid("a");
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == stop_of("c"));
    w.stop_completes("c");
    CHECK(w.fx.take() == (Actions{"spawn b", "spawn c"}));
    CHECK(w.pid("a") == a);
    CHECK(w.node("a").restarts == 0);
    CHECK(w.state("c") == "running");
}

TEST_CASE("rest_for_one: the last child's exit restarts it alone") {
    World w(abc(Strategy::RestForOne));
    w.start();
    w.fx.take();
    w.exit_worker("c", 1);
    CHECK(w.fx.take() == Actions{"spawn c"});
}

TEST_CASE("a second failure during a one_for_all restart merges: no duplicate spawns") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == stop_of("c"));
    w.exit_worker("a", 2);  // crashes while C is stopping
    CHECK(w.fx.take().empty());
    w.stop_completes("c");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn b", "spawn c"}));
    for (auto p : {"a", "b", "c"}) CHECK(w.state(p) == "running");
    CHECK(w.state("/") == "running");
    CHECK(w.tree->next_deadline() == std::nullopt);
}

TEST_CASE("a second failure during a one_for_all restart merges: a restarted child crashes") {
    World w(sup_spec(Strategy::OneForAll, {W("a"), W("b").notify(), W("c")}));
    w.start();
    w.ready("b");
    w.fx.take();
    w.exit_worker("c", 1);
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn b"}));
    w.exit_worker("a", 1);  // b is starting, c not yet started
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn b"}));
    w.ready("b");
    CHECK(w.fx.take() == Actions{"spawn c"});
    for (auto p : {"a", "b", "c"}) CHECK(w.state(p) == "running");
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 2);
}

// ---- restart types ---------------------------------------------------------------

TEST_CASE("permanent: restarted after exit 0 and after a crash") {
    World w(sup_spec(Strategy::OneForOne, {W("a")}));
    w.start();
    w.fx.take();
    w.exit_worker("a", 0);
    CHECK(w.fx.take() == Actions{"spawn a"});
    w.now += 10s;
    w.die("a", SIGSEGV);
    CHECK(w.fx.take() == Actions{"spawn a"});
    CHECK(w.node("a").restarts == 2);
}

TEST_CASE("transient: restarted only after an abnormal exit") {
    World w(sup_spec(Strategy::OneForOne, 10, 5s, {W("a").transient()}));
    w.start();
    w.fx.take();
    w.die("a", SIGSEGV);
    CHECK(w.fx.take() == Actions{"spawn a"});
    w.die("a", SIGTERM);  // a signal chipd did not send to stop it is abnormal too
    CHECK(w.fx.take() == Actions{"spawn a"});
    w.exit_worker("a", 3);
    CHECK(w.fx.take() == Actions{"spawn a"});
    w.exit_worker("a", 0);
    CHECK(w.fx.take().empty());
    CHECK(w.state("a") == "exited");
    CHECK(w.state("/") == "running");
    CHECK(w.node("a").pid == 0);
}

TEST_CASE("temporary: never restarted, shows exited") {
    World w(sup_spec(Strategy::OneForOne, {W("a").temporary(), W("b").temporary()}));
    w.start();
    w.fx.take();
    w.exit_worker("a", 1);
    w.die("b", SIGKILL);
    CHECK(w.fx.take().empty());
    CHECK(w.state("a") == "exited");
    CHECK(w.state("b") == "exited");
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("one_for_all: a child that exited for good is left alone by a sibling's restart") {
    World w(sup_spec(Strategy::OneForAll, {W("a").transient(), W("b")}));
    w.start();
    w.fx.take();
    w.exit_worker("a", 0);
    CHECK(w.fx.take().empty());
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("a") == "exited");
}

// ---- intensity -------------------------------------------------------------------

TEST_CASE("intensity: max_restarts restarts within the period pass, the next gives up") {
    World w(abc(Strategy::OneForOne, 3));  // period 5 s
    w.start();
    w.fx.take();
    for (int i = 1; i <= 3; ++i) {
        w.exit_worker("a", 1);
        CHECK(w.fx.take() == Actions{"spawn a"});
        w.now += 1s;
    }
    w.fx.take_logs();
    w.exit_worker("a", 1);  // the 4th within 5 s (at +3 s)
    CHECK(w.fx.take() == stop_of("c"));
    auto logs = w.fx.take_logs();
    CHECK(std::count(logs.begin(), logs.end(), "give-up / 3: more than 3 restarts within 5 s") ==
          1);
    CHECK(w.state("/") == "stopping");
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.state("/") == "failed");
    CHECK(w.state("a") == "exited");
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("intensity: restarts spaced more than period apart never give up") {
    World w(sup_spec(Strategy::OneForOne, 3, 5s, {W("a")}));
    w.start();
    w.fx.take();
    for (int i = 0; i < 20; ++i) {
        w.now += 5001ms;
        w.exit_worker("a", 1);
        CHECK(w.fx.take() == Actions{"spawn a"});
    }
    CHECK(w.state("/") == "running");
    CHECK(w.fx.exits.empty());
    CHECK(w.node("a").restarts == 20);
}

TEST_CASE("intensity: a restart exactly period after an old one no longer counts it") {
    // The window is (t - period, t]: at t = 5 s the restart of t = 0 is out.
    World w(sup_spec(Strategy::OneForOne, 3, 5s, {W("a")}));
    w.start();
    w.fx.take();
    Time t0 = w.now;
    for (std::chrono::milliseconds at : {0ms, 1000ms, 2000ms, 5000ms}) {
        w.now = t0 + at;
        w.exit_worker("a", 1);
        CHECK(w.fx.take() == Actions{"spawn a"});
    }
    w.now = t0 + 5500ms;
    w.exit_worker("a", 1);  // 1, 2, 5 and now: 4 within (0.5, 5.5]
    CHECK(w.fx.take() == Actions{"exit 1"});
}

TEST_CASE("intensity: max_restarts 0 gives up at the first restart") {
    World w(abc(Strategy::OneForOne, 0));
    w.start();
    w.fx.take();
    w.exit_worker("b", 0);
    CHECK(w.fx.take() == stop_of("c"));
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.fx.count_logs(Event::Kind::GiveUp) == 1);
}

TEST_CASE("intensity: a transient normal exit is not a restart and is not counted") {
    World w(sup_spec(Strategy::OneForOne, 0, 5s, {W("a").transient(), W("b")}));
    w.start();
    w.fx.take();
    w.exit_worker("a", 0);
    CHECK(w.fx.take().empty());
    CHECK(w.state("/") == "running");
}

// ---- escalation ------------------------------------------------------------------

TEST_CASE(
    "escalation: a nested supervisor that gives up is restarted by its parent, "
    "counted in the parent's intensity, and repeated failures exit 1 at the root") {
    World w(sup_spec(Strategy::OneForOne, 1, 5s,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, 0, 5s, {W("x"), W("y")}))}));
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn sub/x", "spawn sub/y"}));
    pid_t x0 = w.pid("sub/x"), y0 = w.pid("sub/y");
    w.fx.take_logs();

    w.exit_worker("sub/x", 1);  // sub: max_restarts 0 -> gives up
    CHECK(w.fx.take() == stop_of("sub/y"));
    CHECK(w.state("sub") == "stopping");
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == (Actions{"spawn sub/x", "spawn sub/y"}));
    auto logs = w.fx.take_logs();
    CHECK(std::count(logs.begin(), logs.end(), "give-up sub 0: more than 0 restarts within 5 s") ==
          1);
    CHECK(std::count(logs.begin(), logs.end(), "restart sub 1") == 1);
    CHECK(w.state("sub") == "running");
    CHECK(w.node("sub").restarts == 1);
    CHECK(w.pid("sub/x") != x0);
    CHECK(w.pid("sub/y") != y0);
    CHECK(w.state("sub/x") == "running");
    CHECK(w.state("sub/y") == "running");

    w.now += 1s;
    w.die("sub/y", SIGSEGV);  // sub gives up again: the root's 2nd restart in 5 s
    CHECK(w.fx.take() == stop_of("sub/x"));
    w.stop_completes("sub/x");
    CHECK(w.fx.take() == stop_of("a"));
    CHECK(w.state("sub") == "failed");
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.state("/") == "failed");
    CHECK(w.state("sub") == "failed");
    CHECK(w.fx.count_logs(Event::Kind::GiveUp) == 2);
}

TEST_CASE("escalation: a nested supervisor that gave up is restarted by the parent's strategy") {
    World w(sup_spec(Strategy::OneForAll, 3, 5s,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, 0, 5s, {W("x")})), W("c")}));
    w.start();
    w.fx.take();
    w.exit_worker("sub/x", 1);
    CHECK(w.fx.take() == stop_of("c"));
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn sub/x", "spawn c"}));
    CHECK(w.state("/") == "running");
}

TEST_CASE("a child whose restart fails to start counts as a restart and is retried") {
    World w(sup_spec(Strategy::OneForOne, 2, 5s, {W("a"), W("b")}));
    w.start();
    w.fx.take();
    w.fx.failures["b"] = Error{ENOENT, "No such file or directory"};
    w.exit_worker("b", 1);  // restart 1 -> spawn fails -> restart 2 -> fails -> gives up
    CHECK(w.fx.take() ==
          (Actions{"spawn-failed b", "spawn-failed b", "kill a TERM", "kill a CONT"}));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.state("b") == "failed");
}

// ---- stop ------------------------------------------------------------------------

TEST_CASE("stop: stop_signal and SIGCONT to the process group, SIGKILL after stop_timeout") {
    World w(sup_spec(Strategy::OneForOne, {W("a").stop(SIGINT, 3s), W("b")}));
    w.start();
    w.fx.take();
    pid_t a = w.pid("a");
    auto t = w.command(Command::Stop, "a");
    CHECK(w.fx.take() == stop_of("a", "INT"));
    CHECK(w.fx.kills == (std::vector<std::pair<pid_t, int>>{{a, SIGINT}, {a, SIGCONT}}));
    CHECK(w.state("a") == "stopping");
    CHECK(w.tree->next_deadline() == w.now + 3s);
    w.advance(2999ms);
    CHECK(w.fx.take().empty());
    w.advance(1ms);
    CHECK(w.fx.take() == Actions{"kill a KILL"});
    CHECK(w.fx.kills.back() == std::pair<pid_t, int>{a, SIGKILL});
    CHECK(w.tree->next_deadline() == std::nullopt);
    CHECK_FALSE(w.finished(t).has_value());
    w.die("a", SIGKILL);
    CHECK(w.fx.take().empty());
    CHECK(w.state("a") == "stopped");
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
}

TEST_CASE("stop: a supervisor stops its children in reverse order, each finished first") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x"), W("y")}))}));
    w.start();
    w.fx.take();
    auto t = w.command(Command::Stop, "sub");
    CHECK(w.fx.take() == stop_of("sub/y"));
    w.advance(1s);
    CHECK(w.fx.take().empty());  // x is not signalled until y exited
    CHECK(w.state("sub/x") == "running");
    CHECK(w.state("sub") == "stopping");
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == stop_of("sub/x"));
    CHECK_FALSE(w.finished(t).has_value());
    w.stop_completes("sub/x");
    CHECK(w.fx.take().empty());
    CHECK(w.state("sub") == "stopped");
    CHECK(w.state("a") == "running");
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
}

TEST_CASE("stop: a stop_signal KILL or a zero stop_timeout kills at once") {
    World w(sup_spec(Strategy::OneForOne, {W("a").stop(SIGKILL), W("b").stop(SIGTERM, 0s)}));
    w.start();
    w.fx.take();
    w.command(Command::Stop, "/");
    CHECK(w.fx.take() == Actions{"kill b KILL"});
    w.die("b", SIGKILL);
    CHECK(w.fx.take() == Actions{"kill a KILL"});
    w.die("a", SIGKILL);
    CHECK(w.state("/") == "stopped");
    CHECK(w.fx.exits.empty());  // not a shutdown: chipd goes on
}

// ---- shutdown --------------------------------------------------------------------

TEST_CASE("shutdown: stops everything in reverse order, then exit 0") {
    World w(
        sup_spec(Strategy::OneForOne,
                 {W("a"), sup("sub", sup_spec(Strategy::OneForAll, {W("x"), W("y")})), W("c")}));
    w.start();
    w.fx.take();
    w.tree->shutdown(w.now);
    CHECK(w.tree->shutting_down());
    CHECK(w.fx.take() == stop_of("c"));
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("sub/y"));
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == stop_of("sub/x"));
    w.stop_completes("sub/x");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 0"});
    w.tree->shutdown(w.now);  // idempotent
    CHECK(w.fx.take().empty());
    CHECK(w.state("/") == "stopped");
    auto s = w.tree->summary();
    CHECK(s.stopped == 4);
    CHECK(s.running == 0);
}

TEST_CASE("shutdown: a crash during shutdown is not restarted") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    w.tree->shutdown(w.now);
    CHECK(w.fx.take() == stop_of("c"));
    w.exit_worker("a", 1);
    CHECK(w.fx.take().empty());
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == Actions{"exit 0"});
}

TEST_CASE("shutdown: hurry sends SIGKILL at once to the stopping worker and to later ones") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    w.tree->shutdown(w.now);
    CHECK(w.fx.take() == stop_of("c"));
    w.tree->hurry(w.now);
    CHECK(w.fx.take() == Actions{"kill c KILL"});
    CHECK(w.tree->next_deadline() == std::nullopt);
    w.die("c", SIGKILL);
    CHECK(w.fx.take() == Actions{"kill b KILL"});
    w.die("b", SIGKILL);
    CHECK(w.fx.take() == Actions{"kill a KILL"});
    w.die("a", SIGKILL);
    CHECK(w.fx.take() == Actions{"exit 0"});
}

TEST_CASE("shutdown: while starting, the starting child is stopped and later ones never start") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").notify(), W("c")}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a", "spawn b"});
    w.tree->shutdown(w.now);
    CHECK(w.fx.take() == stop_of("b"));
    CHECK(w.tree->next_deadline() == w.now + 5s);  // stop_timeout replaced start_timeout
    w.ready("b");                                  // too late: ignored
    CHECK(w.state("b") == "stopping");
    w.stop_completes("b");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"exit 0"});
    CHECK(w.state("c") == "stopped");
}

TEST_CASE("shutdown: after the root failed it exits 1 once") {
    World w(sup_spec(Strategy::OneForOne, 0, 5s, {W("a")}));
    w.start();
    w.exit_worker("a", 1);
    CHECK(w.fx.exits == std::vector<int>{1});
    w.tree->shutdown(w.now);
    CHECK(w.fx.exits == std::vector<int>{1});
}

TEST_CASE("shutdown: an empty tree exits 0 at once") {
    World w(sup_spec(Strategy::OneForOne, {}));
    w.start();
    CHECK(w.state("/") == "running");
    w.tree->shutdown(w.now);
    CHECK(w.fx.take() == Actions{"exit 0"});
}

// ---- commands --------------------------------------------------------------------

TEST_CASE("command stop holds the node: its exit is not restarted, the ticket finishes then") {
    World w(sup_spec(Strategy::OneForAll, {W("a"), W("b"), W("c")}));
    w.start();
    w.fx.take();
    auto t = w.command(Command::Stop, "b");
    CHECK(w.fx.take() == stop_of("b"));
    CHECK_FALSE(w.finished(t).has_value());
    w.stop_completes("b");
    CHECK(w.fx.take().empty());  // no strategy, no restart
    CHECK(w.state("b") == "stopped");
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
    // A sibling's restart leaves the held node alone.
    w.exit_worker("c", 1);
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn c"}));
    CHECK(w.state("b") == "stopped");
}

TEST_CASE("command start starts a stopped node again; the ticket finishes once it is ready") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").notify()}));
    w.start();
    w.ready("b");
    w.fx.take();
    auto t1 = w.command(Command::Stop, "b");
    w.stop_completes("b");
    REQUIRE(w.finished(t1).has_value());
    w.fx.take();
    auto t2 = w.command(Command::Start, "b");
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("b") == "starting");
    CHECK_FALSE(w.finished(t2).has_value());
    w.ready("b");
    auto r = w.finished(t2);
    REQUIRE(r.has_value());
    CHECK(r->ok());
    CHECK(w.state("b") == "running");
    // Starting a running node is done at once.
    auto t3 = w.command(Command::Start, "a");
    CHECK(w.fx.take().empty());
    auto r3 = w.finished(t3);
    REQUIRE(r3.has_value());
    CHECK(r3->ok());
}

TEST_CASE("command restart is a stop then a start of that node alone, never counted") {
    World w(abc(Strategy::OneForAll, 3));
    w.start();
    w.fx.take();
    pid_t a = w.pid("a"), c = w.pid("c");
    for (int i = 0; i < 4; ++i) {  // max_restarts + 1 times within the period
        auto t = w.command(Command::Restart, "b");
        CHECK(w.fx.take() == stop_of("b"));
        w.stop_completes("b");
        CHECK(w.fx.take() == Actions{"spawn b"});
        auto r = w.finished(t);
        REQUIRE(r.has_value());
        CHECK(r->ok());
    }
    CHECK(w.pid("a") == a);
    CHECK(w.pid("c") == c);
    CHECK(w.state("/") == "running");
    CHECK(w.fx.count_logs(Event::Kind::GiveUp) == 0);
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
    CHECK(w.node("b").restarts == 4);
    // The intensity is untouched: 3 crashes still pass.
    for (int i = 0; i < 3; ++i) {
        w.exit_worker("a", 1);
        w.stop_completes("c");
        w.stop_completes("b");
        CHECK(w.fx.take() == (Actions{"kill c TERM", "kill c CONT", "kill b TERM", "kill b CONT",
                                      "spawn a", "spawn b", "spawn c"}));
    }
    CHECK(w.state("/") == "running");
}

TEST_CASE("command restart of a nested supervisor restarts all its children") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x"), W("y")}))}));
    w.start();
    w.fx.take();
    auto t = w.command(Command::Restart, "sub");
    CHECK(w.fx.take() == stop_of("sub/y"));
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == stop_of("sub/x"));
    w.stop_completes("sub/x");
    CHECK(w.fx.take() == (Actions{"spawn sub/x", "spawn sub/y"}));
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
    CHECK(w.state("sub") == "running");
    CHECK(w.node("sub").restarts == 1);
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("commands on an instance group name act on every instance") {
    World w(sup_spec(Strategy::OneForOne, {W("db"), W("pool").instances(3)}));
    w.start();
    w.fx.take();
    auto t = w.command(Command::Stop, "pool");
    CHECK(w.fx.take() == stop_of("pool.2"));
    w.stop_completes("pool.2");
    CHECK(w.fx.take() == stop_of("pool.1"));
    w.stop_completes("pool.1");
    CHECK(w.fx.take() == stop_of("pool.0"));
    CHECK_FALSE(w.finished(t).has_value());
    w.stop_completes("pool.0");
    REQUIRE(w.finished(t).has_value());
    CHECK(w.state("db") == "running");

    t = w.command(Command::Start, "pool");
    CHECK(w.fx.take() == (Actions{"spawn pool.0", "spawn pool.1", "spawn pool.2"}));
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());

    t = w.command(Command::Restart, "pool");
    CHECK(w.fx.take() == stop_of("pool.2"));
    w.stop_completes("pool.2");
    w.stop_completes("pool.1");
    w.stop_completes("pool.0");
    CHECK(w.fx.take() ==
          (Actions{"kill pool.1 TERM", "kill pool.1 CONT", "kill pool.0 TERM", "kill pool.0 CONT",
                   "spawn pool.0", "spawn pool.1", "spawn pool.2"}));
    r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
}

TEST_CASE("commands on an unknown path fail with ENOENT") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    for (auto cmd : {Command::Start, Command::Stop, Command::Restart}) {
        for (auto path : {"nope", "a/b", "a.0", "sub/x"}) {
            auto r = w.tree->command(cmd, path, w.now);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == ENOENT);
        }
    }
    CHECK(w.fx.take().empty());
    CHECK(w.tree->take_finished().empty());
}

TEST_CASE("command start of a node whose supervisor is stopped fails") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x")}))}));
    w.start();
    w.fx.take();
    w.command(Command::Stop, "sub");
    w.stop_completes("sub/x");
    w.tree->take_finished();
    w.fx.take();
    for (auto cmd : {Command::Start, Command::Restart}) {
        auto r = w.tree->command(cmd, "sub/x", w.now);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == EBUSY);
    }
    CHECK(w.fx.take().empty());
    // Starting the supervisor starts its children.
    auto t = w.command(Command::Start, "sub");
    CHECK(w.fx.take() == Actions{"spawn sub/x"});
    REQUIRE(w.finished(t).has_value());
}

TEST_CASE("command start that fails finishes the ticket with an error and is not retried") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b")}));
    w.start();
    w.fx.take();
    w.command(Command::Stop, "b");
    w.stop_completes("b");
    w.tree->take_finished();
    w.fx.take();
    w.fx.failures["b"] = Error{ENOENT, "No such file or directory"};
    auto t = w.command(Command::Start, "b");
    CHECK(w.fx.take() == Actions{"spawn-failed b"});
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->ok());
    CHECK(w.state("b") == "failed");
    w.advance(60s);
    CHECK(w.fx.take().empty());
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
    CHECK(w.state("/") == "running");
}

TEST_CASE("command start of a notify worker that misses start_timeout fails, not retried") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").notify(2s)}));
    w.start();
    w.ready("b");
    w.command(Command::Stop, "b");
    w.stop_completes("b");
    w.tree->take_finished();
    w.fx.take();
    auto t = w.command(Command::Start, "b");
    CHECK(w.fx.take() == Actions{"spawn b"});
    w.advance(2s);
    CHECK(w.fx.take() == Actions{"kill b KILL"});
    w.die("b", SIGKILL);
    CHECK(w.fx.take().empty());
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->ok());
    CHECK(w.state("b") == "failed");
}

// ---- events the core ignores --------------------------------------------------------

TEST_CASE("on_exit of an unknown pid (an orphan) is ignored") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    w.fx.take_logs();
    w.tree->on_exit(4242, ExitStatus{false, 1}, w.now);
    w.tree->on_exit(4242, ExitStatus{true, SIGKILL}, w.now);
    CHECK(w.fx.take().empty());
    CHECK(w.fx.take_logs().empty());
    for (auto p : {"a", "b", "c"}) CHECK(w.state(p) == "running");
}

TEST_CASE("on_ready of a node that is not starting is ignored") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), W("b").notify(), sup("sub", sup_spec(Strategy::OneForOne, {}))}));
    w.start();
    w.fx.take();
    w.fx.take_logs();
    w.ready("a");                               // running
    w.tree->on_ready(0, w.now);                 // the root
    w.tree->on_ready(w.node("sub").id, w.now);  // a supervisor
    w.tree->on_ready(999, w.now);               // no such node
    CHECK(w.fx.take().empty());
    CHECK(w.fx.take_logs().empty());
    CHECK(w.state("b") == "starting");
    w.ready("b");
    CHECK(w.state("b") == "running");
    w.ready("b");  // twice
    CHECK(w.fx.count_logs(Event::Kind::Ready) == 1);
}

// ---- deadlines ----------------------------------------------------------------------

TEST_CASE("next_deadline reports the earliest deadline, and none when idle") {
    World w(sup_spec(Strategy::OneForOne, {W("a").stop(SIGTERM, 3s), W("b").notify(10s)}));
    CHECK(w.tree->next_deadline() == std::nullopt);
    Time t0 = w.now;
    w.start();
    CHECK(w.tree->next_deadline() == t0 + 10s);  // b's start_timeout
    w.now += 1s;
    w.command(Command::Stop, "a");
    CHECK(w.tree->next_deadline() == t0 + 4s);  // a's stop_timeout comes first
    w.ready("b");
    CHECK(w.tree->next_deadline() == t0 + 4s);
    w.advance(3s);
    CHECK(w.fx.actions.back() == "kill a KILL");
    CHECK(w.tree->next_deadline() == std::nullopt);
    w.die("a", SIGKILL);
    CHECK(w.tree->next_deadline() == std::nullopt);
}

TEST_CASE("on_time before a deadline does nothing; late on_time handles all passed ones") {
    World w(sup_spec(Strategy::OneForOne, {W("a").stop(SIGTERM, 1s), W("b").stop(SIGTERM, 2s)}));
    w.start();
    w.fx.take();
    w.command(Command::Stop, "b");
    w.command(Command::Stop, "a");
    CHECK(w.fx.take() == stop_of("b"));  // one at a time: a waits for b
    w.advance(500ms);
    CHECK(w.fx.take().empty());
    w.advance(10s);
    CHECK(w.fx.take() == Actions{"kill b KILL"});
    w.die("b", SIGKILL);
    CHECK(w.fx.take() == stop_of("a"));
    CHECK(w.tree->next_deadline() == w.now + 1s);
}

// A start of thousands of workers is one event, and takes seconds: each
// deadline counts from when it is set (the world's clock, Effects::now), not
// from the event that began the start.
TEST_CASE("deadlines: start_timeout counts from the worker's spawn, not from the start's event") {
    World w(sup_spec(Strategy::OneForOne, {W("p").instances(2000), W("n").notify(3s)}));
    w.fx.clock = w.now;
    w.fx.spawn_cost = 2ms;  // 2000 spawns: 4 s, past n's start_timeout from the event
    w.start();
    REQUIRE(w.fx.spawned_at.size() == 2001);
    Time spawned = w.fx.spawned_at.back();
    CHECK(spawned == w.now + 2001 * 2ms);
    CHECK(w.node("n").since == spawned);
    CHECK(w.tree->next_deadline() == spawned + 3s);
    w.fx.take();
    w.now = w.fx.clock;
    w.advance(1s);
    CHECK(w.fx.take().empty());  // not killed
    w.ready("n");
    CHECK(w.state("n") == "running");
    CHECK(w.state("/") == "running");
    CHECK(w.fx.count_logs(Event::Kind::Kill) == 0);
}

TEST_CASE("deadlines: stop_timeout counts from the stop signal, late in a long start") {
    // f fails to spawn after 2000 others: the root's start fails and w, just
    // before it, is stopped in the same event, 4 s after it began.
    World w(
        sup_spec(Strategy::OneForOne, {W("p").instances(2000), W("w").stop(SIGTERM, 3s), W("f")}));
    w.fx.failures["f"] = Error{ENOENT, "No such file or directory"};
    w.fx.clock = w.now;
    w.fx.spawn_cost = 2ms;
    w.start();
    Time signalled = w.fx.clock;
    CHECK(signalled == w.now + 2002 * 2ms);
    Actions done = w.fx.take();
    REQUIRE(done.size() > 3);
    CHECK(Actions(done.end() - 3, done.end()) ==
          Actions{"spawn-failed f", "kill w TERM", "kill w CONT"});
    CHECK(w.tree->next_deadline() == signalled + 3s);
    w.now = signalled;
    w.advance(2999ms);
    CHECK(w.fx.take().empty());  // no SIGKILL before stop_timeout
    w.stop_completes("w");
    CHECK(w.fx.take() == stop_of("p.1999"));
}

TEST_CASE("deadlines: without a clock (Time{}) the event's time serves") {
    World w(sup_spec(Strategy::OneForOne, {W("p").instances(3), W("n").notify(3s)}));
    w.start();
    CHECK(w.fx.spawned_at.empty());
    CHECK(w.tree->next_deadline() == w.now + 3s);
}

// ---- races between commands and exits ------------------------------------------------

TEST_CASE("command stop of a node that crashes before its turn to be stopped shows stopped") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    w.command(Command::Stop, "c");
    CHECK(w.fx.take() == stop_of("c"));
    auto t = w.command(Command::Stop, "b");  // waits for c
    CHECK(w.fx.take().empty());
    w.exit_worker("b", 1);  // dies on its own meanwhile: held, not restarted
    CHECK(w.fx.take().empty());
    w.stop_completes("c");
    CHECK(w.fx.take().empty());
    CHECK(w.state("b") == "stopped");
    CHECK(w.state("c") == "stopped");
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("command start of the root while it is being stopped starts it again after") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b")}));
    w.start();
    w.fx.take();
    auto t1 = w.command(Command::Stop, "/");
    CHECK(w.fx.take() == stop_of("b"));
    auto t2 = w.command(Command::Start, "/");
    w.stop_completes("b");
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn b"}));
    auto done = w.tree->take_finished();
    REQUIRE(done.size() == 2);
    CHECK(done[0].ticket == t1);
    CHECK(done[1].ticket == t2);
    CHECK(done[1].result.ok());
    CHECK(w.state("/") == "running");
    CHECK(w.fx.exits.empty());
}

TEST_CASE("command stop then start of the root") {
    World w(sup_spec(Strategy::OneForOne, {W("a")}));
    w.start();
    w.fx.take();
    w.command(Command::Stop, "/");
    w.stop_completes("a");
    CHECK(w.state("/") == "stopped");
    CHECK(w.fx.exits.empty());
    auto t = w.command(Command::Start, "/");
    CHECK(w.fx.take() == (Actions{"kill a TERM", "kill a CONT", "spawn a"}));
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
    CHECK(w.state("/") == "running");
}

TEST_CASE("command start of a subtree whose child fails leaves it failed, not retried") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x"), W("y")}))}));
    w.start();
    w.command(Command::Stop, "sub");
    w.stop_completes("sub/y");
    w.stop_completes("sub/x");
    w.tree->take_finished();
    w.fx.take();
    w.fx.failures["sub/y"] = Error{ENOENT, "No such file or directory"};
    auto t = w.command(Command::Start, "sub");
    CHECK(w.fx.take() ==
          (Actions{"spawn sub/x", "spawn-failed sub/y", "kill sub/x TERM", "kill sub/x CONT"}));
    CHECK_FALSE(w.finished(t).has_value());
    w.stop_completes("sub/x");
    CHECK(w.fx.take().empty());
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->ok());
    CHECK(w.state("sub") == "failed");
    CHECK(w.state("/") == "running");
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("command restart of a stopped node starts it") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.command(Command::Stop, "b");
    w.stop_completes("b");
    w.tree->take_finished();
    w.fx.take();
    auto t = w.command(Command::Restart, "b");
    CHECK(w.fx.take() == Actions{"spawn b"});
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
}

TEST_CASE("command stop of a node that exited for good finishes at once") {
    World w(sup_spec(Strategy::OneForOne, {W("a").temporary(), W("b")}));
    w.start();
    w.exit_worker("a", 0);
    w.fx.take();
    auto t = w.command(Command::Stop, "a");
    CHECK(w.fx.take().empty());
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
}

TEST_CASE("commands during shutdown are refused") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.tree->shutdown(w.now);
    for (auto cmd : {Command::Start, Command::Stop, Command::Restart}) {
        auto r = w.tree->command(cmd, "a", w.now);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ECANCELED);
    }
}

TEST_CASE("shutdown: hurry reaches workers of nested supervisors and starting workers") {
    World w(sup_spec(
        Strategy::OneForOne,
        {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x"), W("y")})), W("c").notify()}));
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn sub/x", "spawn sub/y", "spawn c"}));
    w.tree->hurry(w.now);  // a first SIGTERM-and-hurry: shuts down, kills at once
    CHECK(w.fx.take() == (Actions{"kill c TERM", "kill c CONT", "kill c KILL"}));
    w.die("c", SIGKILL);
    CHECK(w.fx.take() == Actions{"kill sub/y KILL"});
    w.die("sub/y", SIGKILL);
    CHECK(w.fx.take() == Actions{"kill sub/x KILL"});
    w.die("sub/x", SIGKILL);
    CHECK(w.fx.take() == Actions{"kill a KILL"});
    w.die("a", SIGKILL);
    CHECK(w.fx.take() == Actions{"exit 0"});
    CHECK(w.tree->next_deadline() == std::nullopt);
}

TEST_CASE("a nested supervisor that gives up while its parent is starting is restarted") {
    World w(
        sup_spec(Strategy::OneForOne, 3, 5s,
                 {sup("sub", sup_spec(Strategy::OneForOne, 0, 5s, {W("x")})), W("b").notify()}));
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn sub/x", "spawn b"}));
    w.exit_worker("sub/x", 1);   // sub gives up; the root is still starting (b not ready)
    CHECK(w.fx.take().empty());  // waits for b: one start at a time
    w.ready("b");
    CHECK(w.fx.take() == Actions{"spawn sub/x"});
    CHECK(w.state("/") == "running");
    CHECK(w.state("sub") == "running");
}

TEST_CASE("command start during a stop: both tickets finish, the stop's once it stopped") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b")}));
    w.start();
    w.fx.take();
    auto t1 = w.command(Command::Stop, "b");
    CHECK(w.fx.take() == stop_of("b"));
    auto t2 = w.command(Command::Start, "b");
    CHECK(w.fx.take().empty());
    CHECK(w.tree->take_finished().empty());
    w.stop_completes("b");
    CHECK(w.fx.take() == Actions{"spawn b"});
    auto done = w.tree->take_finished();
    REQUIRE(done.size() == 2);
    CHECK(done[0].ticket == t1);
    CHECK(done[0].result.ok());
    CHECK(done[1].ticket == t2);
    CHECK(done[1].result.ok());
    CHECK(w.state("b") == "running");
}

TEST_CASE("a user restart cut short by a give-up does not make the next start's failure final") {
    World w(
        sup_spec(Strategy::OneForOne, 3, 5s,
                 {sup("sub", sup_spec(Strategy::OneForAll, 0, 5s, {W("x"), W("y").notify()}))}));
    w.start();
    w.ready("sub/y");
    w.fx.take();
    w.command(Command::Restart, "sub/y");
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == (Actions{"kill sub/y TERM", "kill sub/y CONT", "spawn sub/y"}));
    w.exit_worker("sub/x", 1);  // sub gives up while y's restart is starting
    CHECK(w.fx.take() == stop_of("sub/y"));
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == (Actions{"spawn sub/x", "spawn sub/y"}));  // the root restarts sub
    w.exit_worker("sub/y", 1);  // y fails sub's own start: sub's start fails
    CHECK(w.fx.take() == (Actions{"kill sub/x TERM", "kill sub/x CONT"}));
    w.stop_completes("sub/x");
    CHECK(w.fx.take() == (Actions{"spawn sub/x", "spawn sub/y"}));  // and is restarted again
    w.ready("sub/y");
    CHECK(w.state("sub") == "running");
    CHECK(w.node("sub").restarts == 2);
}

TEST_CASE("command restart whose supervisor is stopped meanwhile finishes with an error") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), sup("sub", sup_spec(Strategy::OneForOne, {W("x"), W("y")}))}));
    w.start();
    w.fx.take();
    auto t1 = w.command(Command::Restart, "sub/y");
    CHECK(w.fx.take() == stop_of("sub/y"));
    auto t2 = w.command(Command::Stop, "sub");
    w.stop_completes("sub/y");
    CHECK(w.fx.take() == stop_of("sub/x"));
    w.stop_completes("sub/x");
    CHECK(w.fx.take().empty());
    CHECK(w.state("sub") == "stopped");
    auto done = w.tree->take_finished();
    REQUIRE(done.size() == 2);
    CHECK(done[0].ticket == t1);
    REQUIRE_FALSE(done[0].result.ok());
    CHECK(done[0].result.error().message == "sub/y was not started: its supervisor sub is stopped");
    CHECK(done[1].ticket == t2);
    CHECK(done[1].result.ok());
}

TEST_CASE("command stop of a child not yet started during its supervisor's start skips it") {
    World w(sup_spec(Strategy::OneForOne, {W("a").notify(), W("b"), W("c")}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a"});
    auto t = w.command(Command::Stop, "b");
    CHECK(w.fx.take().empty());
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK(r->ok());
    w.ready("a");
    CHECK(w.fx.take() == Actions{"spawn c"});
    CHECK(w.state("/") == "running");
    CHECK(w.state("b") == "stopped");
}

TEST_CASE("shutdown finishes a pending start ticket with an error") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").notify()}));
    w.start();
    w.ready("b");
    w.command(Command::Stop, "b");
    w.stop_completes("b");
    w.tree->take_finished();
    auto t = w.command(Command::Start, "b");
    w.fx.take();
    w.tree->shutdown(w.now);
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    auto r = w.finished(t);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->ok());
    w.stop_completes("a");
    CHECK(w.fx.take() == (Actions{"kill a TERM", "kill a CONT", "exit 0"}));
}

TEST_CASE("one_for_all: a running temporary sibling is stopped with the others but not restarted") {
    World w(sup_spec(Strategy::OneForAll, {W("a").temporary(), W("b")}));
    w.start();
    w.fx.take();
    w.exit_worker("b", 1);
    CHECK(w.fx.take() == stop_of("a"));
    w.stop_completes("a");
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("a") == "stopped");
    CHECK(w.state("b") == "running");
}

// ---- a tree that changes while it runs ----------------------------------------

namespace {

std::vector<std::string> child_names(const Node &sup) {
    std::vector<std::string> out;
    for (const auto &c : sup.children) out.push_back(c->name);
    return out;
}

std::shared_ptr<const WorkerSpec> def(const W &w) {
    return std::make_shared<const WorkerSpec>(w.w);
}

}  // namespace

TEST_CASE("identity: ids stay with their nodes across inserts and removals and are never reused") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    std::uint64_t a = w.node("a").id, b = w.node("b").id, c = w.node("c").id;
    std::set<std::uint64_t> seen{w.tree->root().id, a, b, c};
    CHECK(seen.size() == 4);

    auto added = w.tree->add(w.tree->root(), 1, W("x"), w.now);
    REQUIRE(added.ok());
    CHECK(w.fx.take() == Actions{"spawn x"});
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "x", "b", "c"});
    CHECK(w.node("a").id == a);
    CHECK(w.node("b").id == b);
    CHECK(w.node("c").id == c);
    CHECK(w.node("b").index == 2);
    std::uint64_t x = w.node("x").id;
    CHECK(seen.insert(x).second);
    CHECK(w.tree->node_by_id(x) == &w.node("x"));

    auto t = w.tree->remove(w.node("x"), w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take() == stop_of("x"));
    w.stop_completes("x");
    CHECK(w.fx.take() == Actions{"removed x"});
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK_FALSE(w.tree->resolve("x").ok());
    CHECK(w.tree->node_by_id(x) == nullptr);
    CHECK(w.node("c").index == 2);

    // The same name again is a new node with a new id.
    REQUIRE(w.tree->add(w.tree->root(), 99, W("x"), w.now).ok());
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "b", "c", "x"});
    CHECK(seen.insert(w.node("x").id).second);
}

TEST_CASE("add: a name in use among the siblings or a pool's instance names is EEXIST") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("web").instances(2)}));
    w.start();
    auto r = w.tree->add(w.tree->root(), 0, W("a"), w.now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EEXIST);
    CHECK(w.tree->add(w.tree->root(), 0, W("web"), w.now).error().code == EEXIST);
    CHECK(w.tree->add(w.tree->root(), 0, W("web.1"), w.now).error().code == EEXIST);
    CHECK(w.tree->add(w.tree->root(), 0, W("a").instances(3), w.now).error().code == EEXIST);
    CHECK(w.tree->add(w.node("a"), 0, W("z"), w.now).error().code == EINVAL);
    CHECK(w.tree->add(w.tree->root(), 0, W("web.2"), w.now).ok());  // not an instance of web
}

TEST_CASE("add: a pool added to a running supervisor is started in order after the removals") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    REQUIRE(w.tree->add(w.tree->root(), 3, W("p").instances(3), w.now).ok());
    CHECK(w.fx.take() == (Actions{"spawn p.0", "spawn p.1", "spawn p.2"}));
    auto group = w.tree->resolve("p");
    REQUIRE(group.ok());
    CHECK(group->size() == 3);
}

TEST_CASE("add: a child added to a stopped supervisor stays stopped until it starts") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), sup("s", sup_spec(Strategy::OneForOne, {}))}));
    w.start();
    w.command(Command::Stop, "s");
    w.fx.take();
    REQUIRE(w.tree->add(w.node("s"), 0, W("x"), w.now).ok());
    CHECK(w.fx.take().empty());
    CHECK(w.state("s/x") == "stopped");
    w.command(Command::Start, "s");
    CHECK(w.fx.take() == Actions{"spawn s/x"});
}

TEST_CASE(
    "marks survive an insert: a one_for_all restart under way takes in a child added before") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    w.die("a", SIGSEGV);
    CHECK(w.fx.take() == stop_of("c"));
    // b is still marked to stop and then start; x lands before all of them.
    REQUIRE(w.tree->add(w.tree->root(), 0, W("x"), w.now).ok());
    CHECK(w.fx.take().empty());  // stops first
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == (Actions{"spawn x", "spawn a", "spawn b", "spawn c"}));
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"x", "a", "b", "c"});
}

TEST_CASE("marks survive a removal: the siblings after it keep their pending restarts") {
    World w(abc(Strategy::RestForOne));
    w.start();
    w.fx.take();
    w.die("a", SIGSEGV);
    CHECK(w.fx.take() == stop_of("c"));
    auto t = w.tree->remove(w.node("b"), w.now);  // marked to stop, not yet stopped
    REQUIRE(t.ok());
    w.stop_completes("c");
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == (Actions{"removed b", "spawn a", "spawn c"}));
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "c"});
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(w.state("a") == "running");
    CHECK(w.state("c") == "running");
}

TEST_CASE("remove: a subtree is stopped in reverse order, then gone, deepest first") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("a"), sup("s", sup_spec(Strategy::OneForOne, {W("x"), W("y")})), W("b")}));
    w.start();
    w.fx.take();
    auto t = w.tree->remove(w.node("s"), w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take() == stop_of("s/y"));
    w.stop_completes("s/y");
    CHECK(w.fx.take() == stop_of("s/x"));
    CHECK_FALSE(w.finished(*t).has_value());
    w.stop_completes("s/x");
    CHECK(w.fx.take() == (Actions{"removed s/x", "removed s/y", "removed s"}));
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "b"});
    CHECK(w.node("b").index == 1);
    // The rest is supervised as before.
    w.die("b", SIGSEGV);
    CHECK(w.fx.take() == Actions{"spawn b"});
}

TEST_CASE("remove: a node that is not running is gone at once; the root cannot be removed") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.command(Command::Stop, "b");
    w.stop_completes("b");
    w.fx.take();
    auto t = w.tree->remove(w.node("b"), w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take() == Actions{"removed b"});
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(w.tree->remove(w.tree->root(), w.now).error().code == EINVAL);
    w.tree->shutdown(w.now);
    CHECK(w.tree->remove(w.node("a"), w.now).error().code == ECANCELED);
    CHECK(w.tree->add(w.tree->root(), 0, W("z"), w.now).error().code == ECANCELED);
    CHECK(w.tree->scale(w.tree->root(), "z", 1, w.now).error().code == EINVAL);
}

TEST_CASE("remove: a node that crashes while it waits to be removed is not restarted") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    w.die("a", SIGSEGV);
    CHECK(w.fx.take() == stop_of("c"));
    w.fx.take_logs();
    auto t = w.tree->remove(w.node("b"), w.now);
    w.die("b", SIGSEGV);  // before its turn to be stopped
    w.stop_completes("c");
    CHECK(w.fx.take() == (Actions{"removed b", "spawn a", "spawn c"}));
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("remove: a node being removed refuses start, stop and restart") {
    World w(abc(Strategy::OneForOne));
    w.start();
    auto t = w.tree->remove(w.node("b"), w.now);
    REQUIRE(t.ok());
    for (Command c : {Command::Start, Command::Stop, Command::Restart}) {
        auto r = w.tree->command(c, "b", w.now);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == EBUSY);
    }
    w.stop_completes("b");
    CHECK_FALSE(w.tree->resolve("b").ok());
}

TEST_CASE("remove: a pending command on a removed node finishes with an error") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").notify()}));
    w.start();
    w.ready("b");
    w.command(Command::Stop, "b");
    w.stop_completes("b");
    auto start = w.command(Command::Start, "b");
    w.fx.take();
    auto t = w.tree->remove(w.node("b"), w.now);
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    auto r = w.finished(start);
    // take_finished() gave both: the removal's result is gone with it; check the start's.
    REQUIRE(r.has_value());
    CHECK(r->error().message == "b was removed");
    (void)t;
}

TEST_CASE("redefine with restart: the worker alone restarts with its new definition, uncounted") {
    World w(abc(Strategy::OneForAll));
    w.start();
    w.fx.take();
    pid_t a = w.pid("a"), c = w.pid("c");
    auto t = w.tree->redefine(w.node("b"), def(W("b").notify()), Redefine::Restart, w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("b") == "starting");  // the new definition waits for READY=1
    CHECK_FALSE(w.finished(*t).has_value());
    w.ready("b");
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(w.pid("a") == a);
    CHECK(w.pid("c") == c);
    CHECK(w.tree->root().intensity->count() == 0);
    CHECK(w.fx.count_logs(Event::Kind::Restart) == 0);
}

TEST_CASE("redefine with restart: a failed start of the new definition counts and is retried") {
    World w(sup_spec(Strategy::OneForOne, 3, 5s, {W("a"), W("b")}));
    w.start();
    w.fx.take();
    w.fx.failures["b"] = Error{ENOENT, "cannot execute"};
    auto t = w.tree->redefine(w.node("b"), def(W("b")), Redefine::Restart, w.now);
    CHECK(w.fx.take() == stop_of("b"));
    w.stop_completes("b");
    auto actions = w.fx.take();
    REQUIRE(actions.size() >= 2);
    CHECK(actions[0] == "spawn-failed b");
    CHECK(actions[1] == "spawn-failed b");  // retried at once, as after a crash
    CHECK(w.fx.count_logs(Event::Kind::Restart) >= 1);
    auto r = w.finished(*t);
    REQUIRE(r.has_value());  // the supervisor gave up on b in the end
    CHECK_FALSE(r->ok());
}

TEST_CASE("redefine in place: the process is untouched and the new policy applies next") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    pid_t b = w.pid("b");
    auto t = w.tree->redefine(w.node("b"), def(W("b").stop(SIGINT, 2s).temporary()),
                              Redefine::InPlace, w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take().empty());
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(w.pid("b") == b);
    w.command(Command::Stop, "b");
    CHECK(w.fx.take() == stop_of("b", "INT"));
    w.advance(2s);
    CHECK(w.fx.take() == Actions{"kill b KILL"});
    // A worker definition for a supervisor is refused.
    CHECK(w.tree->redefine(w.tree->root(), def(W("b")), Redefine::InPlace, w.now).error().code ==
          EINVAL);
}

TEST_CASE("redefine a supervisor: the new intensity applies from now on, its history kept") {
    World w(abc(Strategy::OneForOne, 3));
    w.start();
    w.die("a", SIGSEGV);
    w.die("a", SIGSEGV);
    CHECK(w.tree->root().intensity->count() == 2);
    auto body = std::make_shared<const SupervisorSpec>(sup_spec(Strategy::OneForAll, 2, 5s, {}));
    REQUIRE(w.tree->redefine(w.tree->root(), body, w.now).ok());
    CHECK(w.tree->root().intensity->count() == 2);
    CHECK(w.tree->root().children.size() == 3);  // children are not the definition's business
    w.fx.take();
    w.die("b", SIGSEGV);  // the third within 5 s: more than 2
    CHECK(w.fx.count_logs(Event::Kind::GiveUp) == 1);
}

TEST_CASE("snapshot: a round trip is exact, and the restored tree goes on as the original") {
    World w(sup_spec(Strategy::OneForAll, 3, 5s,
                     {W("a"), W("b").notify(), W("c"),
                      sup("s", sup_spec(Strategy::RestForOne, {W("x"), W("y").notify(3s)}))}));
    w.start();
    w.ready("b");
    w.ready("s/y");
    // A restart in the history, a held node, a stop in progress with its
    // deadline, a start waiting for READY=1 with its deadline, a command in flight.
    w.die("a", SIGSEGV);
    w.stop_completes("s/y");
    w.stop_completes("s/x");
    w.stop_completes("c");
    w.stop_completes("b");
    w.ready("b");
    w.now += 1s;
    w.command(Command::Stop, "a");
    auto restart = w.command(Command::Restart, "s");
    w.fx.take();
    w.tree->take_finished();
    Snapshot snap = w.tree->snapshot();
    CHECK(snap.root.restart_history.size() == 1);

    FakeEffects fx2 = w.fx;
    Tree copy(snap, fx2);
    CHECK(copy.snapshot() == snap);
    CHECK(copy.next_deadline() == w.tree->next_deadline());
    CHECK(copy.node_count() == w.tree->node_count());

    // The same events from here give the same actions, logs and outcomes.
    auto drive = [&](Tree &t, FakeEffects &fx) {
        Time now = w.now;
        std::vector<std::string> out;
        auto pid_of = [&](const char *path) { return (*t.resolve(path))[0]->pid; };
        now += 5s;
        t.on_time(now);  // a's stop_timeout: SIGKILL
        t.on_exit(pid_of("a"), ExitStatus{true, SIGKILL}, now);
        if (pid_t y = pid_of("s/y")) t.on_exit(y, ExitStatus{true, SIGTERM}, now);
        if (pid_t x = pid_of("s/x")) t.on_exit(x, ExitStatus{true, SIGTERM}, now);
        if (auto *y = (*t.resolve("s/y"))[0]; y->state == State::Starting) t.on_ready(y->id, now);
        t.on_exit(pid_of("c"), ExitStatus{false, 1}, now);  // a crash: one_for_all
        for (auto &f : t.take_finished())
            out.push_back(std::to_string(f.ticket) + (f.result ? " ok" : " failed"));
        for (auto &a : fx.take()) out.push_back(a);
        for (auto &l : fx.take_logs()) out.push_back(l);
        return out;
    };
    auto original = drive(*w.tree, w.fx);
    auto restored = drive(copy, fx2);
    CHECK(restored == original);
    CHECK(copy.snapshot() == w.tree->snapshot());
    (void)restart;
}

TEST_CASE("pools: any instances makes a pool, 0 included; without it a single worker") {
    World w(sup_spec(Strategy::OneForOne, {W("a").instances(1), W("p").instances(0), W("b")}));
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a.0", "spawn b"}));
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a.0", "b"});
    auto empty = w.tree->resolve("p");
    REQUIRE(empty.ok());
    CHECK(empty->empty());
    CHECK(w.tree->resolve("a")->size() == 1);
    CHECK_FALSE(w.tree->resolve("b.0").ok());
}

TEST_CASE(
    "scale: up starts new instances in order where the pool stands, down removes from the top") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("p").instances(0), W("b")}));
    w.start();
    w.fx.take();
    auto up = w.tree->scale(w.tree->root(), "p", 3, w.now);
    REQUIRE(up.ok());
    CHECK(w.fx.take() == (Actions{"spawn p.0", "spawn p.1", "spawn p.2"}));
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "p.0", "p.1", "p.2", "b"});
    CHECK(w.finished(*up) == chip::Result<void>{});

    auto down = w.tree->scale(w.tree->root(), "p", 1, w.now);
    REQUIRE(down.ok());
    CHECK(w.fx.take() == stop_of("p.2"));
    // Growing while it shrinks would reuse a name still in use.
    CHECK(w.tree->scale(w.tree->root(), "p", 3, w.now).error().code == EBUSY);
    w.stop_completes("p.2");
    CHECK(w.fx.take() == (Actions{"removed p.2", "kill p.1 TERM", "kill p.1 CONT"}));
    w.stop_completes("p.1");
    CHECK(w.fx.take() == Actions{"removed p.1"});
    CHECK(w.finished(*down) == chip::Result<void>{});
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "p.0", "b"});

    REQUIRE(w.tree->scale(w.tree->root(), "p", 0, w.now).ok());
    w.stop_completes("p.0");
    CHECK(w.tree->resolve("p")->empty());
    REQUIRE(w.tree->scale(w.tree->root(), "p", 1, w.now).ok());
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"a", "p.0", "b"});
    CHECK(w.tree->scale(w.tree->root(), "a", 2, w.now).error().code == EINVAL);
}

TEST_CASE("scale: a pool of a stopped supervisor grows without starting") {
    World w(sup_spec(Strategy::OneForOne,
                     {sup("s", sup_spec(Strategy::OneForOne, {W("p").instances(1)}))}));
    w.start();
    w.command(Command::Stop, "s");
    w.stop_completes("s/p.0");
    w.fx.take();
    auto t = w.tree->scale(w.node("s"), "p", 2, w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take().empty());
    CHECK(w.state("s/p.1") == "stopped");
    w.command(Command::Start, "s");
    CHECK(w.fx.take() == (Actions{"spawn s/p.0", "spawn s/p.1"}));
}

TEST_CASE("remove_pool: every instance is stopped highest first, then the pool is gone") {
    World w(sup_spec(Strategy::OneForOne, {W("p").instances(2), W("b")}));
    w.start();
    w.fx.take();
    auto t = w.tree->remove_pool(w.tree->root(), "p", w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take() == stop_of("p.1"));
    w.stop_completes("p.1");
    w.stop_completes("p.0");
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK_FALSE(w.tree->resolve("p").ok());
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"b"});
}

TEST_CASE("reorder: the new order is the start order and the reverse stop order from now on") {
    World w(sup_spec(Strategy::OneForAll, {W("a"), W("p").instances(2), W("b"), W("c")}));
    w.start();
    w.fx.take();
    w.tree->reorder(w.tree->root(), {"c", "b", "a"});  // p, not named, follows
    CHECK(child_names(w.tree->root()) == std::vector<std::string>{"c", "b", "a", "p.0", "p.1"});
    w.die("b", SIGSEGV);
    CHECK(w.fx.take() == stop_of("p.1"));
    w.stop_completes("p.1");
    w.stop_completes("p.0");
    w.stop_completes("a");
    w.stop_completes("c");
    CHECK(w.fx.take() ==
          (Actions{"kill p.0 TERM", "kill p.0 CONT", "kill a TERM", "kill a CONT", "kill c TERM",
                   "kill c CONT", "spawn c", "spawn b", "spawn a", "spawn p.0", "spawn p.1"}));
    // A pool scaled after a reorder grows where the pool now stands.
    REQUIRE(w.tree->scale(w.tree->root(), "p", 3, w.now).ok());
    CHECK(child_names(w.tree->root()).back() == "p.2");
}

TEST_CASE("add: many inserts at the same place keep their order (ranks spread out when full)") {
    World w(abc(Strategy::OneForOne));
    w.start();
    for (int i = 0; i < 70; ++i)
        REQUIRE(w.tree
                    ->add(w.tree->root(), 1 + static_cast<std::size_t>(i),
                          W("x" + std::to_string(i)), w.now)
                    .ok());
    auto names = child_names(w.tree->root());
    REQUIRE(names.size() == 73);
    CHECK(names[0] == "a");
    CHECK(names[1] == "x0");
    CHECK(names[70] == "x69");
    CHECK(names[71] == "b");
    for (std::size_t i = 1; i < w.tree->root().children.size(); ++i)
        CHECK(w.tree->root().children[i - 1]->rank < w.tree->root().children[i]->rank);
    // A pool with no instance keeps its place among them.
    REQUIRE(w.tree->add(w.tree->root(), 0, W("p").instances(0), w.now).ok());
    REQUIRE(w.tree->scale(w.tree->root(), "p", 1, w.now).ok());
    CHECK(child_names(w.tree->root())[0] == "p.0");
}

// ---- on_give_up: stay_failed ---------------------------------------------------

namespace {
SupervisorSpec stay_failed(SupervisorSpec s) {
    s.on_give_up = chip::core::OnGiveUp::StayFailed;
    return s;
}
}  // namespace

TEST_CASE("stay_failed: a supervisor that gives up stays failed; its parent and siblings go on") {
    World w(
        sup_spec(Strategy::OneForAll, 3, 5s,
                 {W("a"), sup("flaky", stay_failed(sup_spec(Strategy::OneForOne, 1, 5s, {W("x")}))),
                  W("c")}));
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn flaky/x", "spawn c"}));
    w.exit_worker("flaky/x", 1);
    CHECK(w.fx.take() == Actions{"spawn flaky/x"});
    w.exit_worker("flaky/x", 2);  // the second restart within 5 s: flaky gives up
    CHECK(w.fx.take().empty());   // nothing to stop (x is down), nothing restarted
    CHECK(w.state("flaky") == "failed");
    CHECK(w.node("flaky").reason == "more than 1 restarts within 5 s; the last: x (exit status 2)");
    CHECK(w.fx.take_logs().back() ==
          "failed flaky: stays failed: more than 1 restarts within 5 s; the last: x (exit "
          "status 2)");
    // one_for_all did not apply: a and c keep their processes, the root is up.
    CHECK(w.state("/") == "running");
    CHECK(w.state("a") == "running");
    CHECK(w.node("/").intensity->count() == 0);
    CHECK(w.fx.exits.empty());
    // A crash of a sibling applies one_for_all, and leaves flaky alone.
    w.exit_worker("a", 1);
    CHECK(w.fx.take() == (Actions{"kill c TERM", "kill c CONT"}));
    w.stop_completes("c");
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn c"}));
    CHECK(w.state("flaky") == "failed");
    // A user start tries it again, with a fresh intensity.
    auto t = w.command(Command::Start, "flaky");
    CHECK(w.fx.take() == Actions{"spawn flaky/x"});
    CHECK(w.state("flaky") == "running");
    CHECK(w.node("flaky").reason.empty());
    auto done = w.finished(t);
    REQUIRE(done);
    CHECK(done->ok());
}

TEST_CASE("stay_failed: a failure during the parent's start leaves it failed and the rest start") {
    World w(sup_spec(
        Strategy::OneForOne, 3, 5s,
        {sup("flaky", stay_failed(sup_spec(Strategy::OneForOne, {W("x"), W("y")}))), W("b")}));
    w.fx.failures["flaky/y"] = Error{ENOENT, "no such program"};
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn flaky/x", "spawn-failed flaky/y", "kill flaky/x TERM",
                                  "kill flaky/x CONT"}));
    w.stop_completes("flaky/x");
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("flaky") == "failed");
    CHECK(w.node("flaky").reason == "child y failed to start: no such program");
    CHECK(w.state("/") == "running");
    CHECK(w.tree->settled());
    CHECK(w.fx.exits.empty());
}

TEST_CASE("stay_failed on the root: chipd keeps running with the tree failed; shutdown exits 0") {
    World w(stay_failed(sup_spec(Strategy::OneForOne, 0, 5s, {W("a")})));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn a"});
    w.exit_worker("a", 1);
    CHECK(w.state("/") == "failed");
    CHECK(w.fx.exits.empty());
    CHECK(w.tree->settled());
    CHECK(w.node("/").reason == "more than 0 restarts within 5 s; the last: a (exit status 1)");
    // Started again by the user.
    w.command(Command::Start, "/");
    CHECK(w.fx.take() == Actions{"spawn a"});
    CHECK(w.state("/") == "running");
    w.exit_worker("a", 1);
    CHECK(w.state("/") == "failed");
    w.tree->shutdown(w.now);
    CHECK(w.fx.exits == std::vector<int>{0});
}

TEST_CASE("escalate (the default): the same give-up fails the parent's start and exits 1") {
    World w(sup_spec(Strategy::OneForOne, 3, 5s,
                     {sup("flaky", sup_spec(Strategy::OneForOne, {W("x"), W("y")})), W("b")}));
    w.fx.failures["flaky/y"] = Error{ENOENT, "no such program"};
    w.start();
    w.fx.take();
    w.stop_completes("flaky/x");
    CHECK(w.fx.take() == Actions{"exit 1"});  // b is never started
    CHECK(w.state("/") == "failed");
    CHECK(w.fx.exits == std::vector<int>{1});
    CHECK_FALSE(w.tree->settled());
}

TEST_CASE("an unknown path gets \"did you mean\" the closest path") {
    World w(sup_spec(
        Strategy::OneForOne,
        {W("db"), sup("web", sup_spec(Strategy::OneForOne, {W("nginx"), W("api").instances(2)}))}));
    w.start();
    auto message = [&](const std::string &path) {
        auto r = w.tree->resolve(path);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ENOENT);
        return r.error().message;
    };
    // The name without its supervisors.
    CHECK(message("nginx") == "unknown path \"nginx\"; did you mean \"web/nginx\"?");
    CHECK(message("api") == "unknown path \"api\"; did you mean \"web/api\"?");
    // A near miss of a whole path, or of a name.
    CHECK(message("web/ngnix") == "unknown path \"web/ngnix\"; did you mean \"web/nginx\"?");
    CHECK(message("dc") == "unknown path \"dc\"; did you mean \"db\"?");
    CHECK(message("web/api.7") == "unknown path \"web/api.7\"; did you mean \"web/api.0\"?");
    // Nothing close.
    CHECK(message("postgres") == "unknown path \"postgres\"");
}

// ---- start = false ("start": false in a spec) ----------------------------------

TEST_CASE("start=false: the worker stays stopped at the tree's start, the others start") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").held(), W("c")}));
    w.start();
    CHECK(w.fx.take() == (Actions{"spawn a", "spawn c"}));
    CHECK(w.state("b") == "stopped");
    CHECK(w.state("/") == "running");
    CHECK(w.node("b").starts == 0);
}

TEST_CASE("start=false: a user start runs it, and from then on it is supervised as any") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").held()}));
    w.start();
    w.fx.take();
    auto t = w.command(Command::Start, "b");
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.finished(t) == chip::Result<void>{});
    CHECK(w.state("b") == "running");
    w.die("b", SIGSEGV);
    CHECK(w.fx.take() == Actions{"spawn b"});  // restarted: no longer held
    CHECK(w.node("b").restarts == 1);
}

TEST_CASE("start=false: a pool's instances and a supervisor's subtree stay stopped") {
    World w(sup_spec(Strategy::OneForOne,
                     {W("p").instances(2).held(),
                      sup("s", sup_spec(Strategy::OneForOne, {W("x"), W("y")}), false), W("z")}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn z"});
    for (auto p : {"p.0", "p.1", "s", "s/x", "s/y"}) CHECK(w.state(p) == "stopped");
    w.command(Command::Start, "p");
    CHECK(w.fx.take() == (Actions{"spawn p.0", "spawn p.1"}));
    w.command(Command::Start, "s");
    CHECK(w.fx.take() == (Actions{"spawn s/x", "spawn s/y"}));
    CHECK(w.state("s") == "running");
}

TEST_CASE("start=false: a child under a nested supervisor stays stopped through its restarts") {
    World w(sup_spec(Strategy::OneForOne,
                     {sup("s", sup_spec(Strategy::OneForAll, {W("x"), W("y").held()}))}));
    w.start();
    CHECK(w.fx.take() == Actions{"spawn s/x"});
    w.die("s/x", SIGSEGV);
    CHECK(w.fx.take() == Actions{"spawn s/x"});
    w.command(Command::Stop, "s");
    w.stop_completes("s/x");
    w.fx.take();
    w.command(Command::Start, "s");
    CHECK(w.fx.take() == Actions{"spawn s/x"});
    CHECK(w.state("s/y") == "stopped");
}

TEST_CASE("start=false: an added child stays stopped and its ticket finishes at once") {
    World w(abc(Strategy::OneForOne));
    w.start();
    w.fx.take();
    auto added = w.tree->add(w.tree->root(), 3, W("d").held(), w.now);
    REQUIRE(added.ok());
    CHECK(w.fx.take().empty());
    CHECK(w.state("d") == "stopped");
    CHECK(w.finished(added->ticket) == chip::Result<void>{});
    auto pool = w.tree->add(w.tree->root(), 4, W("p").instances(2).held(), w.now);
    REQUIRE(pool.ok());
    CHECK(w.fx.take().empty());
    CHECK(w.finished(pool->ticket) == chip::Result<void>{});
}

TEST_CASE("start=false: a pool grows held until one of its instances was started by the user") {
    World w(sup_spec(Strategy::OneForOne, {W("p").instances(1).held()}));
    w.start();
    w.fx.take();
    auto t = w.tree->scale(w.tree->root(), "p", 2, w.now);
    REQUIRE(t.ok());
    CHECK(w.fx.take().empty());
    CHECK(w.finished(*t) == chip::Result<void>{});
    CHECK(w.state("p.1") == "stopped");
    w.command(Command::Start, "p.0");
    CHECK(w.fx.take() == Actions{"spawn p.0"});
    REQUIRE(w.tree->scale(w.tree->root(), "p", 3, w.now).ok());
    CHECK(w.fx.take() == Actions{"spawn p.2"});
    CHECK(w.state("p.1") == "stopped");
    // A pool without start=false grows started, even with every instance stopped by the user.
    World v(sup_spec(Strategy::OneForOne, {W("q").instances(1)}));
    v.start();
    v.command(Command::Stop, "q");
    v.stop_completes("q.0");
    v.fx.take();
    REQUIRE(v.tree->scale(v.tree->root(), "q", 2, v.now).ok());
    CHECK(v.fx.take() == Actions{"spawn q.1"});
}

TEST_CASE("start=false: a new definition never changes whether a node runs") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").held()}));
    w.start();
    w.fx.take();
    // b's definition with start=true: b stays stopped (no restart either).
    auto on = std::make_shared<const WorkerSpec>(*static_cast<ChildSpec>(W("b")).worker);
    REQUIRE(w.tree->redefine(w.node("b"), on, Redefine::InPlace, w.now).ok());
    REQUIRE(w.tree->redefine(w.node("b"), on, Redefine::Restart, w.now).ok());
    CHECK(w.fx.take().empty());
    CHECK(w.state("b") == "stopped");
    // a's with start=false: a keeps running.
    auto off = std::make_shared<const WorkerSpec>(*static_cast<ChildSpec>(W("a").held()).worker);
    REQUIRE(w.tree->redefine(w.node("a"), off, Redefine::InPlace, w.now).ok());
    CHECK(w.fx.take().empty());
    CHECK(w.state("a") == "running");
}

TEST_CASE("start=false survives a snapshot: the node stays held") {
    World w(sup_spec(Strategy::OneForOne, {W("a"), W("b").held()}));
    w.start();
    FakeEffects fx2;
    Tree copy(w.tree->snapshot(), fx2);
    auto b = copy.resolve("b");
    REQUIRE(b.ok());
    CHECK((*b)[0]->held);
    CHECK(copy.snapshot() == w.tree->snapshot());
}
