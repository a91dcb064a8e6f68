// Trust between users: the runtime folder chipd and chipctl refuse when another
// user made or replaced it, shared memory a squatter named first, a forged
// registry index, the socket's group and mode, and the registry read by a user
// who may not connect. The cases that need a second user run chipd or chipctl
// through setpriv as nobody (or a uid of their own) and skip when the host
// cannot (not root, no setpriv).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

constexpr uid_t kNobody = 65534;

std::string setpriv_path() {
    return ::access("/usr/bin/setpriv", X_OK) == 0 ? "/usr/bin/setpriv" : "/bin/setpriv";
}

// ARGV run as UID:UID with no supplementary group, with XDG_RUNTIME_DIR and
// CHIP_SOCKET unset, then the VARS (NAME=VALUE) set.
std::vector<std::string> as_user(uid_t uid, const std::vector<std::string> &argv,
                                 const std::vector<std::string> &vars = {}) {
    std::vector<std::string> out{setpriv_path(),
                                 "--reuid=" + std::to_string(uid),
                                 "--regid=" + std::to_string(uid),
                                 "--clear-groups",
                                 "/usr/bin/env",
                                 "-u",
                                 "XDG_RUNTIME_DIR",
                                 "-u",
                                 "CHIP_SOCKET"};
    out.insert(out.end(), vars.begin(), vars.end());
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

// Skips unless this test may run programs as UID: root, setpriv, and a build
// that UID may execute.
void need_other_user(uid_t uid) {
    if (::geteuid() != 0) skip("needs root to run chipd and chipctl as another user");
    if (::access("/usr/bin/setpriv", X_OK) != 0 && ::access("/bin/setpriv", X_OK) != 0)
        skip("needs setpriv to run chipd and chipctl as another user");
    if (::access("/usr/bin/env", X_OK) != 0) skip("needs /usr/bin/env");
    if (run_process(as_user(uid, {chipctl_path(), "--version"})).exit_code != 0)
        skip("uid " + std::to_string(uid) + " cannot execute the built chipctl");
}

// A folder others may traverse (the tests' folders are 0700 root).
void open_up(const std::string &folder) {
    REQUIRE(::chmod(folder.c_str(), 0755) == 0);
}

// Output through pipes (read by collect(), or dropped), not on the test's own.
ChildOptions captured() {
    ChildOptions o;
    o.capture = true;
    return o;
}

std::string str(long n) {
    return std::to_string(n);
}

// A spec with one registry "r" and one worker joining r/a.
json one_registry() {
    return spec(json::array({worker("w", helper("sleep"), {{"join", {{"r", {"a"}}}}})}), {},
                {{"registries", {"r"}}});
}

// chipd SPEC_FILE as UID (default socket path), stdout and stderr captured.
// It is expected to fail at once; the caller waits for its exit.
ProcResult run_chipd_as(uid_t uid, const std::string &spec_file,
                        const std::vector<std::string> &vars) {
    return run_process(as_user(uid, {chipd_path(), spec_file}, vars));
}

// Removes PATH (a file, a symlink, not what it points to, or a folder and
// all in it) when the case ends.
struct Remove {
    std::string path;
    ~Remove() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

// The old, guessable shared-memory name of REGISTRY for SOCKET:
// "/chip-<FNV-1a 64 of the socket path, 16 hex>-<registry>".
std::string guessable_shm(const std::string &socket, const std::string &registry) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char ch : socket) {
        h ^= ch;
        h *= 0x100000001b3ULL;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return std::string("/dev/shm/chip-") + hex + "-" + registry;
}

// FILE's owner and permission bits.
struct stat stat_of(const std::string &file) {
    struct stat st {};
    REQUIRE(::lstat(file.c_str(), &st) == 0);
    return st;
}

}  // namespace

// ---- the runtime folder -------------------------------------------------------------------

TEST_CASE(
    "a runtime folder $XDG_RUNTIME_DIR/chip that another user made, or that is not 0700, is "
    "refused: chipd exits 1 naming it, chipctl will not talk through it") {
    need_other_user(kNobody);
    TempDir t;
    open_up(t.path());
    const std::string xdg = t.file("xdg"), folder = xdg + "/chip";
    REQUIRE(::mkdir(xdg.c_str(), 0700) == 0);
    REQUIRE(::chown(xdg.c_str(), kNobody, kNobody) == 0);
    write_file(t.file("spec.json"), one_registry().dump());
    const std::vector<std::string> env{"XDG_RUNTIME_DIR=" + xdg};

    // Made first by another user (root here), open to all.
    REQUIRE(::mkdir(folder.c_str(), 0777) == 0);
    REQUIRE(::chmod(folder.c_str(), 0777) == 0);
    ProcResult r = run_chipd_as(kNobody, t.file("spec.json"), env);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(folder) != std::string::npos);
    CHECK(r.err.find("owned by uid 0") != std::string::npos);
    CHECK_FALSE(file_exists(folder + "/chipd.sock"));

    // The user's own, but open to others.
    REQUIRE(::chown(folder.c_str(), kNobody, kNobody) == 0);
    REQUIRE(::chmod(folder.c_str(), 0755) == 0);
    r = run_chipd_as(kNobody, t.file("spec.json"), env);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(folder) != std::string::npos);
    CHECK(r.err.find("mode 0755; expected 0700") != std::string::npos);
    CHECK_FALSE(file_exists(folder + "/chipd.sock"));

    // A socket planted there by the other user: chipctl refuses to talk to it.
    REQUIRE(::chown(folder.c_str(), 0, 0) == 0);
    REQUIRE(::chmod(folder.c_str(), 0777) == 0);
    Chipd planted(one_registry(), folder + "/chipd.sock");
    planted.start_ready();
    for (auto args : std::vector<std::vector<std::string>>{
             {"status"}, {"shutdown"}, {"members", "a"}, {"groups"}}) {
        ProcResult c = run_process(as_user(
            kNobody,
            [&] {
                std::vector<std::string> argv{chipctl_path()};
                argv.insert(argv.end(), args.begin(), args.end());
                return argv;
            }(),
            env));
        INFO(args[0] << ": " << c.err);
        CHECK(c.exit_code == 3);
        CHECK(c.err.find("refusing runtime folder " + folder) != std::string::npos);
    }
    CHECK(planted.running());

    // Once it is the user's own and private, chipd runs in it.
    CHECK(planted.stop() == 0);
    REQUIRE(::chown(folder.c_str(), kNobody, kNobody) == 0);
    REQUIRE(::chmod(folder.c_str(), 0700) == 0);
    Child ok(as_user(kNobody, {chipd_path(), t.file("spec.json")}, env), captured());
    CHECK(wait_until([&] {
        return run_process(as_user(kNobody, {chipctl_path(), "members", "a"}, env)).exit_code == 0;
    }));
    ProcResult st = run_process(as_user(kNobody, {chipctl_path(), "shutdown"}, env));
    CHECK(st.exit_code == 0);
    CHECK(ok.wait() == 0);
}

TEST_CASE(
    "a runtime folder /tmp/chip-$UID that is a symlink is refused, even to a folder of the user; "
    "a missing one is created 0700") {
    // A uid of this test's own: /tmp/chip-$UID is a global name.
    const uid_t uid = 60000 + static_cast<uid_t>(::getpid() % 5000);
    need_other_user(uid);
    TempDir t;
    open_up(t.path());
    write_file(t.file("spec.json"), one_registry().dump());
    const std::string folder = "/tmp/chip-" + str(uid);
    if (::access(folder.c_str(), F_OK) == 0 || errno != ENOENT)
        skip(folder + " exists already (another run?)");
    Remove cleanup{folder};

    const std::string target = t.file("theirs");
    REQUIRE(::mkdir(target.c_str(), 0700) == 0);
    REQUIRE(::chown(target.c_str(), uid, uid) == 0);
    REQUIRE(::symlink(target.c_str(), folder.c_str()) == 0);
    ProcResult r = run_chipd_as(uid, t.file("spec.json"), {});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(folder) != std::string::npos);
    CHECK(r.err.find("symlink") != std::string::npos);
    CHECK_FALSE(file_exists(target + "/chipd.sock"));

    // chipctl does not follow it either (whatever listens at the other end).
    Chipd behind(one_registry(), target + "/chipd.sock");
    behind.start_ready();
    ProcResult c = run_process(as_user(uid, {chipctl_path(), "status"}));
    CHECK(c.exit_code == 3);
    CHECK(c.err.find("symlink") != std::string::npos);
    c = run_process(as_user(uid, {chipctl_path(), "members", "a"}));
    CHECK(c.exit_code == 3);
    CHECK(c.err.find("symlink") != std::string::npos);
    CHECK(behind.stop() == 0);

    // Without the plant, chipd makes it: a real folder of the user, 0700,
    // whatever the umask.
    REQUIRE(::unlink(folder.c_str()) == 0);
    Child ok(as_user(uid, {"/bin/sh", "-c", "umask 0; exec \"$0\" \"$1\"", chipd_path(),
                           t.file("spec.json")}),
             captured());
    REQUIRE(wait_until([&] { return file_exists(folder + "/chipd.sock"); }));
    struct stat st = stat_of(folder);
    CHECK(S_ISDIR(st.st_mode));
    CHECK(st.st_uid == uid);
    CHECK((st.st_mode & 07777) == 0700);
    CHECK(wait_until([&] {
        return run_process(as_user(uid, {chipctl_path(), "members", "a"})).exit_code == 0;
    }));
    CHECK(run_process(as_user(uid, {chipctl_path(), "shutdown"})).exit_code == 0);
    CHECK(ok.wait() == 0);
    CHECK_FALSE(file_exists(folder + "/chipd.sock"));
    CHECK_FALSE(file_exists(folder + "/chipd.sock.registries"));
}

// ---- shared memory -----------------------------------------------------------------------

TEST_CASE(
    "a squatter's shared memory under the old guessable name does not stop a non-root chipd, "
    "and is neither used nor removed") {
    need_other_user(kNobody);
    TempDir t;
    open_up(t.path());
    const std::string run = t.file("run"), socket = run + "/chipd.sock";
    REQUIRE(::mkdir(run.c_str(), 0755) == 0);
    REQUIRE(::chown(run.c_str(), kNobody, kNobody) == 0);
    write_file(t.file("spec.json"), one_registry().dump());

    // Another user (root) takes the name first.
    const std::string squat = guessable_shm(socket, "r");
    Remove cleanup{squat};
    write_file(squat, std::string(4096, 'x'));
    REQUIRE(::chmod(squat.c_str(), 0644) == 0);

    Child d(as_user(kNobody, {chipd_path(), "--socket", socket, t.file("spec.json")}), captured());
    bool up = wait_until([&] {
        return !d.running() || run_ctl_at(socket, {"members", "a"}).out.size() > 1;
    });
    CHECK(up);
    REQUIRE(d.running());
    ProcResult m =
        run_process(as_user(kNobody, {chipctl_path(), "--socket", socket, "members", "a"}));
    CHECK(m.exit_code == 0);
    CHECK(m.out != "");
    json regs = Client(socket).request({{"op", "registries"}});
    REQUIRE(regs["registries"].size() == 1);
    std::string shm = regs["registries"][0].value("shm", "");
    CHECK(shm != squat);
    CHECK(stat_of(shm).st_uid == kNobody);
    CHECK(read_file(squat) == std::string(4096, 'x'));

    CHECK(run_ctl_at(socket, {"shutdown"}).exit_code == 0);
    CHECK(d.wait() == 0);
    CHECK(file_exists(squat));
    CHECK_FALSE(file_exists(shm));
}

TEST_CASE(
    "at start chipd removes only the stale regions listed by its predecessor that are its own: "
    "not another user's, nor any listed in an index another user wrote") {
    Chipd d(one_registry());
    const std::string index = d.socket() + ".registries";
    auto plant_index = [&](const std::string &shm, uid_t owner) {
        ::unlink(index.c_str());
        write_file(index, "chip-registries 1\nr " + shm.substr(8) + "\n");
        REQUIRE(::chmod(index.c_str(), 0644) == 0);
        REQUIRE(::chown(index.c_str(), owner, owner) == 0);
    };

    // Another user's region, listed in an index of chipd's user.
    const std::string theirs = "/dev/shm/chip-" + std::string(32, 'e') + "-r";
    Remove remove_theirs{theirs};
    write_file(theirs, std::string(4096, 't'));
    REQUIRE(::chown(theirs.c_str(), kNobody, kNobody) == 0);
    plant_index(theirs, 0);
    d.start_ready();
    CHECK(read_file(theirs) == std::string(4096, 't'));
    CHECK(d.stop() == 0);

    // chipd's user's region, listed in an index another user wrote.
    const std::string mine = "/dev/shm/chip-" + std::string(32, 'd') + "-r";
    Remove remove_mine{mine};
    write_file(mine, std::string(4096, 'm'));
    plant_index(mine, kNobody);
    Chipd again(one_registry(), d.socket());
    again.start_ready();
    CHECK(file_exists(mine));
    // ...and the index is chipd's own again.
    struct stat st = stat_of(index);
    CHECK(st.st_uid == 0);
    CHECK((st.st_mode & 07777) == 0644);
    CHECK(again.stop() == 0);

    // The same listed in chipd's user's own index: removed.
    plant_index(mine, 0);
    Chipd third(one_registry(), d.socket());
    third.start_ready();
    CHECK_FALSE(file_exists(mine));
}

// ---- the registry index ------------------------------------------------------------------

TEST_CASE(
    "a forged registry index is not trusted: another owner, writable by others, a symlink, a "
    "folder open to all, a region of another owner") {
    Chipd d(one_registry());
    d.start_ready();
    pid_t w = d.pid_of("w");
    const std::string index = d.socket() + ".registries";
    const std::string real = read_file(index);
    auto members_a = [&] { return d.run_ctl({"members", "a"}); };
    REQUIRE(members_a().out == str(w) + "\n");
    // Restores the real index, and checks that it is trusted again (the
    // refusals below are the forgeries', not a broken reader's).
    auto restore = [&] {
        ::unlink(index.c_str());
        write_file(index, real);
        REQUIRE(::chmod(index.c_str(), 0644) == 0);
        CHECK(members_a().out == str(w) + "\n");
    };
    auto refused = [&](const std::string &why) {
        ProcResult r = members_a();
        INFO(r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.out == "");
        CHECK(r.err.find(why) != std::string::npos);
    };

    SUBCASE("owned by another user") {
        REQUIRE(::chown(index.c_str(), kNobody, kNobody) == 0);
        refused("owned by uid 65534");
    }
    SUBCASE("writable by others") {
        REQUIRE(::chmod(index.c_str(), 0666) == 0);
        refused("writable by others");
    }
    SUBCASE("a symlink to a copy") {
        write_file(d.file("copy"), real);
        REQUIRE(::unlink(index.c_str()) == 0);
        REQUIRE(::symlink(d.file("copy").c_str(), index.c_str()) == 0);
        refused("symlink");
    }
    SUBCASE("in a folder open to all") {
        REQUIRE(::chmod(d.dir().path().c_str(), 0777) == 0);
        refused("others may replace");
        REQUIRE(::chmod(d.dir().path().c_str(), 0700) == 0);
    }
    SUBCASE("naming a region of another owner") {
        json regs = d.request({{"op", "registries"}});
        const std::string shm = regs["registries"][0].value("shm", "");
        const std::string fake = "/dev/shm/chip-" + std::string(32, 'f') + "-r";
        Remove cleanup{fake};
        write_file(fake, read_file(shm));
        REQUIRE(::chown(fake.c_str(), kNobody, kNobody) == 0);
        REQUIRE(::unlink(index.c_str()) == 0);
        write_file(index, "chip-registries 1\nr " + fake.substr(8) + "\n");
        refused("is not to be trusted");
    }
    SUBCASE("garbage") {
        REQUIRE(::unlink(index.c_str()) == 0);
        write_file(index, "chip-registries 1\nr /dev/shm/../../etc/passwd\n");
        refused("line 2");
    }
    restore();
}

// ---- who may talk to chipd ---------------------------------------------------------------

TEST_CASE("a socket object with group and mode gives the socket that group and mode") {
    if (!::getgrnam("nogroup")) skip("needs the group nogroup");
    if (::geteuid() != 0) skip("needs root to give the socket a group of another user");
    json s = one_registry();
    s["socket"] = {{"group", "nogroup"}, {"mode", "0640"}};
    Chipd d(s);
    d.start_ready();
    struct stat st = stat_of(d.socket());
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(st.st_gid == 65534);
    CHECK(st.st_uid == 0);
    // A reload cannot change them.
    json changed = s;
    changed["socket"]["mode"] = "0666";
    write_file(d.spec_path(), changed.dump());
    ProcResult reload = d.run_ctl({"reload"});
    CHECK(reload.exit_code == 1);
    CHECK(reload.err.find("group and mode cannot change") != std::string::npos);
    CHECK((stat_of(d.socket()).st_mode & 07777) == 0640);
    // The index is readable by all; chipd's alone to write.
    struct stat ist = stat_of(d.socket() + ".registries");
    CHECK((ist.st_mode & 07777) == 0644);
    CHECK(ist.st_uid == 0);
    CHECK(d.stop() == 0);

    // A numeric gid, and the default mode.
    json n = one_registry();
    n["socket"] = {{"group", "4242"}};
    Chipd d2(n);
    d2.start_ready();
    st = stat_of(d2.socket());
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(st.st_gid == 4242);
}

TEST_CASE("a socket group with a private runtime folder is refused: no group can enter it") {
    TempDir xdg;
    json s = one_registry();
    s["socket"] = {{"group", "0"}};
    Chipd holder(s);  // a folder for its spec file only
    ProcResult r = run_process({"/usr/bin/env", "-u", "CHIP_SOCKET",
                                "XDG_RUNTIME_DIR=" + xdg.path(), chipd_path(), holder.spec_path()});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(xdg.path() + "/chip") != std::string::npos);
    CHECK(r.err.find("private") != std::string::npos);
    CHECK_FALSE(file_exists(xdg.path() + "/chip/chipd.sock"));
}

TEST_CASE(
    "members and groups are read by a user who may not connect (socket 0600), also while chipd "
    "is stopped with SIGSTOP") {
    need_other_user(kNobody);
    json s = one_registry();
    s["socket"] = {{"mode", "0600"}};
    Chipd d(s);
    open_up(d.dir().path());
    d.start_ready();
    pid_t w = d.pid_of("w");
    REQUIRE((stat_of(d.socket()).st_mode & 0777) == 0600);
    auto as_nobody = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {chipctl_path(), "--socket", d.socket()});
        return run_process(as_user(kNobody, args));
    };

    ProcResult st = as_nobody({"status"});
    CHECK(st.exit_code == 3);
    CHECK(st.err.find("Permission denied") != std::string::npos);
    CHECK(as_nobody({"join", "b", "--pid", str(w)}).exit_code == 3);

    auto reads = [&] {
        ProcResult m = as_nobody({"members", "a"});
        INFO(m.err);
        CHECK(m.exit_code == 0);
        CHECK(m.out == str(w) + "\n");
        ProcResult g = as_nobody({"--json", "groups"});
        CHECK(g.exit_code == 0);
        CHECK(g.out == "{\"a\":1}\n");
    };
    reads();
    REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
    struct Continue {
        pid_t pid;
        ~Continue() { ::kill(pid, SIGCONT); }
    } resume{d.pid()};
    REQUIRE(wait_until([&] { return process_state(d.pid()) == 'T'; }));
    reads();
    CHECK(process_state(d.pid()) == 'T');
}
