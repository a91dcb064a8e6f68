// The world as the supervision core sees it, for unit tests: fake processes
// (pids handed out in order), every call of the core recorded as a line of
// text. No fork, no thread; a clock only when a test sets one (`clock`).
#pragma once

#include <csignal>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tree.hpp"

namespace chip::test {

using Actions = std::vector<std::string>;
using chip::Error;
using chip::core::Effects;
using chip::core::Event;
using chip::core::Node;

inline std::string signal_text(int sig) {
    switch (sig) {
        case SIGTERM:
            return "TERM";
        case SIGKILL:
            return "KILL";
        case SIGCONT:
            return "CONT";
        case SIGINT:
            return "INT";
        case SIGHUP:
            return "HUP";
        case SIGQUIT:
            return "QUIT";
        case SIGSEGV:
            return "SEGV";
        default:
            return std::to_string(sig);
    }
}

// The world as the core sees it. Every call is recorded in one trace of actions
// ("spawn a", "spawn-failed b", "kill a TERM", "exit 1") and one of log events.
struct FakeEffects : Effects {
    pid_t next_pid = 100;
    std::map<std::string, Error> failures;  // path -> the spawn error
    std::map<pid_t, std::string> pid_path;  // every pid ever handed out
    Actions actions;
    std::vector<Event::Kind> kinds;
    std::vector<std::string> logs;  // "restart b 1", "start-failed b: No such file..."
    std::vector<std::pair<pid_t, int>> kills;
    std::vector<int> exits;
    double random_value = 0.5;  // what random() returns: 0.5 is no jitter
    std::size_t random_calls = 0;
    // What now() returns: Time{} (the default) is no clock, and the core
    // measures deadlines from each event's time. A test that sets it plays a
    // slow world: each spawn moves it SPAWN_COST on.
    chip::core::Time clock{};
    chip::core::Duration spawn_cost{};
    std::vector<chip::core::Time> spawned_at;  // the clock after each spawn

    chip::Result<pid_t> spawn(const Node &w) override {
        if (clock != chip::core::Time{}) {
            clock += spawn_cost;
            spawned_at.push_back(clock);
        }
        auto f = failures.find(w.path);
        if (f != failures.end()) {
            actions.push_back("spawn-failed " + w.path);
            return f->second;
        }
        pid_t pid = next_pid++;
        pid_path[pid] = w.path;
        actions.push_back("spawn " + w.path);
        return pid;
    }
    void kill_group(pid_t pgid, int sig) override {
        kills.emplace_back(pgid, sig);
        auto p = pid_path.find(pgid);
        std::string who = p == pid_path.end() ? "pid " + std::to_string(pgid) : p->second;
        actions.push_back("kill " + who + " " + signal_text(sig));
    }
    void log(const Event &e) override {
        kinds.push_back(e.kind);
        std::string line = std::string(chip::core::event_name(e.kind)) + " " + e.node->path;
        if (e.kind == Event::Kind::Restart || e.kind == Event::Kind::GiveUp)
            line += " " + std::to_string(e.count);
        if (e.kind == Event::Kind::Backoff)
            line += " " +
                    std::to_string(std::chrono::round<std::chrono::milliseconds>(e.delay).count()) +
                    "ms";
        if (!e.message.empty()) line += ": " + e.message;
        logs.push_back(line);
    }
    void exit(int code) override {
        exits.push_back(code);
        actions.push_back("exit " + std::to_string(code));
    }
    double random() override {
        ++random_calls;
        return random_value;
    }
    chip::core::Time now() override { return clock; }
    void removed(const Node &n) override { actions.push_back("removed " + n.path); }

    // The actions since the last take, and forget them.
    Actions take() {
        Actions out;
        out.swap(actions);
        return out;
    }
    std::vector<std::string> take_logs() {
        std::vector<std::string> out;
        out.swap(logs);
        kinds.clear();
        return out;
    }
    std::size_t count_logs(Event::Kind k) const {
        std::size_t n = 0;
        for (auto x : kinds) n += x == k;
        return n;
    }
};

}  // namespace chip::test
