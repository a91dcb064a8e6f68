// The hand-off's bytes (codec.hpp).
//
//   header   32 bytes: "CHIPHOFF", u32 version, u32 flags (0), u64 payload
//            length, u64 checksum; little-endian, fixed width
//   payload  unsigned integers as LEB128 varints; signed ones (times, pids,
//            fds, signal numbers) zigzag-encoded varints; doubles as 8
//            little-endian bytes; strings and lists as a varint count, then
//            their bytes or elements; booleans and "is it set" of optional
//            values as the bits of one flags varint per object
//
// The checksum is FNV-1a taken over 64-bit little-endian words (then the tail
// bytes) of the header's version, flags and length and of the payload: a
// changed word changes it (the steps are bijections), and it runs at memory
// speed.
//
// The payload, in order: chipd's own fields; the definitions; the spec; the
// tree; sinks, shared sinks, pipes, slots, registries, watches, cgroups,
// cluster views; from version 2, systemd. Definitions are shared by pointer
// (the spec's root, nodes, pools, supervisors' children): each is written once,
// in one of three tables, and named by its index + 1 (0: none). Launches come
// first, then workers (naming a launch), then supervisors (naming workers and
// supervisors written before them: children before their parents), so that
// reading is one pass and rebuilds the same sharing.
//
// Reading checks the header (magic, version, flags, length, checksum), then
// the payload as it goes, and throws Refused, caught in decode(): nothing is
// returned in part. Beyond the bytes, a State read is one chipd can go on
// from: node ids unique and below next_id, tickets unique and below
// next_ticket, every node with a definition of its kind (a worker without
// children), every worker definition with a launch, sink indices in range,
// pids >= 0, each fd >= 0 (or -1 where there may be none: the requester, a
// notify socket) and named once, partial lines of at most 64 KiB, nodes
// nested at most 1024 deep, at most one slot and one cgroup per node id.
#include "handoff/codec.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace chip::handoff {
namespace {

constexpr char kMagic[8] = {'C', 'H', 'I', 'P', 'H', 'O', 'F', 'F'};
constexpr std::size_t kHeaderSize = 32;
// A pipe's partial line: what the line splitter holds at most.
constexpr std::size_t kMaxPartial = 64 * 1024;
// Nodes nested deeper are refused: reading them is recursive. Specs nest
// supervisors far less deep; dynamic children add a few levels at most.
constexpr std::size_t kMaxNesting = 1024;
constexpr std::uint64_t kFnvOffset = 14695981039346656037ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

std::uint64_t load_le(const char *p, int n) {
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
    return v;
}

void store_le(char *p, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

std::uint64_t fnv_words(std::uint64_t h, std::string_view s) {
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        h ^= load_le(s.data() + i, 8);
        h *= kFnvPrime;
    }
    for (; i < s.size(); ++i) {
        h ^= static_cast<unsigned char>(s[i]);
        h *= kFnvPrime;
    }
    return h;
}

// The checksum of a whole hand-off (header and payload, of the right length).
std::uint64_t checksum_of(std::string_view bytes) {
    return fnv_words(fnv_words(kFnvOffset, bytes.substr(8, 16)), bytes.substr(kHeaderSize));
}

// ---- writing -------------------------------------------------------------------

class Writer {
public:
    std::string out;

    void u(std::uint64_t v) {
        while (v >= 0x80) {
            out.push_back(static_cast<char>(v | 0x80));
            v >>= 7;
        }
        out.push_back(static_cast<char>(v));
    }
    void i(std::int64_t v) {
        auto x = static_cast<std::uint64_t>(v);
        u(x << 1 ^ (v < 0 ? ~std::uint64_t{0} : 0));
    }
    void time(Time t) { i(t.count()); }
    void f64(double d) {
        char b[8];
        store_le(b, std::bit_cast<std::uint64_t>(d), 8);
        out.append(b, 8);
    }
    void str(std::string_view s) {
        u(s.size());
        out.append(s);
    }
    void strs(const std::vector<std::string> &v) {
        u(v.size());
        for (const auto &s : v) str(s);
    }
    void pairs(const std::vector<std::pair<std::string, std::string>> &v) {
        u(v.size());
        for (const auto &[a, b] : v) {
            str(a);
            str(b);
        }
    }
    void times(const std::vector<Time> &v) {
        u(v.size());
        for (Time t : v) time(t);
    }
};

// The definitions reachable from a State, each once, with its index.
class Tables {
public:
    std::vector<const spec::Launch *> launches;
    std::vector<const core::WorkerSpec *> workers;
    std::vector<const core::SupervisorSpec *> sups;

    void add(const spec::Launch *l) {
        if (l && launch_ix_.emplace(l, launches.size()).second) launches.push_back(l);
    }
    void add(const core::WorkerSpec *w) {
        if (!w || worker_ix_.count(w)) return;
        add(w->launch.get());
        worker_ix_.emplace(w, workers.size());
        workers.push_back(w);
    }
    // Children first: a supervisor is numbered after every one of its own.
    void add(const core::SupervisorSpec *s) {
        if (!s || sup_ix_.count(s)) return;
        for (const auto &c : s->children) {
            add(c.worker.get());
            add(c.supervisor.get());
        }
        sup_ix_.emplace(s, sups.size());
        sups.push_back(s);
    }
    void add(const core::NodeSnapshot &n) {
        add(n.worker.get());
        add(n.sup.get());
        for (const auto &p : n.pools) add(p.def.get());
        for (const auto &c : n.children) add(c);
    }

    // References: index + 1, 0 for none.
    std::uint64_t ref(const spec::Launch *l) const { return l ? launch_ix_.at(l) + 1 : 0; }
    std::uint64_t ref(const core::WorkerSpec *w) const { return w ? worker_ix_.at(w) + 1 : 0; }
    std::uint64_t ref(const core::SupervisorSpec *s) const { return s ? sup_ix_.at(s) + 1 : 0; }

private:
    std::unordered_map<const spec::Launch *, std::size_t> launch_ix_;
    std::unordered_map<const core::WorkerSpec *, std::size_t> worker_ix_;
    std::unordered_map<const core::SupervisorSpec *, std::size_t> sup_ix_;
};

std::uint64_t bits(std::initializer_list<bool> flags) {
    std::uint64_t v = 0, bit = 1;
    for (bool f : flags) {
        if (f) v |= bit;
        bit <<= 1;
    }
    return v;
}

void write_output(Writer &w, const spec::OutputSpec &o) {
    w.u(static_cast<std::uint64_t>(o.mode));
    w.str(o.file);
    w.u(o.max_bytes);
    w.u(o.keep);
}

void write_launch(Writer &w, const spec::Launch &l) {
    w.strs(l.command);
    w.pairs(l.env);
    w.str(l.cwd);
    w.u(bits({l.user.has_value(), l.group.has_value(), l.uid.has_value(), l.gid.has_value(),
              l.login.has_value()}));
    if (l.user) w.str(*l.user);
    if (l.group) w.str(*l.group);
    if (l.uid) w.u(*l.uid);
    if (l.gid) w.u(*l.gid);
    if (l.login) {
        w.str(l.login->name);
        w.str(l.login->home);
        w.str(l.login->shell);
    }
    w.u(l.join.size());
    for (const auto &[registry, groups] : l.join) {
        w.str(registry);
        w.strs(groups);
    }
    write_output(w, l.out);
    write_output(w, l.err);
}

void write_backoff(Writer &w, const core::Backoff &b) {
    w.time(b.initial);
    w.time(b.max);
    w.f64(b.factor);
    w.f64(b.jitter);
    w.time(b.reset_after);
}

void write_worker(Writer &w, const Tables &t, const core::WorkerSpec &s) {
    w.u(bits({s.instances.has_value(), s.backoff.has_value(), s.start}));
    w.u(static_cast<std::uint64_t>(s.restart));
    if (s.instances) w.u(*s.instances);
    w.u(static_cast<std::uint64_t>(s.ready));
    w.time(s.start_timeout);
    w.i(s.stop_signal);
    w.time(s.stop_timeout);
    if (s.backoff) write_backoff(w, *s.backoff);
    w.u(t.ref(s.launch.get()));
}

void write_supervisor(Writer &w, const Tables &t, const core::SupervisorSpec &s) {
    w.u(bits({s.backoff.has_value(), s.start, s.children_backoff.has_value()}));
    w.u(static_cast<std::uint64_t>(s.strategy));
    w.u(static_cast<std::uint64_t>(s.on_give_up));
    w.u(s.max_restarts);
    w.time(s.period);
    if (s.backoff) write_backoff(w, *s.backoff);
    if (s.children_backoff) write_backoff(w, *s.children_backoff);
    w.u(s.children.size());
    for (const auto &c : s.children) {
        w.str(c.name);
        w.u(bits({c.is_supervisor}));
        w.u(t.ref(c.worker.get()));
        w.u(t.ref(c.supervisor.get()));
    }
}

void write_spec(Writer &w, const Tables &t, const spec::Spec &s) {
    w.str(s.file);
    w.str(s.dir);
    w.u(s.registries.size());
    for (const auto &r : s.registries) {
        w.str(r.name);
        w.u(r.max_groups);
        w.u(r.max_members);
    }
    w.u(t.ref(s.root.get()));
    const auto &a = s.socket_access;
    w.u(bits({s.socket.has_value(), a.group.has_value(), a.gid.has_value(), s.cluster.has_value(),
              s.cluster && s.cluster->tls}));
    if (s.socket) w.str(*s.socket);
    if (a.group) w.str(*a.group);
    if (a.gid) w.u(*a.gid);
    w.u(a.mode);
    if (s.cluster) {
        const auto &c = *s.cluster;
        w.strs(c.etcd);
        w.str(c.name);
        w.str(c.node);
        w.u(c.lease_ttl);
        if (c.tls) {
            w.str(c.tls->ca);
            w.str(c.tls->cert);
            w.str(c.tls->key);
        }
    }
}

void write_node(Writer &w, const Tables &t, const core::NodeSnapshot &n) {
    w.u(n.id);
    w.u(n.rank);
    w.u(bits({n.dynamic, n.is_supervisor, n.want_stop, n.want_start, n.held, n.manual_start,
              n.removing, n.fail_after_stop, n.failing_start, n.timed_out, n.killed,
              n.last_exit.has_value(), n.last_exit && n.last_exit->signaled}));
    w.str(n.name);
    w.str(n.base);
    w.u(n.instance);
    w.u(t.ref(n.worker.get()));
    w.u(t.ref(n.sup.get()));
    w.u(static_cast<std::uint64_t>(n.state));
    w.i(n.pid);
    w.time(n.since);
    w.u(n.restarts);
    w.u(n.starts);
    if (n.last_exit) w.i(n.last_exit->value);
    w.u(n.backoffs);
    w.str(n.reason);
    w.time(n.deadline);
    w.times(n.restart_history);
    w.u(n.pools.size());
    for (const auto &p : n.pools) {
        w.str(p.name);
        w.u(t.ref(p.def.get()));
        w.u(p.rank);
        w.u(bits({p.dynamic}));
    }
    w.u(n.children.size());
    for (const auto &c : n.children) write_node(w, t, c);
}

void write_tree(Writer &w, const Tables &t, const core::Snapshot &s) {
    w.u(s.next_id);
    w.u(s.next_ticket);
    w.u(bits({s.shutting_down, s.hurry, s.exited}));
    write_node(w, t, s.root);
    w.u(s.pending.size());
    for (const auto &p : s.pending) {
        w.u(p.ticket);
        w.u(static_cast<std::uint64_t>(p.op));
        w.u(p.nodes.size());
        for (const auto &[id, starts] : p.nodes) {
            w.u(id);
            w.u(starts);
        }
        w.strs(p.paths);
        w.u(p.removals.size());
        for (std::uint64_t id : p.removals) w.u(id);
    }
    w.u(s.finished.size());
    for (const auto &f : s.finished) {
        w.u(f.ticket);
        w.u(bits({f.result.ok()}));
        if (!f.result.ok()) {
            w.i(f.result.error().code);
            w.str(f.result.error().message);
        }
    }
}

void write_state(Writer &w, const State &s, std::uint32_t version) {
    w.i(s.pid);
    w.str(s.version);
    w.u(s.worker_fd_limit);
    w.u(s.signal_mask);
    w.str(s.socket_path);
    w.i(s.listen_fd);
    w.i(s.requester_fd);

    Tables t;
    t.add(s.spec.root.get());
    t.add(s.tree.root);
    w.u(t.launches.size());
    for (const auto *l : t.launches) write_launch(w, *l);
    w.u(t.workers.size());
    for (const auto *x : t.workers) write_worker(w, t, *x);
    w.u(t.sups.size());
    for (const auto *x : t.sups) write_supervisor(w, t, *x);

    write_spec(w, t, s.spec);
    write_tree(w, t, s.tree);

    w.u(s.sinks.size());
    for (const auto &k : s.sinks) {
        w.u(static_cast<std::uint64_t>(k.kind));
        write_output(w, k.file);
    }
    w.u(s.shared_sinks.size());
    for (std::uint32_t x : s.shared_sinks) w.u(x);
    w.u(s.pipes.size());
    for (const auto &p : s.pipes) {
        w.i(p.fd);
        w.str(p.prefix);
        w.str(p.partial);
        w.u(p.sink);
    }
    w.u(s.slots.size());
    for (const auto &x : s.slots) {
        w.u(x.id);
        w.i(x.pid);
        w.i(x.notify_fd);
        w.str(x.notify_path);
        w.pairs(x.exports);
        w.u(bits({x.warned_stranger, x.warned_oversized, x.out_file.has_value(),
                  x.err_file.has_value()}));
        if (x.out_file) w.u(*x.out_file);
        if (x.err_file) w.u(*x.err_file);
    }
    w.u(s.registries.size());
    for (const auto &r : s.registries) {
        w.str(r.spec.name);
        w.u(r.spec.max_groups);
        w.u(r.spec.max_members);
        w.str(r.shm_name);
        w.i(r.fd);
    }
    w.u(s.watches.size());
    for (const auto &x : s.watches) {
        w.i(x.pid);
        w.i(x.pidfd);
    }
    w.u(bits({s.cgroups.on}));
    w.u(s.cgroups.groups.size());
    for (const auto &g : s.cgroups.groups) {
        w.u(g.id);
        w.str(g.name);
        w.u(g.base_usec);
    }
    w.strs(s.cgroups.removals);
    w.u(s.cluster_views.size());
    for (const auto &v : s.cluster_views) {
        w.str(v.registry);
        w.str(v.shm_name);
        w.i(v.fd);
    }
    if (version >= 2) {
        w.u(bits({s.systemd.has_value(), s.systemd && s.systemd->told_ready}));
        if (s.systemd) w.times(s.systemd->recent_restarts);
    }
}

// ---- reading ------------------------------------------------------------------

// Why a hand-off is refused, without "hand-off: ". LOCATED: it already names
// where (a node's problem, which its ancestors must not name again).
struct Refused {
    std::string what;
    bool located = false;
};

[[noreturn]] void refuse(std::string what) {
    throw Refused{std::move(what)};
}

// Runs F; a refusal from it is prefixed with LABEL() (made only then).
template <typename Label, typename F>
void within(const Label &label, const F &f, bool locate = false) {
    try {
        f();
    } catch (Refused &e) {
        if (!e.located) {
            e.what = label() + ": " + e.what;
            e.located = locate;
        }
        throw;
    }
}

// NAME (read from the hand-off) as a reason shows it: on one line, printable,
// at most 80 bytes.
std::string shown(std::string_view name) {
    constexpr std::size_t kMax = 80;
    std::string out;
    for (std::size_t i = 0; i < name.size() && i < kMax; ++i) {
        auto c = static_cast<unsigned char>(name[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            static const char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    if (name.size() > kMax) out += "...";
    return out;
}

std::string numbered(const char *what, std::size_t i) {
    return std::string(what) + " " + std::to_string(i);
}

class Reader {
public:
    explicit Reader(std::string_view payload)
        : begin_(payload.data()), p_(begin_), end_(p_ + payload.size()) {}

    std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
    bool done() const { return p_ == end_; }

    std::uint64_t u(const char *what) {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) fail(what, "ends inside a number");
            auto b = static_cast<unsigned char>(*p_++);
            if (shift == 63 && b > 1) break;
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        fail(what, "a number of over 64 bits");
    }
    std::uint32_t u32(const char *what) {
        std::uint64_t v = u(what);
        if (v > std::numeric_limits<std::uint32_t>::max()) out_of_range(what, v);
        return static_cast<std::uint32_t>(v);
    }
    std::int64_t i(const char *what) {
        std::uint64_t v = u(what);
        return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
    }
    std::int32_t i32(const char *what) {
        std::int64_t v = i(what);
        if (v < std::numeric_limits<std::int32_t>::min() ||
            v > std::numeric_limits<std::int32_t>::max())
            fail(what, std::to_string(v) + " is out of range");
        return static_cast<std::int32_t>(v);
    }
    pid_t pid(const char *what) {
        std::int32_t v = i32(what);
        if (v < 0) fail(what, "a negative pid " + std::to_string(v));
        return v;
    }
    // A file descriptor: >= 0, or -1 (none) when OPTIONAL.
    int fd(const char *what, bool optional) {
        std::int32_t v = i32(what);
        if (v < (optional ? -1 : 0)) fail(what, "not a file descriptor: " + std::to_string(v));
        return v;
    }
    Time time(const char *what) { return Time{i(what)}; }
    double f64(const char *what) {
        if (left() < 8) fail(what, "ends inside a number");
        double d = std::bit_cast<double>(load_le(p_, 8));
        p_ += 8;
        return d;
    }
    // A flags varint of COUNT bits.
    std::uint64_t flags(const char *what, int count) {
        std::uint64_t v = u(what);
        if (v >> count) fail(what, "unknown flags " + std::to_string(v >> count << count));
        return v;
    }
    template <typename E>
    E enumerated(const char *what, E last) {
        std::uint64_t v = u(what);
        if (v > static_cast<std::uint64_t>(last)) fail(what, "unknown value " + std::to_string(v));
        return static_cast<E>(v);
    }
    // A count of elements of at least MIN_BYTES each, bounded by what is left.
    std::size_t count(const char *what, std::size_t min_bytes = 1) {
        std::uint64_t n = u(what);
        if (n > left() / min_bytes)
            fail(what, "count " + std::to_string(n) + " exceeds the " + std::to_string(left()) +
                           " bytes left");
        return static_cast<std::size_t>(n);
    }
    std::string str(const char *what) {
        std::uint64_t n = u(what);
        if (n > left())
            fail(what, "length " + std::to_string(n) + " exceeds the " + std::to_string(left()) +
                           " bytes left");
        std::string s(p_, static_cast<std::size_t>(n));
        p_ += n;
        return s;
    }
    std::vector<std::string> strs(const char *what) {
        std::vector<std::string> v(count(what));
        for (auto &s : v) s = str(what);
        return v;
    }
    std::vector<std::pair<std::string, std::string>> pairs(const char *what) {
        std::vector<std::pair<std::string, std::string>> v(count(what, 2));
        for (auto &[a, b] : v) {
            a = str(what);
            b = str(what);
        }
        return v;
    }
    std::vector<Time> times(const char *what) {
        std::vector<Time> v(count(what));
        for (auto &t : v) t = time(what);
        return v;
    }

    [[noreturn]] void fail(const char *what, const std::string &problem) const {
        refuse(std::string(what) + ": " + problem + " (payload byte " +
               std::to_string(p_ - begin_) + ")");
    }

private:
    [[noreturn]] void out_of_range(const char *what, std::uint64_t v) const {
        fail(what, std::to_string(v) + " is out of range");
    }

    const char *begin_;
    const char *p_;
    const char *end_;
};

struct Defs {
    std::vector<std::shared_ptr<const spec::Launch>> launches;
    std::vector<std::shared_ptr<const core::WorkerSpec>> workers;
    std::vector<std::shared_ptr<const core::SupervisorSpec>> sups;
};

// The entry REF (index + 1, 0: none) of the first LIMIT of TABLE.
template <typename T>
std::shared_ptr<const T> lookup(const std::vector<std::shared_ptr<const T>> &table,
                                std::uint64_t ref, std::size_t limit, const char *kind) {
    if (ref == 0) return nullptr;
    if (ref > limit) refuse("unknown " + std::string(kind) + " " + std::to_string(ref - 1));
    return table[ref - 1];
}

spec::OutputSpec read_output(Reader &r) {
    spec::OutputSpec o;
    o.mode = r.enumerated("output mode", spec::OutputSpec::Mode::File);
    o.file = r.str("output file");
    o.max_bytes = r.u("output max_bytes");
    o.keep = r.u32("output keep");
    return o;
}

spec::Launch read_launch(Reader &r) {
    spec::Launch l;
    l.command = r.strs("command");
    l.env = r.pairs("env");
    l.cwd = r.str("cwd");
    auto f = r.flags("launch flags", 5);
    if (f & 1) l.user = r.str("user");
    if (f & 2) l.group = r.str("group");
    if (f & 4) l.uid = r.u32("uid");
    if (f & 8) l.gid = r.u32("gid");
    if (f & 16) {
        l.login.emplace();
        l.login->name = r.str("login name");
        l.login->home = r.str("login home");
        l.login->shell = r.str("login shell");
    }
    l.join.resize(r.count("join", 2));
    for (auto &[registry, groups] : l.join) {
        registry = r.str("join registry");
        groups = r.strs("join groups");
    }
    within([] { return std::string("stdout"); }, [&] { l.out = read_output(r); });
    within([] { return std::string("stderr"); }, [&] { l.err = read_output(r); });
    return l;
}

core::Backoff read_backoff(Reader &r) {
    core::Backoff b;
    b.initial = r.time("backoff initial");
    b.max = r.time("backoff max");
    b.factor = r.f64("backoff factor");
    b.jitter = r.f64("backoff jitter");
    b.reset_after = r.time("backoff reset_after");
    return b;
}

core::WorkerSpec read_worker(Reader &r, const Defs &d) {
    core::WorkerSpec s;
    auto f = r.flags("worker flags", 3);
    s.start = f & 4;
    s.restart = r.enumerated("restart", core::RestartType::Temporary);
    if (f & 1) s.instances = r.u32("instances");
    s.ready = r.enumerated("ready", core::ReadyMode::Notify);
    s.start_timeout = r.time("start_timeout");
    s.stop_signal = r.i32("stop_signal");
    s.stop_timeout = r.time("stop_timeout");
    if (f & 2) s.backoff = read_backoff(r);
    s.launch = lookup(d.launches, r.u("launch"), d.launches.size(), "launch");
    // The daemon starts every worker through its launch.
    if (!s.launch) refuse("no launch");
    return s;
}

// The supervisor definition of index SELF: its children name definitions
// written before it.
core::SupervisorSpec read_supervisor(Reader &r, const Defs &d, std::size_t self) {
    core::SupervisorSpec s;
    auto f = r.flags("supervisor flags", 3);
    s.start = f & 2;
    s.strategy = r.enumerated("strategy", core::Strategy::RestForOne);
    s.on_give_up = r.enumerated("on_give_up", core::OnGiveUp::StayFailed);
    s.max_restarts = r.u32("max_restarts");
    s.period = r.time("period");
    if (f & 1) s.backoff = read_backoff(r);
    if (f & 4) s.children_backoff = read_backoff(r);
    s.children.resize(r.count("children", 4));
    for (std::size_t i = 0; i < s.children.size(); ++i) {
        auto &c = s.children[i];
        within(
            [&] {
                return numbered("child", i) + (c.name.empty() ? "" : " (" + shown(c.name) + ")");
            },
            [&] {
                c.name = r.str("name");
                c.is_supervisor = r.flags("child flags", 1) & 1;
                c.worker = lookup(d.workers, r.u("worker"), d.workers.size(), "worker definition");
                c.supervisor = lookup(d.sups, r.u("supervisor"), self, "supervisor definition");
                if (c.is_supervisor ? !c.supervisor : !c.worker)
                    refuse(c.is_supervisor ? "a supervisor without a definition"
                                           : "a worker without a definition");
            });
    }
    return s;
}

Defs read_defs(Reader &r) {
    Defs d;
    d.launches.resize(r.count("launches"));
    for (std::size_t i = 0; i < d.launches.size(); ++i)
        within([&] { return numbered("launch", i); },
               [&] { d.launches[i] = std::make_shared<const spec::Launch>(read_launch(r)); });
    d.workers.resize(r.count("worker definitions"));
    for (std::size_t i = 0; i < d.workers.size(); ++i)
        within([&] { return numbered("worker definition", i); },
               [&] { d.workers[i] = std::make_shared<const core::WorkerSpec>(read_worker(r, d)); });
    d.sups.resize(r.count("supervisor definitions"));
    for (std::size_t i = 0; i < d.sups.size(); ++i) {
        within([&] { return numbered("supervisor definition", i); },
               [&] {
                   d.sups[i] =
                       std::make_shared<const core::SupervisorSpec>(read_supervisor(r, d, i));
               });
    }
    return d;
}

spec::Spec read_spec(Reader &r, const Defs &d) {
    spec::Spec s;
    s.file = r.str("file");
    s.dir = r.str("dir");
    s.registries.resize(r.count("registries", 3));
    for (auto &x : s.registries) {
        x.name = r.str("registry name");
        x.max_groups = r.u32("registry max_groups");
        x.max_members = r.u32("registry max_members");
    }
    s.root = lookup(d.sups, r.u("root"), d.sups.size(), "supervisor definition");
    auto f = r.flags("spec flags", 5);
    if ((f & 16) && !(f & 8)) refuse("cluster tls without a cluster");
    if (f & 1) s.socket = r.str("socket");
    auto &a = s.socket_access;
    if (f & 2) a.group = r.str("socket group");
    if (f & 4) a.gid = r.u32("socket gid");
    a.mode = r.u32("socket mode");
    if (f & 8) {
        auto &c = s.cluster.emplace();
        c.etcd = r.strs("cluster etcd");
        c.name = r.str("cluster name");
        c.node = r.str("cluster node");
        c.lease_ttl = r.u32("cluster lease_ttl");
        if (f & 16) {
            auto &t = c.tls.emplace();
            t.ca = r.str("cluster tls ca");
            t.cert = r.str("cluster tls cert");
            t.key = r.str("cluster tls key");
        }
    }
    return s;
}

// What reading the tree checks across nodes.
struct TreeCheck {
    const Defs &defs;
    std::uint64_t next_id = 0;
    std::unordered_set<std::uint64_t> ids;
    std::vector<const core::NodeSnapshot *> ancestors;  // of the node being read, root first
};

// The path of N (a child of ANCESTORS.back()), as the tree makes it.
std::string path_of(const TreeCheck &t, const core::NodeSnapshot &n) {
    if (t.ancestors.empty()) return "/";
    std::string p;
    for (std::size_t i = 1; i < t.ancestors.size(); ++i) p += t.ancestors[i]->name + "/";
    return p + n.name;
}

// A node written with nothing set takes this many bytes at least.
constexpr std::size_t kMinNodeBytes = 16;

void read_node(Reader &r, TreeCheck &t, core::NodeSnapshot &n) {
    bool named = false;
    auto label = [&] {
        if (named) return "node " + std::to_string(n.id) + " (" + shown(path_of(t, n)) + ")";
        if (t.ancestors.empty()) return std::string("the root node");
        const auto &parent = *t.ancestors.back();
        return "a child of node " + std::to_string(parent.id);
    };
    within(
        label,
        [&] {
            n.id = r.u("id");
            n.rank = r.u("rank");
            auto f = r.flags("node flags", 13);
            n.name = r.str("name");
            named = true;
            if (t.ancestors.size() > kMaxNesting)
                refuse("nested over " + std::to_string(kMaxNesting) + " deep");
            if (n.id >= t.next_id)
                refuse("id " + std::to_string(n.id) + " is not below next_id " +
                       std::to_string(t.next_id));
            if (!t.ids.insert(n.id).second) refuse("id " + std::to_string(n.id) + " used twice");
            n.dynamic = f & 1;
            n.is_supervisor = f & 2;
            n.want_stop = f & 4;
            n.want_start = f & 8;
            n.held = f & 16;
            n.manual_start = f & 32;
            n.removing = f & 64;
            n.fail_after_stop = f & 128;
            n.failing_start = f & 256;
            n.timed_out = f & 512;
            n.killed = f & 1024;
            n.base = r.str("base");
            n.instance = r.u32("instance");
            const auto &d = t.defs;
            n.worker = lookup(d.workers, r.u("worker"), d.workers.size(), "worker definition");
            n.sup = lookup(d.sups, r.u("supervisor"), d.sups.size(), "supervisor definition");
            if (n.is_supervisor ? !n.sup : !n.worker)
                refuse(n.is_supervisor ? "a supervisor without a definition"
                                       : "a worker without a definition");
            if (t.ancestors.empty() && !n.is_supervisor) refuse("the root is not a supervisor");
            n.state = r.enumerated("state", core::State::Backoff);
            n.pid = r.pid("pid");
            n.since = r.time("since");
            n.restarts = r.u("restarts");
            n.starts = r.u("starts");
            if (f & 2048)
                n.last_exit = core::ExitStatus{(f & 4096) != 0, r.i32("last exit")};
            else if (f & 4096)
                refuse("a signaled last exit without a last exit");
            n.backoffs = r.u32("backoffs");
            n.reason = r.str("reason");
            n.deadline = r.time("deadline");
            n.restart_history = r.times("restart history");
            n.pools.resize(r.count("pools", 4));
            for (std::size_t i = 0; i < n.pools.size(); ++i) {
                auto &p = n.pools[i];
                within(
                    [&] {
                        return numbered("pool", i) +
                               (p.name.empty() ? "" : " (" + shown(p.name) + ")");
                    },
                    [&] {
                        p.name = r.str("name");
                        p.def = lookup(d.workers, r.u("definition"), d.workers.size(),
                                       "worker definition");
                        if (!p.def) refuse("no definition");
                        p.rank = r.u("rank");
                        p.dynamic = r.flags("pool flags", 1) & 1;
                    });
            }
            // Sized once: the ancestors' pointers stay valid while children are read.
            n.children.resize(r.count("children", kMinNodeBytes));
            if (!n.is_supervisor && (!n.children.empty() || !n.pools.empty()))
                refuse("a worker with children or pools");
            t.ancestors.push_back(&n);
            for (auto &c : n.children) read_node(r, t, c);
            t.ancestors.pop_back();
        },
        true);
}

core::Snapshot read_tree(Reader &r, const Defs &d) {
    core::Snapshot s;
    s.next_id = r.u("next_id");
    s.next_ticket = r.u("next_ticket");
    auto f = r.flags("tree flags", 3);
    s.shutting_down = f & 1;
    s.hurry = f & 2;
    s.exited = f & 4;
    TreeCheck t{d, s.next_id, {}, {}};
    read_node(r, t, s.root);

    std::unordered_set<std::uint64_t> tickets;
    auto ticket = [&](std::uint64_t v) {
        if (v >= s.next_ticket)
            refuse("ticket " + std::to_string(v) + " is not below next_ticket " +
                   std::to_string(s.next_ticket));
        if (!tickets.insert(v).second) refuse("ticket " + std::to_string(v) + " used twice");
        return v;
    };
    s.pending.resize(r.count("pending commands", 5));
    for (std::size_t i = 0; i < s.pending.size(); ++i) {
        auto &p = s.pending[i];
        within([&] { return numbered("pending command", i); },
               [&] {
                   p.ticket = ticket(r.u("ticket"));
                   // Tree::Op, Start to Scale.
                   std::uint64_t op = r.u("op");
                   if (op > 5) r.fail("op", "unknown value " + std::to_string(op));
                   p.op = static_cast<decltype(p.op)>(op);
                   p.nodes.resize(r.count("nodes", 2));
                   for (auto &[id, starts] : p.nodes) {
                       id = r.u("node id");
                       starts = r.u("node starts");
                   }
                   p.paths = r.strs("paths");
                   p.removals.resize(r.count("removals"));
                   for (auto &id : p.removals) id = r.u("removal");
               });
    }
    s.finished.resize(r.count("finished commands", 2));
    for (std::size_t i = 0; i < s.finished.size(); ++i) {
        auto &x = s.finished[i];
        within([&] { return numbered("finished command", i); },
               [&] {
                   x.ticket = ticket(r.u("ticket"));
                   if (!(r.flags("result flags", 1) & 1)) {
                       int code = r.i32("error code");
                       x.result = Error{code, r.str("error message")};
                   }
               });
    }
    return s;
}

// A file descriptor the State names, and where.
struct FdUse {
    int fd;
    const char *what;
    std::size_t index;  // in its list; npos: not in a list
};

std::string label_of(const FdUse &u) {
    return u.index == std::string::npos ? u.what : numbered(u.what, u.index);
}

void check_fds(const State &s) {
    constexpr auto kNone = std::string::npos;
    std::vector<FdUse> uses;
    uses.reserve(2 + s.pipes.size() + s.slots.size() + s.registries.size() + s.watches.size() +
                 s.cluster_views.size());
    auto add = [&](int fd, const char *what, std::size_t index) {
        if (fd >= 0) uses.push_back({fd, what, index});
    };
    add(s.listen_fd, "the control socket", kNone);
    add(s.requester_fd, "the requester's connection", kNone);
    for (std::size_t i = 0; i < s.pipes.size(); ++i) add(s.pipes[i].fd, "pipe", i);
    for (std::size_t i = 0; i < s.slots.size(); ++i)
        add(s.slots[i].notify_fd, "the notify socket of slot", i);
    for (std::size_t i = 0; i < s.registries.size(); ++i) add(s.registries[i].fd, "registry", i);
    for (std::size_t i = 0; i < s.watches.size(); ++i) add(s.watches[i].pidfd, "watch", i);
    for (std::size_t i = 0; i < s.cluster_views.size(); ++i)
        add(s.cluster_views[i].fd, "cluster view", i);
    std::stable_sort(uses.begin(), uses.end(),
                     [](const FdUse &a, const FdUse &b) { return a.fd < b.fd; });
    for (std::size_t i = 1; i < uses.size(); ++i)
        if (uses[i].fd == uses[i - 1].fd)
            refuse("fd " + std::to_string(uses[i].fd) + " named twice: " + label_of(uses[i - 1]) +
                   " and " + label_of(uses[i]));
}

// Index V into a list of SIZE sinks.
std::uint32_t sink_index(std::uint32_t v, std::size_t size) {
    if (v >= size)
        refuse("unknown sink " + std::to_string(v) + " (" + std::to_string(size) + " sinks)");
    return v;
}

State read_state(Reader &r, std::uint32_t version) {
    State s;
    s.pid = r.pid("pid");
    s.version = r.str("version");
    s.worker_fd_limit = r.u("worker_fd_limit");
    s.signal_mask = r.u("signal_mask");
    s.socket_path = r.str("socket path");
    s.listen_fd = r.fd("listening fd", false);
    s.requester_fd = r.fd("requester fd", true);

    Defs d = read_defs(r);
    within([] { return std::string("spec"); }, [&] { s.spec = read_spec(r, d); });
    s.tree = read_tree(r, d);

    s.sinks.resize(r.count("sinks", 5));
    for (std::size_t i = 0; i < s.sinks.size(); ++i)
        within([&] { return numbered("sink", i); },
               [&] {
                   s.sinks[i].kind = r.enumerated("kind", Sink::Kind::File);
                   s.sinks[i].file = read_output(r);
               });
    s.shared_sinks.resize(r.count("shared sinks"));
    for (std::size_t i = 0; i < s.shared_sinks.size(); ++i)
        within([&] { return numbered("shared sink", i); },
               [&] { s.shared_sinks[i] = sink_index(r.u32("sink"), s.sinks.size()); });
    s.pipes.resize(r.count("pipes", 4));
    for (std::size_t i = 0; i < s.pipes.size(); ++i)
        within([&] { return numbered("pipe", i); },
               [&] {
                   auto &p = s.pipes[i];
                   p.fd = r.fd("fd", false);
                   p.prefix = r.str("prefix");
                   p.partial = r.str("partial line");
                   if (p.partial.size() > kMaxPartial)
                       refuse("a partial line of " + std::to_string(p.partial.size()) +
                              " bytes (at most " + std::to_string(kMaxPartial) + ")");
                   p.sink = sink_index(r.u32("sink"), s.sinks.size());
               });
    std::unordered_set<std::uint64_t> ids;
    s.slots.resize(r.count("slots", 6));
    for (std::size_t i = 0; i < s.slots.size(); ++i)
        within([&] { return numbered("slot", i); },
               [&] {
                   auto &x = s.slots[i];
                   x.id = r.u("node id");
                   if (!ids.insert(x.id).second)
                       refuse("node " + std::to_string(x.id) + " has another slot");
                   x.pid = r.pid("pid");
                   x.notify_fd = r.fd("notify fd", true);
                   x.notify_path = r.str("notify path");
                   x.exports = r.pairs("exports");
                   auto f = r.flags("slot flags", 4);
                   x.warned_stranger = f & 1;
                   x.warned_oversized = f & 2;
                   if (f & 4) x.out_file = sink_index(r.u32("out file"), s.sinks.size());
                   if (f & 8) x.err_file = sink_index(r.u32("err file"), s.sinks.size());
               });
    s.registries.resize(r.count("registries", 5));
    for (std::size_t i = 0; i < s.registries.size(); ++i)
        within([&] { return numbered("registry", i); },
               [&] {
                   auto &x = s.registries[i];
                   x.spec.name = r.str("name");
                   x.spec.max_groups = r.u32("max_groups");
                   x.spec.max_members = r.u32("max_members");
                   x.shm_name = r.str("shm name");
                   x.fd = r.fd("fd", false);
               });
    s.watches.resize(r.count("watches", 2));
    for (std::size_t i = 0; i < s.watches.size(); ++i)
        within([&] { return numbered("watch", i); },
               [&] {
                   s.watches[i].pid = r.pid("pid");
                   s.watches[i].pidfd = r.fd("pidfd", false);
               });
    s.cgroups.on = r.flags("cgroup flags", 1) & 1;
    ids.clear();
    s.cgroups.groups.resize(r.count("cgroups", 3));
    for (std::size_t i = 0; i < s.cgroups.groups.size(); ++i)
        within([&] { return numbered("cgroup", i); },
               [&] {
                   auto &g = s.cgroups.groups[i];
                   g.id = r.u("node id");
                   if (!ids.insert(g.id).second)
                       refuse("node " + std::to_string(g.id) + " has another cgroup");
                   g.name = r.str("name");
                   g.base_usec = r.u("base_usec");
               });
    s.cgroups.removals = r.strs("cgroup removals");
    s.cluster_views.resize(r.count("cluster views", 3));
    for (std::size_t i = 0; i < s.cluster_views.size(); ++i)
        within([&] { return numbered("cluster view", i); },
               [&] {
                   auto &v = s.cluster_views[i];
                   v.registry = r.str("registry");
                   v.shm_name = r.str("shm name");
                   v.fd = r.fd("fd", false);
               });
    if (version >= 2) {
        auto f = r.flags("systemd flags", 2);
        if (f & 1) {
            s.systemd.emplace();
            s.systemd->told_ready = f & 2;
            s.systemd->recent_restarts = r.times("systemd restarts");
        } else if (f & 2) {
            refuse("systemd: told ready without a systemd section");
        }
    }
    if (!r.done()) refuse(std::to_string(r.left()) + " bytes left over after the State");
    check_fds(s);
    return s;
}

State decode_or_refuse(std::string_view b) {
    if (b.substr(0, sizeof kMagic) != std::string_view(kMagic, sizeof kMagic).substr(0, b.size()))
        refuse("not a hand-off (it does not start with CHIPHOFF)");
    if (b.size() >= 12) {
        auto version = static_cast<std::uint32_t>(load_le(b.data() + 8, 4));
        if (!accepts(version))
            refuse("version " + std::to_string(version) + " is not one this chipd reads (" +
                   std::to_string(kOldestVersion) + " to " + std::to_string(kVersion) + ")");
    }
    if (b.size() >= 16) {
        if (auto flags = load_le(b.data() + 12, 4))
            refuse("unknown header flags " + std::to_string(flags));
    }
    if (b.size() < kHeaderSize) {
        std::string whole = std::to_string(kHeaderSize);
        if (b.size() >= 24) whole = std::to_string(load_le(b.data() + 16, 8)) + " + " + whole;
        refuse("truncated: " + std::to_string(b.size()) + " of " + whole + " bytes");
    }
    std::uint64_t length = load_le(b.data() + 16, 8);
    std::uint64_t have = b.size() - kHeaderSize;
    if (length > have) {
        if (length > std::numeric_limits<std::uint64_t>::max() - kHeaderSize)
            refuse("truncated: " + std::to_string(b.size()) + " of " + std::to_string(length) +
                   " + " + std::to_string(kHeaderSize) + " bytes");
        refuse("truncated: " + std::to_string(b.size()) + " of " +
               std::to_string(length + kHeaderSize) + " bytes");
    }
    if (length < have)
        refuse(std::to_string(have - length) + " bytes after its end (" +
               std::to_string(length + kHeaderSize) + " bytes)");
    if (checksum_of(b) != load_le(b.data() + 24, 8)) refuse("checksum mismatch: corrupted");
    Reader r(b.substr(kHeaderSize));
    return read_state(r, static_cast<std::uint32_t>(load_le(b.data() + 8, 4)));
}

}  // namespace

std::string encode(const State &state, std::uint32_t version) {
    assert(accepts(version));
    Writer w;
    w.out.reserve(4096);
    w.out.append(kHeaderSize, '\0');
    write_state(w, state, version);
    char *h = w.out.data();
    std::memcpy(h, kMagic, sizeof kMagic);
    store_le(h + 8, version, 4);
    store_le(h + 12, 0, 4);
    store_le(h + 16, w.out.size() - kHeaderSize, 8);
    store_le(h + 24, checksum_of(w.out), 8);
    return std::move(w.out);
}

Result<State> decode(std::string_view bytes) {
    try {
        return decode_or_refuse(bytes);
    } catch (Refused &e) {
        return make_error(EINVAL, "hand-off: " + e.what);
    } catch (const std::bad_alloc &) {
        return make_error(ENOMEM, "hand-off: out of memory");
    }
}

std::uint32_t version_of(std::string_view bytes) {
    if (bytes.size() < kHeaderSize || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        return 0;
    return static_cast<std::uint32_t>(load_le(bytes.data() + 8, 4));
}

std::string reseal(std::string bytes) {
    if (bytes.size() < kHeaderSize) return bytes;
    store_le(bytes.data() + 16, bytes.size() - kHeaderSize, 8);
    store_le(bytes.data() + 24, checksum_of(bytes), 8);
    return bytes;
}

}  // namespace chip::handoff
