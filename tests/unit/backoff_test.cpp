// Restart backoff in the supervision core, against a fake world and a fake
// clock: the delays, their cap and jitter, reset_after, the group hold of
// one_for_all, and the commands and shutdown during a wait.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tree.hpp"
#include "fake_effects.hpp"
#include "string_lists.hpp"

using namespace std::chrono_literals;
using chip::core::Backoff;
using chip::core::ChildSpec;
using chip::core::Command;
using chip::core::ExitStatus;
using chip::core::Node;
using chip::core::Snapshot;
using chip::core::State;
using chip::core::Strategy;
using chip::core::SupervisorSpec;
using chip::core::Time;
using chip::core::Tree;
using chip::core::WorkerSpec;
using chip::test::Actions;
using chip::test::FakeEffects;
using Logs = std::vector<std::string>;

namespace {

Backoff backoff(std::chrono::nanoseconds initial, std::chrono::nanoseconds max = 30s,
                double factor = 2, double jitter = 0.1,
                std::chrono::nanoseconds reset_after = 10s) {
    return Backoff{initial, max, factor, jitter, reset_after};
}

ChildSpec worker(std::string name, std::optional<Backoff> b = std::nullopt) {
    WorkerSpec w;
    w.backoff = b;
    ChildSpec c;
    c.name = std::move(name);
    c.worker = std::make_shared<const WorkerSpec>(w);
    return c;
}

ChildSpec supervisor(std::string name, SupervisorSpec body) {
    ChildSpec c;
    c.name = std::move(name);
    c.is_supervisor = true;
    c.supervisor = std::make_shared<const SupervisorSpec>(std::move(body));
    return c;
}

SupervisorSpec body(Strategy s, std::vector<ChildSpec> children, unsigned max_restarts = 100,
                    std::chrono::nanoseconds period = 1000s) {
    SupervisorSpec sp;
    sp.strategy = s;
    sp.max_restarts = max_restarts;
    sp.period = period;
    sp.children = std::move(children);
    return sp;
}

struct World {
    FakeEffects fx;
    Time now = 1000s;
    std::unique_ptr<Tree> tree;

    explicit World(SupervisorSpec s) {
        tree = std::make_unique<Tree>(std::make_shared<const SupervisorSpec>(std::move(s)), fx);
        tree->start(now);
        fx.take();
        fx.take_logs();
    }
    Node &node(const std::string &path) {
        auto r = tree->resolve(path);
        REQUIRE_MESSAGE(r.ok(), "no node " << path);
        REQUIRE(r->size() == 1);
        return *r->front();
    }
    std::string state(const std::string &path) { return chip::core::state_name(node(path).state); }
    void advance(std::chrono::nanoseconds d) {
        now += d;
        tree->on_time(now);
    }
    void crash(const std::string &path) {
        pid_t p = node(path).pid;
        REQUIRE_MESSAGE(p != 0, path << " has no process");
        tree->on_exit(p, ExitStatus{false, 1}, now);
    }
    void stopped(const std::string &path) {
        Node &n = node(path);
        REQUIRE(n.state == State::Stopping);
        tree->on_exit(n.pid, ExitStatus{true, SIGTERM}, now);
    }
    // How long until the wait of PATH ends.
    std::chrono::nanoseconds wait_of(const std::string &path) {
        Node &n = node(path);
        REQUIRE(n.state == State::Backoff);
        REQUIRE(n.deadline != Time{});
        return n.deadline - now;
    }
    std::uint64_t command(Command c, const std::string &path) {
        auto r = tree->command(c, path, now);
        REQUIRE_MESSAGE(r.ok(), "command on " << path << ": " << r.error().message);
        return *r;
    }
    std::optional<chip::Result<void>> finished(std::uint64_t ticket) {
        std::optional<chip::Result<void>> out;
        for (auto &f : tree->take_finished())
            if (f.ticket == ticket) out = f.result;
        return out;
    }
};

// The delay of the K-th restart, with the jitter's random factor R in [0, 1).
std::chrono::nanoseconds expected(const Backoff &b, unsigned k, double r) {
    double base = std::min(static_cast<double>(b.max.count()),
                           static_cast<double>(b.initial.count()) * std::pow(b.factor, k - 1));
    return std::chrono::nanoseconds(std::llround(base * (1 + b.jitter * (2 * r - 1))));
}

}  // namespace

TEST_CASE("backoff: without one a restart is immediate and asks for no random number") {
    World w(body(Strategy::OneForOne, {worker("a")}));
    w.crash("a");
    CHECK(w.fx.take() == Actions{"spawn a"});
    CHECK(w.state("a") == "running");
    CHECK(w.fx.random_calls == 0);
    CHECK_FALSE(w.tree->next_deadline());
}

TEST_CASE("backoff: the delays grow by factor up to max, within the jitter's bounds") {
    Backoff b = backoff(1s, 8s, 2, 0.1);
    for (double r : {0.0, 0.5, 0.999999}) {
        INFO("random " << r);
        World w(body(Strategy::OneForOne, {worker("a", b)}));
        w.fx.random_value = r;
        std::vector<std::chrono::nanoseconds> delays;
        for (unsigned k = 1; k <= 6; ++k) {
            w.crash("a");
            CHECK(w.fx.take().empty());
            CHECK(w.state("a") == "backoff");
            auto d = w.wait_of("a");
            CHECK(d == expected(b, k, r));
            // Within [1 - jitter, 1 + jitter] of min(max, initial * factor^(k-1)).
            double base = std::min(8.0, std::pow(2.0, k - 1));
            CHECK(d.count() >= std::llround(base * 0.9e9));
            CHECK(d.count() <= std::llround(base * 1.1e9));
            CHECK(*w.tree->next_deadline() == w.now + d);
            // Not a moment earlier.
            w.advance(d - 1ns);
            CHECK(w.fx.take().empty());
            CHECK(w.state("a") == "backoff");
            w.advance(1ns);
            CHECK(w.fx.take() == Actions{"spawn a"});
            CHECK(w.state("a") == "running");
            delays.push_back(d);
        }
        // 1, 2, 4, 8, then capped at 8.
        CHECK(delays[4] == delays[3]);
        CHECK(delays[5] == delays[3]);
    }
}

TEST_CASE("backoff: the exit logs restart then backoff with the delay") {
    World w(body(Strategy::OneForOne, {worker("a", backoff(200ms, 1s, 2, 0))}));
    w.crash("a");
    CHECK(w.fx.take_logs() == Logs{"exit a", "restart a 1", "backoff a 200ms"});
    w.advance(200ms);
    CHECK(w.fx.take_logs() == Logs{"start a"});
    w.crash("a");
    CHECK(w.fx.take_logs() == Logs{"exit a", "restart a 2", "backoff a 400ms"});
}

TEST_CASE("backoff: a child that stayed up reset_after starts again at the initial delay") {
    World w(body(Strategy::OneForOne, {worker("a", backoff(1s, 30s, 2, 0, 10s))}));
    for (auto d : {1s, 2s, 4s}) {
        w.crash("a");
        CHECK(w.wait_of("a") == d);
        w.advance(d);
    }
    // Up 9.9 s: not long enough, the next delay is 8 s.
    w.advance(9900ms);
    w.crash("a");
    CHECK(w.wait_of("a") == 8s);
    w.advance(8s);
    // Up reset_after: back to 1 s, then 2 s.
    w.advance(10s);
    w.crash("a");
    CHECK(w.wait_of("a") == 1s);
    w.advance(1s);
    w.crash("a");
    CHECK(w.wait_of("a") == 2s);
}

TEST_CASE("backoff: a supervisor body's backoff is its children's default; their own wins") {
    SupervisorSpec root = body(Strategy::OneForOne, {worker("a"), worker("b", backoff(5s))});
    root.children_backoff = backoff(1s, 30s, 2, 0);
    World w(root);
    w.crash("a");
    CHECK(w.wait_of("a") == 1s);
    w.crash("b");
    CHECK(w.wait_of("b") == 5s);
}

TEST_CASE("backoff: a supervisor child that gave up waits its own backoff before its restart") {
    SupervisorSpec inner = body(Strategy::OneForOne, {worker("x")}, 0, 5s);
    inner.backoff = backoff(3s, 30s, 2, 0);
    // The inner body's default is for x, not for s itself.
    inner.children_backoff = backoff(7s, 30s, 2, 0);
    World w(body(Strategy::OneForOne, {supervisor("s", inner)}));
    w.crash("s/x");
    CHECK(w.state("s") == "backoff");
    CHECK(w.state("s/x") == "exited");
    CHECK(w.wait_of("s") == 3s);
    w.fx.take();
    w.advance(3s);
    CHECK(w.fx.take() == Actions{"spawn s/x"});
    CHECK(w.state("s") == "running");
}

TEST_CASE("backoff: one_for_all stops the others at once and starts the group after the delay") {
    World w(
        body(Strategy::OneForAll, {worker("a"), worker("b", backoff(2s, 30s, 2, 0)), worker("c")}));
    w.crash("b");
    CHECK(w.fx.take() == Actions{"kill c TERM", "kill c CONT"});
    CHECK(w.state("b") == "backoff");
    w.stopped("c");
    CHECK(w.fx.take() == Actions{"kill a TERM", "kill a CONT"});
    w.stopped("a");
    CHECK(w.fx.take().empty());
    CHECK(w.state("a") == "stopped");
    CHECK(w.state("c") == "stopped");
    w.advance(1999ms);
    CHECK(w.fx.take().empty());
    w.advance(1ms);
    CHECK(w.fx.take() == Actions{"spawn a", "spawn b", "spawn c"});
    CHECK(w.tree->root().state == State::Running);
}

TEST_CASE("backoff: rest_for_one holds the start of the children after it too") {
    World w(body(Strategy::RestForOne,
                 {worker("a"), worker("b", backoff(2s, 30s, 2, 0)), worker("c")}));
    w.crash("b");
    CHECK(w.fx.take() == Actions{"kill c TERM", "kill c CONT"});
    w.stopped("c");
    CHECK(w.fx.take().empty());
    CHECK(w.state("a") == "running");
    w.advance(2s);
    CHECK(w.fx.take() == Actions{"spawn b", "spawn c"});
}

TEST_CASE("backoff: with one_for_one a sibling's restart is not held up by a waiting child") {
    World w(body(Strategy::OneForOne, {worker("a", backoff(10s, 30s, 2, 0)),
                                       worker("b", backoff(1s, 30s, 2, 0)), worker("c")}));
    w.crash("a");
    CHECK(w.state("a") == "backoff");
    // c has no backoff: at once.
    w.crash("c");
    CHECK(w.fx.take() == Actions{"spawn c"});
    // b waits its own 1 s, not a's 10 s.
    w.crash("b");
    w.advance(1s);
    CHECK(w.fx.take() == Actions{"spawn b"});
    CHECK(w.state("a") == "backoff");
    w.advance(9s);
    CHECK(w.fx.take() == Actions{"spawn a"});
}

TEST_CASE("backoff: start or restart during the wait starts it at once") {
    for (Command cmd : {Command::Start, Command::Restart}) {
        World w(body(Strategy::OneForOne, {worker("a", backoff(5s))}));
        w.crash("a");
        w.fx.take();
        auto ticket = w.command(cmd, "a");
        CHECK(w.fx.take() == Actions{"spawn a"});
        CHECK(w.state("a") == "running");
        auto done = w.finished(ticket);
        REQUIRE(done);
        CHECK(done->ok());
        CHECK_FALSE(w.tree->next_deadline());
        w.advance(10s);
        CHECK(w.fx.take().empty());
    }
}

TEST_CASE("backoff: restart of the waiting child under one_for_all releases the group") {
    World w(body(Strategy::OneForAll, {worker("a"), worker("b", backoff(5s))}));
    w.crash("b");
    w.fx.take();
    w.stopped("a");
    CHECK(w.fx.take().empty());
    w.command(Command::Restart, "b");
    CHECK(w.fx.take() == Actions{"spawn a", "spawn b"});
}

TEST_CASE("backoff: stop during the wait cancels it; the child is stopped and held") {
    World w(body(Strategy::OneForOne, {worker("a", backoff(5s))}));
    w.crash("a");
    auto ticket = w.command(Command::Stop, "a");
    CHECK(w.state("a") == "stopped");
    auto done = w.finished(ticket);
    REQUIRE(done);
    CHECK(done->ok());
    CHECK_FALSE(w.tree->next_deadline());
    w.fx.take();
    w.advance(10s);
    CHECK(w.fx.take().empty());
    w.command(Command::Start, "a");
    CHECK(w.fx.take() == Actions{"spawn a"});
}

TEST_CASE("backoff: stop of the waiting child under one_for_all lets the others start") {
    World w(body(Strategy::OneForAll, {worker("a"), worker("b", backoff(5s))}));
    w.crash("b");
    w.fx.take();
    w.stopped("a");
    w.command(Command::Stop, "b");
    CHECK(w.fx.take() == Actions{"spawn a"});
    CHECK(w.state("b") == "stopped");
}

TEST_CASE("backoff: shutdown cancels every wait and exits 0") {
    SupervisorSpec inner = body(Strategy::OneForOne, {worker("x", backoff(5s))});
    World w(body(Strategy::OneForOne, {worker("a", backoff(5s)), supervisor("s", inner)}));
    w.crash("a");
    w.crash("s/x");
    w.fx.take();
    w.tree->shutdown(w.now);
    CHECK(w.fx.take() == Actions{"exit 0"});
    CHECK(w.state("a") == "stopped");
    CHECK(w.state("s/x") == "stopped");
    CHECK_FALSE(w.tree->next_deadline());
}

TEST_CASE("backoff: the restart is counted at the exit; a child failing forever gives up") {
    World w(body(Strategy::OneForOne, {worker("a", backoff(1s, 30s, 2, 0))}, 2, 100s));
    w.crash("a");
    w.advance(1s);
    w.crash("a");
    CHECK(w.tree->root().intensity->count() == 2);
    w.advance(2s);
    w.fx.take();
    w.fx.take_logs();
    w.crash("a");
    CHECK(w.fx.take() == Actions{"exit 1"});
    CHECK(w.fx.take_logs()[1] == "give-up / 2: more than 2 restarts within 100 s");
    CHECK(w.tree->root().state == State::Failed);
}

TEST_CASE("backoff: the summary counts waiting children apart") {
    World w(body(Strategy::OneForOne, {worker("a", backoff(1s)), worker("b")}));
    w.crash("a");
    auto s = w.tree->summary();
    CHECK(s.backoff == 1);
    CHECK(s.running == 1);
    CHECK(s.exited == 0);
}

TEST_CASE("backoff: a snapshot in the middle of a wait round-trips and goes on") {
    World w(body(Strategy::OneForAll, {worker("a"), worker("b", backoff(1s, 30s, 2, 0))}));
    w.crash("b");
    w.stopped("a");
    w.advance(1s);
    w.crash("b");
    w.stopped("a");
    w.fx.take();
    CHECK(w.wait_of("b") == 2s);
    Snapshot snap = w.tree->snapshot();
    FakeEffects fx2;
    Tree copy(snap, fx2);
    CHECK(copy.snapshot() == snap);
    CHECK(copy.next_deadline() == w.tree->next_deadline());
    copy.on_time(w.now + 2s);
    CHECK(fx2.take() == Actions{"spawn a", "spawn b"});
    // k was kept: the next delay is 4 s.
    auto &b = *copy.resolve("b")->front();
    copy.on_exit(b.pid, ExitStatus{false, 1}, w.now + 2s);
    CHECK(b.state == State::Backoff);
    CHECK(b.deadline == w.now + 6s);
}
