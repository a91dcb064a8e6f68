// The spec loader: walks the JSON document along the contract (README.md, "The
// spec"), filling a Spec and collecting every error on the way. Each check
// reports at the pointer of the value it looked at and then carries on, so that
// one run shows the user everything that is wrong.
#include "spec/loader.hpp"

#include <fnmatch.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <utility>

#include "common/names.hpp"
#include "common/search_path.hpp"
#include "spec/document.hpp"

namespace chip::spec {

namespace fs = std::filesystem;

SpecError::SpecError(std::vector<std::string> errors)
    : std::runtime_error([&] {
          std::string all;
          for (const auto &e : errors) all += (all.empty() ? "" : "\n") + e;
          return all;
      }()),
      errors_(std::move(errors)) {}

// The key lists below are the contract's tables, in the order a user reads them
// in README.md; "unknown key" messages list them in this order.
const std::vector<std::string> &top_level_keys() {
    static const std::vector<std::string> keys{"registries", "root", "socket", "cluster"};
    return keys;
}
const std::vector<std::string> &cluster_keys() {
    static const std::vector<std::string> keys{"etcd", "name", "node", "lease_ttl", "tls"};
    return keys;
}
const std::vector<std::string> &tls_keys() {
    static const std::vector<std::string> keys{"ca", "cert", "key"};
    return keys;
}
const std::vector<std::string> &registry_keys() {
    static const std::vector<std::string> keys{"name", "max_groups", "max_members"};
    return keys;
}
const std::vector<std::string> &supervisor_keys() {
    static const std::vector<std::string> keys{"strategy", "max_restarts", "period",
                                               "backoff",  "on_give_up",   "children"};
    return keys;
}
const std::vector<std::string> &worker_keys() {
    static const std::vector<std::string> keys{
        "name", "command", "restart", "instances",     "env",         "cwd",
        "user", "group",   "ready",   "start_timeout", "stop_signal", "stop_timeout",
        "join", "stdout",  "stderr",  "backoff",       "start"};
    return keys;
}
const std::vector<std::string> &supervisor_child_keys() {
    static const std::vector<std::string> keys{"name", "supervisor", "backoff", "start"};
    return keys;
}
const std::vector<std::string> &backoff_keys() {
    static const std::vector<std::string> keys{"initial", "max", "factor", "jitter", "reset_after"};
    return keys;
}
const std::vector<std::string> &include_keys() {
    static const std::vector<std::string> keys{"include"};
    return keys;
}
const std::vector<std::string> &socket_keys() {
    static const std::vector<std::string> keys{"path", "group", "mode"};
    return keys;
}
const std::vector<std::string> &output_keys() {
    static const std::vector<std::string> keys{"file", "max_bytes", "keep"};
    return keys;
}

namespace {

// What "got" says for a key that is missing.
const std::string kNothing = "nothing";
// The name rules of common/names.hpp, in words.
constexpr std::string_view kChildName =
    "expected a name of 1 to 64 letters, digits, '_', '.' or '-'";
constexpr std::string_view kGroupName =
    "expected a name of 1 to 64 letters, digits, '_', '.', ':' or '-'";
constexpr std::string_view kOutput =
    "expected \"inherit\", \"null\" or {\"file\": PATH, \"max_bytes\": N, \"keep\": K}";
// A spec is a few KiB; this bounds what reading e.g. /dev/zero would cost.
constexpr std::size_t kMaxFileSize = 16u << 20;

// Pointers are built with "" for the document; messages show it as "/".
std::string show(const std::string &pointer) {
    return pointer.empty() ? "/" : pointer;
}

// "a, b, c", for "expected one of ..." lists.
std::string join_words(const std::vector<std::string> &words) {
    std::string out;
    for (const auto &w : words) out += (out.empty() ? "" : ", ") + w;
    return out;
}

bool contains(const std::vector<std::string> &v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// "12" -> 12 for a canonical decimal (no sign, no leading zero) below 10^9.
std::optional<unsigned> canonical_index(std::string_view s) {
    if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    unsigned n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    return n;
}

// A user or group id written as digits, within the id types' range (-1 is "none").
std::optional<unsigned long> numeric_id(const std::string &s) {
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    unsigned long n = std::stoul(s);
    if (n >= 0xFFFFFFFFul) return std::nullopt;
    return n;
}

struct Account {
    uid_t uid;
    std::optional<User> entry;  // its passwd entry; none for a bare numeric id
};

// NAME as a user: by name first (like chown(1), a user may be named "1000"),
// then as a numeric id, with its passwd entry when the id has one.
std::optional<Account> find_user(const Host &host, const std::string &name) {
    if (auto u = host.user_by_name(name)) return Account{u->uid, u};
    auto id = numeric_id(name);
    if (!id) return std::nullopt;
    uid_t uid = static_cast<uid_t>(*id);
    return Account{uid, host.user_by_id(uid)};
}

std::optional<gid_t> find_group(const Host &host, const std::string &name) {
    if (auto g = host.group_by_name(name)) return g;
    // Like chown(1), a number is an id even without an entry in the group database.
    if (auto id = numeric_id(name)) return static_cast<gid_t>(*id);
    return std::nullopt;
}

// The names siblings claim, to find duplicates. A pool (a worker with
// "instances": N, any N >= 0) claims NAME (commands given NAME act on all) and
// NAME.0 ... NAME.N-1.
class Siblings {
public:
    struct Clash {
        std::string pointer;  // of the earlier sibling ("POINTER in FILE" when in another file)
        std::string before;   // in the message, between our name and the pointer
        std::string after;    // after the pointer
    };

    // NAME (a pool of POOL instances, when set) against the siblings added so
    // far; FILE is the file NAME is written in.
    std::optional<Clash> clash(const std::string &name, std::optional<unsigned> pool,
                               const std::string &file) const {
        auto where = [&](const Entry &e) {
            return show_pointer(e.pointer) + (e.file == file ? "" : " in " + e.file);
        };
        if (auto it = names_.find(name); it != names_.end())
            return Clash{where(it->second), "", ""};
        // NAME.k against an earlier NAME with more than k instances.
        if (auto dot = name.rfind('.'); dot != std::string::npos) {
            auto index = canonical_index(std::string_view(name).substr(dot + 1));
            auto it = names_.find(name.substr(0, dot));
            if (index && it != names_.end() && it->second.pool && *index < *it->second.pool)
                return Clash{where(it->second), "",
                             " (\"" + it->first + "\" with " + std::to_string(*it->second.pool) +
                                 " instances)"};
        }
        // Our instances NAME.k against earlier siblings named so.
        if (pool) {
            std::string prefix = name + ".";
            for (auto it = names_.lower_bound(prefix);
                 it != names_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
                auto index = canonical_index(std::string_view(it->first).substr(prefix.size()));
                if (index && *index < *pool)
                    return Clash{where(it->second),
                                 ", whose " + std::to_string(*pool) + " instances include \"" +
                                     it->first + "\"",
                                 ""};
            }
        }
        return std::nullopt;
    }

    void add(const std::string &name, std::optional<unsigned> pool, const std::string &pointer,
             const std::string &file) {
        names_.emplace(name, Entry{pointer, file, pool});
    }

private:
    struct Entry {
        std::string pointer;
        std::string file;
        std::optional<unsigned> pool;  // its instance count, for a pool
    };
    static std::string show_pointer(const std::string &p) { return p.empty() ? "/" : p; }
    std::map<std::string, Entry> names_;
};

// One load: walks the document top-down, fills a Spec, and collects
// errors instead of stopping at the first. Each function below reads one part
// of the contract and reports at the pointer it is given.
class Loader {
public:
    // FILE names the text in errors, DIR (absolute) is its folder. PATH is the
    // file itself when the text is one (empty otherwise), so that an include
    // that leads back to it is a cycle.
    Loader(std::string file, std::string dir, std::string path, std::vector<std::string> errors,
           const Host &host, Checks checks)
        : file_(std::move(file)),
          dir_(std::move(dir)),
          errors_(std::move(errors)),
          host_(host),
          checks_(checks) {
        if (!path.empty()) reading_.push_back(std::move(path));
    }

    // The spec of DOC; meaningful only if errors() is empty afterwards.
    Spec load(const Json &doc);
    // DOC as one child (pointers from the child), whose "join" may name REGISTRIES.
    core::ChildSpec load_child(const Json &doc, std::vector<std::string> registries) {
        declared_ = std::move(registries);
        core::ChildSpec c;
        Siblings siblings;
        if (doc.is_object() && member(doc, "include"))
            fail_with("",
                      "expected a child (an include splices children into a \"children\" array)",
                      "an include");
        else
            child(doc, "", c, 0, siblings);
        return c;
    }
    std::vector<std::string> &errors() { return errors_; }

private:
    // An error at POINTER: "FILE: POINTER: expected ...; got GOT" (GOT a phrase).
    void fail_with(const std::string &pointer, std::string_view expected, const std::string &got) {
        errors_.push_back(file_ + ": " + show(pointer) + ": " + std::string(expected) + "; got " +
                          got);
    }
    // The same with GOT the offending value, shown briefly.
    void fail(const std::string &pointer, std::string_view expected, const Json &got) {
        fail_with(pointer, expected, describe(got));
    }

    // OBJ's value for KEY, or nullptr when it is absent (the default applies).
    static const Json *member(const Json &obj, const char *key) {
        auto it = obj.find(key);
        return it == obj.end() ? nullptr : &*it;
    }

    // Reports every key of OBJ not in KNOWN; keys in MISPLACED get MISPLACED_NOTE
    // instead of a did-you-mean (a worker field on a supervisor child).
    void check_keys(const Json &obj, const std::string &pointer,
                    const std::vector<std::string> &known,
                    const std::vector<std::string> *misplaced = nullptr,
                    std::string_view misplaced_note = {});
    // Typed readers: the value when V is right, else an error and nullopt/nullptr.
    // integer: a JSON integer in [LO, HI] (HI = UINT64_MAX: no upper bound).
    std::optional<std::uint64_t> integer(const Json &v, const std::string &pointer,
                                         std::uint64_t lo, std::uint64_t hi);
    // seconds: a number > 0 (>= 0 with ZERO_OK), at most kMaxSeconds.
    std::optional<core::Duration> seconds(const Json &v, const std::string &pointer, bool zero_ok);
    // text: a non-empty string without NUL.
    const std::string *text(const Json &v, const std::string &pointer, std::string_view expected);
    // path: text made absolute against the spec's folder.
    std::optional<std::string> path(const Json &v, const std::string &pointer,
                                    std::string_view expected);
    // one_of: a string among CHOICES, mapped to its enum value.
    template <typename E>
    std::optional<E> one_of(const Json &v, const std::string &pointer,
                            std::initializer_list<std::pair<const char *, E>> choices);

    // The parts of a spec, one per contract section; each fills its target and
    // leaves the defaults of core/spec.hpp where the spec says nothing.
    void registries(const Json &v, const std::string &pointer, std::vector<RegistrySpec> &out);
    void socket(const Json &v, const std::string &pointer, Spec &spec);
    std::optional<ClusterSpec> cluster(const Json &v, const std::string &pointer);
    void supervisor(const Json &v, const std::string &pointer, core::SupervisorSpec &s, int depth);
    // The items of a "children" array (or of an included file's), children
    // and include entries, appended to OUT.
    void children(const Json &list, const std::string &pointer, std::vector<core::ChildSpec> &out,
                  int depth, Siblings &siblings);
    // One item of such an array.
    void entry(const Json &v, const std::string &pointer, std::vector<core::ChildSpec> &out,
               int depth, Siblings &siblings);
    // {"include": GLOB}: the children of every file it matches, in name order.
    void include(const Json &v, const std::string &pointer, std::vector<core::ChildSpec> &out,
                 int depth, Siblings &siblings);
    // The files GLOB (at POINTER) names, (absolute path, name in errors) each.
    std::vector<std::pair<std::string, std::string>> expand(const std::string &glob,
                                                            const std::string &pointer);
    void child(const Json &v, const std::string &pointer, core::ChildSpec &c, int depth,
               Siblings &siblings);
    void worker(const Json &v, const std::string &pointer, core::WorkerSpec &w, Launch &l);
    void command(const Json &v, const std::string &pointer, Launch &l);
    // Checks::Machine: command[0] (at POINTER) names a program chipd can execute.
    void check_program(const Launch &l, const std::string &pointer);
    void env(const Json &v, const std::string &pointer, Launch &l);
    void account(const Json &obj, const std::string &pointer, Launch &l);
    void stop_signal(const Json &v, const std::string &pointer, core::WorkerSpec &w);
    void join(const Json &v, const std::string &pointer, Launch &l);
    // POOL: the worker has "instances" ({instance} allowed in the file name).
    void output(const Json &v, const std::string &pointer, OutputSpec &o, bool pool);
    // The {name} and {instance} of file F (at POINTER, made absolute as P).
    void placeholders(const Json &f, const std::string &pointer, const fs::path &p, bool pool);
    std::optional<core::Backoff> backoff(const Json &v, const std::string &pointer);

    // P made absolute against the spec's folder, lexically normal, no trailing '/'.
    std::string absolute(const std::string &p) const {
        fs::path abs = fs::path(p).is_absolute() ? fs::path(p) : fs::path(dir_) / p;
        std::string s = abs.lexically_normal().string();
        while (s.size() > 1 && s.back() == '/') s.pop_back();
        return s;
    }

    std::string file_;  // as given, the prefix of every error (the file being read)
    std::string dir_;   // absolute, for relative paths
    std::vector<std::string> errors_;
    std::vector<std::string> declared_;  // registry names, for "join"
    const Host &host_;
    Checks checks_;
    std::vector<std::string> reading_;  // absolute paths of the files being read, outermost first
    std::size_t included_ = 0;          // files included so far
};

void Loader::check_keys(const Json &obj, const std::string &pointer,
                        const std::vector<std::string> &known,
                        const std::vector<std::string> *misplaced,
                        std::string_view misplaced_note) {
    for (const auto &[key, value] : obj.items()) {
        if (contains(known, key)) continue;
        std::string line = file_ + ": " + show(child_pointer(pointer, key)) + ": ";
        if (misplaced && contains(*misplaced, key)) {
            line += std::string(misplaced_note) + "; expected one of " + join_words(known);
        } else {
            line += "unknown key; expected one of " + join_words(known);
            if (auto guess = closest(key, known)) line += "; did you mean \"" + *guess + "\"?";
        }
        errors_.push_back(std::move(line));
    }
}

// One message for a wrong type and a value out of range: both are answered by
// the same "expected an integer from LO to HI".
std::optional<std::uint64_t> Loader::integer(const Json &v, const std::string &pointer,
                                             std::uint64_t lo, std::uint64_t hi) {
    std::string expected =
        hi == UINT64_MAX
            ? "expected an integer of at least " + std::to_string(lo)
            : "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    // JSON integers only: 1.5, 3.0 and "3" are refused alike.
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
        fail(pointer, expected, v);
        return std::nullopt;
    }
    // Negative values were refused above, so the unsigned view is exact.
    std::uint64_t n = v.get<std::uint64_t>();
    if (n < lo || n > hi) {
        fail(pointer, expected, v);
        return std::nullopt;
    }
    return n;
}

std::optional<core::Duration> Loader::seconds(const Json &v, const std::string &pointer,
                                              bool zero_ok) {
    constexpr std::string_view kPositive =
        "expected a number of seconds greater than 0 and at most 1000000000";
    constexpr std::string_view kNonNegative = "expected a number of seconds from 0 to 1000000000";
    double s = v.is_number() ? v.get<double>() : -1.0;
    if (!v.is_number() || s < 0 || (!zero_ok && s <= 0) || s > kMaxSeconds) {
        fail(pointer, zero_ok ? kNonNegative : kPositive, v);
        return std::nullopt;
    }
    // At most 1e18 ns: fits int64 with room for a monotonic clock's "now".
    auto ns = static_cast<std::int64_t>(std::llround(s * 1e9));
    if (!zero_ok && ns < 1) ns = 1;
    return core::Duration(ns);
}

const std::string *Loader::text(const Json &v, const std::string &pointer,
                                std::string_view expected) {
    // NUL cannot pass through execve or a path; refuse it where it is written.
    if (!v.is_string() || v.get_ref<const std::string &>().empty() ||
        v.get_ref<const std::string &>().find('\0') != std::string::npos) {
        fail(pointer, expected, v);
        return nullptr;
    }
    return &v.get_ref<const std::string &>();
}

std::optional<std::string> Loader::path(const Json &v, const std::string &pointer,
                                        std::string_view expected) {
    const std::string *s = text(v, pointer, expected);
    if (!s) return std::nullopt;
    return absolute(*s);
}

// The message lists the choices in contract order, e.g. "expected one of
// permanent, transient, temporary; got "always"" (README.md's example).
template <typename E>
std::optional<E> Loader::one_of(const Json &v, const std::string &pointer,
                                std::initializer_list<std::pair<const char *, E>> choices) {
    if (v.is_string())
        for (const auto &[word, value] : choices)
            if (v.get_ref<const std::string &>() == word) return value;
    std::string expected = "expected one of ";
    bool first = true;
    for (const auto &choice : choices) {
        expected += (first ? "" : ", ") + std::string(choice.first);
        first = false;
    }
    fail(pointer, expected, v);
    return std::nullopt;
}

// The document: {"registries", "root", "socket"}; only "root" is required.
Spec Loader::load(const Json &doc) {
    Spec spec;
    spec.dir = dir_;
    if (!doc.is_object()) {
        fail("", "expected an object with \"root\"", doc);
        return spec;
    }
    check_keys(doc, "", top_level_keys());
    // Registries first: "join" anywhere in the tree refers to them.
    if (const Json *v = member(doc, "registries")) registries(*v, "/registries", spec.registries);
    if (const Json *v = member(doc, "socket")) socket(*v, "/socket", spec);
    if (const Json *v = member(doc, "cluster")) spec.cluster = cluster(*v, "/cluster");
    auto root = std::make_shared<core::SupervisorSpec>();
    if (const Json *v = member(doc, "root"))
        supervisor(*v, "/root", *root, 0);
    else
        fail_with("/root", "expected a supervisor body (an object)", kNothing);
    spec.root = std::move(root);
    return spec;
}

// "socket": a path, or {"path", "group", "mode"} (each optional: the default
// path, chipd's group, 0660).
void Loader::socket(const Json &v, const std::string &pointer, Spec &spec) {
    constexpr std::string_view kSocket =
        "expected a socket path or {\"path\": PATH, \"group\": GROUP, \"mode\": \"0660\"}";
    auto set_path = [&](const Json &p, const std::string &at, std::string_view expected) {
        auto abs = path(p, at, expected);
        if (!abs) return;
        // sun_path holds 108 bytes with the terminating NUL.
        if (abs->size() >= sizeof(sockaddr_un{}.sun_path))
            fail_with(at, "expected a socket path of at most 107 bytes once made absolute",
                      describe(Json(*abs)));
        else
            spec.socket = *abs;
    };
    if (v.is_string()) return set_path(v, pointer, "expected a non-empty path");
    if (!v.is_object()) return fail(pointer, kSocket, v);
    check_keys(v, pointer, socket_keys());
    if (const Json *p = member(v, "path"))
        set_path(*p, child_pointer(pointer, "path"), "expected a non-empty path");
    if (const Json *g = member(v, "group")) {
        std::string at = child_pointer(pointer, "group");
        constexpr std::string_view kGroup = "expected an existing group (a name or a numeric id)";
        if (const std::string *name = text(*g, at, kGroup)) {
            if (auto gid = find_group(host_, *name)) {
                spec.socket_access.group = *name;
                spec.socket_access.gid = gid;
            } else {
                fail(at, kGroup, *g);
            }
        }
    }
    if (const Json *m = member(v, "mode")) {
        std::optional<mode_t> mode;
        if (m->is_string()) mode = parse_mode(m->get_ref<const std::string &>());
        if (mode)
            spec.socket_access.mode = *mode;
        else
            fail(child_pointer(pointer, "mode"),
                 "expected a mode as a string of octal digits, at most \"0777\" (e.g. \"0660\")",
                 *m);
    }
}

// "registries": each item a name, or {"name", "max_groups", "max_members"}.
// A name declared twice is reported at the second declaration.
void Loader::registries(const Json &v, const std::string &pointer, std::vector<RegistrySpec> &out) {
    if (!v.is_array()) {
        fail(pointer,
             "expected an array of registry names or {\"name\", \"max_groups\", \"max_members\"} "
             "objects",
             v);
        return;
    }
    std::map<std::string, std::string> seen;  // name -> where it was declared
    for (std::size_t i = 0; i < v.size(); ++i) {
        const Json &item = v[i];
        std::string item_pointer = child_pointer(pointer, i);
        RegistrySpec r;
        const Json *name = &item;
        std::string name_pointer = item_pointer;
        bool ok = true;
        if (item.is_object()) {
            check_keys(item, item_pointer, registry_keys());
            name_pointer = child_pointer(item_pointer, "name");
            name = member(item, "name");
            if (const Json *g = member(item, "max_groups")) {
                auto n = integer(*g, child_pointer(item_pointer, "max_groups"), 1, kMaxGroupsLimit);
                ok = ok && n;
                if (n) r.max_groups = static_cast<std::uint32_t>(*n);
            }
            if (const Json *m = member(item, "max_members")) {
                auto n =
                    integer(*m, child_pointer(item_pointer, "max_members"), 1, kMaxMembersLimit);
                ok = ok && n;
                if (n) r.max_members = static_cast<std::uint32_t>(*n);
            }
            if (!name) {
                fail_with(name_pointer, kGroupName, kNothing);
                continue;
            }
        } else if (!item.is_string()) {
            fail(
                item_pointer,
                "expected a registry name or an object {\"name\", \"max_groups\", \"max_members\"}",
                item);
            continue;
        }
        if (!name->is_string() || !valid_group_name(name->get_ref<const std::string &>())) {
            fail(name_pointer, kGroupName, *name);
            continue;
        }
        r.name = name->get<std::string>();
        if (auto it = seen.find(r.name); it != seen.end()) {
            fail_with(name_pointer, "expected a registry name declared once",
                      describe(*name) + ", already declared at " + it->second);
            continue;
        }
        seen.emplace(r.name, name_pointer);
        declared_.push_back(r.name);
        // A valid name counts as declared even if its capacities are wrong, so
        // "join" does not pile a second error onto the same mistake.
        if (ok) out.push_back(std::move(r));
    }
}

// "cluster": {"etcd": [URL, ...], "name", "node", "lease_ttl", "tls": {"ca",
// "cert", "key"}}; "etcd" and "name" required. The TLS files are read once
// here, so that a missing or unreadable one is a spec error, not a warning later.
std::optional<ClusterSpec> Loader::cluster(const Json &v, const std::string &pointer) {
    constexpr std::string_view kShape =
        "expected an object {\"etcd\": [URL, ...], \"name\", \"node\", \"lease_ttl\", \"tls\"}";
    constexpr std::string_view kEndpoint =
        "expected an etcd endpoint URL http://HOST:PORT or https://HOST:PORT";
    if (!v.is_object()) {
        fail(pointer, kShape, v);
        return std::nullopt;
    }
    check_keys(v, pointer, cluster_keys());
    std::size_t before = errors_.size();
    ClusterSpec c;
    std::string etcd_pointer = child_pointer(pointer, "etcd");
    if (const Json *e = member(v, "etcd"); !e) {
        fail_with(etcd_pointer, "expected an array of etcd endpoint URLs", kNothing);
    } else if (!e->is_array() || e->empty() || e->size() > 16) {
        fail(etcd_pointer, "expected an array of 1 to 16 etcd endpoint URLs", *e);
    } else {
        for (std::size_t i = 0; i < e->size(); ++i) {
            const Json &url = (*e)[i];
            std::string p = child_pointer(etcd_pointer, i);
            if (!url.is_string()) {
                fail(p, kEndpoint, url);
                continue;
            }
            // SCHEME://AUTHORITY with at most a trailing '/': the client adds the
            // gateway's paths itself. No user info, query or fragment; no spaces.
            std::string s = url.get<std::string>();
            while (s.size() > 1 && s.back() == '/') s.pop_back();
            std::string_view rest = s;
            bool ok = false;
            for (std::string_view scheme : {"http://", "https://"})
                if (rest.starts_with(scheme)) {
                    rest.remove_prefix(scheme.size());
                    ok = true;
                }
            ok = ok && !rest.empty() && rest.size() <= 255 && rest.front() != ':' &&
                 std::all_of(rest.begin(), rest.end(), [](char ch) {
                     return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
                            ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_';
                 });
            if (!ok) {
                fail(p, kEndpoint, url);
                continue;
            }
            c.etcd.push_back(std::move(s));
        }
    }
    std::string name_pointer = child_pointer(pointer, "name");
    if (const Json *n = member(v, "name"); !n)
        fail_with(name_pointer, kGroupName, kNothing);
    else if (!n->is_string() || !valid_group_name(n->get_ref<const std::string &>()))
        fail(name_pointer, kGroupName, *n);
    else
        c.name = n->get<std::string>();
    std::string node_pointer = child_pointer(pointer, "node");
    if (const Json *n = member(v, "node")) {
        if (!n->is_string() || !valid_group_name(n->get_ref<const std::string &>()))
            fail(node_pointer, kGroupName, *n);
        else
            c.node = n->get<std::string>();
    } else {
        c.node = host_.host_name();
        if (!valid_group_name(c.node))
            fail_with(node_pointer,
                      "expected a node name (the host name is not one); " + std::string(kGroupName),
                      c.node.empty() ? kNothing : describe(Json(c.node)));
    }
    if (const Json *t = member(v, "lease_ttl")) {
        auto n = integer(*t, child_pointer(pointer, "lease_ttl"), 2, 3600);
        if (n) c.lease_ttl = static_cast<unsigned>(*n);
    }
    if (const Json *t = member(v, "tls")) {
        std::string tls_pointer = child_pointer(pointer, "tls");
        if (!t->is_object()) {
            fail(tls_pointer, "expected an object {\"ca\": PATH, \"cert\": PATH, \"key\": PATH}",
                 *t);
        } else {
            check_keys(*t, tls_pointer, tls_keys());
            ClusterSpec::Tls tls;
            // Each file must be there and readable now: a typo is found at load.
            auto file = [&](const char *key, std::string &out, bool required) {
                std::string p = child_pointer(tls_pointer, key);
                const Json *f = member(*t, key);
                if (!f) {
                    if (required)
                        fail_with(p, "expected the path of a readable PEM file", kNothing);
                    return;
                }
                auto path = this->path(*f, p, "expected the path of a readable PEM file");
                if (!path) return;
                auto text = host_.read_file(*path, 1u << 20);
                if (!text) {
                    fail_with(
                        p, "expected the path of a readable PEM file",
                        describe(Json(*path)) + " (" + std::strerror(text.error().code) + ")");
                    return;
                }
                out = *path;
            };
            file("ca", tls.ca, true);
            file("cert", tls.cert, false);
            file("key", tls.key, false);
            if (member(*t, "cert") && !member(*t, "key"))
                fail_with(child_pointer(tls_pointer, "key"),
                          "expected the client certificate's key beside \"cert\"", kNothing);
            if (member(*t, "key") && !member(*t, "cert"))
                fail_with(child_pointer(tls_pointer, "cert"),
                          "expected the client certificate beside \"key\"", kNothing);
            c.tls = std::move(tls);
        }
    }
    if (errors_.size() != before) return std::nullopt;
    return c;
}

// A supervisor body: strategy, max_restarts, period, children. DEPTH counts
// supervisors below the root, to bound the recursion on hostile input.
void Loader::supervisor(const Json &v, const std::string &pointer, core::SupervisorSpec &s,
                        int depth) {
    if (!v.is_object()) {
        fail(pointer, "expected a supervisor body (an object)", v);
        return;
    }
    if (depth > kMaxDepth) {
        fail_with(pointer,
                  "expected supervisors nested at most " + std::to_string(kMaxDepth) + " deep",
                  "one nested deeper");
        return;
    }
    check_keys(v, pointer, supervisor_keys());
    if (const Json *x = member(v, "strategy")) {
        using core::Strategy;
        if (auto e = one_of<Strategy>(*x, child_pointer(pointer, "strategy"),
                                      {{"one_for_one", Strategy::OneForOne},
                                       {"one_for_all", Strategy::OneForAll},
                                       {"rest_for_one", Strategy::RestForOne}}))
            s.strategy = *e;
    }
    if (const Json *x = member(v, "on_give_up")) {
        using core::OnGiveUp;
        if (auto e = one_of<OnGiveUp>(
                *x, child_pointer(pointer, "on_give_up"),
                {{"escalate", OnGiveUp::Escalate}, {"stay_failed", OnGiveUp::StayFailed}}))
            s.on_give_up = *e;
    }
    if (const Json *x = member(v, "max_restarts"))
        if (auto n = integer(*x, child_pointer(pointer, "max_restarts"), 0, kMaxRestartsLimit))
            s.max_restarts = static_cast<unsigned>(*n);
    if (const Json *x = member(v, "period"))
        if (auto d = seconds(*x, child_pointer(pointer, "period"), false)) s.period = *d;
    if (const Json *x = member(v, "backoff"))
        s.children_backoff = backoff(*x, child_pointer(pointer, "backoff"));
    if (const Json *x = member(v, "children")) {
        std::string children_pointer = child_pointer(pointer, "children");
        if (!x->is_array()) {
            fail(children_pointer, "expected an array of children", *x);
            return;
        }
        Siblings siblings;
        s.children.reserve(x->size());
        children(*x, children_pointer, s.children, depth, siblings);
    }
}

// Invalid children are kept too (the spec is refused anyway): messages carry
// their pointers, so nothing needs the vector to line up with the array.
void Loader::children(const Json &list, const std::string &pointer,
                      std::vector<core::ChildSpec> &out, int depth, Siblings &siblings) {
    for (std::size_t i = 0; i < list.size(); ++i)
        entry(list[i], child_pointer(pointer, i), out, depth, siblings);
}

void Loader::entry(const Json &v, const std::string &pointer, std::vector<core::ChildSpec> &out,
                   int depth, Siblings &siblings) {
    if (v.is_object() && member(v, "include")) {
        include(v, pointer, out, depth, siblings);
        return;
    }
    core::ChildSpec c;
    child(v, pointer, c, depth, siblings);
    out.push_back(std::move(c));
}

// Each file is read like the spec itself: its errors name it and use its
// pointers, and its relative paths are taken from its own folder. An included
// file may include others; one that leads back to a file being read is refused.
void Loader::include(const Json &v, const std::string &pointer, std::vector<core::ChildSpec> &out,
                     int depth, Siblings &siblings) {
    check_keys(v, pointer, include_keys());
    std::string p = child_pointer(pointer, "include");
    const Json &glob = v.at("include");
    const std::string *pattern =
        text(glob, p, "expected a file name or a glob, relative to this file's folder");
    if (!pattern) return;
    for (const auto &[path, label] : expand(*pattern, p)) {
        if (std::find(reading_.begin(), reading_.end(), path) != reading_.end()) {
            fail_with(p, "expected no include cycle",
                      describe(glob) + ", which leads back to " + label);
            continue;
        }
        if (reading_.size() > kMaxIncludeDepth || ++included_ > kMaxIncludedFiles) {
            fail_with(p,
                      "expected includes at most " + std::to_string(kMaxIncludeDepth) +
                          " deep and " + std::to_string(kMaxIncludedFiles) + " files in all",
                      label + ", one more");
            return;
        }
        auto text = host_.read_file(path, kMaxFileSize);
        if (!text) {
            fail_with(
                p, "expected files chipd can read",
                label + ": " +
                    (text.error().code == EFBIG ? std::string("larger than 16 MiB")
                                                : std::string(std::strerror(text.error().code))));
            continue;
        }
        Document doc = parse_document(*text, label);
        errors_.insert(errors_.end(), doc.errors.begin(), doc.errors.end());
        if (doc.syntax_error) continue;
        // The included file is the one being read until its children are in.
        std::string outer_file = std::exchange(file_, label);
        std::string outer_dir = std::exchange(dir_, fs::path(path).parent_path().string());
        reading_.push_back(path);
        if (doc.root.is_array())
            children(doc.root, "", out, depth, siblings);
        else if (doc.root.is_object())
            entry(doc.root, "", out, depth, siblings);
        else
            fail("", "expected a child (an object) or an array of children", doc.root);
        reading_.pop_back();
        file_ = std::move(outer_file);
        dir_ = std::move(outer_dir);
    }
}

// Wildcards (*, ?, [...], as in the shell) may be used in the file name, not
// in its folder. A glob without any names one file, which must exist; a glob
// with them may match nothing (no children), and never matches names that
// start with '.'. Matches are taken in byte order of their names.
std::vector<std::pair<std::string, std::string>> Loader::expand(const std::string &glob,
                                                                const std::string &pointer) {
    auto wild = [](const std::string &s) { return s.find_first_of("*?[") != std::string::npos; };
    fs::path written(glob);
    // The name errors show: the glob as written, from the folder of the file's
    // name (the label), so a relative spec name gives relative names.
    fs::path shown = written.is_absolute() ? written : (fs::path(file_).parent_path() / written);
    shown = shown.lexically_normal();
    std::string path = absolute(glob);
    if (glob.back() == '/' || written.filename() == "." || written.filename() == "..") {
        fail_with(pointer, "expected a file name or a glob of file names", describe(Json(glob)));
        return {};
    }
    if (wild(written.parent_path().string())) {
        fail_with(pointer, "expected wildcards only in the file name, not in its folder",
                  describe(Json(glob)));
        return {};
    }
    std::string name = fs::path(path).filename().string();
    if (!wild(name)) return {{path, shown.string()}};
    std::string folder = fs::path(path).parent_path().string();
    auto names = host_.files_in_folder(folder);
    if (!names) {
        if (names.error().code == ENOENT) return {};
        fail_with(pointer, "expected a folder chipd can read",
                  describe(Json(glob)) + " (" + std::strerror(names.error().code) + ")");
        return {};
    }
    std::sort(names->begin(), names->end());
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto &n : *names)
        if (::fnmatch(name.c_str(), n.c_str(), FNM_PERIOD) == 0)
            files.emplace_back((fs::path(folder) / n).string(), (shown.parent_path() / n).string());
    return files;
}

// A child: "name" and exactly one of "command" (a worker) or "supervisor".
// Its name is checked against the siblings before it, so a duplicate is
// reported at the second one.
void Loader::child(const Json &v, const std::string &pointer, core::ChildSpec &c, int depth,
                   Siblings &siblings) {
    if (!v.is_object()) {
        fail(pointer,
             "expected a child (an object with \"name\" and \"command\" or \"supervisor\")", v);
        return;
    }
    const Json *cmd = member(v, "command");
    const Json *sup = member(v, "supervisor");
    if (cmd && sup) {
        fail_with(pointer, "expected exactly one of command, supervisor", "both");
    } else if (!cmd && !sup) {
        fail_with(pointer, "expected exactly one of command, supervisor", "neither");
    }
    if (cmd && !sup) {
        check_keys(v, pointer, worker_keys());
    } else if (sup && !cmd) {
        check_keys(v, pointer, supervisor_child_keys(), &worker_keys(),
                   "a worker field, not allowed on a supervisor child");
    } else {
        // Which kind was meant is unclear: accept the keys of either.
        std::vector<std::string> either = worker_keys();
        either.push_back("supervisor");
        check_keys(v, pointer, either);
    }

    std::string name_pointer = child_pointer(pointer, "name");
    const Json *name = member(v, "name");
    bool named = false;
    if (!name) {
        fail_with(name_pointer, kChildName, kNothing);
    } else if (!name->is_string() || !valid_child_name(name->get_ref<const std::string &>())) {
        fail(name_pointer, kChildName, *name);
    } else {
        c.name = name->get<std::string>();
        named = true;
    }

    // With both, check both: every error is worth showing.
    std::optional<unsigned> instances;
    // "start": false holds a new node stopped (a worker, a pool, a supervisor).
    bool start = true;
    if (const Json *x = member(v, "start")) {
        if (x->is_boolean())
            start = x->get<bool>();
        else
            fail(child_pointer(pointer, "start"), "expected true or false", *x);
    }
    if (cmd) {
        auto w = std::make_shared<core::WorkerSpec>();
        auto l = std::make_shared<Launch>();
        worker(v, pointer, *w, *l);
        w->start = start;
        w->launch = std::move(l);
        instances = w->instances;
        c.worker = std::move(w);
    }
    if (sup) {
        c.is_supervisor = cmd == nullptr;
        auto s = std::make_shared<core::SupervisorSpec>();
        supervisor(*sup, child_pointer(pointer, "supervisor"), *s, depth + 1);
        if (const Json *x = member(v, "backoff"); x && !cmd)
            s->backoff = backoff(*x, child_pointer(pointer, "backoff"));
        s->start = start;
        c.supervisor = std::move(s);
    }

    if (named) {
        if (c.is_supervisor) instances.reset();
        if (auto clash = siblings.clash(c.name, instances, file_)) {
            fail_with(name_pointer, "expected a name unique among its siblings",
                      describe(*name) + clash->before + ", already used by " + clash->pointer +
                          clash->after);
        } else {
            siblings.add(c.name, instances, pointer, file_);
        }
    }
}

// The worker fields of README.md's table, in its order.
void Loader::worker(const Json &v, const std::string &pointer, core::WorkerSpec &w, Launch &l) {
    auto at = [&](const char *key) { return child_pointer(pointer, key); };
    if (const Json *x = member(v, "command")) command(*x, at("command"), l);
    if (const Json *x = member(v, "restart")) {
        using core::RestartType;
        if (auto e = one_of<RestartType>(*x, at("restart"),
                                         {{"permanent", RestartType::Permanent},
                                          {"transient", RestartType::Transient},
                                          {"temporary", RestartType::Temporary}}))
            w.restart = *e;
    }
    if (const Json *x = member(v, "instances"))
        if (auto n = integer(*x, at("instances"), 0, kMaxInstances))
            w.instances = static_cast<unsigned>(*n);
    if (const Json *x = member(v, "env")) env(*x, at("env"), l);
    l.cwd = dir_;
    if (const Json *x = member(v, "cwd")) {
        if (auto p = path(*x, at("cwd"), "expected a non-empty path")) {
            l.cwd = *p;
            if (checks_ == Checks::Machine && !host_.is_folder(l.cwd))
                fail(at("cwd"), "expected an existing folder", *x);
        }
    }
    if (checks_ == Checks::Machine && !l.command.empty())
        check_program(l, child_pointer(at("command"), std::size_t{0}));
    account(v, pointer, l);
    if (const Json *x = member(v, "ready")) {
        using core::ReadyMode;
        if (auto e = one_of<ReadyMode>(
                *x, at("ready"), {{"started", ReadyMode::Started}, {"notify", ReadyMode::Notify}}))
            w.ready = *e;
    }
    if (const Json *x = member(v, "start_timeout"))
        if (auto d = seconds(*x, at("start_timeout"), false)) w.start_timeout = *d;
    if (const Json *x = member(v, "stop_timeout"))
        if (auto d = seconds(*x, at("stop_timeout"), true)) w.stop_timeout = *d;
    if (const Json *x = member(v, "stop_signal")) stop_signal(*x, at("stop_signal"), w);
    if (const Json *x = member(v, "join")) join(*x, at("join"), l);
    if (const Json *x = member(v, "stdout"))
        output(*x, at("stdout"), l.out, w.instances.has_value());
    if (const Json *x = member(v, "stderr"))
        output(*x, at("stderr"), l.err, w.instances.has_value());
    if (const Json *x = member(v, "backoff")) w.backoff = backoff(*x, at("backoff"));
}

// "backoff": {"initial", "max", "factor", "jitter", "reset_after"}, "initial"
// required, the others with core::Backoff's defaults.
std::optional<core::Backoff> Loader::backoff(const Json &v, const std::string &pointer) {
    if (!v.is_object()) {
        fail(pointer,
             "expected an object {\"initial\": S, \"max\": S, \"factor\": F, \"jitter\": J, "
             "\"reset_after\": S}",
             v);
        return std::nullopt;
    }
    auto at = [&](const char *key) { return child_pointer(pointer, key); };
    std::size_t before = errors_.size();
    check_keys(v, pointer, backoff_keys());
    core::Backoff b;
    const Json *initial = member(v, "initial");
    std::optional<core::Duration> first;
    if (!initial)
        fail_with(at("initial"),
                  "expected a number of seconds greater than 0 and at most 1000000000", kNothing);
    else
        first = seconds(*initial, at("initial"), false);
    if (first) b.initial = *first;
    if (const Json *x = member(v, "max")) {
        if (auto d = seconds(*x, at("max"), false)) {
            if (first && *d < *first)
                fail(at("max"), "expected a number of seconds of at least \"initial\"", *x);
            b.max = *d;
        }
    } else if (first && *first > b.max) {
        fail(at("initial"), "expected a number of seconds of at most \"max\" (30 when not given)",
             *initial);
    }
    if (const Json *x = member(v, "factor")) {
        if (!x->is_number() || x->get<double>() < 1)
            fail(at("factor"), "expected a number of at least 1", *x);
        else
            b.factor = x->get<double>();
    }
    if (const Json *x = member(v, "jitter")) {
        if (!x->is_number() || x->get<double>() < 0 || x->get<double>() > 1)
            fail(at("jitter"), "expected a number from 0 to 1", *x);
        else
            b.jitter = x->get<double>();
    }
    if (const Json *x = member(v, "reset_after"))
        if (auto d = seconds(*x, at("reset_after"), false)) b.reset_after = *d;
    if (errors_.size() != before) return std::nullopt;
    return b;
}

void Loader::command(const Json &v, const std::string &pointer, Launch &l) {
    if (!v.is_array() || v.empty()) {
        fail(pointer, "expected a non-empty array of strings (the program and its arguments)", v);
        return;
    }
    std::vector<std::string> argv;
    bool ok = true;
    // The program must be named; an argument may be empty ("--save", "").
    if (const std::string *prog = text(v[0], child_pointer(pointer, std::size_t{0}),
                                       "expected a non-empty string (the program)"))
        argv.push_back(*prog);
    else
        ok = false;
    for (std::size_t i = 1; i < v.size(); ++i) {
        const Json &arg = v[i];
        if (!arg.is_string() ||
            arg.get_ref<const std::string &>().find('\0') != std::string::npos) {
            fail(child_pointer(pointer, i), "expected a string without NUL", arg);
            ok = false;
        } else {
            argv.push_back(arg.get<std::string>());
        }
    }
    if (!ok) return;
    // A program with a '/' is a path, relative ones from the spec's folder;
    // a bare name is looked up in PATH when it is started.
    if (argv[0].find('/') != std::string::npos) argv[0] = absolute(argv[0]);
    l.command = std::move(argv);
}

// As the launcher looks a program up (launcher.cpp): a name with '/' is that
// file; a bare name is tried in each folder of PATH (the spec's env PATH, else
// chipd's), an empty element being the worker's cwd. Permissions are chipd's.
void Loader::check_program(const Launch &l, const std::string &pointer) {
    const std::string &prog = l.command[0];
    Json shown(prog);
    if (prog.find('/') != std::string::npos) {
        if (auto ok = host_.executable(prog); !ok)
            fail_with(pointer, "expected an executable file",
                      describe(shown) + " (" + std::strerror(ok.error().code) + ")");
        return;
    }
    std::string search = host_.search_path();
    for (const auto &[k, v] : l.env)
        if (k == "PATH") search = v;
    int why = ENOENT;  // the most telling failure: a file found but not executable
    for (const auto &candidate : search_candidates(search, prog)) {
        // Relative folders are the worker's cwd's.
        auto ok = host_.executable((fs::path(l.cwd) / candidate).lexically_normal().string());
        if (ok) return;
        if (ok.error().code != ENOENT && ok.error().code != ENOTDIR) why = ok.error().code;
    }
    fail_with(pointer, "expected a program in PATH (" + search + ")",
              describe(shown) + (why == ENOENT ? ", not found"
                                               : ", found but " + std::string(std::strerror(why))));
}

// "env": extra variables, kept in spec order (ordered_json) so that the
// environment a worker sees is predictable.
void Loader::env(const Json &v, const std::string &pointer, Launch &l) {
    if (!v.is_object()) {
        fail(pointer, "expected an object of environment variables {\"NAME\": \"value\"}", v);
        return;
    }
    for (const auto &[key, value] : v.items()) {
        std::string p = child_pointer(pointer, key);
        bool ok = true;
        if (key.empty() || key.find('=') != std::string::npos ||
            key.find('\0') != std::string::npos) {
            fail_with(p, "expected a variable name, non-empty and without '='",
                      describe(Json(key)));
            ok = false;
        }
        if (!value.is_string() ||
            value.get_ref<const std::string &>().find('\0') != std::string::npos) {
            fail(p, "expected a string value", value);
            ok = false;
        }
        if (ok) l.env.emplace_back(key, value.get<std::string>());
    }
}

// "user" and "group": resolved now, so that a typo is a spec error rather than a
// start failure at 3 a.m. gid is the group if given, else the user's primary one.
void Loader::account(const Json &obj, const std::string &pointer, Launch &w) {
    std::optional<Account> user;
    std::optional<gid_t> group;
    const Json *u = member(obj, "user");
    const Json *g = member(obj, "group");
    if (u) {
        std::string p = child_pointer(pointer, "user");
        if (const std::string *name =
                text(*u, p, "expected an existing user (a name or a numeric id)")) {
            user = find_user(host_, *name);
            if (!user)
                fail(p, "expected an existing user (a name or a numeric id)", *u);
            else
                w.user = *name;
        }
    }
    if (g) {
        std::string p = child_pointer(pointer, "group");
        if (const std::string *name =
                text(*g, p, "expected an existing group (a name or a numeric id)")) {
            group = find_group(host_, *name);
            if (!group)
                fail(p, "expected an existing group (a name or a numeric id)", *g);
            else
                w.group = *name;
        }
    }
    if (user) {
        w.uid = user->uid;
        if (user->entry) w.login = Login{user->entry->name, user->entry->home, user->entry->shell};
        if (!group && !user->entry && !g) {
            // Running as a uid with chipd's own (often root's) group would be a surprise.
            fail(child_pointer(pointer, "user"),
                 "expected a user with a passwd entry, or a \"group\" beside a numeric user id",
                 *u);
        }
        w.gid =
            group ? group : (user->entry ? std::optional<gid_t>(user->entry->gid) : std::nullopt);
    } else if (group) {
        w.gid = group;
    }
}

// "stop_signal": a name ("TERM", "SIGTERM"), a number, or a number as text, as
// chip::parse_signal reads them (the same words chipctl signal takes).
void Loader::stop_signal(const Json &v, const std::string &pointer, core::WorkerSpec &w) {
    std::optional<int> sig;
    if (v.is_string()) {
        sig = parse_signal(v.get_ref<const std::string &>());
    } else if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() > 0 &&
               v.get<std::int64_t>() <= 64) {
        sig = parse_signal(std::to_string(v.get<std::int64_t>()));
    } else if (v.is_number_unsigned() && v.get<std::uint64_t>() <= 64) {
        sig = parse_signal(std::to_string(v.get<std::uint64_t>()));
    }
    if (!sig) {
        fail(pointer, "expected a signal name (TERM, INT, QUIT, HUP, USR1, ...) or number", v);
    } else if (*sig == SIGSTOP) {
        // A stopped process never exits: every stop would wait out stop_timeout.
        fail(pointer, "expected a signal that ends a process (STOP only suspends it)", v);
    } else {
        w.stop_signal = *sig;
    }
}

// "join": {"REGISTRY": ["GROUP", ...]}, each registry declared in /registries.
void Loader::join(const Json &v, const std::string &pointer, Launch &w) {
    if (!v.is_object()) {
        fail(pointer, "expected an object {\"REGISTRY\": [\"GROUP\", ...]}", v);
        return;
    }
    for (const auto &[registry, groups] : v.items()) {
        std::string p = child_pointer(pointer, registry);
        bool ok = true;
        if (!contains(declared_, registry)) {
            std::string known = declared_.empty() ? "there is none" : join_words(declared_);
            fail_with(p, "expected a registry declared in /registries (" + known + ")",
                      describe(Json(registry)));
            ok = false;
        }
        if (!groups.is_array()) {
            fail(p, "expected an array of group names", groups);
            continue;
        }
        std::vector<std::string> names;
        for (std::size_t i = 0; i < groups.size(); ++i) {
            const Json &g = groups[i];
            if (!g.is_string() || !valid_group_name(g.get_ref<const std::string &>())) {
                fail(child_pointer(p, i), kGroupName, g);
                ok = false;
            } else {
                names.push_back(g.get<std::string>());
            }
        }
        if (ok) w.join.emplace_back(registry, std::move(names));
    }
}

// A log file's placeholders: {name} and {instance} (a pool's only), in the
// file's name, not its folder (which is checked as it is written); no other
// brace.
void Loader::placeholders(const Json &f, const std::string &pointer, const fs::path &p, bool pool) {
    std::string folder = p.parent_path().string();
    if (folder.find_first_of("{}") != std::string::npos) {
        fail(pointer, "expected {name} and {instance} in the file's name only, not its folder", f);
        return;
    }
    std::string name = p.filename().string();
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] != '{' && name[i] != '}') continue;
        std::string_view rest = std::string_view(name).substr(i);
        if (rest.starts_with("{name}")) {
            i += 5;
        } else if (rest.starts_with("{instance}")) {
            if (!pool) {
                fail(pointer,
                     "expected {instance} only in a pool's log file (a worker with \"instances\")",
                     f);
                return;
            }
            i += 9;
        } else {
            fail(pointer, "expected no braces but the placeholders {name} and {instance}", f);
            return;
        }
    }
}

// "stdout"/"stderr": "inherit", "null" or a rotated file. The file's folder is
// checked now (it must exist, be writable, and be one chipd trusts): a spec
// whose workers could not write their logs, or would fail every start, is
// refused whole.
void Loader::output(const Json &v, const std::string &pointer, OutputSpec &o, bool pool) {
    if (v.is_string()) {
        const auto &s = v.get_ref<const std::string &>();
        if (s == "inherit")
            o.mode = OutputSpec::Mode::Inherit;
        else if (s == "null")
            o.mode = OutputSpec::Mode::Null;
        else
            fail(pointer, kOutput, v);
        return;
    }
    if (!v.is_object()) {
        fail(pointer, kOutput, v);
        return;
    }
    check_keys(v, pointer, output_keys());
    o.mode = OutputSpec::Mode::File;
    std::string file_pointer = child_pointer(pointer, "file");
    constexpr std::string_view kFile = "expected a file in an existing, writable folder";
    constexpr std::string_view kTrusted =
        "expected a file in a folder of chipd's user or root that no other user can write to "
        "(unless sticky)";
    if (const Json *f = member(v, "file")) {
        if (const std::string *raw = text(*f, file_pointer, kFile)) {
            fs::path p = fs::path(absolute(*raw));
            // "dir/", "." and ".." name folders, not files.
            bool names_file = !raw->empty() && raw->back() != '/' && p.filename() != "." &&
                              p.filename() != ".." && p.has_filename() && p != p.root_path();
            bool folder_ok = names_file && host_.is_writable_folder(p.parent_path().string());
            bool not_a_folder = !host_.is_folder(p.string());
            // chipd would refuse it at every start of the worker (README.md,
            // "Log files"): said now, with the folder's owner and mode.
            std::string refusal =
                folder_ok ? host_.log_folder_refusal(p.parent_path().string()) : "";
            if (!refusal.empty())
                fail_with(file_pointer, kTrusted, describe(*f) + ": " + refusal);
            else if (folder_ok && not_a_folder) {
                o.file = p.string();
                placeholders(*f, file_pointer, p, pool);
            } else {
                fail(file_pointer, kFile, *f);
            }
        }
    } else {
        fail_with(file_pointer, kFile, kNothing);
    }
    if (const Json *x = member(v, "max_bytes"))
        if (auto n = integer(*x, child_pointer(pointer, "max_bytes"), kMinMaxBytes, UINT64_MAX))
            o.max_bytes = *n;
    if (const Json *x = member(v, "keep"))
        if (auto n = integer(*x, child_pointer(pointer, "keep"), 1, kMaxKeep))
            o.keep = static_cast<unsigned>(*n);
}

// DIR absolute against CWD and lexically normal.
std::string absolute_dir(const std::string &dir, const std::string &cwd) {
    fs::path p = dir.empty() ? fs::path(".") : fs::path(dir);
    if (p.is_relative()) p = fs::path(cwd.empty() ? "/" : cwd) / p;
    std::string s = p.lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

}  // namespace

// Syntax errors end the load at once (there is no document to walk); every
// other error is collected and thrown together at the end.
Spec load_string(std::string_view text, const std::string &file_label, const std::string &dir,
                 const Host &host, Checks checks) {
    Document doc = parse_document(text, file_label);
    if (doc.syntax_error) throw SpecError(std::move(doc.errors));
    // Duplicate keys come first: they were found first, in document order.
    std::string abs_dir = absolute_dir(dir, host.current_dir());
    std::string self = (fs::path(abs_dir) / fs::path(file_label).filename()).string();
    Loader loader(file_label, abs_dir, self, std::move(doc.errors), host, checks);
    Spec spec = loader.load(doc.root);
    if (!loader.errors().empty()) throw SpecError(std::move(loader.errors()));
    spec.file = file_label;
    return spec;
}

core::ChildSpec load_child(std::string_view text, const std::string &label, const std::string &dir,
                           const std::vector<std::string> &registries, const Host &host) {
    Document doc = parse_document(text, label);
    if (doc.syntax_error) throw SpecError(std::move(doc.errors));
    Loader loader(label, absolute_dir(dir, host.current_dir()), "", std::move(doc.errors), host,
                  Checks::Spec);
    core::ChildSpec child = loader.load_child(doc.root, registries);
    if (!loader.errors().empty()) throw SpecError(std::move(loader.errors()));
    return child;
}

Spec load_file(const std::string &path, const Host &host, Checks checks) {
    auto text = host.read_file(path, kMaxFileSize);
    if (!text)
        throw SpecError(
            {path + ": unable to read: " +
             (text.error().code == EFBIG ? std::string("larger than 16 MiB")
                                         : std::string(std::strerror(text.error().code)))});
    fs::path parent = fs::path(path).parent_path();
    return load_string(*text, path, parent.empty() ? "." : parent.string(), host, checks);
}

}  // namespace chip::spec
