// chipd's registries, member watches and cluster views handed across a
// re-exec (src/daemon/registries.hpp, cluster.hpp): the old image's state
// taken over by fresh objects in the same process, over real shared memory,
// real pidfds and a real loop. The exec itself is played by duplicating the
// descriptors without close-on-exec, as the new image receives them.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/names.hpp"
#include "daemon/cluster.hpp"
#include "daemon/registries.hpp"
#include "os/private_folder.hpp"
#include "os/self.hpp"
#include "os/shm.hpp"
#include "registry/cluster_view.hpp"
#include "registry/reader.hpp"

using chip::daemon::Cluster;
using chip::daemon::Processes;
using chip::daemon::Registries;
using chip::daemon::Registry;
using chip::daemon::SystemProcesses;
using chip::os::PeerCred;
using chip::spec::RegistrySpec;

namespace {

using Pids = std::vector<pid_t>;

// The machine behind the registries: every pid is a worker's (no watch, no
// /proc), chipd's uid is ours (the shared memory is owned by it).
struct FakeProcesses : Processes {
    uid_t own_uid() const override { return chip::os::real_uid(); }
    std::optional<pid_t> parent_of(pid_t) const override { return std::nullopt; }
    std::optional<std::pair<uid_t, uid_t>> uids_of(pid_t) const override { return std::nullopt; }
    bool watch(pid_t) override { return true; }
    void unwatch(pid_t) override {}
};

const PeerCred kRoot{1, 0, 0};

struct Set {
    FakeProcesses procs;
    std::vector<std::string> warnings;
    Registries registries{procs, [](pid_t) { return true; },
                          [this](const std::string &m) { warnings.push_back(m); }};
};

// Readers' view of a registry: mapped by name, read-only, like libchip.
struct Seen {
    chip::os::Mapping mapping;
    chip::registry::Reader reader;
    explicit Seen(const std::string &shm) {
        auto m = chip::os::open_shm_readonly(shm, chip::os::real_uid());
        REQUIRE(m);
        mapping = std::move(*m);
        REQUIRE(reader.attach(mapping.cbytes()) == 0);
    }
    Pids members(const std::string &g) const {
        Pids out(64);
        ssize_t n = reader.members(g, out.data(), out.size());
        REQUIRE(n >= 0);
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
};

bool cloexec(int fd) {
    int flags = ::fcntl(fd, F_GETFD);
    REQUIRE(flags >= 0);
    return (flags & FD_CLOEXEC) != 0;
}

bool open_fd(int fd) {
    return ::fcntl(fd, F_GETFD) >= 0;
}

// What the new image receives: the same open objects, close-on-exec cleared.
int exec_copy(int fd) {
    int copy = ::fcntl(fd, F_DUPFD, 3);
    REQUIRE(copy >= 0);
    return copy;
}

template <typename T>
std::vector<T> exec_copies(std::vector<T> state) {
    for (auto &h : state) {
        if constexpr (requires { h.pidfd; })
            h.pidfd = exec_copy(h.pidfd);
        else
            h.fd = exec_copy(h.fd);
    }
    return state;
}

bool shm_exists(const std::string &name) {
    return static_cast<bool>(chip::os::open_shm_readonly(name, chip::os::real_uid()));
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/chip-registries-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

std::string slurp(const std::string &path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Forked children that pause until killed; whatever a test does, they are
// killed and reaped by pid at its end.
struct Children {
    std::set<pid_t> pids;
    pid_t start() {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            for (;;) ::pause();
        }
        pids.insert(pid);
        return pid;
    }
    void reap(pid_t pid) {
        if (!pids.erase(pid)) return;
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
    ~Children() {
        while (!pids.empty()) reap(*pids.begin());
    }
};

// Shared-memory names a test made, removed at its end even when it fails
// half-way (an object left behind is a leak of the machine's memory).
struct Unlink {
    std::vector<std::string> names;
    void add(const Registries &rs) {
        for (const auto &r : rs.all()) names.push_back(r->shm_name);
    }
    ~Unlink() {
        for (const auto &n : names) (void)chip::os::unlink_shm(n);
    }
};

const RegistrySpec kReg{"reg", 8, 32};
const RegistrySpec kOther{"other", 4, 8};

}  // namespace

TEST_CASE("registries handed over keep their names, regions and members; readers notice nothing") {
    Unlink unlink;
    auto old = std::make_unique<Set>();
    REQUIRE(old->registries.create_shared(kReg, chip::os::self_pid()));
    REQUIRE(old->registries.create_shared(kOther, chip::os::self_pid()));
    unlink.add(old->registries);
    Registry &r = *old->registries.find("reg");
    for (pid_t p : {100, 101, 102}) REQUIRE(old->registries.join(r, "g", p, kRoot));
    REQUIRE(old->registries.join(r, "h", 101, kRoot));
    REQUIRE(old->registries.join(*old->registries.find("other"), "x", 7, kRoot));
    const std::string shm = r.shm_name, other_shm = old->registries.find("other")->shm_name;
    Seen seen(shm);
    const auto gen = seen.reader.generation();

    auto state = old->registries.handoff_state();
    REQUIRE(state.size() == 2);
    CHECK(state[0].spec.name == "reg");
    CHECK(state[0].spec.max_groups == 8);
    CHECK(state[0].spec.max_members == 32);
    CHECK(state[0].shm_name == shm);
    CHECK(state[0].fd == r.fd.get());
    CHECK(cloexec(state[0].fd));  // no worker inherits it
    CHECK(state[1].shm_name == other_shm);
    auto handed = exec_copies(state);
    old.reset();  // the old image is gone: nothing flagged dead, nothing removed
    CHECK_FALSE(seen.reader.dead());
    CHECK(shm_exists(shm));

    Set next;
    REQUIRE(next.registries.adopt(handed));
    REQUIRE(next.registries.all().size() == 2);
    Registry &a = *next.registries.find("reg");
    CHECK(a.shm_name == shm);
    CHECK(a.fd.get() == handed[0].fd);
    CHECK(cloexec(a.fd.get()));
    CHECK(a.table.members("g") == Pids{100, 101, 102});
    CHECK(a.table.groups_of(101) == std::vector<std::string>{"g", "h"});
    CHECK(next.registries.find("other")->table.members("x") == Pids{7});
    CHECK(seen.reader.generation() == gen);  // adopting wrote nothing
    CHECK(seen.members("g") == Pids{100, 101, 102});

    // From now on it is written as before, under the same name.
    REQUIRE(next.registries.join(a, "g", 103, kRoot));
    REQUIRE(next.registries.leave(a, "g", 100, kRoot));
    next.registries.member_died(101);
    CHECK(seen.members("g") == Pids{102, 103});
    CHECK(seen.members("h").empty());
    CHECK(seen.reader.generation() == gen + 3);
    CHECK(Seen(shm).members("g") == Pids{102, 103});

    // And handed over again, as often as chipd re-executes.
    auto again = exec_copies(next.registries.handoff_state());
    Set third;
    REQUIRE(third.registries.adopt(again));
    CHECK(third.registries.find("reg")->table.members("g") == Pids{102, 103});
    third.registries.close();
    CHECK(seen.reader.dead());
    CHECK_FALSE(shm_exists(shm));
    CHECK_FALSE(shm_exists(other_shm));
}

TEST_CASE("publish_in without clearing leaves the index and the regions it lists to the adopter") {
    TempDir dir;
    auto folder = chip::os::prepare_socket_folder(dir.path + "/chipd.sock", chip::os::real_uid());
    REQUIRE(folder);
    const std::string index = dir.path + "/" + chip::registry_index_name("chipd.sock");

    Unlink unlink;
    auto old = std::make_unique<Set>();
    old->registries.publish_in(*folder);
    REQUIRE(old->registries.create_shared(kReg, chip::os::self_pid()));
    unlink.add(old->registries);
    REQUIRE(old->registries.join(*old->registries.find("reg"), "g", 5, kRoot));
    const std::string shm = old->registries.find("reg")->shm_name;
    const std::string text = slurp(index);
    CHECK(text.find(shm) != std::string::npos);
    auto handed = exec_copies(old->registries.handoff_state());
    old.reset();
    Seen seen(shm);

    Set next;
    next.registries.publish_in(*folder, false);
    REQUIRE(next.registries.adopt(handed));
    CHECK(slurp(index) == text);
    CHECK_FALSE(seen.reader.dead());
    CHECK(shm_exists(shm));
    CHECK(seen.members("g") == Pids{5});

    // A registry added afterwards is published beside the adopted one.
    REQUIRE(next.registries.create_shared(kOther, chip::os::self_pid()));
    unlink.add(next.registries);
    const std::string now = slurp(index);
    CHECK(now.find(shm) != std::string::npos);
    CHECK(now.find(next.registries.find("other")->shm_name) != std::string::npos);

    // What a fresh chipd does with the same index: the regions are a killed
    // predecessor's, flagged dead and removed.
    Set fresh;
    fresh.registries.publish_in(*folder);
    CHECK(seen.reader.dead());
    CHECK_FALSE(shm_exists(shm));
    next.registries.close();
}

TEST_CASE("a hand-off that does not check out is refused whole, its descriptors closed") {
    Unlink unlink;
    Set old;
    REQUIRE(old.registries.create_shared(kReg, chip::os::self_pid()));
    REQUIRE(old.registries.create_shared(kOther, chip::os::self_pid()));
    unlink.add(old.registries);
    REQUIRE(old.registries.join(*old.registries.find("reg"), "g", 5, kRoot));
    const auto state = old.registries.handoff_state();
    const std::string shm = state[0].shm_name;
    Seen seen(shm);

    // The refusal's message, after checking that nothing was taken over, that
    // every handed descriptor was closed and that readers saw nothing.
    auto refused = [&](std::vector<chip::handoff::Registry> handed) {
        Set next;
        auto r = next.registries.adopt(handed);
        REQUIRE_FALSE(r);
        CHECK(next.registries.all().empty());
        for (const auto &h : handed)
            if (h.fd >= 0) CHECK_FALSE(open_fd(h.fd));
        CHECK_FALSE(seen.reader.dead());
        CHECK(shm_exists(shm));
        CHECK(seen.members("g") == Pids{5});
        return r.error().message;
    };

    {
        auto h = exec_copies(state);
        h[1].spec.max_members = 9;  // the spec's capacities, not the region's
        auto why = refused(h);
        CHECK(why.find("registry other") != std::string::npos);
        CHECK(why.find("expected") != std::string::npos);
    }
    {
        auto h = exec_copies(state);
        std::swap(h[0].shm_name, h[1].shm_name);
        CHECK(refused(h).find("not a shared-memory name of this registry") != std::string::npos);
    }
    {
        auto h = exec_copies(state);
        ::close(h[1].fd);
        h[1].fd = -1;
        CHECK(refused(h).find("registry other") != std::string::npos);
    }
    {
        auto h = exec_copies(state);
        ::close(h[1].fd);
        h[1].fd = h[0].fd;  // one descriptor named twice: closed once
        CHECK(refused(h).find("named twice") != std::string::npos);
    }
    {
        // Another object under a name of ours: not the region readers find.
        auto stranger_name = chip::registry_shm_name(*chip::os::random_hex(16), "reg");
        unlink.names.push_back(stranger_name);
        auto stranger = chip::os::create_shm(
            stranger_name, chip::registry::Table::region_size(kReg.max_groups, kReg.max_members));
        REQUIRE(stranger);
        auto h = exec_copies(state);
        ::close(h[0].fd);
        h[0].fd = exec_copy(stranger->fd.get());
        auto why = refused(h);
        CHECK(why.find("no longer the object handed over") != std::string::npos);
        // ... and the same object under its own name: zeros, not a registry.
        h = exec_copies(state);
        ::close(h[0].fd);
        h[0].fd = exec_copy(stranger->fd.get());
        h[0].shm_name = stranger_name;
        CHECK(refused(h).find("not a chip registry") != std::string::npos);
        (void)chip::os::unlink_shm(stranger_name);
    }
    {
        auto h = exec_copies(state);
        h.push_back(h[0]);
        h.back().fd = exec_copy(h[0].fd);
        CHECK(refused(h).find("is there already") != std::string::npos);
    }
    {
        // A registry flagged dead (its chipd exited cleanly) is not taken over.
        Set gone;
        REQUIRE(gone.registries.create_shared(kReg, chip::os::self_pid()));
        unlink.add(gone.registries);
        auto h = exec_copies(gone.registries.handoff_state());
        gone.registries.find("reg")->table.mark_dead();
        Set next;
        auto r = next.registries.adopt(h);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("flagged dead") != std::string::npos);
        gone.registries.close();
    }
    old.registries.close();
}

TEST_CASE("member watches handed over report deaths, also those during the exec") {
    // Children that wait to be killed: processes chipd watches through pidfds.
    Children children;
    const pid_t lives = children.start(), reaped = children.start(), zombie = children.start();
    auto reap = [&](pid_t pid) { children.reap(pid); };

    chip::uv::Loop loop;
    std::set<pid_t> died;
    std::vector<std::string> early;
    std::unique_ptr<SystemProcesses> next;
    bool adopting = false;
    auto on_died = [&](pid_t pid) {
        if (adopting) early.push_back("died called from adopt");
        died.insert(pid);
        next->unwatch(pid);
        loop.stop();
    };
    // Runs the loop until DIED holds WANT or a deadline passes.
    auto run_until = [&](const std::set<pid_t> &want) {
        chip::uv::Timer deadline(loop, [&] { loop.stop(); });
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (died != want && std::chrono::steady_clock::now() < end) {
            deadline.start(1000);
            loop.run();
            next->after_turn();
        }
        return died;
    };

    std::vector<chip::handoff::Watch> handed;
    {
        SystemProcesses old(loop, [&](pid_t) { FAIL("the old image reports nothing"); });
        for (pid_t p : {lives, reaped, zombie}) REQUIRE(old.watch(p));
        auto state = old.handoff_state();
        REQUIRE(state.size() == 3);
        for (const auto &w : state) CHECK(cloexec(w.pidfd));
        handed = exec_copies(state);
    }
    // During the exec: one exits and is reaped by its parent, one exits and
    // is not reaped yet.
    reap(reaped);
    ::kill(zombie, SIGKILL);
    // A watch whose descriptor is not a pidfd of its pid cannot be kept.
    const pid_t bogus = 0x3ffffff0;
    handed.push_back({bogus, ::open("/dev/null", O_RDONLY)});
    handed.push_back({lives, -1});  // a pid watched twice: the second is dropped
    // A descriptor named twice is owned once (not closed under the first).
    handed.push_back({bogus + 1, handed[0].pidfd});

    next = std::make_unique<SystemProcesses>(loop, on_died);
    adopting = true;
    next->adopt(handed);
    adopting = false;
    CHECK(early.empty());
    CHECK(died.empty());
    for (std::size_t i = 0; i < 3; ++i) CHECK(cloexec(handed[i].pidfd));
    CHECK_FALSE(open_fd(handed[3].pidfd));
    CHECK(run_until({reaped, zombie, bogus, bogus + 1}) ==
          std::set<pid_t>{reaped, zombie, bogus, bogus + 1});
    reap(zombie);

    // The one still alive is watched by the new image: its death comes too.
    auto after = next->handoff_state();
    REQUIRE(after.size() == 1);
    CHECK(after[0].pid == lives);
    for (const auto &w : handed)
        if (w.pid == lives && w.pidfd >= 0) CHECK(after[0].pidfd == w.pidfd);
    reap(lives);
    CHECK(run_until({reaped, zombie, bogus, bogus + 1, lives}) ==
          std::set<pid_t>{reaped, zombie, bogus, bogus + 1, lives});
    next.reset();
}

TEST_CASE(
    "a cluster view handed over keeps its name and entries until the session's view changes") {
    chip::uv::Loop loop;
    chip::spec::ClusterSpec cs;
    cs.etcd = {"http://127.0.0.1:1"};  // never reached: nothing here waits for etcd
    cs.name = "test";
    cs.node = "here";
    auto signal_none = [](const std::string &, const std::string &, int) { return Pids{}; };
    std::vector<std::string> warnings;
    auto warn = [&](const std::string &m) { warnings.push_back(m); };
    const std::string registry_shm = chip::registry_shm_name(*chip::os::random_hex(16), "reg");
    const std::string view_shm = chip::cluster_shm_name(registry_shm);
    Unlink unlink{{view_shm}};

    auto old = std::make_unique<Cluster>(loop, cs, "/tmp/none.sock", warn, signal_none);
    REQUIRE(old->add_registry(kReg, registry_shm, chip::os::self_pid()));
    auto state = old->handoff_state();
    REQUIRE(state.size() == 1);
    CHECK(state[0].registry == "reg");
    CHECK(state[0].shm_name == view_shm);
    CHECK(cloexec(state[0].fd));
    // What etcd had told the old session, connected.
    {
        chip::os::UniqueFd fd(exec_copy(state[0].fd));
        auto m = chip::os::map_shared(fd.get(), view_shm,
                                      chip::registry::ClusterView::region_size(kReg.max_members),
                                      chip::os::real_uid());
        REQUIRE(m);
        chip::registry::ClusterView writer;
        REQUIRE(writer.adopt(m->bytes()) == 0);
        writer.replace({{"g", "there", 9}, {"g", "here", 4}});
        writer.set_connected(true);
    }
    auto handed = exec_copies(state), spare = exec_copies(state);
    old.reset();

    auto reader_mapping = chip::os::open_shm_readonly(view_shm, chip::os::real_uid());
    REQUIRE(reader_mapping);
    chip::registry::ClusterReader reader;
    REQUIRE(reader.attach(reader_mapping->cbytes()) == 0);
    CHECK(reader.connected());

    Cluster next(loop, cs, "/tmp/none.sock", warn, signal_none);
    // Refused: another registry's spec, or no descriptor.
    auto wrong = next.adopt_registry(kOther, handed[0]);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().message.find("not a cluster view name of this registry") !=
          std::string::npos);
    CHECK_FALSE(open_fd(handed[0].fd));
    handed = spare;
    REQUIRE(next.adopt_registry(kReg, handed[0]));
    CHECK(cloexec(handed[0].fd));
    CHECK_FALSE(next.adopt_registry(kReg, {"reg", view_shm, exec_copy(handed[0].fd)}));
    auto now = next.handoff_state();
    REQUIRE(now.size() == 1);
    CHECK(now[0].shm_name == view_shm);
    CHECK(now[0].fd == handed[0].fd);

    // The new session starts: it has heard nothing from etcd, so the entries
    // stand; it is not connected (yet), and the view says so.
    next.start();
    CHECK_FALSE(reader.dead());
    CHECK_FALSE(reader.connected());
    chip_cluster_member out[4];
    REQUIRE(reader.members("g", out, 4) == 2);
    CHECK(std::string(out[0].node) == "here");
    CHECK(out[1].pid == 9);
    next.remove_views();
    CHECK(reader.dead());
    CHECK_FALSE(chip::os::open_shm_readonly(view_shm, chip::os::real_uid()));
}
