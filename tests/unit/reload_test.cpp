// Reloads, pure: the diff of a running tree against a new spec (every row of
// the README's table), and the plan carried out on the fake clock.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/reload.hpp"
#include "core/tree.hpp"
#include "fake_effects.hpp"
#include "string_lists.hpp"
#include "spec/diff.hpp"
#include "spec/loader.hpp"

using namespace std::chrono_literals;
using chip::core::Change;
using chip::core::Command;
using chip::core::ExitStatus;
using chip::core::Node;
using chip::core::Plan;
using chip::core::Reload;
using chip::core::State;
using chip::core::Time;
using chip::core::Tree;
using chip::test::Actions;
using chip::test::FakeEffects;

namespace {

chip::spec::Spec load(const std::string &text) {
    return chip::spec::load_string(text, "t.json", "/spec");
}

// "CHANGE PATH" lines, as chipctl prints them.
std::vector<std::string> lines(const std::vector<Change> &changes) {
    std::vector<std::string> out;
    for (const auto &c : changes)
        out.push_back(std::string(chip::core::change_name(c.kind)) + " " + c.path);
    return out;
}

// A tree running the spec TEXT in a fake world; reloads are applied to it.
struct Running {
    chip::spec::Spec spec;
    FakeEffects fx;
    Time now = 1000s;
    std::unique_ptr<Tree> tree;
    std::unique_ptr<Reload> reload;
    chip::spec::Spec next;  // the definitions the tree points into after a reload

    explicit Running(const std::string &text) : spec(load(text)) {
        tree = std::make_unique<Tree>(spec.root, fx);
        tree->start(now);
        ready_all();
        fx.take();
    }

    Node &node(const std::string &path) {
        auto r = tree->resolve(path);
        REQUIRE_MESSAGE(r.ok(), "no node " << path);
        REQUIRE(r->size() == 1);
        return *r->front();
    }
    pid_t pid(const std::string &path) { return node(path).pid; }
    std::string state(const std::string &path) { return chip::core::state_name(node(path).state); }
    std::vector<std::string> paths() {
        std::vector<std::string> out;
        Tree::walk(tree->root(), [&](Node &n) { out.push_back(n.path); });
        return out;
    }

    std::vector<std::string> diff(const std::string &text) {
        next = load(text);
        return lines(chip::spec::diff(tree->root(), *next.root).changes);
    }
    void begin(const std::string &text) {
        next = load(text);
        reload = std::make_unique<Reload>(*tree, chip::spec::diff(tree->root(), *next.root));
        reload->begin(now);
        pump();
    }
    // Hands the tree's finished tickets to the reload (which may finish more).
    void pump() {
        for (auto done = tree->take_finished(); !done.empty(); done = tree->take_finished())
            for (auto &f : done)
                if (reload) reload->on_finished(f, now);
    }
    // The first worker, in tree order, for which PRED holds (the tree may
    // change once it is acted on, so nothing is done while walking).
    Node *first(const std::function<bool(const Node &)> &pred) {
        Node *found = nullptr;
        Tree::walk(tree->root(), [&](Node &n) {
            if (!found && !n.is_supervisor && pred(n)) found = &n;
        });
        return found;
    }
    // Every worker that is stopping obeys its stop signal, one event at a time.
    void stops_complete() {
        while (Node *n = first([](const Node &n) { return n.state == State::Stopping && n.pid; })) {
            tree->on_exit(n->pid, ExitStatus{true, n->worker->stop_signal}, now);
            pump();
        }
    }
    void ready(const std::string &path) {
        tree->on_ready(node(path).id, now);
        pump();
    }
    void ready_all() {
        while (Node *n = first([](const Node &n) { return n.state == State::Starting; })) {
            tree->on_ready(n->id, now);
            pump();
        }
    }
    void settle() {
        for (int i = 0; i < 100 && !(reload && reload->done()); ++i) {
            stops_complete();
            ready_all();
        }
    }
};

const std::string kBase = R"({"root": {"strategy": "one_for_one", "children": [
    {"name": "a", "command": ["/bin/a"]},
    {"name": "b", "command": ["/bin/b"], "stop_timeout": 3},
    {"name": "s", "supervisor": {"strategy": "one_for_all", "children": [
        {"name": "x", "command": ["/bin/x"]},
        {"name": "p", "command": ["/bin/p"], "instances": 2}]}},
    {"name": "c", "command": ["/bin/c"]}]}})";

// kBase with FROM replaced by TO (the first occurrence).
std::string edit(const std::string &from, const std::string &to, std::string text = kBase) {
    auto at = text.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, from);
    return text.replace(at, from.size(), to);
}

}  // namespace

// ---- the diff: every row of the table ------------------------------------------

TEST_CASE("diff: the same spec changes nothing") {
    Running r(kBase);
    CHECK(r.diff(kBase).empty());
}

TEST_CASE("diff: launch fields restart the worker") {
    Running r(kBase);
    CHECK(r.diff(edit(R"(["/bin/a"])", R"(["/bin/a", "-v"])")) ==
          std::vector<std::string>{"restart a"});
    CHECK(r.diff(edit(R"(["/bin/a"]})", R"(["/bin/a"], "env": {"X": "1"}})")) ==
          std::vector<std::string>{"restart a"});
    CHECK(r.diff(edit(R"(["/bin/a"]})", R"(["/bin/a"], "cwd": "/tmp"})")) ==
          std::vector<std::string>{"restart a"});
    CHECK(r.diff(edit(R"(["/bin/a"]})", R"(["/bin/a"], "ready": "notify"})")) ==
          std::vector<std::string>{"restart a"});
    CHECK(r.diff(edit(R"(["/bin/a"]})", R"(["/bin/a"], "stdout": "null"})")) ==
          std::vector<std::string>{"restart a"});
    CHECK(r.diff(edit(R"(["/bin/a"]})", R"(["/bin/a"], "user": "root"})")) ==
          std::vector<std::string>{"restart a"});
}

TEST_CASE("diff: supervision fields and join update the worker in place") {
    Running r(R"({"registries": ["r"], "root": {"children": [
        {"name": "a", "command": ["/bin/a"], "join": {"r": ["g"]}}]}})");
    auto with = [](const std::string &fields) {
        return R"({"registries": ["r"], "root": {"children": [
        {"name": "a", "command": ["/bin/a"], "join": {"r": ["g"]})" +
               fields + "}]}}";
    };
    for (const char *f : {R"(, "restart": "transient")", R"(, "start_timeout": 2)",
                          R"(, "stop_signal": "INT")", R"(, "stop_timeout": 1)"})
        CHECK(r.diff(with(f)) == std::vector<std::string>{"update a"});
    CHECK(r.diff(R"({"registries": ["r"], "root": {"children": [
        {"name": "a", "command": ["/bin/a"], "join": {"r": ["g", "h"]}}]}})") ==
          std::vector<std::string>{"update a"});
}

TEST_CASE("diff: a pool's instances add and remove instances, highest removed first") {
    Running r(kBase);
    CHECK(r.diff(edit(R"("instances": 2)", R"("instances": 4)")) ==
          (std::vector<std::string>{"add s/p.2", "add s/p.3"}));
    CHECK(r.diff(edit(R"("instances": 2)", R"("instances": 0)")) ==
          (std::vector<std::string>{"remove s/p.1", "remove s/p.0"}));
    // A new definition and more instances: the kept ones restart, rolling.
    CHECK(r.diff(edit(R"(["/bin/p"], "instances": 2)", R"(["/bin/p2"], "instances": 3)")) ==
          (std::vector<std::string>{"restart s/p.0", "restart s/p.1", "add s/p.2"}));
}

TEST_CASE("diff: a supervisor's strategy, intensity and child order are updates") {
    Running r(kBase);
    CHECK(r.diff(edit(R"("strategy": "one_for_all")", R"("strategy": "rest_for_one")")) ==
          std::vector<std::string>{"update s"});
    CHECK(r.diff(edit(R"("strategy": "one_for_one")", R"("max_restarts": 9)")) ==
          std::vector<std::string>{"update /"});
    std::string swapped = R"({"root": {"strategy": "one_for_one", "children": [
    {"name": "b", "command": ["/bin/b"], "stop_timeout": 3},
    {"name": "a", "command": ["/bin/a"]},
    {"name": "s", "supervisor": {"strategy": "one_for_all", "children": [
        {"name": "x", "command": ["/bin/x"]},
        {"name": "p", "command": ["/bin/p"], "instances": 2}]}},
    {"name": "c", "command": ["/bin/c"]}]}})";
    CHECK(r.diff(swapped) == std::vector<std::string>{"update /"});
}

TEST_CASE("diff: children only in the spec are added, only in the tree removed") {
    Running r(kBase);
    CHECK(r.diff(edit(
              R"({"name": "c", "command": ["/bin/c"]})",
              R"({"name": "c", "command": ["/bin/c"]}, {"name": "d", "command": ["/bin/d"]})")) ==
          std::vector<std::string>{"add d"});
    CHECK(r.diff(edit(R"(,
    {"name": "c", "command": ["/bin/c"]})",
                      "")) == std::vector<std::string>{"remove c"});
    // A whole subtree is one change each way.
    CHECK(r.diff(edit(R"({"name": "x", "command": ["/bin/x"]},)",
                      R"({"name": "x", "supervisor": {}},)")) ==
          (std::vector<std::string>{"remove s/x", "add s/x"}));
}

TEST_CASE("diff: the order is removals (deepest, latest first), updates, restarts, additions") {
    Running r(kBase);
    std::string next = R"({"root": {"strategy": "one_for_all", "children": [
    {"name": "a", "command": ["/bin/a2"]},
    {"name": "s", "supervisor": {"strategy": "one_for_all", "children": [
        {"name": "p", "command": ["/bin/p"], "instances": 2, "stop_timeout": 1},
        {"name": "y", "command": ["/bin/y"]}]}},
    {"name": "d", "command": ["/bin/d"]}]}})";
    CHECK(r.diff(next) == (std::vector<std::string>{"remove c", "remove s/x", "remove b",
                                                    "update /", "update s/p.0", "update s/p.1",
                                                    "restart a", "add s/y", "add d"}));
}

TEST_CASE("diff: nodes added at run time are kept unless the spec defines them") {
    Running r(kBase);
    chip::core::ChildSpec dyn;
    dyn.name = "extra";
    dyn.worker = r.node("a").worker;
    REQUIRE(r.tree->add(r.tree->root(), 9, dyn, r.now, true).ok());
    CHECK(r.diff(kBase).empty());
}

TEST_CASE("diff_registries: added, removed, and capacities refused") {
    auto old = load(R"({"registries": ["a", {"name": "b", "max_groups": 8}], "root": {}})");
    auto next = load(R"({"registries": [{"name": "b", "max_groups": 9}, "c"], "root": {}})");
    auto d = chip::spec::diff_registries(old.registries, next.registries);
    REQUIRE(d.added.size() == 1);
    CHECK(d.added[0].name == "c");
    CHECK(d.removed == std::vector<std::string>{"a"});
    REQUIRE(d.refused.size() == 1);
    CHECK(d.refused[0].find("registry b") == 0);
}

// ---- the plan carried out ---------------------------------------------------------

TEST_CASE("reload: unchanged workers keep their pids; a changed one alone restarts, uncounted") {
    Running r(kBase);
    auto before = std::vector<pid_t>{r.pid("a"), r.pid("c"), r.pid("s/x"), r.pid("s/p.0")};
    pid_t b = r.pid("b");
    r.begin(edit(R"(["/bin/b"])", R"(["/bin/b", "--new"])"));
    CHECK(r.fx.take() == (Actions{"kill b TERM", "kill b CONT"}));
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.reload->result().ok());
    CHECK(r.fx.take() == Actions{"spawn b"});
    CHECK(r.pid("b") != b);
    CHECK(before == std::vector<pid_t>{r.pid("a"), r.pid("c"), r.pid("s/x"), r.pid("s/p.0")});
    CHECK(r.tree->root().intensity->count() == 0);
}

TEST_CASE("reload: a pool of four restarts rolling, never fewer than three running") {
    std::string base = R"({"root": {"children": [
        {"name": "web", "command": ["/bin/web"], "instances": 4, "ready": "notify"}]}})";
    Running r(base);
    auto web = [&](const std::string &cmd) {
        return R"({"root": {"children": [{"name": "web", "command": [")" + cmd +
               R"("], "instances": 4, "ready": "notify"}]}})";
    };
    r.begin(web("/bin/web2"));
    std::vector<std::string> order;
    std::size_t fewest = 4;
    for (int step = 0; step < 50 && !r.reload->done(); ++step) {
        std::size_t running = 0;
        auto group = r.tree->resolve("web");
        REQUIRE(group.ok());
        for (auto *n : *group) running += n->state == State::Running;
        fewest = std::min(fewest, running);
        for (const auto &a : r.fx.take())
            if (a.rfind("spawn", 0) == 0) order.push_back(a);
        r.stops_complete();
        r.ready_all();
    }
    for (const auto &a : r.fx.take())
        if (a.rfind("spawn", 0) == 0) order.push_back(a);
    REQUIRE(r.reload->done());
    CHECK(fewest == 3);
    CHECK(order ==
          (std::vector<std::string>{"spawn web.0", "spawn web.1", "spawn web.2", "spawn web.3"}));
    CHECK(r.reload->changes().size() == 4);
}

TEST_CASE("reload: removals finish before additions start, added nodes in tree order") {
    Running r(kBase);
    r.begin(R"({"root": {"children": [
        {"name": "n1", "command": ["/bin/n1"]},
        {"name": "a", "command": ["/bin/a"]},
        {"name": "n2", "command": ["/bin/n2"]}]}})");
    auto first = r.fx.take();
    REQUIRE_FALSE(first.empty());
    CHECK(first.front() == "kill c TERM");  // the latest first
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.paths() == (std::vector<std::string>{"/", "n1", "a", "n2"}));
    auto actions = r.fx.take();
    auto spawned = std::vector<std::string>(actions.end() - 2, actions.end());
    CHECK(spawned == (std::vector<std::string>{"spawn n1", "spawn n2"}));
}

TEST_CASE("reload: a node the user stopped stays stopped with its new definition") {
    Running r(kBase);
    auto t = r.tree->command(Command::Stop, "b", r.now);
    REQUIRE(t.ok());
    r.stops_complete();
    r.tree->take_finished();
    r.fx.take();
    r.begin(edit(R"(["/bin/b"])", R"(["/bin/b", "--new"])"));
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.fx.take().empty());
    CHECK(r.state("b") == "stopped");
    CHECK(chip::spec::launch_of(*r.node("b").worker).command.back() == "--new");
}

TEST_CASE("reload: a crash during a rolling restart is handled by the strategy, the roll goes on") {
    std::string base = R"({"root": {"children": [
        {"name": "web", "command": ["/bin/web"], "instances": 3}]}})";
    Running r(base);
    r.begin(R"({"root": {"children": [{"name": "web", "command": ["/bin/w2"], "instances": 3}]}})");
    // web.0 is being restarted; web.2 crashes meanwhile.
    r.tree->on_exit(r.pid("web.2"), ExitStatus{true, SIGSEGV}, r.now);
    r.pump();
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.reload->result().ok());
    for (const char *p : {"web.0", "web.1", "web.2"}) CHECK(r.state(p) == "running");
    CHECK(chip::spec::launch_of(*r.node("web.2").worker).command[0] == "/bin/w2");
}

TEST_CASE("reload: arriving while a one_for_all restart is under way, both complete") {
    Running r(kBase);
    r.tree->on_exit(r.pid("s/x"), ExitStatus{true, SIGSEGV}, r.now);  // one_for_all in s
    r.fx.take();
    r.begin(edit(R"({"name": "c", "command": ["/bin/c"]})",
                 R"({"name": "c", "command": ["/bin/c"]}, {"name": "d", "command": ["/bin/d"]})"));
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.reload->result().ok());
    r.stops_complete();  // the strategy's restart goes on
    for (const char *p : {"s/x", "s/p.0", "s/p.1", "d"}) CHECK(r.state(p) == "running");
}

TEST_CASE("reload: a node that fails to start makes the result EIO, counted as any failed start") {
    Running r(kBase);
    r.fx.failures["d"] = chip::Error{ENOENT, "cannot execute /bin/d"};
    r.begin(edit(R"({"name": "c", "command": ["/bin/c"]})",
                 R"({"name": "c", "command": ["/bin/c"]}, {"name": "d", "command": ["/bin/d"]})"));
    r.settle();
    REQUIRE(r.reload->done());
    CHECK_FALSE(r.reload->result().ok());
    CHECK(r.reload->result().error().code == EIO);
    CHECK(r.tree->root().intensity->count() >= 1);
}

// ---- "start": false across reloads ----------------------------------------------

TEST_CASE("diff: a change of start is an update of the worker, pool or supervisor") {
    Running r(kBase);
    CHECK(r.diff(edit(R"(["/bin/a"]})", R"(["/bin/a"], "start": false})")) ==
          std::vector<std::string>{"update a"});
    CHECK(r.diff(edit(R"("instances": 2})", R"("instances": 2, "start": false})")) ==
          (std::vector<std::string>{"update s/p.0", "update s/p.1"}));
    CHECK(r.diff(edit(R"({"name": "s", )", R"({"name": "s", "start": false, )")) ==
          std::vector<std::string>{"update s"});
}

TEST_CASE("reload: a stopped start=false child stays stopped; a new one is added stopped") {
    std::string off = R"({"root": {"children": [
        {"name": "a", "command": ["/bin/a"]},
        {"name": "job", "command": ["/bin/job"], "start": false}]}})";
    Running r(off);
    CHECK(r.state("job") == "stopped");
    // Another field changes: still stopped, with the new definition.
    std::string changed = edit(R"(["/bin/job"])", R"(["/bin/job", "-v"])", off);
    r.begin(changed);
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.fx.take().empty());
    CHECK(r.state("job") == "stopped");
    // A new child with start=false is added stopped; the reload is done at once.
    r.begin(edit(R"({"name": "job")",
                 R"({"name": "later", "command": ["/bin/l"], "start": false}, {"name": "job")",
                 changed));
    r.settle();
    REQUIRE(r.reload->done());
    CHECK(r.reload->result().ok());
    CHECK(r.fx.take().empty());
    CHECK(r.state("later") == "stopped");
}

TEST_CASE("reload: start changed either way leaves the node running or stopped as it is") {
    std::string off = R"({"root": {"children": [
        {"name": "a", "command": ["/bin/a"]},
        {"name": "job", "command": ["/bin/job"], "start": false}]}})";
    Running r(off);
    // true for a node never started: it stays stopped until `chipctl start`.
    std::string on = edit(R"(, "start": false)", "", off);
    r.begin(on);
    r.settle();
    CHECK(r.fx.take().empty());
    CHECK(r.state("job") == "stopped");
    // false for a running node: it keeps running.
    r.begin(edit(R"(["/bin/a"]})", R"(["/bin/a"], "start": false})", on));
    r.settle();
    CHECK(r.fx.take().empty());
    CHECK(r.state("a") == "running");
}
