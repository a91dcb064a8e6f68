// The hand-off codec (src/handoff/codec.hpp): a State with every field set
// comes back equal, its definitions shared as they were; version 1 leaves
// systemd out; truncated, corrupted, unknown-version and unsound hand-offs
// are refused with the reason, never returned in part.
#include <doctest/doctest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tree.hpp"
#include "fake_effects.hpp"
#include "handoff/codec.hpp"

using namespace std::chrono_literals;
using chip::core::Backoff;
using chip::core::ChildSpec;
using chip::core::NodeSnapshot;
using chip::core::SupervisorSpec;
using chip::core::Time;
using chip::core::WorkerSpec;
using chip::handoff::decode;
using chip::handoff::encode;
using chip::handoff::reseal;
using chip::handoff::State;
using chip::handoff::version_of;
using chip::spec::Launch;
using chip::spec::OutputSpec;

namespace {

constexpr std::size_t kHeader = 32;

std::shared_ptr<const Launch> launch(const std::string &program) {
    auto l = std::make_shared<Launch>();
    l->command = {program, "--port", "80 80"};
    l->env = {{"PATH", "/usr/bin"}, {"EMPTY", ""}, {"EQ", "a=b"}};
    l->cwd = "/srv/" + program;
    l->user = "www";
    l->group = "web";
    l->uid = 33;
    l->gid = 4294967294u;
    l->login = chip::spec::Login{"www", "/var/www", "/bin/sh"};
    l->join = {{"jobs", {"a", "b"}}, {"peers", {}}};
    l->out.mode = OutputSpec::Mode::File;
    l->out.file = "/var/log/{name}.{instance}.log";
    l->out.max_bytes = 123456789012ull;
    l->out.keep = 9;
    l->err.mode = OutputSpec::Mode::Null;
    return l;
}

Backoff backoff(int k) {
    return Backoff{Time{k * 1000}, Time{k * 2000}, 1.5 + k, 0.25, Time{-k}};
}

std::shared_ptr<const WorkerSpec> worker(std::shared_ptr<const Launch> l, int k) {
    auto w = std::make_shared<WorkerSpec>();
    w->restart = static_cast<chip::core::RestartType>(k % 3);
    if (k % 2) w->instances = 3;
    w->ready = chip::core::ReadyMode::Notify;
    w->start_timeout = 3s;
    w->stop_signal = 2 + k;
    w->stop_timeout = 7s;
    w->backoff = backoff(k);
    w->start = k % 2 == 0;
    w->launch = std::move(l);
    return w;
}

ChildSpec child(std::string name, std::shared_ptr<const WorkerSpec> w) {
    return ChildSpec{std::move(name), false, std::move(w), nullptr};
}

ChildSpec child(std::string name, std::shared_ptr<const SupervisorSpec> s) {
    return ChildSpec{std::move(name), true, nullptr, std::move(s)};
}

NodeSnapshot node(std::uint64_t id, std::string name, std::shared_ptr<const WorkerSpec> w) {
    NodeSnapshot n;
    n.id = id;
    n.rank = id * 100;
    n.name = name;
    n.base = std::move(name);
    n.worker = std::move(w);
    n.state = chip::core::State::Running;
    n.pid = static_cast<pid_t>(1000 + id);
    n.since = Time{1'000'000'000 + static_cast<std::int64_t>(id)};
    n.restarts = id;
    n.starts = id + 1;
    return n;
}

// Every field of a State set, most of them to something other than their default.
State rich_state() {
    State s;
    s.pid = 4242;
    s.version = "0.1.0";
    s.worker_fd_limit = 1024;
    s.signal_mask = 1ull << 14 | 1ull << 63;
    s.socket_path = "/run/chip/chipd.sock";
    s.listen_fd = 3;
    s.requester_fd = 4;

    auto shared_launch = launch("web");
    auto web = worker(shared_launch, 0);
    auto pool = worker(shared_launch, 1);  // a pool of 3, sharing web's launch
    auto db = worker(launch("db"), 2);
    auto dyn = worker(launch("dyn"), 4);  // only in the tree: a dynamic child
    auto inner = std::make_shared<SupervisorSpec>();
    inner->strategy = chip::core::Strategy::RestForOne;
    inner->on_give_up = chip::core::OnGiveUp::StayFailed;
    inner->max_restarts = 7;
    inner->period = 11s;
    inner->backoff = backoff(5);
    inner->start = false;
    inner->children_backoff = backoff(6);
    inner->children = {child("db", db), child("web-again", web)};
    auto root = std::make_shared<SupervisorSpec>();
    root->strategy = chip::core::Strategy::OneForAll;
    root->children = {child("web", web), child("pool", pool), child("inner", inner)};
    std::shared_ptr<const SupervisorSpec> root_c = root, inner_c = inner;

    s.spec.file = "chip.json";
    s.spec.dir = "/etc/chip";
    s.spec.registries = {{"jobs", 16, 64}, {"peers", 1, 4294967295u}};
    s.spec.root = root_c;
    s.spec.socket = "/run/chip/chipd.sock";
    s.spec.socket_access = {"chip", 1001, 0640};
    s.spec.cluster = chip::spec::ClusterSpec{
        {"https://etcd-1:2379", "http://etcd-2"},
        "prod",
        "host-a",
        15,
        chip::spec::ClusterSpec::Tls{"/etc/chip/ca.pem", "/etc/chip/c.pem", "/etc/chip/k.pem"}};

    auto &t = s.tree;
    t.next_id = 20;
    t.next_ticket = 9;
    t.shutting_down = true;
    t.hurry = true;
    t.exited = true;
    NodeSnapshot &r = t.root;
    r.id = 0;
    r.name = "";
    r.is_supervisor = true;
    r.sup = root_c;
    r.state = chip::core::State::Running;
    r.restart_history = {Time{5}, Time{6}, Time{-7}};
    r.pools = {{"pool", pool, 200, true}};
    // A stopping worker, killed after its start timed out.
    auto w = node(1, "web", web);
    w.state = chip::core::State::Stopping;
    w.timed_out = true;
    w.killed = true;
    w.want_stop = true;
    w.deadline = Time{9'000'000'000};
    w.last_exit = chip::core::ExitStatus{true, 9};
    r.children.push_back(w);
    for (unsigned i = 0; i < 2; ++i) {
        auto p = node(2 + i, "pool." + std::to_string(i), pool);
        p.base = "pool";
        p.instance = i;
        p.rank = 200;
        p.want_start = i == 1;
        p.manual_start = i == 1;
        r.children.push_back(p);
    }
    // A supervisor in backoff, its worker held stopped and one failed.
    NodeSnapshot in;
    in.id = 5;
    in.rank = 300;
    in.name = in.base = "inner";
    in.is_supervisor = true;
    in.sup = inner_c;
    in.state = chip::core::State::Backoff;
    in.deadline = Time{12'000'000'000};
    in.backoffs = 3;
    in.restart_history = {Time{100}};
    in.fail_after_stop = true;
    in.failing_start = true;
    auto held = node(6, "db", db);
    held.state = chip::core::State::Stopped;
    held.pid = 0;
    held.held = true;
    held.last_exit = chip::core::ExitStatus{false, 3};
    in.children.push_back(held);
    auto failed = node(7, "web-again", web);
    failed.state = chip::core::State::Failed;
    failed.pid = 0;
    failed.reason = "unable to spawn: No such file or directory";
    failed.removing = true;
    in.children.push_back(failed);
    r.children.push_back(in);
    auto d = node(12, "dyn", dyn);
    d.dynamic = true;
    d.state = chip::core::State::Starting;
    r.children.push_back(d);

    auto &p1 = t.pending.emplace_back();
    p1.ticket = 7;
    p1.op = static_cast<decltype(p1.op)>(3);
    p1.nodes = {{1, 2}, {5, 6}};
    p1.paths = {"web", "inner"};
    p1.removals = {7, 19};
    auto &p2 = t.pending.emplace_back();
    p2.ticket = 8;
    p2.op = static_cast<decltype(p2.op)>(5);
    t.finished.push_back({5, {}});
    t.finished.push_back({6, chip::Error{ENOENT, "unknown node \"x\""}});

    s.sinks = {{chip::handoff::Sink::Kind::Stdout, {}},
               {chip::handoff::Sink::Kind::Stderr, {}},
               {chip::handoff::Sink::Kind::File, {OutputSpec::Mode::File, "/var/log/a", 99, 2}},
               {chip::handoff::Sink::Kind::File, {OutputSpec::Mode::File, "/var/log/b", 1, 0}}};
    s.shared_sinks = {2};
    std::string partial("half a li\0ne", 12);
    s.pipes = {{10, "web", partial, 0},
               {11, "pool.0", "", 3},
               {12, "pool.1", std::string(64 * 1024, 'x'), 1}};
    s.slots = {{1,
                1001,
                13,
                "/run/chip/notify/1",
                {{"PORT", "8080"}, {"EMPTY", ""}},
                true,
                false,
                3,
                std::nullopt},
               {2, 1002, -1, "", {}, false, true, std::nullopt, 2}};
    s.registries = {{{"jobs", 16, 64}, "/chip-abc-jobs", 14}};
    s.watches = {{777, 15}};
    s.cgroups = {true, {{1, "web-1", 12345}, {2, "pool.0-2", 0}}, {"old-9"}};
    s.cluster_views = {{"jobs", "/chip-abc-jobs.view", 16}};
    s.systemd = chip::handoff::Systemd{true, {Time{1}, Time{2}}};
    return s;
}

// A small State for the loops over every byte.
State small_state() {
    State s;
    s.pid = 7;
    s.version = "0.1.0";
    s.listen_fd = 3;
    auto l = launch("a");
    auto w = worker(l, 0);
    auto root = std::make_shared<SupervisorSpec>();
    root->children = {child("a", w)};
    s.spec.root = root;
    s.tree.next_id = 2;
    s.tree.root.is_supervisor = true;
    s.tree.root.sup = root;
    s.tree.root.children.push_back(node(1, "a", w));
    s.sinks = {{chip::handoff::Sink::Kind::Stdout, {}}};
    s.pipes = {{5, "a", "x", 0}};
    s.systemd = chip::handoff::Systemd{false, {Time{3}}};
    return s;
}

void check_output(const OutputSpec &a, const OutputSpec &b) {
    CHECK(a.mode == b.mode);
    CHECK(a.file == b.file);
    CHECK(a.max_bytes == b.max_bytes);
    CHECK(a.keep == b.keep);
}

void check_launch(const Launch &a, const Launch &b) {
    CHECK(a.command == b.command);
    CHECK(a.env == b.env);
    CHECK(a.cwd == b.cwd);
    CHECK(a.user == b.user);
    CHECK(a.group == b.group);
    CHECK(a.uid == b.uid);
    CHECK(a.gid == b.gid);
    CHECK(a.login == b.login);
    CHECK(a.join == b.join);
    check_output(a.out, b.out);
    check_output(a.err, b.err);
}

// Pairs the original definitions with the decoded ones: equal by value, and
// one to one (what was shared is shared again, and nothing else is). Then
// points the decoded nodes at the originals, so that the snapshots compare
// with their operator==.
class Sharing {
public:
    void launch(const std::shared_ptr<const Launch> &o, const std::shared_ptr<const Launch> &d) {
        REQUIRE((o == nullptr) == (d == nullptr));
        if (o && pair(o.get(), d.get())) check_launch(*o, *d);
    }
    void worker(const std::shared_ptr<const WorkerSpec> &o,
                const std::shared_ptr<const WorkerSpec> &d) {
        REQUIRE((o == nullptr) == (d == nullptr));
        if (!o || !pair(o.get(), d.get())) return;
        CHECK(o->restart == d->restart);
        CHECK(o->instances == d->instances);
        CHECK(o->ready == d->ready);
        CHECK(o->start_timeout == d->start_timeout);
        CHECK(o->stop_signal == d->stop_signal);
        CHECK(o->stop_timeout == d->stop_timeout);
        CHECK(o->backoff == d->backoff);
        CHECK(o->start == d->start);
        launch(o->launch, d->launch);
    }
    void supervisor(const std::shared_ptr<const SupervisorSpec> &o,
                    const std::shared_ptr<const SupervisorSpec> &d) {
        REQUIRE((o == nullptr) == (d == nullptr));
        if (!o || !pair(o.get(), d.get())) return;
        CHECK(o->strategy == d->strategy);
        CHECK(o->on_give_up == d->on_give_up);
        CHECK(o->max_restarts == d->max_restarts);
        CHECK(o->period == d->period);
        CHECK(o->backoff == d->backoff);
        CHECK(o->start == d->start);
        CHECK(o->children_backoff == d->children_backoff);
        REQUIRE(o->children.size() == d->children.size());
        for (std::size_t i = 0; i < o->children.size(); ++i) {
            CHECK(o->children[i].name == d->children[i].name);
            CHECK(o->children[i].is_supervisor == d->children[i].is_supervisor);
            worker(o->children[i].worker, d->children[i].worker);
            supervisor(o->children[i].supervisor, d->children[i].supervisor);
        }
    }
    void node(const NodeSnapshot &o, NodeSnapshot &d) {
        worker(o.worker, d.worker);
        supervisor(o.sup, d.sup);
        d.worker = o.worker;
        d.sup = o.sup;
        REQUIRE(o.pools.size() == d.pools.size());
        for (std::size_t i = 0; i < o.pools.size(); ++i) {
            worker(o.pools[i].def, d.pools[i].def);
            d.pools[i].def = o.pools[i].def;
        }
        REQUIRE(o.children.size() == d.children.size());
        for (std::size_t i = 0; i < o.children.size(); ++i) node(o.children[i], d.children[i]);
    }

private:
    // True the first time D is met (then paired with O).
    bool pair(const void *o, const void *d) {
        auto seen = to_original_.find(d);
        if (seen != to_original_.end()) {
            CHECK(seen->second == o);
            return false;
        }
        CHECK(to_decoded_.count(o) == 0);
        to_original_[d] = o;
        to_decoded_[o] = d;
        return true;
    }
    std::map<const void *, const void *> to_original_, to_decoded_;
};

// Checks that D (decoded) equals O everywhere; D's definitions are replaced
// by O's on the way.
void check_equal(const State &o, State d) {
    CHECK(o.pid == d.pid);
    CHECK(o.version == d.version);
    CHECK(o.worker_fd_limit == d.worker_fd_limit);
    CHECK(o.signal_mask == d.signal_mask);
    CHECK(o.socket_path == d.socket_path);
    CHECK(o.listen_fd == d.listen_fd);
    CHECK(o.requester_fd == d.requester_fd);

    Sharing sharing;
    sharing.supervisor(o.spec.root, d.spec.root);
    sharing.node(o.tree.root, d.tree.root);
    CHECK(o.tree == d.tree);

    CHECK(o.spec.file == d.spec.file);
    CHECK(o.spec.dir == d.spec.dir);
    REQUIRE(o.spec.registries.size() == d.spec.registries.size());
    for (std::size_t i = 0; i < o.spec.registries.size(); ++i) {
        CHECK(o.spec.registries[i].name == d.spec.registries[i].name);
        CHECK(o.spec.registries[i].max_groups == d.spec.registries[i].max_groups);
        CHECK(o.spec.registries[i].max_members == d.spec.registries[i].max_members);
    }
    CHECK(o.spec.socket == d.spec.socket);
    CHECK(o.spec.socket_access == d.spec.socket_access);
    CHECK(o.spec.cluster == d.spec.cluster);

    CHECK(o.sinks == d.sinks);
    CHECK(o.shared_sinks == d.shared_sinks);
    CHECK(o.pipes == d.pipes);
    CHECK(o.slots == d.slots);
    CHECK(o.registries == d.registries);
    CHECK(o.watches == d.watches);
    CHECK(o.cgroups == d.cgroups);
    CHECK(o.cluster_views == d.cluster_views);
    CHECK(o.systemd == d.systemd);
}

std::string refusal(std::string_view bytes) {
    auto r = decode(bytes);
    if (r.ok()) return "(accepted)";
    CHECK(r.error().code == EINVAL);
    return r.error().message;
}

// The one payload byte where A and B differ (hand-offs of the same length).
std::size_t differing_byte(const std::string &a, const std::string &b) {
    REQUIRE(a.size() == b.size());
    std::vector<std::size_t> at;
    for (std::size_t i = kHeader; i < a.size(); ++i)
        if (a[i] != b[i]) at.push_back(i);
    REQUIRE(at.size() == 1);
    return at[0];
}

}  // namespace

TEST_CASE("handoff: a State with every field set comes back equal, its sharing rebuilt") {
    State s = rich_state();
    std::string bytes = encode(s);
    CHECK(version_of(bytes) == 2);
    auto r = decode(bytes);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    const State &d = *r;
    check_equal(s, d);

    // What was one definition is one again.
    const auto &c = d.tree.root.children;
    REQUIRE(c.size() == 5);
    CHECK(c[1].worker == c[2].worker);               // the pool's instances
    CHECK(c[1].worker == d.tree.root.pools[0].def);  // ... and the pool
    CHECK(c[0].worker == d.spec.root->children[0].worker);
    CHECK(c[0].worker == c[3].sup->children[1].worker);
    CHECK(c[0].worker == c[3].children[1].worker);
    CHECK(c[0].worker->launch == c[1].worker->launch);  // web and the pool share a launch
    CHECK(c[0].worker->launch != c[4].worker->launch);
    CHECK(d.tree.root.sup == d.spec.root);
    CHECK(c[3].sup == d.spec.root->children[2].supervisor);
    CHECK(c[0].worker != c[4].worker);

    // Written again, it is the same bytes.
    CHECK(encode(d) == bytes);
}

TEST_CASE("handoff: a Tree's own snapshot survives, and a Tree goes on from the decoded one") {
    auto l = launch("w");
    auto started = [&](int k) {
        auto w = std::make_shared<WorkerSpec>(*worker(l, k));
        w->ready = chip::core::ReadyMode::Started;
        w->start = true;
        w->restart = chip::core::RestartType::Permanent;
        w->backoff = Backoff{};
        return std::shared_ptr<const WorkerSpec>(w);
    };
    auto a = started(0), b = started(1);
    auto root = std::make_shared<SupervisorSpec>();
    root->children = {child("a", a), child("b", b)};
    chip::test::FakeEffects fx;
    chip::core::Tree tree(std::shared_ptr<const SupervisorSpec>(root), fx);
    tree.start(Time{1000});
    // a exits: its restart waits in backoff; the pool b is being stopped by a command.
    auto *na = tree.resolve("a").value()[0];
    tree.on_exit(na->pid, {false, 1}, Time{2000});
    REQUIRE(na->state == chip::core::State::Backoff);
    REQUIRE(tree.command(chip::core::Command::Stop, "b", Time{3000}).ok());
    State s;
    s.listen_fd = 3;
    s.spec.root = root;
    s.tree = tree.snapshot();
    REQUIRE(s.tree.pending.size() == 1);
    REQUIRE(tree.next_deadline());

    auto r = decode(encode(s));
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    check_equal(s, *r);
    chip::test::FakeEffects fx2;
    chip::core::Tree again(r->tree, fx2);
    CHECK(again.snapshot() == r->tree);
    CHECK(again.next_deadline() == tree.next_deadline());
    CHECK(again.node_count() == tree.node_count());
}

TEST_CASE("handoff: version 1 leaves systemd out and keeps everything else") {
    State s = rich_state();
    std::string v1 = encode(s, 1);
    CHECK(version_of(v1) == 1);
    auto r = decode(v1);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    CHECK(!r->systemd);
    s.systemd.reset();
    check_equal(s, *r);
    // Without systemd, versions 1 and 2 differ only by the header and the section.
    CHECK(encode(s, 2).size() == v1.size() + 1);
}

TEST_CASE("handoff: every truncation is refused, as such or by what is missing") {
    std::string bytes = encode(small_state());
    REQUIRE(decode(bytes).ok());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        std::string cut = bytes.substr(0, n);
        std::string why = refusal(cut);
        if (n >= 8) CHECK(why.starts_with("hand-off: truncated: " + std::to_string(n) + " of "));
        if (n >= kHeader)
            CHECK(why == "hand-off: truncated: " + std::to_string(n) + " of " +
                             std::to_string(bytes.size()) + " bytes");
        // With a header made to fit, the payload's own reading finds it short.
        if (n >= kHeader) CHECK(refusal(reseal(cut)) != "(accepted)");
    }
    CHECK(refusal(bytes + "x") ==
          "hand-off: 1 bytes after its end (" + std::to_string(bytes.size()) + " bytes)");
    CHECK(refusal(reseal(bytes + "x")) == "hand-off: 1 bytes left over after the State");
    CHECK(refusal("CHIPHOFX") == "hand-off: not a hand-off (it does not start with CHIPHOFF)");
    CHECK(refusal("") == "hand-off: truncated: 0 of 32 bytes");
}

TEST_CASE("handoff: any single byte changed is refused") {
    std::string bytes = encode(small_state());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (unsigned char mask : {0x01, 0x80, 0xff}) {
            CAPTURE(i);
            CAPTURE(mask);
            std::string bad = bytes;
            bad[i] = static_cast<char>(bad[i] ^ mask);
            std::string why = refusal(bad);
            CHECK(why != "(accepted)");
            if (i >= kHeader) CHECK(why == "hand-off: checksum mismatch: corrupted");
            // Made sound again, it is read or refused, never read in part.
            auto again = decode(reseal(bad));
            if (again.ok()) CHECK(decode(encode(*again)).ok());
        }
    }
}

TEST_CASE("handoff: an unknown version is refused, named") {
    std::string bytes = encode(small_state());
    for (std::uint32_t v : {0u, 3u, 0xFFFFFFFFu}) {
        std::string bad = bytes;
        for (int i = 0; i < 4; ++i) bad[8 + i] = static_cast<char>(v >> (8 * i));
        CHECK(version_of(bad) == v);
        CHECK(refusal(bad) ==
              "hand-off: version " + std::to_string(v) + " is not one this chipd reads (1 to 2)");
        CHECK(refusal(reseal(bad)) == refusal(bad));
    }
    CHECK(version_of(bytes.substr(0, kHeader - 1)) == 0);
    CHECK(version_of("not a hand-off, not at all, no no no") == 0);
    // Version 1 read as version 2 (or the reverse) is refused: the version is checksummed.
    std::string v1 = encode(small_state(), 1);
    v1[8] = 2;
    CHECK(refusal(v1) == "hand-off: checksum mismatch: corrupted");
    CHECK(refusal(reseal(v1)) != "(accepted)");
}

TEST_CASE("handoff: a sound checksum over an unsound payload is refused, saying where") {
    SUBCASE("a node's definition out of range") {
        // Two encodings that differ by the definition node 1 names, alone.
        State a = small_state();
        auto other = worker(launch("b"), 1);
        auto root = std::make_shared<SupervisorSpec>(*a.spec.root);
        root->children.push_back(child("b", other));
        a.spec.root = root;
        a.tree.root.sup = root;
        State b = a;
        b.tree.root.children[0].worker = other;
        std::string ea = encode(a), eb = encode(b);
        std::size_t at = differing_byte(ea, eb);
        ea[at] = 41;
        CHECK(refusal(reseal(ea)) == "hand-off: node 1 (a): unknown worker definition 40");
    }
    SUBCASE("a node's state out of range") {
        State a = small_state(), b = small_state();
        b.tree.root.children[0].state = chip::core::State::Stopped;
        std::string ea = encode(a), eb = encode(b);
        std::size_t at = differing_byte(ea, eb);
        ea[at] = 9;
        CHECK(refusal(reseal(ea)).starts_with("hand-off: node 1 (a): state: unknown value 9"));
    }
    SUBCASE("a supervisor's child names a supervisor written after it") {
        // Definitions, children first: sub1 0, sub2 1, t 2, the root 3. T's
        // child is sub1 in one and sub2 in the other: its reference alone differs.
        State a = small_state();
        auto w = a.tree.root.children[0].worker;
        auto sub1 = std::make_shared<SupervisorSpec>(), sub2 = std::make_shared<SupervisorSpec>();
        sub1->children = sub2->children = {child("a", w)};
        auto ta = std::make_shared<SupervisorSpec>(), tb = std::make_shared<SupervisorSpec>();
        ta->children = {child("u", sub1)};
        tb->children = {child("u", sub2)};
        auto ra = std::make_shared<SupervisorSpec>(), rb = std::make_shared<SupervisorSpec>();
        ra->children = {child("a", w), child("s1", sub1), child("s2", sub2), child("t", ta)};
        rb->children = {child("a", w), child("s1", sub1), child("s2", sub2), child("t", tb)};
        State b = a;
        a.spec.root = a.tree.root.sup = ra;
        b.spec.root = b.tree.root.sup = rb;
        std::string ea = encode(a), eb = encode(b);
        std::size_t at = differing_byte(ea, eb);
        CHECK(ea[at] == 1);
        ea[at] = 4;  // the root, written after t
        CHECK(refusal(reseal(ea)) ==
              "hand-off: supervisor definition 2: child 0 (u): unknown supervisor definition 3");
        ea[at] = 3;  // t itself
        CHECK(refusal(reseal(ea)) ==
              "hand-off: supervisor definition 2: child 0 (u): unknown supervisor definition 2");
    }
    SUBCASE("a pipe's sink out of range") {
        State s = small_state();
        s.pipes[0].sink = 1;
        CHECK(refusal(encode(s)) == "hand-off: pipe 0: unknown sink 1 (1 sinks)");
        s = small_state();
        s.slots.push_back({1, 0, -1, "", {}, false, false, std::nullopt, 7});
        CHECK(refusal(encode(s)) == "hand-off: slot 0: unknown sink 7 (1 sinks)");
        s = small_state();
        s.shared_sinks = {0, 3};
        CHECK(refusal(encode(s)) == "hand-off: shared sink 1: unknown sink 3 (1 sinks)");
    }
    SUBCASE("node ids used twice, or not below next_id") {
        State s = small_state();
        s.tree.root.children.push_back(s.tree.root.children[0]);
        s.tree.root.children[1].name = "b";
        CHECK(refusal(encode(s)) == "hand-off: node 1 (b): id 1 used twice");
        // A name is shown on one line, printable, cut.
        s.tree.root.children[1].name = "b\n\\" + std::string(100, 'x');
        CHECK(refusal(encode(s)) ==
              "hand-off: node 1 (b\\x0a\\x5c" + std::string(77, 'x') + "...): id 1 used twice");
        s = small_state();
        s.tree.next_id = 1;
        CHECK(refusal(encode(s)) == "hand-off: node 1 (a): id 1 is not below next_id 1");
    }
    SUBCASE("a worker without a launch, a node without a definition") {
        State s = small_state();
        auto w = std::make_shared<WorkerSpec>(*s.tree.root.children[0].worker);
        w->launch = nullptr;
        s.tree.root.children[0].worker = w;
        CHECK(refusal(encode(s)) == "hand-off: worker definition 1: no launch");
        s = small_state();
        s.tree.root.children[0].worker = nullptr;
        CHECK(refusal(encode(s)) == "hand-off: node 1 (a): a worker without a definition");
        s = small_state();
        s.tree.root.children[0].children.push_back(node(1, "x", nullptr));
        CHECK(refusal(encode(s)) == "hand-off: node 1 (a): a worker with children or pools");
    }
    SUBCASE("tickets out of range, a partial line too long, a negative pid") {
        State s = small_state();
        s.tree.finished.push_back({1, {}});
        CHECK(refusal(encode(s)) ==
              "hand-off: finished command 0: ticket 1 is not below next_ticket 1");
        s = small_state();
        s.pipes[0].partial.assign(64 * 1024 + 1, 'x');
        CHECK(refusal(encode(s)) ==
              "hand-off: pipe 0: a partial line of 65537 bytes (at most 65536)");
        s = small_state();
        s.tree.root.children[0].pid = -1;
        CHECK(refusal(encode(s)).starts_with("hand-off: node 1 (a): pid: a negative pid -1"));
    }
}

TEST_CASE("handoff: a tree nested deeper than 1024 is refused; 1024 deep is read") {
    auto nested = [](std::size_t depth) {
        State s = small_state();
        NodeSnapshot *n = &s.tree.root;
        for (std::size_t i = 0; i < depth; ++i) {
            NodeSnapshot c;
            c.id = s.tree.next_id++;
            c.name = "s";
            c.is_supervisor = true;
            c.sup = s.tree.root.sup;
            n->children.push_back(c);
            n = &n->children.back();
        }
        return s;
    };
    CHECK(decode(encode(nested(1024))).ok());
    CHECK(refusal(encode(nested(1025))).ends_with("): nested over 1024 deep"));
}

TEST_CASE("handoff: a file descriptor named twice, or no descriptor, is refused") {
    State s = small_state();
    s.requester_fd = s.listen_fd;
    CHECK(refusal(encode(s)) ==
          "hand-off: fd 3 named twice: the control socket and the requester's connection");
    s = small_state();
    s.registries = {{{"jobs", 1, 1}, "/chip-x-jobs", 5}};
    CHECK(refusal(encode(s)) == "hand-off: fd 5 named twice: pipe 0 and registry 0");
    s = small_state();
    s.watches = {{9, 20}};
    s.slots = {{1, 9, 20, "/n", {}, false, false, std::nullopt, std::nullopt}};
    CHECK(refusal(encode(s)) ==
          "hand-off: fd 20 named twice: the notify socket of slot 0 and watch 0");
    s = small_state();
    s.pipes[0].fd = -1;
    CHECK(refusal(encode(s)).starts_with("hand-off: pipe 0: fd: not a file descriptor: -1"));
    s = small_state();
    s.listen_fd = -1;
    CHECK(refusal(encode(s)).starts_with("hand-off: listening fd: not a file descriptor: -1"));
    // -1 is "none" where there may be none.
    s = small_state();
    s.requester_fd = -1;
    s.slots = {{1, 9, -1, "", {}, false, false, std::nullopt, std::nullopt}};
    CHECK(decode(encode(s)).ok());
}
