// Containment (README.md, "Containment"): each worker in its own cgroup v2,
// so that a descendant that left its process group (setsid) ends with it, at
// a stop, a shutdown, a crash, and after chipd itself was killed. Cases that
// need writable cgroups skip where chipd says it falls back to process groups
// (a container without a delegated cgroup, a cgroup v1 only host).
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

pid_t read_pid(const std::string &file) {
    std::string s = read_file(file);
    return s.empty() ? 0 : static_cast<pid_t>(std::stol(s));
}

// The cgroup v2 path of PID ("0::PATH" in /proc/PID/cgroup), "" if none.
std::string cgroup_of(pid_t pid) {
    for (const auto &line : read_lines("/proc/" + std::to_string(pid) + "/cgroup"))
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return "";
}

// Where the cgroup2 hierarchy is mounted ("/sys/fs/cgroup", or
// "/sys/fs/cgroup/unified" on a hybrid layout); "" if it is not.
std::string cgroup2_mount() {
    for (const auto &line : read_lines("/proc/self/mountinfo")) {
        auto words = split_words(line);
        for (std::size_t i = 6; i + 1 < words.size(); ++i)
            if (words[i] == "-" && words[i + 1] == "cgroup2" && words[3] == "/") return words[4];
    }
    return "";
}

// The folder of the cgroup PATH ("/chip-.../w").
std::string cgroup_folder(const std::string &path) {
    std::string mount = cgroup2_mount();
    return (mount == "/" ? "" : mount) + path;
}

// Skips the case unless chipd D put the worker PATH in a cgroup.
void need_cgroups(Chipd &d, const std::string &path) {
    json n = d.node(path);
    REQUIRE(n.is_object());
    REQUIRE(n.contains("cgroup"));
    if (!n["cgroup"].is_null()) return;
    std::string why = "chipd runs without cgroups here";
    for (const auto &line : d.stderr_lines())
        if (line.find("cgroups:") != std::string::npos) why = line;
    skip(why);
}

// A worker W whose child left its session: G, its pid, is read from FILE.
struct Escaped {
    pid_t w = 0, g = 0;
};
Escaped escaped(Chipd &d, const std::string &path, const std::string &file) {
    Escaped e;
    e.w = d.pid_of(path);
    REQUIRE(wait_until([&] { return read_pid(file) > 0; }));
    e.g = read_pid(file);
    d.track(e.g);
    REQUIRE(process_alive(e.g));
    CHECK(sid_of(e.g) == e.g);  // out of the worker's session and process group
    CHECK(pgid_of(e.g) != e.w);
    return e;
}

}  // namespace

TEST_CASE("stop: a descendant that left the process group (setsid) is killed with its worker") {
    TempDir scratch;
    std::string gfile = scratch.file("g");
    Chipd d(spec(
        json::array({worker("w", helper("escape:" + gfile)), worker("keep", helper("sleep"))})));
    d.start_ready();
    need_cgroups(d, "w");
    auto e = escaped(d, "w", gfile);
    // In its worker's cgroup, which status names.
    CHECK(cgroup_of(e.g) == d.node("w")["cgroup"]);
    auto r = d.run_ctl({"stop", "w"});
    CHECK(r.exit_code == 0);
    // It ignores SIGTERM: only the cgroup's SIGKILL ends it; chipd reaps it.
    CHECK(wait_until([&] { return process_state(e.g) == 0; }));
    CHECK(d.state_of("keep") == "running");
    // Started again in the same cgroup, it runs (a killed cgroup is no place
    // to start in on some kernels: chipd never writes its cgroup.kill).
    CHECK(d.run_ctl({"start", "w"}).exit_code == 0);
    CHECK(wait_until([&] { return read_pid(gfile) > 0 && read_pid(gfile) != e.g; }));
    pid_t w2 = d.pid_of("w");
    CHECK(process_alive(w2));
    CHECK(process_alive(read_pid(gfile)));
    d.track(read_pid(gfile));
    CHECK(d.state_of("w") == "running");
    CHECK(d.stop() == 0);
}

TEST_CASE("shutdown: setsid descendants are killed and chipd's cgroups removed") {
    TempDir scratch;
    std::string g1 = scratch.file("g1"), g2 = scratch.file("g2");
    Chipd d(
        spec(json::array({worker("a", helper("escape:" + g1)),
                          supervisor("s", json::array({worker("b", helper("escape:" + g2))}))})));
    d.start_ready();
    need_cgroups(d, "a");
    auto a = escaped(d, "a", g1);
    auto b = escaped(d, "s/b", g2);
    std::string folder_a = cgroup_folder(d.node("a")["cgroup"]);
    std::string folder_b = cgroup_folder(d.node("s/b")["cgroup"]);
    std::string chipd_folder = folder_a.substr(0, folder_a.rfind('/'));
    CHECK(file_exists(folder_a + "/cgroup.procs"));
    CHECK(file_exists(folder_b + "/cgroup.procs"));
    CHECK(d.stop() == 0);
    CHECK(wait_until([&] { return !process_alive(a.g) && !process_alive(b.g); }));
    CHECK_FALSE(file_exists(folder_a));
    CHECK_FALSE(file_exists(folder_b));
    CHECK_FALSE(file_exists(chipd_folder));
}

TEST_CASE("status --json: each worker's cgroup and the CPU seconds it used; none for supervisors") {
    Chipd d(spec(
        json::array({worker("w", helper("sleep")), worker("p", helper("sleep"), {{"instances", 2}}),
                     supervisor("s", json::array({worker("x", helper("sleep"))}))})));
    d.start_ready();
    need_cgroups(d, "w");
    json nodes = d.status_json();
    REQUIRE(nodes.size() == 6);
    std::string folder;
    for (const auto &n : nodes) {
        CAPTURE(n.dump());
        if (n["kind"] == "supervisor") {
            CHECK_FALSE(n.contains("cgroup"));
            CHECK_FALSE(n.contains("cpu_s"));
            continue;
        }
        REQUIRE(n["cgroup"].is_string());
        std::string cg = n["cgroup"];
        // What the worker's /proc/PID/cgroup says.
        CHECK(cg == cgroup_of(n["pid"].get<pid_t>()));
        if (folder.empty()) folder = cg.substr(0, cg.rfind('/'));
        CHECK(cg.substr(0, cg.rfind('/')) == folder);  // one folder for this chipd
        REQUIRE(n["cpu_s"].is_number());
        CHECK(n["cpu_s"].get<double>() >= 0);
    }
    CHECK(folder.find("/chip-") != std::string::npos);
    CHECK(d.node("w")["cgroup"] == folder + "/w");
    CHECK(d.node("p.1")["cgroup"] == folder + "/p.1");
    CHECK(d.node("s/x")["cgroup"] == folder + "/s:x");  // '/' is ':'
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "kill -9 chipd: what survived it is killed by the next chipd on the socket before it starts") {
    TempDir scratch;
    std::string gfile = scratch.file("g");
    // The worker ignores SIGTERM, its parent-death signal: it outlives chipd,
    // and so does its child, which left its session.
    json s = spec(json::array({worker("w", helper({"escape:" + gfile, "ignore-term"}))}));
    Chipd d1(s);
    d1.start_ready();
    need_cgroups(d1, "w");
    auto e = escaped(d1, "w", gfile);
    std::string cg = d1.node("w")["cgroup"];
    std::string folder = cgroup_folder(cg);
    d1.signal(SIGKILL);
    REQUIRE(d1.wait_exit() == std::optional<int>(128 + SIGKILL));
    CHECK(process_alive(e.w));
    CHECK(process_alive(e.g));
    CHECK(file_exists(folder + "/cgroup.procs"));

    Chipd d2(s, d1.socket());
    d2.start_ready();
    CHECK(wait_until([&] { return !process_alive(e.w) && !process_alive(e.g); }));
    // Killed (and waited for) before the tree started.
    auto lines = d2.stderr_lines();
    long killed = -1, started = -1;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (killed < 0 && lines[i].find("cgroups: killed 2 processes left in") != std::string::npos)
            killed = static_cast<long>(i);
        if (started < 0 && lines[i].find("start w pid") != std::string::npos)
            started = static_cast<long>(i);
    }
    INFO(d2.stderr_text());
    CHECK(killed >= 0);
    CHECK(started > killed);
    pid_t w2 = d2.pid_of("w");
    CHECK(w2 != e.w);
    CHECK(cgroup_of(w2) == cg);  // the same socket: the same cgroup
    CHECK(d2.stop() == 0);
}

TEST_CASE("a worker that crashes: what it left in its cgroup is killed, then it is restarted") {
    TempDir scratch;
    std::string gfile = scratch.file("g");
    Chipd d(spec(json::array({worker("w", helper("escape:" + gfile))})));
    d.start_ready();
    need_cgroups(d, "w");
    auto e = escaped(d, "w", gfile);
    std::string cg = d.node("w")["cgroup"];
    REQUIRE(::kill(e.w, SIGKILL) == 0);
    pid_t w2 = d.wait_new_pid("w", e.w);
    REQUIRE(w2 > 0);
    // Killed, and reaped by chipd (its subreaper): never a lingering zombie.
    CHECK(wait_until([&] { return process_state(e.g) == 0; }));
    // The replacement runs, in the same cgroup: its own child is there.
    CHECK(wait_until([&] { return read_pid(gfile) > 0 && read_pid(gfile) != e.g; }));
    pid_t g2 = read_pid(gfile);
    d.track(g2);
    CHECK(process_alive(w2));
    CHECK(process_alive(g2));
    CHECK(cgroup_of(w2) == cg);
    CHECK(cgroup_of(g2) == cg);
    CHECK(d.node("w")["cgroup"] == cg);
    CHECK(d.restarts_of("w") == 1);
    CHECK(d.stop() == 0);
}

TEST_CASE("remove: a removed worker's cgroup is killed and removed") {
    TempDir scratch;
    std::string gfile = scratch.file("g");
    Chipd d(spec(
        json::array({worker("w", helper("escape:" + gfile)), worker("keep", helper("sleep"))})));
    d.start_ready();
    need_cgroups(d, "w");
    auto e = escaped(d, "w", gfile);
    std::string folder = cgroup_folder(d.node("w")["cgroup"]);
    CHECK(d.run_ctl({"remove", "w"}).exit_code == 0);
    CHECK(wait_until([&] { return process_state(e.g) == 0; }));
    CHECK(wait_until([&] { return !file_exists(folder); }));
    CHECK(d.stop() == 0);
}

TEST_CASE("--no-cgroups: process groups only, said once at start; status has no cgroup") {
    TempDir scratch;
    std::string gfile = scratch.file("g");
    Chipd d(spec(json::array({worker("w", helper("escape:" + gfile))})));
    d.start_ready({"--no-cgroups"});
    auto e = escaped(d, "w", gfile);
    json n = d.node("w");
    CHECK(n["cgroup"].is_null());
    CHECK(n["cpu_s"].is_null());
    CHECK(cgroup_of(e.w) == cgroup_of(d.pid()));  // chipd's own
    std::size_t said = 0;
    for (const auto &line : d.stderr_lines())
        said += line.find("cgroups: off (--no-cgroups); using process groups") != std::string::npos;
    CHECK(said == 1);
    // What process groups cannot do: the escaped child outlives its worker
    // (the destructor kills it).
    CHECK(d.run_ctl({"stop", "w"}).exit_code == 0);
    CHECK(process_alive(e.g));
    CHECK(d.stop() == 0);
}
