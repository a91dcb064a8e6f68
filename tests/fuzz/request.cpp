// Fuzz target: the control protocol's request handling (src/daemon/
// requests.hpp) as chipd drives it, without a socket: request lines cut as
// the control socket cuts them, each dispatched on a tree of fake processes
// with a registry in heap memory, the answers due settled after each, and
// every answer turned into its protocol line.
//
// Input: lines. A line that starts with '#' is not sent: each of its bytes
// is something that happens in the world meanwhile ('t' a second passes, 'T'
// a minute, 'x' the first running worker exits with status 1, 'k' the first
// stopping worker exits on its stop signal, 'r' the starting workers send
// READY=1, 'c' the oldest connection waiting
// for an answer closes (else the current one), 'd' a registry member dies, 'h' a
// SIGHUP reload). Other lines are requests of the current connection; a
// connection whose request is deferred or its last is set aside and the next
// line comes from a new one, as chipd holds back a busy connection.
//
// Checked: nothing escapes (a handler's exception is a crash), every answer
// is one line of valid JSON with "ok", and settle() answers each deferred
// request at most once.
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../unit/bare_host.hpp"
#include "check.hpp"
#include "core/tree.hpp"
#include "daemon/registries.hpp"
#include "daemon/requests.hpp"
#include "registry/table.hpp"
#include "spec/loader.hpp"

using namespace std::chrono_literals;
using chip::Result;
using chip::core::Node;
using chip::core::State;
using chip::core::Time;
using chip::core::Tree;
using chip::daemon::Requests;
using nlohmann::json;

namespace {

using Host = chip::test::BareHost;

// Pids from 100 on; a spawn of a path with "fail" in it fails.
struct Effects final : chip::core::Effects {
    pid_t next_pid = 100;
    Result<pid_t> spawn(const Node &w) override {
        if (w.path.find("fail") != std::string::npos)
            return chip::make_error(ENOENT, "cannot execute: No such file or directory");
        return next_pid++;
    }
    void kill_group(pid_t, int) override {}
    void log(const chip::core::Event &) override {}
    void exit(int) override {}
};

// Every pid below 10000 exists, runs as uid 1000 and descends from pid
// (pid - 100) / 2 + 100 when above 200: a tree of helpers under the workers.
struct Processes final : chip::daemon::Processes {
    uid_t own_uid() const override { return 1000; }
    std::optional<pid_t> parent_of(pid_t pid) const override {
        if (pid <= 0 || pid >= 10000) return std::nullopt;
        return pid > 200 ? (pid - 100) / 2 + 100 : 1;
    }
    std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t pid) const override {
        if (pid <= 0 || pid >= 10000) return std::nullopt;
        return std::pair<uid_t, uid_t>{1000, 1000};
    }
    bool watch(pid_t pid) override { return pid % 3 != 0; }
    void unwatch(pid_t) override {}
};

// The spec files a reload may name ("" is chipd's own).
const char *const kSpec = R"({
  "registries": ["r"],
  "root": {"strategy": "one_for_one", "max_restarts": 10, "children": [
    {"name": "a", "command": ["/bin/a"], "stdout": {"file": "/logs/a.log"}},
    {"name": "n", "command": ["/bin/n"], "ready": "notify"},
    {"name": "pool", "command": ["/bin/p"], "instances": 2},
    {"name": "sup", "supervisor": {"strategy": "rest_for_one", "children": [
      {"name": "b", "command": ["/bin/b"], "backoff": {"initial": 1}},
      {"name": "c", "command": ["/bin/c"], "restart": "transient"}]}}
  ]}
})";
const char *const kNext = R"({
  "registries": ["r"],
  "root": {"strategy": "one_for_all", "max_restarts": 3, "children": [
    {"name": "a", "command": ["/bin/a2"]},
    {"name": "pool", "command": ["/bin/p"], "instances": 3},
    {"name": "sup", "supervisor": {"children": [{"name": "b", "command": ["/bin/b"]}]}},
    {"name": "d", "command": ["/bin/d"], "ready": "notify"}
  ]}
})";

// Both loaded once: the definitions are immutable, shared by every run.
const chip::spec::Spec &own_spec() {
    static const Host host;
    static const chip::spec::Spec spec = chip::spec::load_string(kSpec, "own.json", "/srv", host);
    return spec;
}
const chip::spec::Spec &next_spec() {
    static const Host host;
    static const chip::spec::Spec spec = chip::spec::load_string(kNext, "/next.json", "/srv", host);
    return spec;
}

struct RequestEffects final : chip::daemon::RequestEffects {
    Tree *tree = nullptr;
    Time *now = nullptr;
    int kill(pid_t pid, int) override { return pid % 2 ? 0 : -ESRCH; }
    void shutdown() override { tree->shutdown(*now); }
    Loaded load_spec(const std::string &path) override {
        if (path.empty()) return {own_spec(), {}};
        if (path == "/next.json") return {next_spec(), {}};
        return {std::nullopt, {path + ": unable to read: No such file or directory"}};
    }
    std::vector<std::string> refused(const chip::spec::Spec &) override { return {}; }
    void reload_begins(const chip::spec::Spec &, const std::vector<chip::core::Change> &) override {
    }
    void reload_ends(const Result<void> &, chip::spec::Spec) override {}
    std::string spec_dir() override { return "/srv"; }
};

const chip::os::PeerCred kPeer{100, 1000, 1000};  // worker a

struct World {
    Effects fx;
    Tree tree{own_spec().root, fx};
    Processes procs;
    chip::daemon::Registries registries{procs,
                                        [this](pid_t p) { return tree.node_by_pid(p) != nullptr; },
                                        [](const std::string &) {}};
    std::vector<std::uint64_t> memory;
    RequestEffects rfx;
    Requests requests{tree, registries, rfx};
    Time now = 1000s;
    std::uint64_t conn = 1;
    std::set<std::uint64_t> waiting;  // connections with a deferred request

    World() {
        rfx.tree = &tree;
        rfx.now = &now;
        std::size_t size = chip::registry::Table::region_size(8, 32);
        memory.resize(size / 8 + 1);
        auto bytes = std::as_writable_bytes(std::span(memory)).first(size);
        // Small capacities, so that a join past them (ENOSPC) is within reach.
        CHECK_FUZZ(registries.add({"r", 8, 32}, bytes, 42).ok());
        tree.start(now);
    }

    static void check_line(const json &body) {
        std::string line = Requests::text(body);
        CHECK_FUZZ(line.find('\n') == std::string::npos);
        json back = json::parse(line, nullptr, false);
        CHECK_FUZZ(back.is_object() && back.contains("ok") && back["ok"].is_boolean());
    }

    // The answers due now, each to a connection that waits for one.
    void settle() {
        for (const auto &a : requests.settle(now)) {
            CHECK_FUZZ(waiting.erase(a.conn) == 1);
            check_line(a.body);
        }
    }

    Node *first(State state) {
        Node *found = nullptr;
        Tree::walk(tree.root(), [&](Node &n) {
            if (!found && !n.is_supervisor && n.state == state && n.pid) found = &n;
        });
        return found;
    }

    void happen(char what) {
        switch (what) {
            case 't':
                now += 1s;
                break;
            case 'T':
                now += 60s;
                break;
            case 'x':
                if (Node *n = first(State::Running)) tree.on_exit(n->pid, {false, 1}, now);
                break;
            case 'k':
                if (Node *n = first(State::Stopping)) tree.on_exit(n->pid, {true, SIGTERM}, now);
                break;
            case 'r':
                for (Node *n = first(State::Starting); n; n = first(State::Starting)) {
                    std::uint64_t id = n->id;
                    tree.on_ready(id, now);
                    if (n = tree.node_by_id(id); n && n->state == State::Starting) break;
                }
                break;
            case 'c': {
                // The oldest connection still waiting for an answer, else the current one.
                std::uint64_t gone = waiting.empty() ? conn : *waiting.begin();
                requests.forget(gone);
                waiting.erase(gone);
                if (gone == conn) ++conn;
                break;
            }
            case 'd':
                registries.member_died(100 + static_cast<pid_t>(now.count() % 7));
                break;
            case 'h':
                if (auto err = requests.reload_self(now)) check_line(*err);
                break;
            default:
                return;
        }
        if (auto next = tree.next_deadline(); next && *next <= now) tree.on_time(now);
    }

    void request(std::string_view line) {
        auto reply = requests.handle_line(conn, kPeer, line, now);
        if (reply.body) check_line(*reply.body);
        if (!reply.body) waiting.insert(conn);
        if (!reply.body || reply.last) ++conn;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char *>(data), size);
    World w;
    std::size_t at = 0;
    while (at < in.size()) {
        auto nl = in.find('\n', at);
        std::string_view line = in.substr(at, nl == std::string_view::npos ? nl : nl - at);
        at = nl == std::string_view::npos ? in.size() : nl + 1;
        // The control socket's framing: an over-long line ends the connection
        // (answered with oversized()), a blank one is no request.
        if (line.size() > 64 * 1024) {
            World::check_line(Requests::oversized());
            w.happen('c');
            continue;
        }
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        if (line.front() == '#') {
            for (char c : line.substr(1)) w.happen(c);
        } else {
            w.request(line);
        }
        w.settle();
    }
    // The end: every connection closes.
    for (std::uint64_t c = 1; c <= w.conn; ++c) w.requests.forget(c);
    return 0;
}
