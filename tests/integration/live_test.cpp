// A live tree: the running tree changed without restarting chipd. chipctl
// reload (and SIGHUP) against every row of the README's reload table, with
// real processes: which pids are kept and which are new, what the new
// processes run with, what chipctl prints, what is refused and leaves
// everything as it was; a pool's rolling restart watched while it happens;
// chipctl scale, add and remove.
#include <doctest/doctest.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

using Lines = std::vector<std::string>;
using Pids = std::vector<pid_t>;

std::string str(pid_t pid) {
    return std::to_string(pid);
}

// A worker that records its start before it is ready (so the records' order
// is the start order) and its stop on SIGTERM.
json recorder(const std::string &name, const std::string &rec, const json &extra = json::object()) {
    json e = extra;
    e["ready"] = "notify";
    return worker(name, helper({"record:" + rec, "notify"}), e);
}

// Writes SPEC to a new file in D's folder and returns its path.
std::string write_spec(const Chipd &d, const json &s) {
    static int n = 0;
    std::string path = d.file("next-" + std::to_string(++n) + ".json");
    write_file(path, s.dump(2));
    return path;
}

// chipctl reload [EXTRA...] FILE, FILE holding NEXT.
ProcResult reload(Chipd &d, const json &next, const std::vector<std::string> &extra = {}) {
    std::vector<std::string> args{"reload"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(write_spec(d, next));
    return d.run_ctl(args);
}

// The raw reload request for FILE.
json reload_request(const std::string &file, bool dry_run = false) {
    return json{{"op", "reload"}, {"spec", file}, {"dry_run", dry_run}};
}

// chipctl --socket SOCKET ARGS... run from the folder DIR (a shell cds there
// and execs it).
ProcResult ctl_in(const std::string &dir, const std::string &socket,
                  const std::vector<std::string> &args) {
    std::vector<std::string> argv{
        "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", dir, chipctl_path(), "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
}

// chipctl --socket SOCKET ARGS... in the background, its output captured.
std::unique_ptr<Child> ctl_background(const Chipd &d, const std::vector<std::string> &args) {
    std::vector<std::string> argv{chipctl_path(), "--socket", d.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildOptions opts;
    opts.capture = true;
    return std::make_unique<Child>(argv, opts);
}

// The paths of the nodes in status order.
Lines paths(Chipd &d, const std::string &path = "/") {
    Lines out;
    for (const auto &n : d.status_json(path)) out.push_back(n.value("path", ""));
    return out;
}

// Every worker's pid (0 when it has none), by path.
std::map<std::string, pid_t> worker_pids(Chipd &d) {
    std::map<std::string, pid_t> out;
    for (const auto &n : d.status_json())
        if (n.value("kind", "") == "worker")
            out[n.value("path", "")] = n["pid"].is_number() ? n["pid"].get<pid_t>() : 0;
    return out;
}

Lines sorted(Lines v) {
    std::sort(v.begin(), v.end());
    return v;
}

// The folder a process runs in ("" if it is gone).
std::string cwd_of(pid_t pid) {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/" + str(pid) + "/cwd", ec);
    return ec ? "" : p.string();
}

// The real gid of PID (from /proc/PID/status), -1 if gone.
long gid_of(pid_t pid) {
    for (const auto &line : read_lines("/proc/" + str(pid) + "/status"))
        if (line.rfind("Gid:", 0) == 0) {
            auto w = split_words(line);
            return w.size() > 1 ? std::stol(w[1]) : -1;
        }
    return -1;
}

// chipctl --json members -r REGISTRY GROUP: the pids, or nullopt if chipctl failed.
std::optional<Pids> members(Chipd &d, const std::string &registry, const std::string &group) {
    ProcResult r = d.run_ctl({"--json", "members", "-r", registry, group});
    if (r.exit_code != 0) return std::nullopt;
    return json::parse(r.out).get<Pids>();
}

std::set<pid_t> as_set(const std::optional<Pids> &pids) {
    return pids ? std::set<pid_t>(pids->begin(), pids->end()) : std::set<pid_t>{};
}

// The registries chipd serves ({"op":"registries"}), by name.
std::map<std::string, json> registries(Chipd &d) {
    std::map<std::string, json> out;
    json r = d.request({{"op", "registries"}});
    if (r.value("ok", false))
        for (const auto &reg : r["registries"]) out[reg.value("name", "")] = reg;
    return out;
}

// The index of the first line of LINES starting with PREFIX, or -1.
long index_of(const Lines &lines, const std::string &prefix) {
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (lines[i].rfind(prefix, 0) == 0) return static_cast<long>(i);
    return -1;
}

// The index of the first line of chipd's stderr at or after FROM that
// contains TEXT, or -1.
long log_index(const Chipd &d, const std::string &text, long from = 0) {
    auto lines = d.stderr_lines();
    for (std::size_t i = static_cast<std::size_t>(std::max(from, 0L)); i < lines.size(); ++i)
        if (lines[i].find(text) != std::string::npos) return static_cast<long>(i);
    return -1;
}

// The "dynamic" flag of PATH's node in `chipctl --json status` (false when
// absent; nullopt when PATH is not listed).
std::optional<bool> dynamic_of(Chipd &d, const std::string &path) {
    ProcResult r = d.run_ctl({"--json", "status"});
    if (r.exit_code != 0) return std::nullopt;
    for (const auto &n : json::parse(r.out))
        if (n.value("path", "") == path) return n.value("dynamic", false);
    return std::nullopt;
}

// PATH's kind ("worker" or "supervisor"; "" if unknown).
std::string kind_of(Chipd &d, const std::string &path) {
    json n = d.node(path);
    return n.is_object() ? n.value("kind", "") : "";
}

// The "errno" of a response ("" when ok).
std::string errno_of(const json &resp) {
    return resp.value("ok", false) ? "" : resp.value("errno", "?");
}

// How many instances of the pool PREFIX ("web.") are running (and so ready).
int running_instances(const json &nodes, const std::string &prefix) {
    int n = 0;
    for (const auto &node : nodes)
        if (node.value("path", "").rfind(prefix, 0) == 0 && node.value("state", "") == "running" &&
            node["pid"].is_number())
            ++n;
    return n;
}

}  // namespace

// ---- the reload table, row by row -------------------------------------------------

TEST_CASE(
    "reload: a worker whose command changed is restarted alone with the new command; its "
    "one_for_all siblings keep their pids and the restart does not count against intensity") {
    TempDir scratch;
    std::string pid_file = scratch.file("b.pid");
    // max_restarts 0: any restart counted would make the root give up.
    json root{{"strategy", "one_for_all"}, {"max_restarts", 0}, {"period", 600}};
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep")),
                              worker("c", helper("sleep"))}),
                 root));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b"), c = d.pid_of("c");

    auto r = reload(d, spec(json::array({worker("a", helper("sleep")),
                                         worker("b", helper({"pid:" + pid_file, "sleep"})),
                                         worker("c", helper("sleep"))}),
                            root));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"restart b"});
    pid_t b2 = d.wait_new_pid("b", b);
    REQUIRE(b2 > 0);
    CHECK(wait_pid_file(pid_file) == b2);
    CHECK_FALSE(process_alive(b));
    CHECK(d.pid_of("a") == a);
    CHECK(d.pid_of("c") == c);
    CHECK(d.running());
    CHECK(d.state_of("/") == "running");
    CHECK_FALSE(d.log_has({"give-up"}));
    CHECK_FALSE(d.log_has({"restart b ("}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a change of env, cwd, ready or stdout restarts just that worker, and each new "
    "process runs with its new definition") {
    TempDir scratch;
    std::string log = scratch.file("o.log");
    auto tree = [&](bool next) {
        return spec(
            json::array({worker("u", helper("sleep")),
                         worker("e", helper("sleep"), {{"env", {{"CHIP_LIVE", next ? "2" : "1"}}}}),
                         worker("w", helper("sleep"), {{"cwd", next ? "/" : scratch.path()}}),
                         worker("r", helper({"notify-if-set", "sleep"}),
                                {{"ready", next ? "notify" : "started"}}),
                         worker("o", helper({"print:hello", "sleep"}),
                                {{"stdout", next ? json{{"file", log}} : json("null")}})}));
    };
    Chipd d(tree(false));
    d.start_ready();
    auto before = worker_pids(d);
    CHECK(environ_of(before["e"], "CHIP_LIVE") == "1");
    CHECK(cwd_of(before["w"]) == scratch.path());
    CHECK(environ_of(before["r"], "NOTIFY_SOCKET") == std::nullopt);

    auto r = reload(d, tree(true));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(sorted(split_lines(r.out)) == Lines{"restart e", "restart o", "restart r", "restart w"});
    std::map<std::string, pid_t> after;
    for (const char *p : {"e", "w", "r", "o"}) {
        after[p] = d.wait_new_pid(p, before[p]);
        CHECK(after[p] > 0);
        CHECK_FALSE(process_alive(before[p]));
    }
    CHECK(d.pid_of("u") == before["u"]);
    CHECK(environ_of(after["e"], "CHIP_LIVE") == "2");
    CHECK(cwd_of(after["w"]) == "/");
    CHECK(environ_of(after["r"], "NOTIFY_SOCKET").has_value());
    CHECK(d.state_of("r") == "running");
    CHECK(wait_until([&] { return read_file(log).find("out:hello\n") != std::string::npos; }));
    CHECK(d.stop() == 0);
}

TEST_CASE("reload: a change of user and group restarts the worker as that user and group") {
    if (::geteuid() != 0) skip("chipd must run as root to switch users");
    const passwd *pw = ::getpwnam("nobody");
    const struct group *gr = ::getgrnam("nogroup");
    if (!pw || !gr) skip("no user nobody or group nogroup");
    uid_t uid = pw->pw_uid;
    gid_t gid = gr->gr_gid;
    // cwd /: the spec's folder is a 0700 temp dir nobody cannot enter.
    json base{{"cwd", "/"}};
    json as_nobody{{"cwd", "/"}, {"user", "nobody"}, {"group", "nogroup"}};
    json sleeper = json::array({"sleep", "600"});
    Chipd d(spec(json::array({worker("k", sleeper, base), worker("n", sleeper, base)})));
    d.start_ready();
    pid_t k = d.pid_of("k"), n = d.pid_of("n");
    CHECK(uid_of(n) == 0);

    auto r =
        reload(d, spec(json::array({worker("k", sleeper, base), worker("n", sleeper, as_nobody)})));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"restart n"});
    pid_t n2 = d.wait_new_pid("n", n);
    REQUIRE(n2 > 0);
    CHECK(uid_of(n2) == static_cast<long>(uid));
    CHECK(gid_of(n2) == static_cast<long>(gid));
    CHECK(d.pid_of("k") == k);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a change of restart, start_timeout, stop_signal or stop_timeout updates the "
    "worker in place, same pid, and applies from then on") {
    auto tree = [&](bool next) {
        return spec(json::array(
            {worker("slow", helper("ignore-term"), {{"stop_timeout", next ? 1 : 3600}}),
             worker("t", helper("sleep"), {{"restart", next ? "temporary" : "permanent"}}),
             worker("s", helper("sleep"), {{"stop_signal", next ? "INT" : "TERM"}}),
             worker("st", helper("sleep"), {{"start_timeout", next ? 20 : 10}}),
             worker("same", helper("sleep"))}));
    };
    Chipd d(tree(false));
    d.start_ready();
    auto before = worker_pids(d);

    auto r = reload(d, tree(true));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(sorted(split_lines(r.out)) == Lines{"update s", "update slow", "update st", "update t"});
    CHECK(worker_pids(d) == before);

    // temporary now: killed, it is not restarted.
    REQUIRE(::kill(before["t"], SIGKILL) == 0);
    CHECK(d.wait_state("t", "exited"));
    CHECK(d.node("t")["pid"].is_null());
    // stop_signal INT now.
    auto s = d.run_ctl({"stop", "s"});
    CHECK(s.exit_code == 0);
    CHECK(d.node("s")["last_exit"] == json{{"signal", "INT"}});
    // stop_timeout 1 now (it was an hour): killed after a second.
    auto slow = d.run_ctl({"stop", "slow"});
    CHECK(slow.exit_code == 0);
    CHECK(d.state_of("slow") == "stopped");
    CHECK_FALSE(process_alive(before["slow"]));
    CHECK(d.log_has({"kill slow"}));
    CHECK(d.pid_of("same") == before["same"]);
    CHECK(d.pid_of("st") == before["st"]);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a changed join moves the running pid out of the groups no longer named and "
    "into the new ones, without restarting it") {
    auto tree = [&](const json &groups) {
        return spec(json::array({worker("j", helper("sleep"), {{"join", {{"r", groups}}}}),
                                 worker("k", helper("sleep"), {{"join", {{"r", {"both"}}}}})}),
                    {}, {{"registries", {"r"}}});
    };
    Chipd d(tree({"old", "both"}));
    d.start_ready();
    pid_t j = d.pid_of("j"), k = d.pid_of("k");
    REQUIRE(members(d, "r", "old") == Pids{j});
    REQUIRE(as_set(members(d, "r", "both")) == std::set<pid_t>{j, k});

    auto r = reload(d, tree({"both", "new"}));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"update j"});
    CHECK(wait_until([&] { return members(d, "r", "new") == Pids{j}; }));
    CHECK(members(d, "r", "old") == Pids{});
    CHECK(as_set(members(d, "r", "both")) == std::set<pid_t>{j, k});
    CHECK(d.pid_of("j") == j);
    CHECK(d.pid_of("k") == k);
    CHECK(process_alive(j));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a pool's instances 2 -> 4 -> 1: new instances start in order, the highest are "
    "removed first, the others keep their pids") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    auto tree = [&](int n) {
        return spec(json::array(
            {worker("a", helper("sleep")), worker("web", helper({"record:" + rec, "notify"}),
                                                  {{"ready", "notify"}, {"instances", n}})}));
    };
    Chipd d(tree(2));
    d.start_ready();
    pid_t a = d.pid_of("a"), w0 = d.pid_of("web.0"), w1 = d.pid_of("web.1");

    auto r = reload(d, tree(4));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"add web.2", "add web.3"});
    CHECK(wait_until([&] { return running_instances(d.status_json(), "web.") == 4; }));
    CHECK(paths(d) == Lines{"/", "a", "web.0", "web.1", "web.2", "web.3"});
    pid_t w2 = d.pid_of("web.2"), w3 = d.pid_of("web.3");
    CHECK(d.pid_of("web.0") == w0);
    CHECK(d.pid_of("web.1") == w1);
    // web.3 is started once web.2 is ready.
    auto lines = read_lines(rec);
    long s2 = index_of(lines, "start " + str(w2) + " web.2 2");
    long s3 = index_of(lines, "start " + str(w3) + " web.3 3");
    CHECK(s2 >= 0);
    CHECK(s3 > s2);
    CHECK(index_of(lines, "ready " + str(w2)) < s3);

    r = reload(d, tree(1));
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"remove web.3", "remove web.2", "remove web.1"});
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "a", "web.0"}; }));
    CHECK(d.pid_of("web.0") == w0);
    CHECK(d.pid_of("a") == a);
    for (pid_t p : {w1, w2, w3}) CHECK(wait_until([&] { return !process_alive(p); }));
    lines = read_lines(rec);
    long x3 = index_of(lines, "stop " + str(w3)), x2 = index_of(lines, "stop " + str(w2)),
         x1 = index_of(lines, "stop " + str(w1));
    CHECK(x3 >= 0);
    CHECK(x2 > x3);
    CHECK(x1 > x2);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a supervisor's new strategy is an update: nothing restarts, and the next "
    "failure is handled with it") {
    auto tree = [&](const std::string &strategy) {
        return spec(json::array({worker("a", helper("sleep")),
                                 supervisor("g",
                                            json::array({worker("x", helper("sleep")),
                                                         worker("y", helper("sleep"))}),
                                            {{"strategy", strategy}, {"max_restarts", 10}})}),
                    {{"strategy", "one_for_one"}, {"max_restarts", 10}});
    };
    Chipd d(tree("one_for_one"));
    d.start_ready();
    auto before = worker_pids(d);

    auto r = reload(d, tree("one_for_all"));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"update g"});
    CHECK(worker_pids(d) == before);

    // one_for_all now: x's death restarts y too, and nothing outside g.
    REQUIRE(::kill(before["g/x"], SIGKILL) == 0);
    CHECK(d.wait_new_pid("g/x", before["g/x"]) > 0);
    CHECK(d.wait_new_pid("g/y", before["g/y"]) > 0);
    CHECK(d.pid_of("a") == before["a"]);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: the root's new max_restarts and period apply from then on: a failure that would "
    "have made it give up is restarted") {
    auto tree = [&](int max_restarts) {
        return spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))}),
                    {{"max_restarts", max_restarts}, {"period", 600}});
    };
    // max_restarts 0: the first restart would end chipd with status 1.
    Chipd d(tree(0));
    d.start_ready();
    auto before = worker_pids(d);

    auto r = reload(d, tree(5));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"update /"});
    CHECK(worker_pids(d) == before);

    REQUIRE(::kill(before["a"], SIGKILL) == 0);
    CHECK(d.wait_new_pid("a", before["a"]) > 0);
    CHECK(d.running());
    CHECK_FALSE(d.log_has({"give-up"}));
    CHECK(d.pid_of("b") == before["b"]);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a new order of the root's children is an update of /: pids kept, status lists "
    "the new order, and the tree then stops in reverse of it") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    json a = recorder("a", rec), b = recorder("b", rec);
    Chipd d(spec(json::array({a, b})));
    d.start_ready();
    pid_t pa = d.pid_of("a"), pb = d.pid_of("b");

    auto r = reload(d, spec(json::array({b, a})));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"update /"});
    CHECK(paths(d) == Lines{"/", "b", "a"});
    CHECK(d.pid_of("a") == pa);
    CHECK(d.pid_of("b") == pb);
    CHECK(d.stop() == 0);
    auto lines = read_lines(rec);
    long sa = index_of(lines, "stop " + str(pa)), sb = index_of(lines, "stop " + str(pb));
    CHECK(sa >= 0);
    CHECK(sb > sa);
}

TEST_CASE("reload: a child only in the new spec is added at its place and started") {
    TempDir scratch;
    std::string pid_file = scratch.file("b.pid");
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("c", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a"), c = d.pid_of("c");

    auto r = reload(d, spec(json::array({worker("a", helper("sleep")),
                                         worker("b", helper({"pid:" + pid_file, "sleep"})),
                                         worker("c", helper("sleep"))})));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"add b"});
    CHECK(d.wait_state("b", "running"));
    CHECK(wait_pid_file(pid_file) == d.pid_of("b"));
    CHECK(paths(d) == Lines{"/", "a", "b", "c"});
    CHECK(d.pid_of("a") == a);
    CHECK(d.pid_of("c") == c);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: children only in the old tree are stopped (a subtree in reverse order) and gone "
    "from status, and their processes are gone") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array(
        {recorder("a", rec), supervisor("g", json::array({recorder("x", rec), recorder("y", rec)})),
         recorder("c", rec)})));
    d.start_ready();
    auto before = worker_pids(d);

    auto r = reload(d, spec(json::array({recorder("a", rec)})));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(sorted(split_lines(r.out)) == Lines{"remove c", "remove g"});
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "a"}; }));
    CHECK(d.node("g").is_null());
    CHECK(d.node("g/x").is_null());
    CHECK(d.node("c").is_null());
    for (const char *p : {"g/x", "g/y", "c"})
        CHECK(wait_until([&] { return !process_alive(before[p]); }));
    CHECK(d.pid_of("a") == before["a"]);
    auto lines = read_lines(rec);
    long sx = index_of(lines, "stop " + str(before["g/x"]));
    long sy = index_of(lines, "stop " + str(before["g/y"]));
    CHECK(sy >= 0);
    CHECK(sx > sy);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a worker replaced by a supervisor at the same path (and back) is removed, then "
    "the new kind is added") {
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("x", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a"), x = d.pid_of("x");

    json as_sup = spec(json::array({worker("a", helper("sleep")),
                                    supervisor("x", json::array({worker("y", helper("sleep"))}))}));
    auto r = reload(d, as_sup);
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"remove x", "add x"});
    CHECK(d.wait_state("x/y", "running"));
    CHECK(kind_of(d, "x") == "supervisor");
    CHECK(paths(d) == Lines{"/", "a", "x", "x/y"});
    CHECK_FALSE(process_alive(x));
    pid_t y = d.pid_of("x/y");

    r = reload(d, spec(json::array({worker("a", helper("sleep")), worker("x", helper("sleep"))})));
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"remove x", "add x"});
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "a", "x"}; }));
    CHECK(d.wait_state("x", "running"));
    CHECK(kind_of(d, "x") == "worker");
    CHECK(wait_until([&] { return !process_alive(y); }));
    CHECK(d.pid_of("a") == a);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a registry only in the new spec is created and one only in the old is removed "
    "with its shared-memory file") {
    Chipd d(spec(json::array({worker("w", helper("sleep"), {{"join", {{"keep", {"g"}}}}}),
                              worker("v", helper("sleep"), {{"join", {{"gone", {"h"}}}}})}),
                 {}, {{"registries", {"keep", "gone"}}}));
    d.start_ready();
    pid_t w = d.pid_of("w"), v = d.pid_of("v");
    auto regs = registries(d);
    REQUIRE(regs.size() == 2);
    std::string keep_shm = regs["keep"].value("shm", ""), gone_shm = regs["gone"].value("shm", "");
    REQUIRE(file_exists(keep_shm));
    REQUIRE(file_exists(gone_shm));

    auto r =
        reload(d, spec(json::array({worker("w", helper("sleep"), {{"join", {{"keep", {"g"}}}}}),
                                    worker("v", helper("sleep")),
                                    worker("z", helper("sleep"), {{"join", {{"fresh", {"f"}}}}})}),
                       {}, {{"registries", {"keep", "fresh"}}}));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"update v", "add z"});
    regs = registries(d);
    CHECK(regs.size() == 2);
    CHECK(regs.count("keep") == 1);
    CHECK(regs.count("fresh") == 1);
    CHECK(regs.count("gone") == 0);
    CHECK(regs["keep"].value("shm", "") == keep_shm);
    CHECK(file_exists(keep_shm));
    CHECK(file_exists(regs["fresh"].value("shm", "")));
    CHECK_FALSE(file_exists(gone_shm));
    CHECK(members(d, "keep", "g") == Pids{w});
    CHECK(d.wait_state("z", "running"));
    CHECK(wait_until([&] { return members(d, "fresh", "f") == Pids{d.pid_of("z")}; }));
    CHECK(d.pid_of("w") == w);
    CHECK(d.pid_of("v") == v);
    std::string fresh_shm = regs["fresh"].value("shm", "");
    CHECK(d.stop() == 0);
    CHECK_FALSE(file_exists(fresh_shm));
}

TEST_CASE(
    "reload: a change of a registry's capacities or of the socket is refused with EINVAL and "
    "nothing changes") {
    json small = json::array({{{"name", "r"}, {"max_groups", 8}, {"max_members", 64}}});
    json big = json::array({{{"name", "r"}, {"max_groups", 16}, {"max_members", 64}}});
    // The spec names the socket chipd is started on, so that the socket
    // changes whether chipd compares it with the spec's or with its own.
    TempDir scratch;
    std::string own_socket = scratch.file("chipd.sock");
    auto tree = [&](const std::string &b_mode, const json &regs) {
        return spec(json::array({worker("a", helper("sleep"), {{"join", {{"r", {"g"}}}}}),
                                 worker("b", helper(b_mode))}),
                    {}, {{"registries", regs}, {"socket", own_socket}});
    };
    Chipd d(tree("sleep", small), own_socket);
    d.start_ready();
    auto before = worker_pids(d);

    // b's command changes too: refused whole, it is not restarted either.
    std::string capacity = write_spec(d, tree("notify-if-set", big));
    auto r = d.run_ctl({"reload", capacity});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    CHECK(errno_of(d.request(reload_request(capacity))) == "EINVAL");

    json moved = tree("notify-if-set", small);
    moved["socket"] = scratch.file("elsewhere.sock");
    std::string socket = write_spec(d, moved);
    r = d.run_ctl({"reload", socket});
    CHECK(r.exit_code == 1);
    CHECK(errno_of(d.request(reload_request(socket))) == "EINVAL");

    CHECK(worker_pids(d) == before);
    CHECK(registries(d)["r"].value("max_groups", 0) == 8);
    CHECK(members(d, "r", "g") == Pids{before["a"]});
    CHECK_FALSE(file_exists(scratch.file("elsewhere.sock")));
    CHECK(file_exists(own_socket));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload prints one CHANGE PATH line per change: removals first, then updates, restarts "
    "and additions, carried out in that order; chipd logs the reload and each change") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array({recorder("a", rec), recorder("b", rec), recorder("c", rec),
                              recorder("d", rec, {{"stop_timeout", 5}})})));
    d.start_ready();
    auto before = worker_pids(d);

    json b2 = worker("b", helper({"record:" + rec, "notify-after:10"}), {{"ready", "notify"}});
    auto r = reload(
        d, spec(json::array({recorder("a", rec), b2, recorder("d", rec, {{"stop_timeout", 7}}),
                             recorder("e", rec)})));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(r.out == "remove c\nupdate d\nrestart b\nadd e\n");
    CHECK(r.err == "");

    CHECK(d.wait_state("e", "running"));
    pid_t nb = d.wait_new_pid("b", before["b"]), e = d.pid_of("e");
    CHECK(d.pid_of("a") == before["a"]);
    CHECK(d.pid_of("d") == before["d"]);
    CHECK(d.node("c").is_null());
    // The records: c stopped, then b stopped and started again and ready,
    // then e started.
    auto lines = read_lines(rec);
    long stop_c = index_of(lines, "stop " + str(before["c"]));
    long stop_b = index_of(lines, "stop " + str(before["b"]));
    long ready_b = index_of(lines, "ready " + str(nb));
    long start_e = index_of(lines, "start " + str(e));
    CHECK(stop_c >= 0);
    CHECK(stop_b > stop_c);
    CHECK(ready_b > stop_b);
    CHECK(start_e > ready_b);

    long at = log_index(d, "reload");
    CHECK(at >= 0);
    long prev = at;
    for (const char *change : {"remove c", "update d", "restart b", "add e"}) {
        long i = log_index(d, change, at + 1);
        CHECK_MESSAGE(i > prev, change);
        prev = i;
    }
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload of the unchanged spec (chipd's own file, no SPEC) changes nothing and prints nothing") {
    Chipd d(spec(json::array({worker("a", helper("sleep")),
                              worker("web", helper("sleep"), {{"instances", 2}}),
                              supervisor("g", json::array({worker("x", helper("sleep"))}))})));
    d.start_ready();
    auto before = worker_pids(d);
    auto r = d.run_ctl({"reload"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(r.out == "");
    json resp = d.request({{"op", "reload"}, {"spec", nullptr}, {"dry_run", false}});
    CHECK(resp.value("ok", false));
    CHECK(resp["changes"] == json::array());
    CHECK(worker_pids(d) == before);
    CHECK(d.stop() == 0);
}

// ---- a rolling restart ------------------------------------------------------------

TEST_CASE(
    "reload: a pool of four notify workers restarts rolling: at every moment at least three "
    "instances run and are ready, and each is stopped only once the one before is ready "
    "again") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    auto pool = [&](const std::string &ready_mode) {
        return spec(json::array({worker("web", helper({"record:" + rec, ready_mode}),
                                        {{"ready", "notify"}, {"instances", 4}})}));
    };
    Chipd d(pool("notify"));
    d.start_ready();
    Pids old;
    for (int k = 0; k < 4; ++k) old.push_back(d.pid_of("web." + std::to_string(k)));
    REQUIRE(read_lines(rec).size() == 8);

    // The new instances take 200 ms to be ready: each restart is seen.
    std::string next = write_spec(d, pool("notify-after:200"));
    auto bg = ctl_background(d, {"reload", next});
    int fewest = 4, samples = 0;
    bool saw_restart = false;
    bool answered = wait_until([&] {
        json nodes = d.status_json();
        if (!nodes.empty()) {
            int n = running_instances(nodes, "web.");
            fewest = std::min(fewest, n);
            saw_restart = saw_restart || n < 4;
            ++samples;
        }
        return !bg->running();
    });
    REQUIRE(answered);
    REQUIRE(bg->collect());
    INFO(bg->out() << bg->err() << d.stderr_text());
    CHECK(bg->exit_code() == 0);
    CHECK(bg->out() == "restart web.0\nrestart web.1\nrestart web.2\nrestart web.3\n");
    CHECK(samples > 0);
    CHECK(fewest >= 3);
    CHECK(saw_restart);

    // The records after the first start: per instance, the old one stopped,
    // the new one started and ready, before the next old one is stopped.
    REQUIRE(wait_until([&] { return read_lines(rec).size() == 8 + 12; }));
    auto lines = read_lines(rec);
    std::set<pid_t> stopped;
    for (std::size_t i = 8; i + 2 < lines.size(); i += 3) {
        auto stop = split_words(lines[i]), start = split_words(lines[i + 1]),
             ready = split_words(lines[i + 2]);
        REQUIRE(stop.size() == 2);
        REQUIRE(start.size() == 4);
        REQUIRE(ready.size() == 2);
        CHECK(stop[0] == "stop");
        CHECK(start[0] == "start");
        CHECK(ready[0] == "ready");
        CHECK(ready[1] == start[1]);
        pid_t gone = static_cast<pid_t>(std::stol(stop[1]));
        auto k = std::find(old.begin(), old.end(), gone);
        REQUIRE(k != old.end());
        stopped.insert(gone);
        // The new process is the same instance as the one it replaces.
        CHECK(start[3] == std::to_string(k - old.begin()));
    }
    CHECK(stopped.size() == 4);
    for (int k = 0; k < 4; ++k) {
        pid_t now = d.pid_of("web." + std::to_string(k));
        CHECK(now > 0);
        CHECK(std::find(old.begin(), old.end(), now) == old.end());
    }
    CHECK(d.stop() == 0);
}

// ---- refused, dry runs, concurrent reloads, SIGHUP --------------------------------

TEST_CASE(
    "reload: an invalid spec is refused whole with EINVAL and the same error lines as chipd "
    "--check, and nothing changes") {
    TempDir scratch;
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
    d.start_ready();
    auto before = worker_pids(d);

    // a valid change (a's command) and two errors.
    std::string bad = write_spec(
        d, spec(json::array({worker("a", helper("notify-if-set")),
                             worker("b", helper("sleep"), {{"restart", "always"}}),
                             worker("c", helper("sleep"), {{"stop_timeout", "soon"}})})));
    auto check = run_process({chipd_path(), "--check", bad});
    REQUIRE(check.exit_code == 2);
    Lines expected = split_lines(check.err);
    REQUIRE(expected.size() == 2);

    auto r = d.run_ctl({"reload", bad});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 1);
    CHECK(r.out == "");
    Lines err = split_lines(r.err);
    for (const auto &line : expected) CHECK(std::find(err.begin(), err.end(), line) != err.end());

    json resp = d.request(reload_request(bad));
    CHECK(errno_of(resp) == "EINVAL");
    CHECK(resp["errors"] == json(expected));
    // Nor a dry run of it.
    CHECK(errno_of(d.request(reload_request(bad, true))) == "EINVAL");

    CHECK(worker_pids(d) == before);
    CHECK(paths(d) == Lines{"/", "a", "b"});
    CHECK(d.stop() == 0);
}

TEST_CASE("reload --dry-run lists the changes and changes nothing") {
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep")),
                              worker("c", helper("sleep"), {{"stop_timeout", 5}})})));
    d.start_ready();
    auto before = worker_pids(d);
    json next = spec(json::array({worker("b", helper("notify-if-set")),
                                  worker("c", helper("sleep"), {{"stop_timeout", 6}}),
                                  worker("n", helper("sleep"))}));
    std::string file = write_spec(d, next);
    Lines expected{"remove a", "update c", "restart b", "add n"};

    auto r = d.run_ctl({"reload", "--dry-run", file});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    Lines dry = split_lines(r.out);
    CHECK(dry == expected);
    json resp = d.request(reload_request(file, true));
    CHECK(resp.value("ok", false));
    CHECK(resp["changes"].size() == expected.size());
    CHECK(worker_pids(d) == before);
    CHECK(paths(d) == Lines{"/", "a", "b", "c"});
    // Nor did it make FILE chipd's spec: its own file is unchanged.
    auto own = d.run_ctl({"reload", "--dry-run"});
    CHECK(own.exit_code == 0);
    CHECK(own.out == "");

    // The real reload makes the same changes.
    r = d.run_ctl({"reload", file});
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == dry);
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "b", "c", "n"}; }));
    CHECK(d.pid_of("c") == before["c"]);
    CHECK(d.wait_new_pid("b", before["b"]) > 0);
    CHECK(d.stop() == 0);
}

TEST_CASE("reload: a reload while another one runs is refused with EBUSY") {
    TempDir scratch;
    std::string go = scratch.file("go");
    // slow ignores SIGTERM and exits only once GO exists: the reload that
    // restarts it lasts until the test creates GO.
    Chipd d(spec(json::array({worker("a", helper("sleep")),
                              worker("slow", helper({"ignore-term", "wait-file:" + go, "exit:0"}),
                                     {{"stop_timeout", 3600}})})));
    d.start_ready();
    pid_t a = d.pid_of("a"), slow = d.pid_of("slow");

    std::string first = write_spec(
        d, spec(json::array({worker("a", helper("sleep")),
                             worker("slow", helper("sleep"), {{"stop_timeout", 3600}})})));
    auto bg = ctl_background(d, {"reload", first});
    REQUIRE(d.wait_state("slow", "stopping"));

    std::string second = write_spec(d, spec(json::array({worker("a", helper("notify-if-set"))})));
    json resp = d.request(reload_request(second));
    CHECK(errno_of(resp) == "EBUSY");
    auto r = d.run_ctl({"reload", second});
    CHECK(r.exit_code == 1);
    CHECK(r.err != "");
    CHECK(bg->running());

    write_file(go, "");
    REQUIRE(bg->wait().has_value());
    REQUIRE(bg->collect());
    INFO(bg->out() << bg->err() << d.stderr_text());
    CHECK(bg->exit_code() == 0);
    CHECK(bg->out() == "restart slow\n");
    CHECK(d.wait_new_pid("slow", slow) > 0);
    // The refused one changed nothing.
    CHECK(d.pid_of("a") == a);
    CHECK(paths(d) == Lines{"/", "a", "slow"});
    CHECK(d.stop() == 0);
}

TEST_CASE("SIGHUP rereads chipd's spec file and applies it") {
    TempDir scratch;
    std::string pid_file = scratch.file("b.pid");
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b");

    write_file(d.spec_path(), spec(json::array({worker("a", helper("sleep")),
                                                worker("b", helper({"pid:" + pid_file, "sleep"})),
                                                worker("c", helper("sleep"))}))
                                  .dump(2));
    d.signal(SIGHUP);
    INFO(d.stderr_text());
    CHECK(d.wait_state("c", "running"));
    pid_t b2 = d.wait_new_pid("b", b);
    CHECK(b2 > 0);
    CHECK(wait_pid_file(pid_file) == b2);
    CHECK(d.pid_of("a") == a);
    CHECK(d.log_has({"reload"}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload with a relative SPEC: chipctl makes it absolute, and that file is then chipd's "
    "spec, reread by the next SIGHUP") {
    TempDir scratch;
    // cwd given: by default it is the spec file's folder, which differs here.
    const json kRoot{{"cwd", "/"}};
    Chipd d(spec(
        json::array({worker("a", helper("sleep"), kRoot), worker("b", helper("sleep"), kRoot)})));
    d.start_ready();
    pid_t a = d.pid_of("a"), b = d.pid_of("b");

    // Relative to chipctl's folder, SCRATCH, not chipd's.
    write_file(scratch.file("other.json"), spec(json::array({worker("a", helper("sleep"), kRoot),
                                                             worker("b", helper("sleep"), kRoot),
                                                             worker("c", helper("sleep"), kRoot)}))
                                               .dump(2));
    auto r = ctl_in(scratch.path(), d.socket(), {"reload", "other.json"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"add c"});
    CHECK(d.wait_state("c", "running"));
    pid_t c = d.pid_of("c");

    // other.json gains d; the old spec file, were it reread, would drop a.
    write_file(scratch.file("other.json"),
               spec(json::array(
                        {worker("a", helper("sleep"), kRoot), worker("b", helper("sleep"), kRoot),
                         worker("c", helper("sleep"), kRoot), worker("d", helper("sleep"), kRoot)}))
                   .dump(2));
    write_file(d.spec_path(), spec(json::array({worker("b", helper("sleep"), kRoot)})).dump(2));
    d.signal(SIGHUP);
    CHECK(d.wait_state("d", "running"));
    CHECK(paths(d) == Lines{"/", "a", "b", "c", "d"});
    CHECK(d.pid_of("a") == a);
    CHECK(d.pid_of("b") == b);
    CHECK(d.pid_of("c") == c);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "SIGHUP with the spec file deleted, or invalid, logs an error and changes nothing; chipd "
    "keeps running and a later valid file is applied") {
    TempDir scratch;
    std::string pid_file = scratch.file("b.pid");
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
    d.start_ready();
    auto before = worker_pids(d);

    std::filesystem::remove(d.spec_path());
    d.signal(SIGHUP);
    INFO(d.stderr_text());
    CHECK(d.wait_log({"spec.json"}));
    CHECK(d.running());
    CHECK(worker_pids(d) == before);

    write_file(d.spec_path(),
               spec(json::array({worker("a", helper("sleep"), {{"restart", "always"}}),
                                 worker("b", helper({"pid:" + pid_file, "sleep"}))}))
                   .dump(2));
    d.signal(SIGHUP);
    CHECK(d.wait_log({"/root/children/0/restart"}));
    CHECK(d.running());
    CHECK(worker_pids(d) == before);
    CHECK_FALSE(file_exists(pid_file));

    write_file(d.spec_path(), spec(json::array({worker("a", helper("sleep")),
                                                worker("b", helper({"pid:" + pid_file, "sleep"}))}))
                                  .dump(2));
    d.signal(SIGHUP);
    pid_t b2 = d.wait_new_pid("b", before["b"]);
    CHECK(b2 > 0);
    CHECK(wait_pid_file(pid_file) == b2);
    CHECK(d.pid_of("a") == before["a"]);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload: a node stopped with chipctl stop stays stopped; start then runs its new definition") {
    TempDir scratch;
    std::string pid_file = scratch.file("b.pid");
    Chipd d(spec(json::array({worker("a", helper("sleep")), worker("b", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a");
    REQUIRE(d.run_ctl({"stop", "b"}).exit_code == 0);

    auto r = reload(d, spec(json::array({worker("a", helper("sleep"), {{"stop_timeout", 9}}),
                                         worker("b", helper({"pid:" + pid_file, "sleep"}))})));
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("b") == "stopped");
    CHECK(d.node("b")["pid"].is_null());
    CHECK_FALSE(file_exists(pid_file));
    CHECK(d.pid_of("a") == a);

    REQUIRE(d.run_ctl({"start", "b"}).exit_code == 0);
    CHECK(d.state_of("b") == "running");
    CHECK(wait_pid_file(pid_file) == d.pid_of("b"));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "reload keeps a child added with chipctl add and sets a pool scaled with chipctl scale "
    "back to the spec's instances") {
    Chipd d(spec(json::array(
        {worker("a", helper("sleep")), worker("web", helper("sleep"), {{"instances", 2}})})));
    d.start_ready();
    REQUIRE(d.run_ctl({"add", "/", worker("x", helper("sleep")).dump()}).exit_code == 0);
    REQUIRE(d.run_ctl({"scale", "web", "3"}).exit_code == 0);
    auto before = worker_pids(d);
    REQUIRE(before.count("x") == 1);
    REQUIRE(before.count("web.2") == 1);

    auto r = d.run_ctl({"reload"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(split_lines(r.out) == Lines{"remove web.2"});
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "a", "web.0", "web.1", "x"}; }));
    CHECK(wait_until([&] { return !process_alive(before["web.2"]); }));
    for (const char *p : {"a", "web.0", "web.1", "x"}) CHECK(d.pid_of(p) == before[p]);
    CHECK(dynamic_of(d, "x") == true);
    CHECK(d.stop() == 0);
}

// ---- scale ------------------------------------------------------------------------

TEST_CASE(
    "a worker with instances N is a pool of N for any N >= 0: instances 1 is NAME.0, "
    "instances 0 has no node, no instances is NAME") {
    Chipd d(spec(json::array({worker("one", helper("sleep"), {{"instances", 1}}),
                              worker("none", helper("sleep"), {{"instances", 0}}),
                              worker("single", helper("sleep"))})));
    d.start_ready();
    CHECK(paths(d) == Lines{"/", "one.0", "single"});
    CHECK(d.state_of("one.0") == "running");
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "scale: a pool grows to N (new instances running when chipctl returns), shrinks highest "
    "first, goes to 0 and back; the instances kept keep their pids") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array(
        {worker("a", helper("sleep")),
         supervisor("g", json::array({worker("web", helper({"record:" + rec, "notify"}),
                                             {{"ready", "notify"}, {"instances", 2}})}))})));
    d.start_ready();
    pid_t a = d.pid_of("a"), w0 = d.pid_of("g/web.0"), w1 = d.pid_of("g/web.1");

    auto r = d.run_ctl({"scale", "g/web", "4"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(paths(d, "g") == Lines{"g", "g/web.0", "g/web.1", "g/web.2", "g/web.3"});
    CHECK(running_instances(d.status_json("g"), "g/web.") == 4);
    CHECK(d.pid_of("g/web.0") == w0);
    CHECK(d.pid_of("g/web.1") == w1);
    pid_t w2 = d.pid_of("g/web.2"), w3 = d.pid_of("g/web.3");

    r = d.run_ctl({"scale", "g/web", "1"});
    CHECK(r.exit_code == 0);
    CHECK(paths(d, "g") == Lines{"g", "g/web.0"});
    CHECK(d.pid_of("g/web.0") == w0);
    for (pid_t p : {w1, w2, w3}) CHECK(wait_until([&] { return !process_alive(p); }));
    auto lines = read_lines(rec);
    long x3 = index_of(lines, "stop " + str(w3)), x2 = index_of(lines, "stop " + str(w2)),
         x1 = index_of(lines, "stop " + str(w1));
    CHECK(x3 >= 0);
    CHECK(x2 > x3);
    CHECK(x1 > x2);

    r = d.run_ctl({"scale", "g/web", "0"});
    CHECK(r.exit_code == 0);
    CHECK(paths(d, "g") == Lines{"g"});
    CHECK(wait_until([&] { return !process_alive(w0); }));

    r = d.run_ctl({"scale", "g/web", "2"});
    CHECK(r.exit_code == 0);
    CHECK(paths(d, "g") == Lines{"g", "g/web.0", "g/web.1"});
    CHECK(running_instances(d.status_json("g"), "g/web.") == 2);
    CHECK(d.pid_of("a") == a);
    CHECK(d.state_of("/") == "running");
    CHECK(d.stop() == 0);
}

TEST_CASE("scale: a path that is not a pool is refused with EINVAL (chipctl exits 1)") {
    Chipd d(spec(json::array(
        {worker("a", helper("sleep")),
         supervisor("g", json::array({worker("web", helper("sleep"), {{"instances", 2}})}))})));
    d.start_ready();
    auto before = worker_pids(d);
    for (const char *path : {"a", "g", "g/web.0"}) {
        auto r = d.run_ctl({"scale", path, "3"});
        INFO(path << ": " << r.out << r.err);
        CHECK(r.exit_code == 1);
        CHECK(errno_of(d.request({{"op", "scale"}, {"path", path}, {"count", 3}})) == "EINVAL");
    }
    CHECK(d.run_ctl({"scale", "nope", "3"}).exit_code == 1);
    CHECK(worker_pids(d) == before);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "chipctl scale with a negative, non-numeric or missing count, and chipctl add with both "
    "or neither of CHILD and -f, are usage errors (2) found before asking chipd") {
    // No chipd listens at this socket: a request would be exit 3.
    TempDir scratch;
    std::string socket = scratch.file("none.sock");
    for (const auto &args : std::vector<std::vector<std::string>>{
             {"scale", "web", "-1"},
             {"scale", "web", "x"},
             {"scale", "web", "2.5"},
             {"scale", "web"},
             {"add", "/"},
             {"add", "/", "{\"name\":\"x\",\"command\":[\"/bin/true\"]}", "-f", scratch.file("c")},
             {"remove"}}) {
        auto r = run_ctl_at(socket, args);
        std::string joined;
        for (const auto &a : args) joined += a + " ";
        INFO(joined << ": " << r.out << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out == "");
        CHECK(r.err != "");
    }
}

// ---- add --------------------------------------------------------------------------

TEST_CASE(
    "add: a worker added under the root or a nested supervisor becomes its last child, is "
    "ready when chipctl returns, and shows dynamic: true") {
    Chipd d(spec(json::array({worker("a", helper("sleep")),
                              supervisor("g", json::array({worker("x", helper("sleep"))}))})));
    d.start_ready();
    auto before = worker_pids(d);

    // Ready 300 ms after its start: chipctl returns only then.
    json late = worker("late", helper("notify-after:300"), {{"ready", "notify"}});
    auto r = d.run_ctl({"add", "/", late.dump()});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("late") == "running");
    r = d.run_ctl({"add", "g", worker("y", helper("sleep")).dump()});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("g/y") == "running");
    CHECK(paths(d) == Lines{"/", "a", "g", "g/x", "g/y", "late"});

    CHECK(dynamic_of(d, "late") == true);
    CHECK(dynamic_of(d, "g/y") == true);
    CHECK(dynamic_of(d, "a") == false);
    CHECK(dynamic_of(d, "g") == false);
    CHECK(dynamic_of(d, "g/x") == false);
    for (const auto &[path, pid] : before) CHECK(d.pid_of(path) == pid);
    CHECK(d.log_has({"start late pid"}));
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "add: a pool and a whole supervisor subtree (-f FILE) are added and started in order; "
    "relative paths in the child are from chipctl's folder") {
    TempDir scratch;
    std::string rec = scratch.file("rec"), pid_file = scratch.file("rel.pid");
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a");

    auto r = d.run_ctl({"add", "/", worker("p", helper("sleep"), {{"instances", 2}}).dump()});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(running_instances(d.status_json(), "p.") == 2);
    CHECK(dynamic_of(d, "p.0") == true);

    write_file(scratch.file("sub.json"),
               supervisor("s", json::array({recorder("x", rec), recorder("y", rec)}),
                          {{"strategy", "one_for_all"}})
                   .dump());
    r = ctl_in(scratch.path(), d.socket(), {"add", "/", "-f", "sub.json"});
    CHECK(r.exit_code == 0);
    CHECK(d.state_of("s") == "running");
    CHECK(d.state_of("s/x") == "running");
    CHECK(d.state_of("s/y") == "running");
    pid_t x = d.pid_of("s/x"), y = d.pid_of("s/y");
    auto lines = read_lines(rec);
    CHECK(index_of(lines, "start " + str(x)) >= 0);
    CHECK(index_of(lines, "start " + str(y)) > index_of(lines, "ready " + str(x)));
    CHECK(dynamic_of(d, "s") == true);

    // command[0] and cwd relative to chipctl's folder, the helper's own.
    std::filesystem::path helper_file(helper_path());
    std::string helper_dir = std::filesystem::canonical(helper_file.parent_path()).string();
    json rel =
        worker("rel", json::array({"./" + helper_file.filename().string(), "pid:" + pid_file}),
               {{"cwd", "."}});
    r = ctl_in(helper_dir, d.socket(), {"add", "/", rel.dump()});
    CHECK(r.exit_code == 0);
    pid_t relpid = d.pid_of("rel");
    CHECK(relpid > 0);
    CHECK(wait_pid_file(pid_file) == relpid);
    CHECK(cwd_of(relpid) == helper_dir);

    CHECK(paths(d) == Lines{"/", "a", "p.0", "p.1", "s", "s/x", "s/y", "rel"});
    CHECK(d.pid_of("a") == a);
    CHECK(d.stop() == 0);
}

TEST_CASE(
    "add refuses a name used by a sibling (EEXIST), a bad child with its JSON pointer "
    "(EINVAL), and a join naming an unknown registry (EINVAL); nothing is added") {
    Chipd d(spec(json::array({worker("a", helper("sleep"))}), {}, {{"registries", {"r"}}}));
    d.start_ready();
    auto before = worker_pids(d);

    json dup = worker("a", helper("sleep"));
    auto r = d.run_ctl({"add", "/", dup.dump()});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 1);
    CHECK(errno_of(d.request({{"op", "add"}, {"path", "/"}, {"child", dup}})) == "EEXIST");

    json bad{{"name", "z"}, {"command", "not a list"}};
    r = d.run_ctl({"add", "/", bad.dump()});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("/command: expected") != std::string::npos);
    json resp = d.request({{"op", "add"}, {"path", "/"}, {"child", bad}});
    CHECK(errno_of(resp) == "EINVAL");
    REQUIRE(resp.contains("errors"));
    bool pointed = false;
    for (const auto &e : resp["errors"])
        pointed = pointed || e.get<std::string>().find("/command: expected") != std::string::npos;
    CHECK(pointed);

    json unknown = worker("u", helper("sleep"), {{"join", {{"nope", {"g"}}}}});
    r = d.run_ctl({"add", "/", unknown.dump()});
    CHECK(r.exit_code == 1);
    CHECK(errno_of(d.request({{"op", "add"}, {"path", "/"}, {"child", unknown}})) == "EINVAL");

    r = d.run_ctl({"add", "/", "{not json"});
    CHECK(r.exit_code == 1);

    CHECK(paths(d) == Lines{"/", "a"});
    CHECK(worker_pids(d) == before);
    CHECK(d.stop() == 0);
}

// ---- remove -----------------------------------------------------------------------

TEST_CASE(
    "remove: a worker and a subtree (in reverse order) are stopped and gone from status; / "
    "and a single pool instance are refused with EINVAL") {
    TempDir scratch;
    std::string rec = scratch.file("rec");
    Chipd d(spec(json::array(
        {recorder("a", rec),
         supervisor("g", json::array({recorder("x", rec), recorder("y", rec), recorder("z", rec)})),
         worker("web", helper("sleep"), {{"instances", 2}}), worker("b", helper("sleep"))})));
    d.start_ready();
    auto before = worker_pids(d);

    auto r = d.run_ctl({"remove", "a"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(wait_until([&] { return d.node("a").is_null(); }));
    CHECK(wait_until([&] { return !process_alive(before["a"]); }));

    r = d.run_ctl({"remove", "g"});
    CHECK(r.exit_code == 0);
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "web.0", "web.1", "b"}; }));
    auto lines = read_lines(rec);
    long sx = index_of(lines, "stop " + str(before["g/x"]));
    long sy = index_of(lines, "stop " + str(before["g/y"]));
    long sz = index_of(lines, "stop " + str(before["g/z"]));
    CHECK(sz >= 0);
    CHECK(sy > sz);
    CHECK(sx > sy);

    for (const char *path : {"/", "web.1"}) {
        r = d.run_ctl({"remove", path});
        CHECK_MESSAGE(r.exit_code == 1, path);
        CHECK_MESSAGE(errno_of(d.request({{"op", "remove"}, {"path", path}})) == "EINVAL", path);
    }
    CHECK(d.run_ctl({"remove", "nope"}).exit_code == 1);
    CHECK(paths(d) == Lines{"/", "web.0", "web.1", "b"});
    for (const char *p : {"web.0", "web.1", "b"}) CHECK(d.pid_of(p) == before[p]);
    CHECK(d.state_of("/") == "running");
    CHECK(d.stop() == 0);
}

TEST_CASE("remove: a child added with chipctl add can be removed again") {
    Chipd d(spec(json::array({worker("a", helper("sleep"))})));
    d.start_ready();
    pid_t a = d.pid_of("a");
    REQUIRE(d.run_ctl({"add", "/", worker("x", helper("sleep")).dump()}).exit_code == 0);
    pid_t x = d.pid_of("x");
    REQUIRE(x > 0);
    auto r = d.run_ctl({"remove", "x"});
    INFO(r.out << r.err << d.stderr_text());
    CHECK(r.exit_code == 0);
    CHECK(wait_until([&] { return paths(d) == Lines{"/", "a"}; }));
    CHECK(wait_until([&] { return !process_alive(x); }));
    CHECK(d.pid_of("a") == a);
    CHECK(d.stop() == 0);
}
