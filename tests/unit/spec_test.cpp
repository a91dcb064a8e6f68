// The spec loader: defaults, every error form, path resolution, and the
// example specs in config/. Messages are asserted exactly where users see them.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <fstream>
#include <string>
#include <vector>

#include "spec/host.hpp"
#include "spec/loader.hpp"

using namespace chip;
using namespace std::chrono_literals;
using chip::spec::load_string;
using chip::spec::SpecError;
namespace fs = std::filesystem;

namespace {

// The machine as the loader sees it: a fixed user and group database, so that
// the tests read the same everywhere; folders and files are the real ones
// (temporary folders made by the tests), except folders named read-only here.
struct TestHost final : spec::Host {
    std::vector<std::string> read_only;
    std::vector<std::string> executables;     // what executable() accepts; the rest: ENOENT
    std::vector<std::string> not_executable;  // files there but without x: EACCES
    std::vector<std::string> untrusted;
    std::string path = "/usr/bin:/bin";
    std::optional<spec::User> user_by_name(const std::string &name) const override {
        if (name == "root") return spec::User{0, 0, "root", "/root", "/bin/bash"};
        if (name == "app") return spec::User{1000, 1000, "app", "/home/app", "/bin/sh"};
        if (name == "2000")  // a user named by digits
            return spec::User{3000, 3000, "2000", "/home/2000", "/bin/sh"};
        return std::nullopt;
    }
    std::optional<spec::User> user_by_id(uid_t uid) const override {
        if (uid == 0) return user_by_name("root");
        if (uid == 1000) return user_by_name("app");
        return std::nullopt;
    }
    std::optional<gid_t> group_by_name(const std::string &name) const override {
        if (name == "root") return 0;
        if (name == "staff") return 50;
        return std::nullopt;
    }
    bool is_folder(const std::string &path) const override {
        return spec::system_host().is_folder(path);
    }
    bool is_writable_folder(const std::string &path) const override {
        if (std::find(read_only.begin(), read_only.end(), path) != read_only.end()) return false;
        return spec::system_host().is_writable_folder(path);
    }
    std::string log_folder_refusal(const std::string &path) const override {
        if (std::find(untrusted.begin(), untrusted.end(), path) == untrusted.end()) return {};
        return "folder " + path + " (owner uid 0, mode 0777) is writable by others and not sticky";
    }
    chip::Result<std::string> read_file(const std::string &path, std::size_t limit) const override {
        return spec::system_host().read_file(path, limit);
    }
    chip::Result<std::vector<std::string>> files_in_folder(const std::string &path) const override {
        return spec::system_host().files_in_folder(path);
    }
    chip::Result<void> executable(const std::string &path) const override {
        if (std::find(executables.begin(), executables.end(), path) != executables.end()) return {};
        if (std::find(not_executable.begin(), not_executable.end(), path) != not_executable.end())
            return chip::make_error(EACCES, "");
        return chip::make_error(ENOENT, "");
    }
    std::string search_path() const override { return path; }
    std::string current_dir() const override { return "/work/here"; }
    std::string host_name() const override { return hostname; }
    std::string hostname = "box-1";
};

TestHost host;

// A folder of our own, removed at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/chip-spec-test-XXXXXX";
        char *p = ::mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

spec::Spec load(const std::string &text, const std::string &dir = "/spec") {
    return load_string(text, "t.json", dir, host);
}

// The errors TEXT is refused with (empty when it loads).
std::vector<std::string> errors_of(const std::string &text, const std::string &dir = "/spec") {
    try {
        load_string(text, "t.json", dir, host);
    } catch (const SpecError &e) {
        return e.errors();
    }
    return {};
}

std::string one_error(const std::string &text, const std::string &dir = "/spec") {
    auto errors = errors_of(text, dir);
    INFO(text);
    REQUIRE(errors.size() == 1);
    return errors[0];
}

// A spec whose root has one worker "w" running "prog", with FIELDS added to it
// and TOP added to the document.
std::string worker_spec(const std::string &fields, const std::string &top = "") {
    return "{" + top + R"("root": {"children": [{"name": "w", "command": ["prog"])" +
           (fields.empty() ? "" : ", " + fields) + "}]}}";
}

// A worker's definition: the core's fields and its launch fields side by side.
struct Worker : core::WorkerSpec, spec::Launch {};

Worker worker_of(const core::ChildSpec &c) {
    REQUIRE_FALSE(c.is_supervisor);
    REQUIRE(c.worker);
    REQUIRE(c.worker->launch);
    Worker w;
    static_cast<core::WorkerSpec &>(w) = *c.worker;
    static_cast<spec::Launch &>(w) = *c.worker->launch;
    return w;
}

Worker only_worker(const spec::Spec &spec) {
    REQUIRE(spec.root->children.size() == 1);
    return worker_of(spec.root->children[0]);
}

Worker load_worker(const std::string &fields, const std::string &top = "") {
    return only_worker(load(worker_spec(fields, top)));
}

const std::string kWorkerKeys =
    "name, command, restart, instances, env, cwd, user, group, ready, start_timeout, stop_signal, "
    "stop_timeout, "
    "join, stdout, stderr, backoff, start";

std::vector<std::string> example_specs() {
    std::vector<std::string> files;
    for (const auto &entry : fs::directory_iterator(fs::path(CHIP_SOURCE_ROOT) / "config"))
        if (entry.path().extension() == ".json" && entry.path().filename() != "chip.schema.json")
            files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

// ---- defaults ----

TEST_CASE("a minimal spec gets every top-level and supervisor default") {
    auto spec = load(R"({"root": {}})");
    CHECK(spec.file == "t.json");
    CHECK(spec.dir == "/spec");
    CHECK(spec.registries.empty());
    CHECK_FALSE(spec.socket.has_value());
    CHECK(spec.root->strategy == core::Strategy::OneForOne);
    CHECK(spec.root->max_restarts == 3);
    CHECK(spec.root->period == 5s);
    CHECK(spec.root->children.empty());
}

TEST_CASE("a worker gets every field's default") {
    auto w = load_worker("");
    CHECK(w.command == std::vector<std::string>{"prog"});
    CHECK(w.restart == core::RestartType::Permanent);
    CHECK_FALSE(w.instances.has_value());  // a single worker, not a pool
    CHECK(w.env.empty());
    CHECK(w.cwd == "/spec");
    CHECK_FALSE(w.user.has_value());
    CHECK_FALSE(w.group.has_value());
    CHECK_FALSE(w.uid.has_value());
    CHECK_FALSE(w.gid.has_value());
    CHECK(w.ready == core::ReadyMode::Started);
    CHECK(w.start_timeout == 10s);
    CHECK(w.stop_signal == 15);
    CHECK(w.stop_timeout == 5s);
    CHECK(w.join.empty());
    CHECK(w.out.mode == spec::OutputSpec::Mode::Inherit);
    CHECK(w.err.mode == spec::OutputSpec::Mode::Inherit);
}

TEST_CASE("a registry given by name gets the default capacities") {
    auto spec = load(R"({"registries": ["sessions"], "root": {}})");
    REQUIRE(spec.registries.size() == 1);
    CHECK(spec.registries[0].name == "sessions");
    CHECK(spec.registries[0].max_groups == 1024);
    CHECK(spec.registries[0].max_members == 16384);
}

TEST_CASE("a registry object sets its capacities, and defaults the one it omits") {
    auto spec = load(R"({"registries": [{"name": "a", "max_groups": 1, "max_members": 16777216},
                                        {"name": "b:x", "max_members": 7}], "root": {}})");
    REQUIRE(spec.registries.size() == 2);
    CHECK(spec.registries[0].max_groups == 1);
    CHECK(spec.registries[0].max_members == 16777216);
    CHECK(spec.registries[1].name == "b:x");
    CHECK(spec.registries[1].max_groups == 1024);
    CHECK(spec.registries[1].max_members == 7);
}

TEST_CASE("an output file gets the default max_bytes and keep") {
    TempDir tmp;
    auto w = only_worker(load(worker_spec(R"("stdout": {"file": "out.log"})"), tmp.path));
    CHECK(w.out.mode == spec::OutputSpec::Mode::File);
    CHECK(w.out.file == tmp.path + "/out.log");
    CHECK(w.out.max_bytes == 10485760);
    CHECK(w.out.keep == 5);
    CHECK(w.err.mode == spec::OutputSpec::Mode::Inherit);
}

// ---- every field read ----

TEST_CASE("every worker field is read") {
    TempDir tmp;
    auto spec =
        load(worker_spec(R"("restart": "transient", "instances": 3, "env": {"B": "2", "A": ""},
        "cwd": "/var", "ready": "notify", "start_timeout": 2.5, "stop_signal": "INT", "stop_timeout": 0,
        "join": {"r": ["g1", "g:2"]}, "stdout": "null",
        "stderr": {"file": ")" +
                             tmp.path + R"(/err.log", "max_bytes": 4096, "keep": 1000})",
                         R"("registries": ["r"], )"),
             tmp.path);
    const auto &w = only_worker(spec);
    CHECK(w.restart == core::RestartType::Transient);
    CHECK(w.instances == 3);
    REQUIRE(w.env.size() == 2);
    CHECK(w.env[0] == std::pair<std::string, std::string>{"B", "2"});  // spec order, not sorted
    CHECK(w.env[1] == std::pair<std::string, std::string>{"A", ""});
    CHECK(w.cwd == "/var");
    CHECK(w.ready == core::ReadyMode::Notify);
    CHECK(w.start_timeout == 2500ms);
    CHECK(w.stop_signal == 2);
    CHECK(w.stop_timeout == 0s);
    REQUIRE(w.join.size() == 1);
    CHECK(w.join[0].first == "r");
    CHECK(w.join[0].second == std::vector<std::string>{"g1", "g:2"});
    CHECK(w.out.mode == spec::OutputSpec::Mode::Null);
    CHECK(w.err.mode == spec::OutputSpec::Mode::File);
    CHECK(w.err.file == tmp.path + "/err.log");
    CHECK(w.err.max_bytes == 4096);
    CHECK(w.err.keep == 1000);
}

TEST_CASE("a nested supervisor is read with its own fields and children") {
    auto spec = load(
        R"({"root": {"strategy": "rest_for_one", "max_restarts": 0, "period": 0.25, "children": [
        {"name": "db", "command": ["db"]},
        {"name": "pool", "supervisor": {"strategy": "one_for_all", "children": [
            {"name": "a", "command": ["a"]}, {"name": "b", "command": ["b"]}]}}]}})");
    CHECK(spec.root->strategy == core::Strategy::RestForOne);
    CHECK(spec.root->max_restarts == 0);
    CHECK(spec.root->period == 250ms);
    REQUIRE(spec.root->children.size() == 2);
    CHECK(spec.root->children[0].name == "db");
    CHECK_FALSE(spec.root->children[0].is_supervisor);
    const auto &pool = spec.root->children[1];
    CHECK(pool.name == "pool");
    CHECK(pool.is_supervisor);
    CHECK(pool.supervisor->strategy == core::Strategy::OneForAll);
    CHECK(pool.supervisor->max_restarts == 3);
    CHECK(pool.supervisor->period == 5s);
    REQUIRE(pool.supervisor->children.size() == 2);
    CHECK(pool.supervisor->children[1].name == "b");
}

TEST_CASE("a tiny positive period is kept positive in nanoseconds") {
    auto spec = load(R"({"root": {"period": 1e-12}})");
    CHECK(spec.root->period == std::chrono::nanoseconds(1));
}

TEST_CASE("stop_signal accepts names, SIG names, numbers and KILL") {
    CHECK(load_worker(R"("stop_signal": "HUP")").stop_signal == 1);
    CHECK(load_worker(R"("stop_signal": "SIGQUIT")").stop_signal == 3);
    CHECK(load_worker(R"("stop_signal": 10)").stop_signal == 10);
    CHECK(load_worker(R"("stop_signal": "KILL")").stop_signal == 9);
}

TEST_CASE("stop_signal refuses STOP with a reason") {
    CHECK(
        one_error(worker_spec(R"("stop_signal": "STOP")")) ==
        R"(t.json: /root/children/0/stop_signal: expected a signal that ends a process (STOP only suspends it); got "STOP")");
    CHECK(
        one_error(worker_spec(R"("stop_signal": 19)")) ==
        R"(t.json: /root/children/0/stop_signal: expected a signal that ends a process (STOP only suspends it); got 19)");
}

TEST_CASE("stop_signal refuses what is not a signal") {
    CHECK(
        one_error(worker_spec(R"("stop_signal": "FOO")")) ==
        R"(t.json: /root/children/0/stop_signal: expected a signal name (TERM, INT, QUIT, HUP, USR1, ...) or number; got "FOO")");
    for (const char *bad : {"0", "65", "-1", "1.5", "\"\"", "null", "[15]", "18446744073709551615"})
        CHECK(errors_of(worker_spec(std::string("\"stop_signal\": ") + bad)).size() == 1);
}

// ---- error forms ----

TEST_CASE("the contract's example error is reproduced exactly") {
    std::string text =
        R"({"root": {"children": [{"name": "a", "command": ["a"]}, {"name": "b", "command": ["b"]},
        {"name": "c", "command": ["c"], "restart": "always"}]}})";
    try {
        load_string(text, "sessions.json", "/spec", host);
        FAIL("loaded");
    } catch (const SpecError &e) {
        REQUIRE(e.errors().size() == 1);
        CHECK(
            e.errors()[0] ==
            R"(sessions.json: /root/children/2/restart: expected one of permanent, transient, temporary; got "always")");
    }
}

TEST_CASE("enum fields name every choice") {
    CHECK(
        one_error(R"({"root": {"strategy": "one_for_none"}})") ==
        R"(t.json: /root/strategy: expected one of one_for_one, one_for_all, rest_for_one; got "one_for_none")");
    CHECK(one_error(worker_spec(R"("ready": true)")) ==
          R"(t.json: /root/children/0/ready: expected one of started, notify; got true)");
}

TEST_CASE("a value of the wrong type is reported with the value as written") {
    CHECK(one_error(R"({"root": {"max_restarts": "3"}})") ==
          R"(t.json: /root/max_restarts: expected an integer from 0 to 1000000; got "3")");
    CHECK(one_error(R"({"root": {"children": {}}})") ==
          R"(t.json: /root/children: expected an array of children; got {})");
    CHECK(one_error(R"({"root": []})") ==
          R"(t.json: /root: expected a supervisor body (an object); got [])");
    CHECK(
        one_error(R"({"root": {"children": [null]}})") ==
        R"(t.json: /root/children/0: expected a child (an object with "name" and "command" or "supervisor"); got null)");
}

TEST_CASE("integers must be JSON integers") {
    for (std::string bad : {"1.5", "2.0", "\"2\"", "true", "null", "[2]"}) {
        INFO(bad);
        CHECK(
            one_error(worker_spec(std::string("\"instances\": ") + bad)) ==
            std::string(
                "t.json: /root/children/0/instances: expected an integer from 0 to 100000; got ") +
                bad);
    }
    CHECK(one_error(worker_spec(R"("instances": 1e3)")) ==
          "t.json: /root/children/0/instances: expected an integer from 0 to 100000; got 1000.0");
}

TEST_CASE("integer ranges are enforced at both ends") {
    CHECK(one_error(worker_spec(R"("instances": -1)")) ==
          "t.json: /root/children/0/instances: expected an integer from 0 to 100000; got -1");
    CHECK(load_worker(R"("instances": 0)").instances == 0u);
    CHECK(errors_of(worker_spec(R"("instances": 100001)")).size() == 1);
    CHECK(load_worker(R"("instances": 100000)").instances == 100000);
    CHECK(one_error(R"({"root": {"max_restarts": -1}})") ==
          "t.json: /root/max_restarts: expected an integer from 0 to 1000000; got -1");
    CHECK(errors_of(R"({"root": {"max_restarts": 1000001}})").size() == 1);
    CHECK(one_error(R"({"registries": [{"name": "r", "max_groups": 1048577}], "root": {}})") ==
          "t.json: /registries/0/max_groups: expected an integer from 1 to 1048576; got 1048577");
    CHECK(errors_of(R"({"registries": [{"name": "r", "max_members": 0}], "root": {}})").size() ==
          1);
    CHECK(errors_of(R"({"registries": [{"name": "r", "max_members": 16777217}], "root": {}})")
              .size() == 1);
    CHECK(one_error(worker_spec(R"("stdout": {"file": "/tmp/x.log", "max_bytes": 4095})")) ==
          "t.json: /root/children/0/stdout/max_bytes: expected an integer of at least 4096; got "
          "4095");
    CHECK(errors_of(worker_spec(R"("stdout": {"file": "/tmp/x.log", "keep": 0})")).size() == 1);
    CHECK(one_error(worker_spec(R"("stdout": {"file": "/tmp/x.log", "keep": 1001})")) ==
          "t.json: /root/children/0/stdout/keep: expected an integer from 1 to 1000; got 1001");
    // Beyond uint64 nlohmann reads a float: still refused, never wrapped.
    CHECK(errors_of(worker_spec(R"("instances": 18446744073709551616)")).size() == 1);
}

TEST_CASE("period and start_timeout must be greater than zero") {
    CHECK(one_error(R"({"root": {"period": 0}})") ==
          "t.json: /root/period: expected a number of seconds greater than 0 and at most "
          "1000000000; got 0");
    for (std::string bad : {"-1", "\"5\"", "1e10", "null"}) {
        INFO(bad);
        CHECK(errors_of(R"({"root": {"period": )" + bad + "}}").size() == 1);
        CHECK(errors_of(worker_spec(std::string("\"start_timeout\": ") + bad)).size() == 1);
    }
    CHECK(errors_of(worker_spec(R"("start_timeout": 0)")).size() == 1);
}

TEST_CASE("stop_timeout may be zero but not negative") {
    CHECK(load_worker(R"("stop_timeout": 0)").stop_timeout == 0s);
    CHECK(one_error(worker_spec(R"("stop_timeout": -0.5)")) ==
          "t.json: /root/children/0/stop_timeout: expected a number of seconds from 0 to "
          "1000000000; got -0.5");
}

TEST_CASE("an unknown key is an error with a did-you-mean when one key is close") {
    CHECK(one_error(worker_spec(R"("restat": "permanent")")) ==
          "t.json: /root/children/0/restat: unknown key; expected one of " + kWorkerKeys +
              "; did you mean \"restart\"?");
}

TEST_CASE("an unknown key that differs only in case suggests the known one") {
    CHECK(one_error(R"({"root": {"STRATEGY": "one_for_one"}})") ==
          "t.json: /root/STRATEGY: unknown key; expected one of strategy, max_restarts, period, "
          "backoff, on_give_up, children; "
          "did you mean \"strategy\"?");
}

TEST_CASE("an unknown key far from every known key gets no suggestion") {
    CHECK(one_error(R"({"description": "no", "root": {}})") ==
          "t.json: /description: unknown key; expected one of registries, root, socket, cluster");
}

TEST_CASE("unknown keys are found in registries and outputs too") {
    CHECK(one_error(R"({"registries": [{"name": "r", "max_group": 4}], "root": {}})") ==
          "t.json: /registries/0/max_group: unknown key; expected one of name, max_groups, "
          "max_members; "
          "did you mean \"max_groups\"?");
    CHECK(one_error(worker_spec(R"("stderr": {"file": "/tmp/x.log", "keeps": 2})")) ==
          "t.json: /root/children/0/stderr/keeps: unknown key; expected one of file, max_bytes, "
          "keep; "
          "did you mean \"keep\"?");
}

TEST_CASE("worker fields on a supervisor child are refused as such") {
    CHECK(
        one_error(
            R"({"root": {"children": [{"name": "s", "supervisor": {}, "restart": "temporary"}]}})") ==
        "t.json: /root/children/0/restart: a worker field, not allowed on a supervisor child; "
        "expected one of name, supervisor, backoff, start");
}

TEST_CASE("a backoff gets every default but initial") {
    auto w = load_worker(R"("backoff": {"initial": 0.25})");
    REQUIRE(w.backoff);
    CHECK(w.backoff->initial == std::chrono::milliseconds(250));
    CHECK(w.backoff->max == std::chrono::seconds(30));
    CHECK(w.backoff->factor == 2.0);
    CHECK(w.backoff->jitter == 0.1);
    CHECK(w.backoff->reset_after == std::chrono::seconds(10));
    CHECK_FALSE(load_worker("").backoff);
}

TEST_CASE("a backoff reads every field") {
    auto w = load_worker(
        R"("backoff": {"initial": 1, "max": 8, "factor": 1.5, "jitter": 0, "reset_after": 60})");
    REQUIRE(w.backoff);
    CHECK(*w.backoff == core::Backoff{std::chrono::seconds(1), std::chrono::seconds(8), 1.5, 0.0,
                                      std::chrono::seconds(60)});
}

TEST_CASE("a supervisor child's backoff is its own; a body's is its children's default") {
    auto spec = load(
        R"({"root": {"backoff": {"initial": 1}, "children": [{"name": "s", "backoff": {"initial": 2},
             "supervisor": {"backoff": {"initial": 3}}}]}})");
    REQUIRE(spec.root->children_backoff);
    CHECK(spec.root->children_backoff->initial == std::chrono::seconds(1));
    CHECK_FALSE(spec.root->backoff);
    const auto &s = *spec.root->children.at(0).supervisor;
    REQUIRE(s.backoff);
    CHECK(s.backoff->initial == std::chrono::seconds(2));
    REQUIRE(s.children_backoff);
    CHECK(s.children_backoff->initial == std::chrono::seconds(3));
}

TEST_CASE("every backoff field error is reported at its pointer") {
    const std::string at = "t.json: /root/children/0/backoff";
    CHECK(one_error(worker_spec(R"("backoff": 1)")) ==
          at + ": expected an object {\"initial\": S, \"max\": S, \"factor\": F, \"jitter\": "
               "J, \"reset_after\": S}; got 1");
    CHECK(one_error(worker_spec(R"("backoff": {})")) ==
          at + "/initial: expected a number of seconds greater than 0 and at most 1000000000; "
               "got nothing");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 0})")) ==
          at + "/initial: expected a number of seconds greater than 0 and at most 1000000000; "
               "got 0");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": "1"})")) ==
          at + "/initial: expected a number of seconds greater than 0 and at most 1000000000; "
               "got \"1\"");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 60})")) ==
          at + "/initial: expected a number of seconds of at most \"max\" (30 when not given); "
               "got 60");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 2, "max": 1})")) ==
          at + "/max: expected a number of seconds of at least \"initial\"; got 1");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 2, "max": -1})")) ==
          at + "/max: expected a number of seconds greater than 0 and at most 1000000000; got -1");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 1, "factor": 0.5})")) ==
          at + "/factor: expected a number of at least 1; got 0.5");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 1, "factor": "2"})")) ==
          at + "/factor: expected a number of at least 1; got \"2\"");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 1, "jitter": 1.5})")) ==
          at + "/jitter: expected a number from 0 to 1; got 1.5");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 1, "jitter": -0.5})")) ==
          at + "/jitter: expected a number from 0 to 1; got -0.5");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 1, "reset_after": 0})")) ==
          at + "/reset_after: expected a number of seconds greater than 0 and at most "
               "1000000000; got 0");
    CHECK(one_error(worker_spec(R"("backoff": {"initial": 1, "factr": 2})")) ==
          at + "/factr: unknown key; expected one of initial, max, factor, jitter, reset_after; "
               "did you mean \"factor\"?");
    CHECK(one_error(R"({"root": {"backoff": {"initial": 1, "jiter": 0}}})") ==
          "t.json: /root/backoff/jiter: unknown key; expected one of initial, max, factor, "
          "jitter, reset_after; did you mean \"jitter\"?");
    CHECK(one_error(R"({"root": {"children": [{"name": "s", "supervisor": {},
                                               "backoff": {"initial": -2}}]}})") ==
          at + "/initial: expected a number of seconds greater than 0 and at most 1000000000; "
               "got -2");
}

TEST_CASE("keys with / and ~ are escaped in pointers") {
    CHECK(one_error(R"({"a/b~c": 1, "root": {}})") ==
          "t.json: /a~1b~0c: unknown key; expected one of registries, root, socket, cluster");
}

TEST_CASE("a duplicate child name is reported at the second sibling") {
    CHECK(
        one_error(
            R"({"root": {"children": [{"name": "a", "command": ["x"]}, {"name": "b", "command": ["x"]},
        {"name": "a", "supervisor": {}}]}})") ==
        R"(t.json: /root/children/2/name: expected a name unique among its siblings; got "a", already used by /root/children/0)");
}

TEST_CASE("the same name may appear under different supervisors") {
    auto spec = load(R"({"root": {"children": [{"name": "a", "command": ["x"]},
        {"name": "s", "supervisor": {"children": [{"name": "a", "command": ["x"]}]}}]}})");
    CHECK(spec.root->children[1].supervisor->children[0].name == "a");
}

TEST_CASE("a sibling named like an instance of an earlier pool is a duplicate") {
    CHECK(
        one_error(R"({"root": {"children": [{"name": "web", "command": ["x"], "instances": 3},
        {"name": "web.2", "command": ["x"]}]}})") ==
        R"(t.json: /root/children/1/name: expected a name unique among its siblings; got "web.2", already used by /root/children/0 ("web" with 3 instances))");
    CHECK(errors_of(R"({"root": {"children": [{"name": "web", "command": ["x"], "instances": 3},
        {"name": "web", "command": ["x"]}]}})")
              .size() == 1);
    // Past the last instance, or not an index, it is a different name.
    CHECK(errors_of(R"({"root": {"children": [{"name": "web", "command": ["x"], "instances": 3},
        {"name": "web.3", "command": ["x"]}, {"name": "web.02", "command": ["x"]}, {"name": "web.x", "command": ["x"]}]}})")
              .empty());
}

TEST_CASE("a pool whose instance names an earlier sibling is a duplicate") {
    CHECK(
        one_error(R"({"root": {"children": [{"name": "api.1", "command": ["x"]},
        {"name": "api", "command": ["x"], "instances": 2}]}})") ==
        R"(t.json: /root/children/1/name: expected a name unique among its siblings; got "api", whose 2 instances include "api.1", already used by /root/children/0)");
    CHECK(errors_of(R"({"root": {"children": [{"name": "api.2", "command": ["x"]},
        {"name": "api", "command": ["x"], "instances": 2}]}})")
              .empty());
}

TEST_CASE("a worker with one instance claims only its name") {
    CHECK(errors_of(R"({"root": {"children": [{"name": "w", "command": ["x"]},
        {"name": "w.0", "command": ["x"]}]}})")
              .empty());
}

TEST_CASE("a child with both command and supervisor is an error at the child") {
    CHECK(one_error(
              R"({"root": {"children": [{"name": "x", "command": ["x"], "supervisor": {}}]}})") ==
          "t.json: /root/children/0: expected exactly one of command, supervisor; got both");
}

TEST_CASE("a child with neither command nor supervisor is an error at the child") {
    CHECK(one_error(R"({"root": {"children": [{"name": "x"}]}})") ==
          "t.json: /root/children/0: expected exactly one of command, supervisor; got neither");
}

TEST_CASE("a missing name is reported at its pointer as nothing") {
    CHECK(one_error(R"({"root": {"children": [{"command": ["x"]}]}})") ==
          "t.json: /root/children/0/name: expected a name of 1 to 64 letters, digits, '_', '.' or "
          "'-'; got nothing");
}

TEST_CASE("child names follow the name rule") {
    for (std::string bad : {"\"a b\"", "\"\"", "\"a/b\"", "\"a:b\"", "5", "null"}) {
        INFO(bad);
        CHECK(errors_of(R"({"root": {"children": [{"name": )" + bad + R"(, "command": ["x"]}]}})")
                  .size() == 1);
    }
    std::string name64(64, 'n');
    CHECK(errors_of(R"({"root": {"children": [{"name": ")" + name64 + R"(", "command": ["x"]}]}})")
              .empty());
    CHECK(errors_of(R"({"root": {"children": [{"name": ")" + name64 + R"(n", "command": ["x"]}]}})")
              .size() == 1);
}

TEST_CASE("a missing root is an error at /root") {
    CHECK(one_error(R"({"registries": []})") ==
          "t.json: /root: expected a supervisor body (an object); got nothing");
}

TEST_CASE("a document that is not an object is an error at /") {
    CHECK(one_error("[1]") == R"(t.json: /: expected an object with "root"; got [1])");
    CHECK(one_error("null") == R"(t.json: /: expected an object with "root"; got null)");
}

TEST_CASE("join to an undeclared registry names the declared ones") {
    CHECK(
        one_error(worker_spec(R"("join": {"foo": ["g"]})", R"("registries": ["sessions"], )")) ==
        R"(t.json: /root/children/0/join/foo: expected a registry declared in /registries (sessions); got "foo")");
    CHECK(
        one_error(worker_spec(R"("join": {"foo": ["g"]})")) ==
        R"(t.json: /root/children/0/join/foo: expected a registry declared in /registries (there is none); got "foo")");
}

TEST_CASE("join group names follow the group name rule") {
    CHECK(
        one_error(worker_spec(R"("join": {"r": ["ok", "not ok"]})", R"("registries": ["r"], )")) ==
        R"(t.json: /root/children/0/join/r/1: expected a name of 1 to 64 letters, digits, '_', '.', ':' or '-'; got "not ok")");
    CHECK(errors_of(worker_spec(R"("join": {"r": "g"})", R"("registries": ["r"], )")).size() == 1);
    CHECK(errors_of(worker_spec(R"("join": ["r"])", R"("registries": ["r"], )")).size() == 1);
}

TEST_CASE("registry names must be valid and declared once") {
    CHECK(
        one_error(R"({"registries": ["a", {"name": "a"}], "root": {}})") ==
        R"(t.json: /registries/1/name: expected a registry name declared once; got "a", already declared at /registries/0)");
    CHECK(
        one_error(R"({"registries": ["a b"], "root": {}})") ==
        R"(t.json: /registries/0: expected a name of 1 to 64 letters, digits, '_', '.', ':' or '-'; got "a b")");
    CHECK(
        one_error(R"({"registries": [{"max_groups": 2}], "root": {}})") ==
        R"(t.json: /registries/0/name: expected a name of 1 to 64 letters, digits, '_', '.', ':' or '-'; got nothing)");
    CHECK(errors_of(R"({"registries": "a", "root": {}})").size() == 1);
    CHECK(errors_of(R"({"registries": [5], "root": {}})").size() == 1);
}

TEST_CASE("command must be a non-empty array of strings, the program named") {
    CHECK(one_error(R"({"root": {"children": [{"name": "w", "command": []}]}})") ==
          "t.json: /root/children/0/command: expected a non-empty array of strings (the program "
          "and its arguments); got []");
    CHECK(
        one_error(R"({"root": {"children": [{"name": "w", "command": ["", "a"]}]}})") ==
        R"(t.json: /root/children/0/command/0: expected a non-empty string (the program); got "")");
    CHECK(one_error(R"({"root": {"children": [{"name": "w", "command": ["a", 1]}]}})") ==
          R"(t.json: /root/children/0/command/1: expected a string without NUL; got 1)");
    CHECK(one_error(R"({"root": {"children": [{"name": "w", "command": ["a", "b\u0000"]}]}})") ==
          R"(t.json: /root/children/0/command/1: expected a string without NUL; got "b\u0000")");
    CHECK(errors_of(R"({"root": {"children": [{"name": "w", "command": "prog"}]}})").size() == 1);
    CHECK(errors_of(R"({"root": {"children": [{"name": "w", "command": [1, null]}]}})").size() ==
          2);
    CHECK(errors_of(R"({"root": {"children": [{"name": "w", "command": ["a\u0000b"]}]}})").size() ==
          1);
}

TEST_CASE("an empty argument is an argument") {
    auto spec = load(
        R"({"root": {"children": [{"name": "r", "command": ["redis-server", "--save", ""]}]}})");
    CHECK(only_worker(spec).command == std::vector<std::string>{"redis-server", "--save", ""});
}

TEST_CASE("env keeps values as strings and refuses bad names") {
    CHECK(
        one_error(worker_spec(R"("env": {"A=B": "x"})")) ==
        R"(t.json: /root/children/0/env/A=B: expected a variable name, non-empty and without '='; got "A=B")");
    CHECK(one_error(worker_spec(R"("env": {"N": 5})")) ==
          "t.json: /root/children/0/env/N: expected a string value; got 5");
    CHECK(errors_of(worker_spec(R"("env": {"": "x"})")).size() == 1);
    CHECK(errors_of(worker_spec(R"("env": ["A=1"])")).size() == 1);
}

TEST_CASE("stdout and stderr accept inherit, null or a file object only") {
    CHECK(load_worker(R"("stdout": "inherit")").out.mode == spec::OutputSpec::Mode::Inherit);
    CHECK(load_worker(R"("stderr": "null")").err.mode == spec::OutputSpec::Mode::Null);
    CHECK(
        one_error(worker_spec(R"("stdout": "file")")) ==
        R"(t.json: /root/children/0/stdout: expected "inherit", "null" or {"file": PATH, "max_bytes": N, "keep": K}; got "file")");
    CHECK(one_error(worker_spec(R"("stdout": {"max_bytes": 5000})")) ==
          "t.json: /root/children/0/stdout/file: expected a file in an existing, writable folder; "
          "got nothing");
    CHECK(errors_of(worker_spec(R"("stdout": 1)")).size() == 1);
}

TEST_CASE("an output file needs an existing, writable folder and must not be a folder") {
    TempDir tmp;
    fs::create_directory(tmp.path + "/logs");
    auto w =
        only_worker(load(worker_spec(R"("stdout": {"file": "logs/../logs/a.log"})"), tmp.path));
    CHECK(w.out.file == tmp.path + "/logs/a.log");
    CHECK(
        one_error(worker_spec(R"("stdout": {"file": "missing/a.log"})"), tmp.path) ==
        R"(t.json: /root/children/0/stdout/file: expected a file in an existing, writable folder; got "missing/a.log")");
    CHECK(errors_of(worker_spec(R"("stdout": {"file": "logs"})"), tmp.path).size() == 1);
    CHECK(errors_of(worker_spec(R"("stdout": {"file": "logs/"})"), tmp.path).size() == 1);
    CHECK(errors_of(worker_spec(R"("stdout": {"file": "."})"), tmp.path).size() == 1);
    CHECK(errors_of(worker_spec(R"("stdout": {"file": "/"})"), tmp.path).size() == 1);
    CHECK(errors_of(worker_spec(R"("stdout": {"file": ""})"), tmp.path).size() == 1);
    // A folder chipd may not write in (as the host tells).
    host.read_only = {tmp.path + "/logs"};
    CHECK(errors_of(worker_spec(R"("stdout": {"file": "logs/b.log"})"), tmp.path).size() == 1);
    host.read_only.clear();
}

TEST_CASE("an output file in a folder chipd would refuse is an error naming the folder and why") {
    TempDir tmp;
    fs::create_directory(tmp.path + "/logs");
    host.untrusted = {tmp.path + "/logs"};
    CHECK(one_error(worker_spec(R"("stdout": {"file": "logs/a.log"})"), tmp.path) ==
          "t.json: /root/children/0/stdout/file: expected a file in a folder of chipd's user or "
          "root that no other user can write to (unless sticky); got \"logs/a.log\": folder " +
              tmp.path + "/logs (owner uid 0, mode 0777) is writable by others and not sticky");
    // A missing folder is told as before, not asked about.
    CHECK(
        one_error(worker_spec(R"("stdout": {"file": "missing/a.log"})"), tmp.path) ==
        R"(t.json: /root/children/0/stdout/file: expected a file in an existing, writable folder; got "missing/a.log")");
    host.untrusted.clear();
}

TEST_CASE("users and groups are resolved to ids") {
    auto w = load_worker(R"("user": "root")");
    CHECK(w.user == "root");
    CHECK(w.uid == 0u);
    CHECK(w.gid == 0u);  // root's primary group
    w = load_worker(R"("group": "root")");
    CHECK_FALSE(w.uid.has_value());
    CHECK(w.gid == 0u);
    w = load_worker(R"("user": "0", "group": "0")");
    CHECK(w.uid == 0u);
    CHECK(w.gid == 0u);
    w = load_worker(R"("user": "app", "group": "staff")");
    CHECK(w.uid == 1000u);
    CHECK(w.gid == 50u);
    // Like chown(1): a user named by digits is that user, not that uid.
    w = load_worker(R"("user": "2000")");
    CHECK(w.uid == 3000u);
    CHECK(w.gid == 3000u);
}

TEST_CASE("an unknown user or group is an error at its pointer") {
    CHECK(
        one_error(worker_spec(R"("user": "nosuchuser-chip")")) ==
        R"(t.json: /root/children/0/user: expected an existing user (a name or a numeric id); got "nosuchuser-chip")");
    CHECK(
        one_error(worker_spec(R"("group": "nosuchgroup-chip")")) ==
        R"(t.json: /root/children/0/group: expected an existing group (a name or a numeric id); got "nosuchgroup-chip")");
    CHECK(errors_of(worker_spec(R"("user": 0)")).size() == 1);
    CHECK(errors_of(worker_spec(R"("user": "")")).size() == 1);
}

TEST_CASE("a numeric user without a passwd entry needs a group") {
    CHECK(
        one_error(worker_spec(R"("user": "3999999999")")) ==
        R"(t.json: /root/children/0/user: expected a user with a passwd entry, or a "group" beside a numeric user id; got "3999999999")");
    auto w = load_worker(R"("user": "3999999999", "group": "root")");
    CHECK(w.uid == 3999999999u);
    CHECK(w.gid == 0u);
}

TEST_CASE("a JSON syntax error gives the file, line and column") {
    CHECK(one_error("{\n  \"root\": {\n    \"strategy\": tru\n") ==
          "t.json:3:20: syntax error: invalid literal; last read: '\"strategy\": tru<U+000A>'");
    CHECK(one_error("{") ==
          "t.json:1:2: syntax error: unexpected end of input; expected string literal");
    CHECK(one_error("") ==
          "t.json:1:1: syntax error: unexpected end of input; expected '[', '{', or a literal");
    CHECK(one_error(R"({"root": {}} x)").rfind("t.json:1:14: syntax error: ", 0) == 0);
}

TEST_CASE("a number too large for a double is a syntax error with its position") {
    CHECK(one_error("{\"root\":\n 1e400}") ==
          "t.json:2:6: syntax error: number overflow parsing '1e400'");
}

TEST_CASE("a duplicate key is reported at its pointer") {
    CHECK(
        one_error(R"({"root": {"children": [{"name": "a", "command": ["x"], "name": "b"}]}})") ==
        R"(t.json: /root/children/0/name: expected each key once in an object; got "name" again)");
}

TEST_CASE("all errors are collected, not only the first") {
    auto errors = errors_of(R"({"root": {"strategy": "x", "children": [
        {"name": "a", "command": ["x"], "restart": "always"},
        {"name": "b", "command": ["x"], "instances": -1}]}})");
    REQUIRE(errors.size() == 3);
    CHECK(
        errors[0] ==
        R"(t.json: /root/strategy: expected one of one_for_one, one_for_all, rest_for_one; got "x")");
    CHECK(
        errors[1] ==
        R"(t.json: /root/children/0/restart: expected one of permanent, transient, temporary; got "always")");
    CHECK(errors[2] ==
          "t.json: /root/children/1/instances: expected an integer from 0 to 100000; got -1");
}

TEST_CASE("SpecError's what() is every error, one per line") {
    try {
        load(R"({"root": {"strategy": 1, "period": 0}})");
        FAIL("loaded");
    } catch (const SpecError &e) {
        REQUIRE(e.errors().size() == 2);
        CHECK(std::string(e.what()) == e.errors()[0] + "\n" + e.errors()[1]);
    }
}

TEST_CASE("long values are cut in messages") {
    std::string big(10000, 'x');
    auto error = one_error(R"({"root": {"strategy": ")" + big + R"("}})");
    CHECK(error.size() < 200);
    CHECK(error.find("...") != std::string::npos);
}

// ---- paths ----

TEST_CASE("a command path is made absolute against the spec folder; a bare name is not") {
    CHECK(load_worker("").command[0] == "prog");
    auto spec = load(R"({"root": {"children": [
        {"name": "a", "command": ["./bin/db", "./arg"]}, {"name": "b", "command": ["../x/./y"]},
        {"name": "c", "command": ["/usr/bin/env"]}]}})",
                     "/srv/app");
    CHECK(worker_of(spec.root->children[0]).command ==
          std::vector<std::string>{"/srv/app/bin/db", "./arg"});
    CHECK(worker_of(spec.root->children[1]).command[0] == "/srv/x/y");
    CHECK(worker_of(spec.root->children[2]).command[0] == "/usr/bin/env");
}

TEST_CASE("cwd and socket are made absolute against the spec folder") {
    auto spec =
        load(worker_spec(R"("cwd": "data/")", R"("socket": "run/chipd.sock", )"), "/srv/app");
    CHECK(only_worker(spec).cwd == "/srv/app/data");
    CHECK(spec.socket == "/srv/app/run/chipd.sock");
    CHECK(load_worker(R"("cwd": "/")").cwd == "/");
}

TEST_CASE("a socket path too long for sun_path is refused") {
    std::string long_path = "/" + std::string(120, 's');
    CHECK(errors_of(R"({"socket": ")" + long_path + R"(", "root": {}})").size() == 1);
    CHECK(errors_of(R"({"socket": "", "root": {}})").size() == 1);
}

TEST_CASE("socket as an object: path, group (a name or a numeric id) and mode, each optional") {
    auto spec = load(R"({"socket": {"path": "run/chipd.sock", "group": "staff", "mode": "0640"},
                         "root": {}})",
                     "/srv/app");
    CHECK(spec.socket == "/srv/app/run/chipd.sock");
    CHECK(spec.socket_access.group == "staff");
    CHECK(spec.socket_access.gid == gid_t{50});
    CHECK(spec.socket_access.mode == mode_t{0640});
    auto numeric = load(R"({"socket": {"group": "4321"}, "root": {}})");
    CHECK_FALSE(numeric.socket.has_value());  // the default path
    CHECK(numeric.socket_access.gid == gid_t{4321});
    CHECK(numeric.socket_access.mode == mode_t{0660});
    auto plain = load(R"({"socket": "/run/x.sock", "root": {}})");
    CHECK(plain.socket == "/run/x.sock");
    CHECK(plain.socket_access == spec::SocketAccess{});
    CHECK(load(R"({"socket": {}, "root": {}})").socket_access.mode == mode_t{0660});
}

TEST_CASE("socket object errors name the key: unknown group, bad mode, unknown key") {
    CHECK(one_error(R"({"socket": {"group": "wheel"}, "root": {}})") ==
          "t.json: /socket/group: expected an existing group (a name or a numeric id); got "
          "\"wheel\"");
    for (const char *bad : {R"("1777")", R"("4755")", R"("0o660")", R"("")", R"("rw")", "432",
                            R"("01000")", "null"}) {
        std::string e =
            one_error(std::string(R"({"socket": {"mode": )") + bad + R"(}, "root": {}})");
        INFO(e);
        CHECK(e.find("t.json: /socket/mode: expected a mode as a string of octal digits") == 0);
    }
    CHECK(one_error(R"({"socket": {"grop": "staff"}, "root": {}})")
              .find("/socket/grop: unknown key; expected one of path, group, mode; did you mean "
                    "\"group\"?") != std::string::npos);
    CHECK(one_error(R"({"socket": {"path": ""}, "root": {}})").find("/socket/path:") !=
          std::string::npos);
    CHECK(one_error(R"({"socket": 5, "root": {}})").find("/socket: expected a socket path or") !=
          std::string::npos);
}

TEST_CASE("a relative folder given to load_string is made absolute") {
    auto spec = load(R"({"root": {}})", "some/dir/");
    CHECK(spec.dir == "/work/here/some/dir");  // the host's working directory
}

TEST_CASE("load_file takes relative paths from the file's folder") {
    TempDir tmp;
    std::ofstream(tmp.path + "/s.json")
        << R"({"root": {"children": [{"name": "w", "command": ["./w"]}]}})";
    auto spec = spec::load_file(tmp.path + "/s.json", host);
    CHECK(spec.file == tmp.path + "/s.json");
    CHECK(spec.dir == tmp.path);
    CHECK(only_worker(spec).command[0] == tmp.path + "/w");
    CHECK(only_worker(spec).cwd == tmp.path);
}

TEST_CASE("load_file names the file in its errors") {
    TempDir tmp;
    std::ofstream(tmp.path + "/bad.json") << R"({"root": {"period": -1}})";
    try {
        spec::load_file(tmp.path + "/bad.json", host);
        FAIL("loaded");
    } catch (const SpecError &e) {
        REQUIRE(e.errors().size() == 1);
        CHECK(e.errors()[0].rfind(tmp.path + "/bad.json: /root/period: ", 0) == 0);
    }
}

TEST_CASE("load_file reports an unreadable file with the reason") {
    TempDir tmp;
    try {
        spec::load_file(tmp.path + "/missing.json", host);
        FAIL("loaded");
    } catch (const SpecError &e) {
        CHECK(e.errors() ==
              std::vector<std::string>{tmp.path +
                                       "/missing.json: unable to read: No such file or directory"});
    }
    try {
        spec::load_file(tmp.path, host);
        FAIL("loaded");
    } catch (const SpecError &e) {
        CHECK(e.errors() ==
              std::vector<std::string>{tmp.path + ": unable to read: Is a directory"});
    }
}

// ---- nesting and totality ----

TEST_CASE("supervisors nest 64 deep, and no deeper") {
    auto nested = [](int depth) {
        std::string text = R"({"root": )";
        for (int i = 0; i < depth; ++i) text += R"({"children": [{"name": "s", "supervisor": )";
        text += "{}";
        for (int i = 0; i < depth; ++i) text += "}]}";
        return text + "}";
    };
    CHECK(errors_of(nested(64)).empty());
    auto errors = errors_of(nested(65));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find(": expected supervisors nested at most 64 deep; got one nested deeper") !=
          std::string::npos);
}

TEST_CASE("any JSON value in any field yields errors, never a crash") {
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    std::vector<std::string> values{"null",
                                    "true",
                                    "-1",
                                    "0",
                                    "1.5",
                                    "1e300",
                                    "-1e300",
                                    "18446744073709551615",
                                    "-9223372036854775808",
                                    "\"\"",
                                    "\"x\"",
                                    "\"\\u0000\"",
                                    "[]",
                                    "{}",
                                    "[1,[2]]",
                                    "{\"a\":{}}",
                                    deep};
    auto attempt = [](const std::string &text) {
        try {
            load(text);
        } catch (const SpecError &e) {
            CHECK_FALSE(e.errors().empty());
            for (const auto &line : e.errors()) CHECK(line.size() < 1000);
        }
    };
    for (const auto &v : values) {
        for (const auto &key : spec::worker_keys()) attempt(worker_spec("\"" + key + "\": " + v));
        for (const auto &key : spec::supervisor_keys())
            attempt(R"({"root": {")" + key + "\": " + v + "}}");
        for (const auto &key : spec::top_level_keys())
            attempt(R"({"root": {}, ")" + key + "\": " + v + "}");
        for (const auto &key : spec::output_keys())
            attempt(worker_spec(R"("stdout": {")" + key + "\": " + v + "}"));
        for (const auto &key : spec::registry_keys())
            attempt(R"({"registries": [{")" + key + "\": " + v + R"(}], "root": {}})");
        attempt(worker_spec(R"("env": {"K": )" + v + "}"));
        attempt(worker_spec(R"("join": {"r": )" + v + "}", R"("registries": ["r"], )"));
        attempt(worker_spec(R"("join": {"r": [)" + v + "]}", R"("registries": ["r"], )"));
        attempt(R"({"root": {"children": [)" + v + "]}}");
        attempt(R"({"root": {"children": [{"name": "s", "supervisor": )" + v + "}]}}");
        attempt(v);
    }
}

TEST_CASE("truncated and garbled text is a syntax error, never a crash") {
    std::string text =
        R"({"registries": ["r"], "root": {"children": [{"name": "w", "command": ["x"], "join": {"r": ["g"]}}]}})";
    for (std::size_t n = 0; n < text.size(); ++n) {
        auto errors = errors_of(text.substr(0, n));
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].rfind("t.json:1:", 0) == 0);
    }
    CHECK(one_error("{\"root\": \"\xff\"}") ==
          "t.json:1:11: syntax error: invalid string: ill-formed UTF-8 byte; last read: '\"\\xFF'");
}

// ---- the examples ----

TEST_CASE("every example spec in config/ loads") {
    auto files = example_specs();
    CHECK(files.size() >= 3);
    for (const auto &file : files) {
        INFO(file);
        try {
            auto spec = spec::load_file(file, host);
            CHECK_FALSE(spec.root->children.empty());
        } catch (const SpecError &e) {
            FAIL(e.what());
        }
    }
}

TEST_CASE("sessions.json is the seed: five sessions in groups a, b, c, a, b") {
    auto spec = spec::load_file(std::string(CHIP_SOURCE_ROOT) + "/config/sessions.json", host);
    REQUIRE(spec.registries.size() == 1);
    CHECK(spec.registries[0].name == "sessions");
    CHECK(spec.root->strategy == core::Strategy::RestForOne);
    CHECK(spec.root->max_restarts == 5);
    CHECK(spec.root->period == 1s);
    REQUIRE(spec.root->children.size() == 5);
    const char *groups[] = {"a", "b", "c", "a", "b"};
    for (std::size_t i = 0; i < 5; ++i) {
        const auto w = worker_of(spec.root->children[i]);
        REQUIRE(w.join.size() == 1);
        CHECK(w.join[0].first == "sessions");
        CHECK(w.join[0].second == std::vector<std::string>{groups[i]});
    }
}

TEST_CASE("load_child: one child with the spec's checks, pointers from the child") {
    auto c = spec::load_child(R"({"name": "x", "command": ["./x"], "instances": 2})", "child",
                              "/here", {}, host);
    CHECK(c.name == "x");
    CHECK(worker_of(c).command[0] == "/here/x");
    CHECK(worker_of(c).instances == 2u);
    auto errors = [](const std::string &text, std::vector<std::string> registries = {}) {
        try {
            spec::load_child(text, "child", "/here", registries, host);
        } catch (const SpecError &e) {
            return e.errors();
        }
        return std::vector<std::string>{};
    };
    CHECK(errors(R"({"name": "x", "command": []})") ==
          std::vector<std::string>{"child: /command: expected a non-empty array of strings (the "
                                   "program and its arguments); got []"});
    CHECK(errors(R"({"name": "x", "command": ["x"], "join": {"r": ["g"]}})").size() == 1);
    CHECK(errors(R"({"name": "x", "command": ["x"], "join": {"r": ["g"]}})", {"r"}).empty());
    CHECK(errors(R"({"name": "x", "command": ["x"], "bogus": 1})").size() == 1);
    CHECK(errors(R"({"name": "x", "command": ["x"])")[0].rfind("child:1:", 0) == 0);
    auto sup = spec::load_child(
        R"({"name": "s", "supervisor": {"children": [{"name": "a", "command": ["a"]}]}})", "child",
        "/here", {}, host);
    CHECK(sup.is_supervisor);
    CHECK(sup.supervisor->children.size() == 1);
}

// ---- comments, includes, start, the worker's login, --check ----

namespace {

// Writes TEXT to DIR/NAME (folders made as needed).
void write_file(const std::string &dir, const std::string &name, const std::string &text) {
    fs::path p = fs::path(dir) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

// The errors of the spec file DIR/NAME (empty when it loads).
std::vector<std::string> file_errors(const std::string &dir, const std::string &name = "main.json",
                                     spec::Checks checks = spec::Checks::Spec) {
    try {
        spec::load_file(dir + "/" + name, host, checks);
    } catch (const SpecError &e) {
        return e.errors();
    }
    return {};
}

std::vector<std::string> names_of(const std::vector<core::ChildSpec> &children) {
    std::vector<std::string> out;
    for (const auto &c : children) out.push_back(c.name);
    return out;
}

// A spec whose root's children are CHILDREN (JSON text of the array's items).
std::string root_with(const std::string &children) {
    return R"({"root": {"children": [)" + children + "]}}";
}

// ---- cluster ----

std::string cluster_spec(const std::string &fields) {
    return R"({"root": {}, "cluster": {)" + fields + "}}";
}

}  // namespace

TEST_CASE("comments are allowed anywhere white space is") {
    auto spec = load(R"(// the whole tree
{
  /* the root */ "root": { // one worker
    "children": [ { "name": "w", /* its program: */ "command": ["prog"] } ] }
})");
    CHECK(names_of(spec.root->children) == std::vector<std::string>{"w"});
}

TEST_CASE("a syntax error after comments keeps its line and column") {
    // Columns count from the line's start, the comment's bytes included.
    CHECK(one_error("// one\n/* two\n three */ {\"root\": tru}") ==
          "t.json:3:23: syntax error: invalid literal; last read: '\"root\": tru}'");
    CHECK(one_error("{\"root\": {}} /* never closed") ==
          "t.json:1:29: syntax error: invalid comment; missing closing '*/'; last read: "
          "'\"root\": {}} /* never closed'; expected end of input");
}

TEST_CASE("an include splices in the children of every matching file, in name order") {
    TempDir tmp;
    write_file(tmp.path, "main.json", root_with(R"({"name": "first", "command": ["a"]},
        {"include": "conf.d/*.json"}, {"name": "last", "command": ["a"]})"));
    // One child, an array of children, a file that is not *.json, a hidden file.
    write_file(tmp.path, "conf.d/20-web.json", R"({"name": "web", "command": ["./web"]})");
    write_file(tmp.path, "conf.d/10-db.json", R"(// two children
        [{"name": "db", "command": ["db"]}, {"name": "cache", "command": ["c"], "cwd": "data"}])");
    write_file(tmp.path, "conf.d/notes.txt", "not a spec");
    write_file(tmp.path, "conf.d/.hidden.json", "[oops");
    auto spec = spec::load_file(tmp.path + "/main.json", host);
    CHECK(names_of(spec.root->children) ==
          std::vector<std::string>{"first", "db", "cache", "web", "last"});
    // Relative paths in an included file are taken from its own folder.
    CHECK(worker_of(spec.root->children[3]).command[0] == tmp.path + "/conf.d/web");
    CHECK(worker_of(spec.root->children[2]).cwd == tmp.path + "/conf.d/data");
    CHECK(worker_of(spec.root->children[1]).cwd == tmp.path + "/conf.d");
    CHECK(worker_of(spec.root->children[0]).cwd == tmp.path);
}

TEST_CASE("included files may include others, and supervisors' children too") {
    TempDir tmp;
    write_file(
        tmp.path, "main.json",
        root_with(R"({"name": "s", "supervisor": {"children": [{"include": "sub/one.json"}]}})"));
    write_file(tmp.path, "sub/one.json",
               R"([{"name": "a", "command": ["a"]}, {"include": "more/*"}])");
    write_file(tmp.path, "sub/more/x", R"({"name": "b", "command": ["b"]})");
    auto spec = spec::load_file(tmp.path + "/main.json", host);
    REQUIRE(spec.root->children.size() == 1);
    CHECK(names_of(spec.root->children[0].supervisor->children) ==
          std::vector<std::string>{"a", "b"});
}

TEST_CASE("a glob that matches nothing adds no children") {
    TempDir tmp;
    write_file(tmp.path, "main.json",
               root_with(R"({"include": "conf.d/*.json"}, {"include": "nowhere/*.json"})"));
    fs::create_directories(tmp.path + "/conf.d");
    CHECK(spec::load_file(tmp.path + "/main.json", host).root->children.empty());
}

TEST_CASE("include errors name the included file and its pointer") {
    TempDir tmp;
    write_file(tmp.path, "main.json",
               root_with(R"({"name": "w", "command": ["a"]}, {"include": "conf.d/*.json"})"));
    write_file(tmp.path, "conf.d/a.json",
               R"({"name": "x", "command": ["a"], "restart": "always"})");
    write_file(tmp.path, "conf.d/b.json", R"([{"name": "y", "command": []}])");
    write_file(tmp.path, "conf.d/c.json", "{\n  \"name\": \"z\",\n  oops\n}");
    write_file(tmp.path, "conf.d/d.json", R"({"name": "w", "command": ["a"]})");
    write_file(tmp.path, "conf.d/e.json", R"([{"name": "x", "command": ["a"]}])");
    write_file(tmp.path, "conf.d/f.json", "5");
    std::string d = tmp.path + "/conf.d/";
    CHECK(
        file_errors(tmp.path) ==
        std::vector<std::string>{
            d + "a.json: /restart: expected one of permanent, transient, temporary; got \"always\"",
            d + "b.json: /0/command: expected a non-empty array of strings (the program and its "
                "arguments); got []",
            d + "c.json:3:3: syntax error: invalid literal; last read: '\"z\",<U+000A>  o'; "
                "expected string literal",
            d +
                "d.json: /name: expected a name unique among its siblings; got \"w\", already "
                "used by /root/children/0 in " +
                tmp.path + "/main.json",
            d +
                "e.json: /0/name: expected a name unique among its siblings; got \"x\", already "
                "used by / in " +
                d + "a.json",
            d + "f.json: /: expected a child (an object) or an array of children; got 5",
        });
}

TEST_CASE("included file names in errors follow the spec's name as given") {
    TempDir tmp;
    write_file(tmp.path, "main.json", root_with(R"({"include": "conf.d/*.json"})"));
    write_file(tmp.path, "conf.d/a.json", R"({"name": "x", "command": ["a"], "bogus": 1})");
    auto cwd = fs::current_path();
    fs::current_path(tmp.path);
    std::vector<std::string> errors;
    try {
        spec::load_file("main.json", spec::system_host());
    } catch (const SpecError &e) {
        errors = e.errors();
    }
    fs::current_path(cwd);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].rfind("conf.d/a.json: /bogus: unknown key;", 0) == 0);
}

TEST_CASE("an include of a missing file, a cycle or a bad entry is refused at its pointer") {
    TempDir tmp;
    const std::string at = tmp.path + "/main.json: /root/children/";
    write_file(tmp.path, "main.json", root_with(R"({"include": "nosuch.json"})"));
    CHECK(file_errors(tmp.path) ==
          std::vector<std::string>{at + "0/include: expected files chipd can read; got " +
                                   tmp.path + "/nosuch.json: No such file or directory"});
    write_file(tmp.path, "main.json", root_with(R"({"include": "a.json"})"));
    write_file(tmp.path, "a.json", R"([{"include": "b/*.json"}])");
    write_file(tmp.path, "b/c.json", R"({"include": "../main.json"})");
    CHECK(file_errors(tmp.path) ==
          std::vector<std::string>{tmp.path +
                                   "/b/c.json: /include: expected no include cycle; "
                                   "got \"../main.json\", which leads back to " +
                                   tmp.path + "/main.json"});
    write_file(tmp.path, "a.json", R"({"include": "a.json"})");
    CHECK(file_errors(tmp.path) ==
          std::vector<std::string>{tmp.path +
                                   "/a.json: /include: expected no include cycle; got "
                                   "\"a.json\", which leads back to " +
                                   tmp.path + "/a.json"});
    write_file(tmp.path, "main.json",
               root_with(R"({"include": 5}, {"include": "x/*/y.json"}, {"include": "conf.d/"},
                            {"include": "a.json", "name": "n"})"));
    write_file(tmp.path, "a.json", "[]");
    CHECK(
        file_errors(tmp.path) ==
        std::vector<std::string>{
            at + "0/include: expected a file name or a glob, relative to this file's folder; got 5",
            at + "1/include: expected wildcards only in the file name, not in its folder; got "
                 "\"x/*/y.json\"",
            at + "2/include: expected a file name or a glob of file names; got \"conf.d/\"",
            at + "3/name: unknown key; expected one of include",
        });
}

TEST_CASE("a chain of includes is bounded") {
    TempDir tmp;
    write_file(tmp.path, "main.json", root_with(R"({"include": "f0.json"})"));
    for (int i = 0; i < 40; ++i)
        write_file(tmp.path, "f" + std::to_string(i) + ".json",
                   R"({"include": "f)" + std::to_string(i + 1) + R"(.json"})");
    auto errors = file_errors(tmp.path);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("expected includes at most 16 deep") != std::string::npos);
}

TEST_CASE("load_child refuses an include as the child itself") {
    CHECK_THROWS_AS(spec::load_child(R"({"include": "x.json"})", "child", "/here", {}, host),
                    SpecError);
}

TEST_CASE(
    "start: false is read for workers, pools and supervisors; anything but a bool is refused") {
    auto spec = load(root_with(R"({"name": "w", "command": ["a"], "start": false},
        {"name": "p", "command": ["a"], "instances": 2, "start": false},
        {"name": "s", "supervisor": {}, "start": false},
        {"name": "on", "command": ["a"], "start": true}, {"name": "d", "command": ["a"]})"));
    const auto &c = spec.root->children;
    CHECK_FALSE(c[0].worker->start);
    CHECK_FALSE(c[1].worker->start);
    CHECK_FALSE(c[2].supervisor->start);
    CHECK(c[3].worker->start);
    CHECK(c[4].worker->start);
    CHECK(one_error(worker_spec(R"("start": "no")")) ==
          R"(t.json: /root/children/0/start: expected true or false; got "no")");
    CHECK(one_error(root_with(R"({"name": "s", "supervisor": {}, "start": 0})")) ==
          "t.json: /root/children/0/start: expected true or false; got 0");
    // A supervisor body has no "start": its child entry does.
    CHECK(errors_of(R"({"root": {"start": false}})").size() == 1);
}

TEST_CASE("a worker's user brings its login: name, home, shell") {
    auto w = load_worker(R"("user": "app")");
    REQUIRE(w.login.has_value());
    CHECK(*w.login == spec::Login{"app", "/home/app", "/bin/sh"});
    w = load_worker(R"("user": "1000")");  // by id: the entry of that id
    REQUIRE(w.login.has_value());
    CHECK(w.login->name == "app");
    w = load_worker(R"("user": "3999999999", "group": "root")");  // no entry
    CHECK_FALSE(w.login.has_value());
    CHECK_FALSE(load_worker("").login.has_value());
}

TEST_CASE("Checks::Machine reports programs not found or not executable and missing cwds") {
    TempDir tmp;
    host.executables = {"/usr/bin/prog", "/opt/bin/tool", tmp.path + "/run.sh"};
    host.not_executable = {"/bin/data", "/srv/x"};
    std::string text = root_with(R"(
        {"name": "ok", "command": ["prog"]},
        {"name": "path", "command": ["./run.sh"]},
        {"name": "own-path", "command": ["tool"], "env": {"PATH": "/opt/bin"}},
        {"name": "missing", "command": ["nosuch"]},
        {"name": "no-x", "command": ["data"]},
        {"name": "abs", "command": ["/srv/x"]},
        {"name": "abs-missing", "command": ["/srv/y"]},
        {"name": "cwd", "command": ["prog"], "cwd": "nowhere"},
        {"name": "cwd-ok", "command": ["prog"], "cwd": "/"})");
    write_file(tmp.path, "main.json", text);
    const std::string at = tmp.path + "/main.json: /root/children/";
    CHECK(file_errors(tmp.path, "main.json", spec::Checks::Machine) ==
          std::vector<std::string>{
              at + "3/command/0: expected a program in PATH (/usr/bin:/bin); got \"nosuch\", not "
                   "found",
              at + "4/command/0: expected a program in PATH (/usr/bin:/bin); got \"data\", found "
                   "but Permission denied",
              at + "5/command/0: expected an executable file; got \"/srv/x\" (Permission denied)",
              at + "6/command/0: expected an executable file; got \"/srv/y\" (No such file or "
                   "directory)",
              at + "7/cwd: expected an existing folder; got \"nowhere\"",
          });
    // chipd itself meets them as start failures: the spec loads.
    CHECK(file_errors(tmp.path).empty());
    host.executables.clear();
    host.not_executable.clear();
}

TEST_CASE("Checks::Machine looks into included files too") {
    TempDir tmp;
    write_file(tmp.path, "main.json", root_with(R"({"include": "conf.d/*.json"})"));
    write_file(tmp.path, "conf.d/a.json", R"({"name": "x", "command": ["nosuch"]})");
    CHECK(file_errors(tmp.path, "main.json", spec::Checks::Machine) ==
          std::vector<std::string>{tmp.path +
                                   "/conf.d/a.json: /command/0: expected a program in PATH "
                                   "(/usr/bin:/bin); got \"nosuch\", not found"});
}

TEST_CASE("cluster: defaults, the node from the host name, endpoints without trailing '/'") {
    auto spec = load(R"({"root": {}})");
    CHECK_FALSE(spec.cluster.has_value());
    spec = load(cluster_spec(
        R"("etcd": ["http://127.0.0.1:2379/", "https://e.example:2379"], "name": "prod")"));
    REQUIRE(spec.cluster.has_value());
    CHECK(spec.cluster->etcd ==
          std::vector<std::string>{"http://127.0.0.1:2379", "https://e.example:2379"});
    CHECK(spec.cluster->name == "prod");
    CHECK(spec.cluster->node == "box-1");
    CHECK(spec.cluster->lease_ttl == 10u);
    CHECK_FALSE(spec.cluster->tls.has_value());
    spec =
        load(cluster_spec(R"("etcd": ["http://e:1"], "name": "p", "node": "a:b", "lease_ttl": 2)"));
    CHECK(spec.cluster->node == "a:b");
    CHECK(spec.cluster->lease_ttl == 2u);
}

TEST_CASE("cluster: each wrong field is reported at its pointer") {
    CHECK(one_error(R"({"root": {}, "cluster": 1})") ==
          "t.json: /cluster: expected an object {\"etcd\": [URL, ...], \"name\", \"node\", "
          "\"lease_ttl\", \"tls\"}; got 1");
    CHECK(one_error(cluster_spec(R"("name": "p")")) ==
          "t.json: /cluster/etcd: expected an array of etcd endpoint URLs; got nothing");
    CHECK(one_error(cluster_spec(R"("etcd": [], "name": "p")")) ==
          "t.json: /cluster/etcd: expected an array of 1 to 16 etcd endpoint URLs; got []");
    CHECK(one_error(cluster_spec(R"("etcd": ["http://e:1", "e:2379"], "name": "p")")) ==
          "t.json: /cluster/etcd/1: expected an etcd endpoint URL http://HOST:PORT or "
          "https://HOST:PORT; got \"e:2379\"");
    for (const char *bad : {"ftp://e", "http://", "http://:1", "http://e/v3", "http://u@e",
                            "http://e:1?x", "http://e 1"}) {
        INFO(bad);
        CHECK(errors_of(cluster_spec(R"("etcd": [")" + std::string(bad) + R"("], "name": "p")"))
                  .size() == 1);
    }
    CHECK(one_error(cluster_spec(R"("etcd": ["http://e"])")) ==
          "t.json: /cluster/name: expected a name of 1 to 64 letters, digits, '_', '.', ':' or "
          "'-'; got nothing");
    CHECK(one_error(cluster_spec(R"("etcd": ["http://e"], "name": "a/b")")) ==
          "t.json: /cluster/name: expected a name of 1 to 64 letters, digits, '_', '.', ':' or "
          "'-'; got \"a/b\"");
    CHECK(one_error(cluster_spec(R"("etcd": ["http://e"], "name": "p", "node": "")")) ==
          "t.json: /cluster/node: expected a name of 1 to 64 letters, digits, '_', '.', ':' or "
          "'-'; got \"\"");
    CHECK(one_error(cluster_spec(R"("etcd": ["http://e"], "name": "p", "lease_ttl": 1)")) ==
          "t.json: /cluster/lease_ttl: expected an integer from 2 to 3600; got 1");
    CHECK(one_error(cluster_spec(R"("etcd": ["http://e"], "name": "p", "lease_tll": 5)")) ==
          "t.json: /cluster/lease_tll: unknown key; expected one of etcd, name, node, lease_ttl, "
          "tls; did you mean \"lease_ttl\"?");
    // Every mistake at once.
    CHECK(errors_of(cluster_spec(R"("etcd": 1, "name": 2, "node": 3, "lease_ttl": "x")")).size() ==
          4);
}

TEST_CASE("cluster: a host name that is not a node name needs /cluster/node") {
    TestHost odd;
    odd.hostname = "box 1";
    auto errors = [&](const std::string &text) {
        try {
            load_string(text, "t.json", "/spec", odd);
        } catch (const SpecError &e) {
            return e.errors();
        }
        return std::vector<std::string>{};
    };
    CHECK(errors(cluster_spec(R"("etcd": ["http://e"], "name": "p")")) ==
          std::vector<std::string>{
              "t.json: /cluster/node: expected a node name (the host name is not one); expected a "
              "name of 1 to 64 letters, digits, '_', '.', ':' or '-'; got \"box 1\""});
    CHECK(errors(cluster_spec(R"("etcd": ["http://e"], "name": "p", "node": "n")")).empty());
}

TEST_CASE("cluster: TLS files must be readable; cert and key go together") {
    TempDir dir;
    for (const char *f : {"ca.pem", "cert.pem", "key.pem"})
        std::ofstream(dir.path + "/" + f) << "x";
    auto spec = load(
        cluster_spec(
            R"("etcd": ["https://e"], "name": "p", "tls": {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"})"),
        dir.path);
    REQUIRE(spec.cluster->tls.has_value());
    CHECK(spec.cluster->tls->ca == dir.path + "/ca.pem");
    CHECK(spec.cluster->tls->cert == dir.path + "/cert.pem");
    CHECK(spec.cluster->tls->key == dir.path + "/key.pem");
    CHECK(
        one_error(cluster_spec(R"("etcd": ["https://e"], "name": "p", "tls": {"ca": "none.pem"})"),
                  dir.path) ==
        "t.json: /cluster/tls/ca: expected the path of a readable PEM file; got \"" + dir.path +
            "/none.pem\" (No such file or directory)");
    CHECK(
        one_error(
            cluster_spec(
                R"("etcd": ["https://e"], "name": "p", "tls": {"cert": "cert.pem", "key": "key.pem"})"),
            dir.path) ==
        "t.json: /cluster/tls/ca: expected the path of a readable PEM file; got nothing");
    CHECK(
        one_error(
            cluster_spec(
                R"("etcd": ["https://e"], "name": "p", "tls": {"ca": "ca.pem", "cert": "cert.pem"})"),
            dir.path) ==
        "t.json: /cluster/tls/key: expected the client certificate's key beside \"cert\"; got "
        "nothing");
    CHECK(one_error(cluster_spec(R"("etcd": ["https://e"], "name": "p", "tls": {"ca": "."})"),
                    dir.path)
              .find("(Is a directory)") != std::string::npos);
}
