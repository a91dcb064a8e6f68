#include "daemon/requests.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>

#include "common/names.hpp"
#include "os/procfs.hpp"
#include "spec/diff.hpp"
#include "spec/loader.hpp"
#include "spec/spec.hpp"

namespace chip::daemon {

using nlohmann::json;

namespace {

json ok() {
    return json{{"ok", true}};
}

json error(int code, const std::string &message) {
    return json{{"ok", false}, {"error", message}, {"errno", errno_name(code)}};
}

json error(const Error &e) {
    return error(e.code, e.message);
}

json exit_json(const std::optional<core::ExitStatus> &s) {
    if (!s) return nullptr;
    if (s->signaled) return json{{"signal", signal_name(s->value)}};
    return json{{"code", s->value}};
}

// A NODE of README.md, "Protocol". Uptime counts while a process (or a
// supervisor's start) is under way, to the millisecond.
json node_json(const core::Node &n, core::Time now, RequestEffects &effects) {
    bool live = n.state == core::State::Running || n.state == core::State::Starting ||
                n.state == core::State::Stopping;
    auto up = std::chrono::duration_cast<std::chrono::milliseconds>(now - n.since);
    json j{{"path", n.path},
           {"kind", n.is_supervisor ? "supervisor" : "worker"},
           {"state", core::state_name(n.state)},
           {"pid", n.pid ? json(n.pid) : json(nullptr)},
           {"restarts", n.restarts},
           {"uptime_s", live ? json(up.count() / 1000.0) : json(nullptr)},
           {"last_exit", exit_json(n.last_exit)}};
    if (n.dynamic) j["dynamic"] = true;
    if (n.state == core::State::Failed && !n.reason.empty()) j["reason"] = n.reason;
    if (n.worker) {
        auto cg = effects.cgroup_of(n.id);
        j["cgroup"] = cg ? json(cg->path) : json(nullptr);
        j["cpu_s"] = cg && cg->cpu_s ? json(*cg->cpu_s) : json(nullptr);
    }
    if (const auto *exports = n.worker ? effects.exports_of(n.id) : nullptr) {
        json e = json::object();
        for (const auto &[k, v] : *exports) e[k] = v;
        j["exports"] = std::move(e);
    }
    if (n.state == core::State::Backoff && n.deadline != core::Time{}) {
        // Seconds until its restart, to the millisecond.
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(n.deadline - now);
        j["retry_in_s"] = std::max<std::int64_t>(left.count(), 0) / 1000.0;
    }
    return j;
}

json changes_json(const std::vector<core::Change> &changes) {
    json list = json::array();
    for (const auto &c : changes)
        list.push_back({{"path", c.path}, {"change", core::change_name(c.kind)}});
    return list;
}

// The supervisor at PATH's parent and PATH's last name ("a/b/web" -> a/b, web).
std::pair<std::string, std::string> split_path(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return {"/", path};
    return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::vector<std::string> paths_of(const std::vector<core::Node *> &nodes) {
    std::vector<std::string> out;
    for (const core::Node *n : nodes) out.push_back(n->path);
    return out;
}

// "path" of status and events: absent or null is the root. A wrong type
// throws: a bad request.
std::string path_of(const json &req) {
    auto it = req.find("path");
    if (it == req.end() || it->is_null()) return "/";
    if (!it->is_string()) throw std::invalid_argument("\"path\" must be a string");
    return it->get<std::string>();
}

// "path" of an op that acts on nodes: required, so that a misspelt key
// ("Path") never means the whole tree.
std::string required_path(const json &req) {
    auto it = req.find("path");
    if (it == req.end() || it->is_null())
        throw std::invalid_argument("\"path\" is required (\"/\" for the whole tree)");
    return path_of(req);
}

// "signal": a name ("TERM", "SIGTERM"), a number or a number as text. 0 (a
// probe, not a signal) and numbers past Linux's 64 are refused.
std::optional<int> signal_of(const json &req) {
    auto it = req.find("signal");
    if (it == req.end()) return std::nullopt;
    if (it->is_number_integer()) {
        long long n = it->get<long long>();
        if (n >= 1 && n <= 64) return static_cast<int>(n);
        return std::nullopt;
    }
    if (it->is_string()) return parse_signal(it->get<std::string>());
    return std::nullopt;
}

// "group" when it is a valid group name.
std::optional<std::string> group_of(const json &req) {
    auto g = req.find("group");
    if (g == req.end() || !g->is_string() || !valid_group_name(g->get<std::string>()))
        return std::nullopt;
    return g->get<std::string>();
}

const char *const kBadGroup = "invalid group name (expected [A-Za-z0-9_.:-]{1,64})";

// Past this a wait has no deadline: nanoseconds since the clock's origin must fit.
constexpr double kForever = 1e9;

// Where worker output O goes: "file", "inherit" (chipd's own stream) or "null".
const char *output_target(const spec::OutputSpec &o) {
    using Mode = spec::OutputSpec::Mode;
    return o.mode == Mode::File ? "file" : o.mode == Mode::Inherit ? "inherit" : "null";
}

// Node N's file for O ({name} and {instance} filled in), or null.
json output_file(const spec::OutputSpec &o, const core::Node &n) {
    return o.mode == spec::OutputSpec::Mode::File ? json(spec::log_file_of(o, n.base, n.instance))
                                                  : json(nullptr);
}

// What "usage" (and "verbose") add to a worker's NODE object J.
void add_usage(json &j, const core::Node &n, bool verbose, RequestEffects &fx) {
    const spec::Launch &l = *n.worker->launch;
    j["command"] = l.command;
    bool live = n.pid != 0;
    j["started_at"] = live ? json(fx.wall_time_of(n.since)) : json(nullptr);
    std::vector<pid_t> pids = live ? fx.processes_of(n.id, n.pid, verbose) : std::vector<pid_t>{};
    std::uint64_t rss = 0;
    double cpu = 0;
    bool any = false;
    for (pid_t p : pids) {
        if (auto r = os::process_rss_bytes(p)) {
            rss += *r;
            any = true;
        }
        if (auto s = os::process_cpu_seconds(p)) cpu += *s;
    }
    j["rss_bytes"] = any ? json(rss) : json(nullptr);
    // The cgroup's CPU count covers the exited processes too; else the live ones'.
    if (live && (!j.contains("cpu_s") || j["cpu_s"].is_null()) && any) j["cpu_s"] = cpu;
    if (!verbose) return;
    j["cwd"] = l.cwd;
    j["user"] = l.user ? json(*l.user) : json(nullptr);
    // A file, else where the stream goes.
    auto where = [&](const spec::OutputSpec &o) {
        json f = output_file(o, n);
        return f.is_null() ? json(output_target(o)) : f;
    };
    j["stdout"] = where(l.out);
    j["stderr"] = where(l.err);
    json procs = json::array();
    for (pid_t p : pids) procs.push_back({{"pid", p}, {"command", os::process_command(p)}});
    j["processes"] = procs;
}

}  // namespace

// The dispatch table: every op of README.md, "Protocol". Searched in order:
// twenty names, once per request.
const Requests::Op Requests::kOps[] = {
    {"status", &Requests::status},     {"start", &Requests::start},
    {"stop", &Requests::stop},         {"restart", &Requests::restart},
    {"signal", &Requests::signal},     {"wait", &Requests::wait},
    {"join", &Requests::join},         {"leave", &Requests::leave},
    {"members", &Requests::members},   {"groups", &Requests::groups},
    {"logs", &Requests::logs},         {"registries", &Requests::registries},
    {"shutdown", &Requests::shutdown}, {"reload", &Requests::reload},
    {"scale", &Requests::scale},       {"add", &Requests::add},
    {"remove", &Requests::remove},     {"events", &Requests::events},
    {"cluster", &Requests::cluster},   {"reexec", &Requests::reexec},
};

Requests::Requests(core::Tree &tree, Registries &registries, RequestEffects &fx)
    : tree_(tree), registries_(registries), fx_(fx) {}

json Requests::reexec_done(const std::string &version) {
    return json{{"ok", true}, {"version", version}};
}

json Requests::failed(const Error &e) {
    return error(e);
}

json Requests::oversized() {
    return error(EMSGSIZE, "request over 64 KiB");
}

std::string Requests::text(const json &resp) {
    return resp.dump(-1, ' ', false, json::error_handler_t::replace);
}

Requests::Reply Requests::handle_line(std::uint64_t conn, const os::PeerCred &peer,
                                      std::string_view line, core::Time now) {
    json req = json::parse(line, nullptr, false);
    if (req.is_discarded()) return {error(EPROTO, "malformed request: not a JSON object")};
    return handle(conn, peer, req, now);
}

Requests::Reply Requests::handle(std::uint64_t conn, const os::PeerCred &peer, const json &req,
                                 core::Time now) {
    if (!req.is_object() || !req.contains("op") || !req["op"].is_string())
        return {error(EPROTO, "malformed request: expected an object with a string \"op\"")};
    const auto &op = req["op"].get_ref<const std::string &>();
    for (const Op &o : kOps) {
        if (o.name != op) continue;
        // A field of the wrong type met deep in a handler (json's type errors)
        // answers EINVAL instead of ending chipd.
        try {
            return (this->*o.handler)(Call{conn, peer, req, now});
        } catch (const std::exception &e) {
            return {error(EINVAL, std::string("bad request: ") + e.what())};
        }
    }
    return {error(EOPNOTSUPP, "unknown operation \"" + op + "\"")};
}

// ---- the tree ---------------------------------------------------------------------

Requests::Reply Requests::status(const Call &c) {
    auto nodes = tree_.resolve(path_of(c.req));
    if (!nodes) return {error(nodes.error())};
    // Usage reads /proc per worker: only when asked (chipctl status does).
    auto flag = [&](const char *key) {
        auto it = c.req.find(key);
        return it != c.req.end() && it->is_boolean() && it->get<bool>();
    };
    bool verbose = flag("verbose");
    bool usage = verbose || flag("usage");
    json list = json::array();
    for (core::Node *n : *nodes)
        core::Tree::walk(*n, [&](core::Node &x) {
            json j = node_json(x, c.now, fx_);
            if (usage && x.worker) add_usage(j, x, verbose, fx_);
            list.push_back(std::move(j));
        });
    return {json{{"ok", true}, {"nodes", list}}};
}

Requests::Reply Requests::start(const Call &c) {
    return command(c, core::Command::Start);
}

Requests::Reply Requests::stop(const Call &c) {
    return command(c, core::Command::Stop);
}

Requests::Reply Requests::restart(const Call &c) {
    return command(c, core::Command::Restart);
}

Requests::Reply Requests::command(const Call &c, core::Command cmd) {
    auto ticket = tree_.command(cmd, required_path(c.req), c.now);
    if (!ticket) return {error(ticket.error())};
    // The core names the command by its ticket; settle() answers it once the
    // core has finished it.
    tickets_[*ticket] = Ticket{c.conn, std::nullopt};
    return {};
}

Requests::Reply Requests::deferred(const Call &c, std::uint64_t ticket,
                                   std::vector<core::Change> changes) {
    tickets_[ticket] = Ticket{c.conn, std::move(changes)};
    return {};
}

// ---- a live tree ----------------------------------------------------------------

Requests::Reply Requests::reload(const Call &c) {
    std::string path;
    if (auto it = c.req.find("spec"); it != c.req.end() && !it->is_null()) {
        if (!it->is_string() || it->get_ref<const std::string &>().empty())
            return {error(EINVAL, "\"spec\" must be a path or null")};
        path = it->get<std::string>();
    }
    bool dry_run = false;
    if (auto it = c.req.find("dry_run"); it != c.req.end() && !it->is_null()) {
        if (!it->is_boolean()) return {error(EINVAL, "\"dry_run\" must be true or false")};
        dry_run = it->get<bool>();
    }
    return begin_reload(c.conn, path, dry_run, c.now);
}

std::optional<Requests::json> Requests::reload_self(core::Time now) {
    auto r = begin_reload(std::nullopt, "", false, now);
    return r.body && !(*r.body)["ok"].get<bool>() ? r.body : std::nullopt;
}

Requests::Reply Requests::begin_reload(std::optional<std::uint64_t> conn, const std::string &path,
                                       bool dry_run, core::Time now) {
    if (tree_.shutting_down()) return {error(ECANCELED, "chipd is shutting down")};
    if (reload_) return {error(EBUSY, "a reload is under way")};
    auto loaded = fx_.load_spec(path);
    if (!loaded.spec) {
        json e = error(EINVAL, "the spec is invalid (" + std::to_string(loaded.errors.size()) +
                                   (loaded.errors.size() == 1 ? " error)" : " errors)"));
        e["errors"] = loaded.errors;
        return {e};
    }
    if (auto why = fx_.refused(*loaded.spec); !why.empty()) {
        json e = error(EINVAL, why.front());
        e["errors"] = why;
        return {e};
    }
    core::Plan plan = spec::diff(tree_.root(), *loaded.spec->root);
    if (dry_run) return {json{{"ok", true}, {"changes", changes_json(plan.changes)}}};
    fx_.reload_begins(*loaded.spec, plan.changes);
    reload_ = std::make_unique<core::Reload>(tree_, std::move(plan));
    reload_conn_ = conn;
    reload_spec_ = std::move(loaded.spec);
    reload_->begin(now);
    return {};
}

Requests::Reply Requests::scale(const Call &c) {
    auto [parent, name] = split_path(required_path(c.req));
    auto count = c.req.find("count");
    if (count == c.req.end() || !count->is_number_integer() || count->get<long long>() < 0 ||
        count->get<long long>() > 100000)
        return {error(EINVAL, "\"count\" must be an integer from 0 to 100000")};
    auto sup = tree_.resolve(parent);
    if (!sup || sup->size() != 1 || !core::Tree::pool(*sup->front(), name))
        return {error(EINVAL, required_path(c.req) + " is not a pool")};
    core::Node &s = *sup->front();
    // Paths, not nodes: the core erases stopped instances within scale().
    auto before = paths_of(core::Tree::instances(s, name));
    unsigned want = static_cast<unsigned>(count->get<long long>());
    auto ticket = tree_.scale(s, name, want, c.now);
    if (!ticket) return {error(ticket.error())};
    std::vector<core::Change> changes;
    std::string base = s.parent ? s.path + "/" + name : name;
    for (std::size_t k = before.size(); k < want; ++k)
        changes.push_back({base + "." + std::to_string(k), core::Change::Kind::Add});
    for (std::size_t k = before.size(); k-- > want;)
        changes.push_back({before[k], core::Change::Kind::Remove});
    return deferred(c, *ticket, std::move(changes));
}

Requests::Reply Requests::add(const Call &c) {
    auto sup = tree_.resolve(required_path(c.req));
    if (!sup) return {error(sup.error())};
    if (sup->size() != 1 || !sup->front()->is_supervisor)
        return {error(EINVAL, required_path(c.req) + " is not a supervisor")};
    auto child = c.req.find("child");
    if (child == c.req.end() || !(child->is_object() || child->is_string()))
        return {error(EINVAL, "expected \"child\": a spec child (an object)")};
    auto text_of = [&](const char *key, std::string fallback) {
        auto it = c.req.find(key);
        return it != c.req.end() && it->is_string() ? it->get<std::string>() : fallback;
    };
    std::vector<std::string> registries;
    for (const auto &r : registries_.all()) registries.push_back(r->spec.name);
    core::ChildSpec spec;
    try {
        spec =
            spec::load_child(child->is_string() ? child->get<std::string>() : child->dump(),
                             text_of("file", "child"), text_of("dir", fx_.spec_dir()), registries);
    } catch (const spec::SpecError &e) {
        json err = error(EINVAL, e.errors().front());
        err["errors"] = e.errors();
        return {err};
    }
    core::Node &s = *sup->front();
    auto added = tree_.add(s, s.children.size(), spec, c.now, true);
    if (!added) return {error(added.error())};
    std::vector<core::Change> changes;
    std::string path = s.parent ? s.path + "/" + spec.name : spec.name;
    if (!spec.is_supervisor && spec.worker->instances) {
        for (unsigned k = 0; k < *spec.worker->instances; ++k)
            changes.push_back({path + "." + std::to_string(k), core::Change::Kind::Add});
    } else {
        changes.push_back({path, core::Change::Kind::Add});
    }
    return deferred(c, added->ticket, std::move(changes));
}

Requests::Reply Requests::remove(const Call &c) {
    std::string path = required_path(c.req);
    auto [parent, name] = split_path(path);
    auto sup = tree_.resolve(parent);
    bool pool = sup && sup->size() == 1 && core::Tree::pool(*sup->front(), name) &&
                path.find_first_not_of('/') != std::string::npos;
    if (pool) {
        core::Node &s = *sup->front();
        auto instances = paths_of(core::Tree::instances(s, name));
        auto ticket = tree_.remove_pool(s, name, c.now);
        if (!ticket) return {error(ticket.error())};
        std::vector<core::Change> changes;
        for (auto it = instances.rbegin(); it != instances.rend(); ++it)
            changes.push_back({*it, core::Change::Kind::Remove});
        return deferred(c, *ticket, std::move(changes));
    }
    auto nodes = tree_.resolve(path);
    if (!nodes) return {error(nodes.error())};
    core::Node &n = *nodes->front();
    if (!n.parent) return {error(EINVAL, "the root cannot be removed (chipctl shutdown stops it)")};
    if (n.pooled())
        return {error(EINVAL, n.path + " is an instance of the pool " + n.base +
                                  ": change its size with chipctl scale")};
    std::string removed = n.path;  // a stopped N is erased within remove()
    auto ticket = tree_.remove(n, c.now);
    if (!ticket) return {error(ticket.error())};
    return deferred(c, *ticket, {{removed, core::Change::Kind::Remove}});
}

// ---- the event stream ------------------------------------------------------------

Requests::Reply Requests::events(const Call &c) {
    std::string path = path_of(c.req);
    Subscribers::Filter filter;
    auto [parent, name] = split_path(path);
    auto sup = tree_.resolve(parent);
    bool named = false;  // a node of that name hides a pool of it
    if (sup && sup->size() == 1)
        for (const auto &child : sup->front()->children) named = named || child->name == name;
    if (sup && sup->size() == 1 && !named && core::Tree::pool(*sup->front(), name) &&
        path.find_first_not_of('/') != std::string::npos) {
        filter.pool_parent = sup->front()->path;
        filter.pool = name;
    } else {
        auto nodes = tree_.resolve(path);
        if (!nodes) return {error(nodes.error())};
        for (core::Node *n : *nodes) filter.paths.push_back(n->path);
    }
    subscribers_.add(c.conn, std::move(filter));
    // The stream follows on this connection, which takes no more requests.
    return {ok(), true};
}

Requests::Reply Requests::wait(const Call &c) {
    auto nodes = tree_.resolve(required_path(c.req));
    if (!nodes) return {error(nodes.error())};
    Waiter w{c.conn, {}, {}, std::nullopt};
    for (core::Node *n : *nodes) {
        w.ids.push_back(n->id);
        w.paths.push_back(n->path);
    }
    // Ready already: answered before the timeout is even looked at.
    if (auto done = wait_outcome(w, c.now)) return {*done};
    if (auto it = c.req.find("timeout"); it != c.req.end() && !it->is_null()) {
        if (!it->is_number() || it->get<double>() < 0)
            return {error(EINVAL, "\"timeout\" must be a number of seconds >= 0")};
        double s = it->get<double>();
        if (s < kForever)
            w.deadline =
                c.now + std::chrono::duration_cast<core::Time>(std::chrono::duration<double>(s));
    }
    waiters_.push_back(std::move(w));
    return {};
}

std::optional<json> Requests::wait_outcome(const Waiter &w, core::Time now) {
    bool ready = true;
    for (std::size_t i = 0; i < w.ids.size(); ++i) {
        // Removed meanwhile: it will never be ready.
        const core::Node *n = tree_.node_by_id(w.ids[i]);
        if (!n) return error(ENOENT, w.paths[i] + " was removed");
        if (!n->ready()) ready = false;
    }
    if (ready) return ok();
    if (w.deadline && *w.deadline <= now)
        return error(ETIMEDOUT, "timed out waiting for readiness");
    return std::nullopt;
}

Requests::Reply Requests::signal(const Call &c) {
    auto sig = signal_of(c.req);
    if (!sig) return {error(EINVAL, "expected \"signal\": a signal name or number")};
    json pids = json::array();
    if (c.req.contains("group") && c.req.contains("path"))
        return {error(EINVAL, "give \"path\" or \"group\", not both")};
    if (auto cl = c.req.find("cluster"); cl != c.req.end() && !cl->is_null()) {
        if (!cl->is_boolean()) return {error(EINVAL, "\"cluster\" must be true or false")};
        if (cl->get<bool>()) {
            // Every host's members: through etcd, answered once the nodes have.
            auto group = group_of(c.req);
            if (!group) return {error(EINVAL, "a cluster-wide signal needs \"group\"")};
            std::optional<json> err;
            Registry *r = registry_of(c.req, err);
            if (!r) return {*err};
            double timeout = 2.0;
            if (auto t = c.req.find("timeout"); t != c.req.end() && !t->is_null()) {
                if (!t->is_number() || t->get<double>() <= 0 || t->get<double>() > 60)
                    return {error(EINVAL, "\"timeout\" must be a number of seconds from 0 to 60")};
                timeout = t->get<double>();
            }
            if (!fx_.cluster_signal(c.conn, r->spec.name, *group, *sig,
                                    std::chrono::milliseconds(static_cast<long>(timeout * 1000))))
                return {error(ENOTCONN, "the spec has no \"cluster\"")};
            return {std::nullopt};
        }
    }
    if (c.req.contains("group")) {
        auto group = group_of(c.req);
        if (!group) return {error(EINVAL, "invalid group name")};
        std::optional<json> err;
        Registry *r = registry_of(c.req, err);
        if (!r) return {*err};
        // Only the pids the signal reached are listed (a member may be gone).
        for (pid_t p : r->table.members(*group))
            if (fx_.kill(p, *sig) == 0) pids.push_back(p);
        return {json{{"ok", true}, {"pids", pids}}};
    }
    std::string path = required_path(c.req);
    auto nodes = tree_.resolve(path);
    if (!nodes) return {error(nodes.error())};
    for (core::Node *n : *nodes)
        core::Tree::walk(*n, [&](core::Node &x) {
            if (!x.is_supervisor && x.pid && fx_.kill(x.pid, *sig) == 0) pids.push_back(x.pid);
        });
    // A path with nothing running: worth telling, unlike an empty group.
    if (pids.empty()) return {error(ESRCH, "no running worker at " + path)};
    return {json{{"ok", true}, {"pids", pids}}};
}

Requests::Reply Requests::cluster(const Call &) {
    auto status = fx_.cluster_status();
    if (!status) return {error(ENOTCONN, "the spec has no \"cluster\"")};
    json out = *status;
    out["ok"] = true;
    return {out};
}

json Requests::cluster_signal_answer(const std::map<std::string, std::vector<pid_t>> &signalled,
                                     const std::vector<std::string> &silent,
                                     const std::string &err) {
    if (!err.empty()) return error(ENOTCONN, "cluster: " + err);
    json nodes = json::object();
    for (const auto &[node, pids] : signalled) nodes[node] = pids;
    return json{{"ok", true}, {"nodes", nodes}, {"silent", silent}};
}

Requests::Reply Requests::logs(const Call &c) {
    std::string path = required_path(c.req);
    auto nodes = tree_.resolve(path);
    if (!nodes) return {error(nodes.error())};
    if (nodes->size() == 1 && (*nodes)[0]->is_supervisor)
        return {error(EINVAL, path + " is a supervisor: name a worker or a pool")};
    // Per worker (a pool's instances in order): each stream's file, or where
    // it goes when it is not a file.
    json workers = json::array();
    for (const core::Node *n : *nodes) {
        const spec::Launch &l = *n->worker->launch;
        workers.push_back({{"path", n->path},
                           {"stdout", output_file(l.out, *n)},
                           {"stderr", output_file(l.err, *n)},
                           {"stdout_to", output_target(l.out)},
                           {"stderr_to", output_target(l.err)}});
    }
    // An empty pool has nothing to show.
    if (workers.empty()) return {error(ESRCH, "no worker at " + path + " (an empty pool)")};
    json reply{{"ok", true}, {"workers", workers}};
    reply["stdout"] = workers[0]["stdout"];
    reply["stderr"] = workers[0]["stderr"];
    return {std::move(reply)};
}

Requests::Reply Requests::reexec(const Call &c) {
    if (tree_.shutting_down()) return {error(ECANCELED, "chipd is shutting down")};
    if (reload_) return {error(EBUSY, "a reload is under way; reexec once it is over")};
    if (auto refused = fx_.reexec(c.conn)) return {error(*refused)};
    return {std::nullopt};  // answered by the new chipd
}

Requests::Reply Requests::shutdown(const Call &) {
    if (!tree_.shutting_down()) fx_.shutdown();
    return {ok(), true};  // nothing more from this connection
}

// ---- the registries ---------------------------------------------------------------

Registry *Requests::registry_of(const json &req, std::optional<json> &err) {
    // Omitted or null: the only one, when there is exactly one.
    const auto &all = registries_.all();
    auto it = req.find("registry");
    if (it == req.end() || it->is_null()) {
        if (all.size() == 1) return all[0].get();
        err = error(EINVAL, all.empty() ? "the spec declares no registry"
                                        : "several registries: name one with \"registry\"");
        return nullptr;
    }
    if (!it->is_string()) {
        err = error(EINVAL, "\"registry\" must be a string");
        return nullptr;
    }
    if (Registry *r = registries_.find(it->get<std::string>())) return r;
    err = error(ENOENT, "unknown registry \"" + it->get<std::string>() + "\"");
    return nullptr;
}

Requests::Reply Requests::join(const Call &c) {
    return join_or_leave(c, true);
}

Requests::Reply Requests::leave(const Call &c) {
    return join_or_leave(c, false);
}

Requests::Reply Requests::join_or_leave(const Call &c, bool join) {
    auto group = group_of(c.req);
    if (!group) return {error(EINVAL, kBadGroup)};
    std::optional<json> err;
    Registry *r = registry_of(c.req, err);
    if (!r) return {*err};
    // The peer itself by default (SO_PEERCRED); else a pid the kernel may
    // hand out: 1 to kernel.pid_max.
    pid_t pid = c.peer.pid;
    if (auto p = c.req.find("pid"); p != c.req.end() && !p->is_null()) {
        const long long max = fx_.pid_max();
        if (!p->is_number_integer() || p->get<long long>() <= 0 || p->get<long long>() > max)
            return {error(EINVAL, "\"pid\" must be an integer from 1 to " + std::to_string(max) +
                                      " (kernel.pid_max)")};
        pid = static_cast<pid_t>(p->get<long long>());
    }
    // Leaving follows the same rules as joining (README.md, "Protocol").
    auto done = join ? registries_.join(*r, *group, pid, c.peer)
                     : registries_.leave(*r, *group, pid, c.peer);
    if (!done) return {error(done.error())};
    return {ok()};
}

Requests::Reply Requests::members(const Call &c) {
    std::optional<json> err;
    Registry *r = registry_of(c.req, err);
    if (!r) return {*err};
    auto group = group_of(c.req);
    if (!group) return {error(EINVAL, kBadGroup)};
    json pids = json::array();
    for (pid_t p : r->table.members(*group)) pids.push_back(p);
    return {json{{"ok", true}, {"pids", pids}}};
}

Requests::Reply Requests::groups(const Call &c) {
    std::optional<json> err;
    Registry *r = registry_of(c.req, err);
    if (!r) return {*err};
    json obj = json::object();
    for (const auto &[name, count] : r->table.groups()) obj[name] = count;
    return {json{{"ok", true}, {"groups", obj}}};
}

Requests::Reply Requests::registries(const Call &) {
    json list = json::array();
    for (const auto &r : registries_.all())
        list.push_back(
            {{"name", r->spec.name},
             {"shm", r->shm_name.empty() ? json(nullptr) : json("/dev/shm" + r->shm_name)},
             {"max_groups", r->spec.max_groups},
             {"max_members", r->spec.max_members}});
    return {json{{"ok", true}, {"registries", list}}};
}

// ---- deferred answers -------------------------------------------------------------

std::vector<Requests::Answer> Requests::settle(core::Time now) {
    // Commands first, in the order the core finished them; then waits.
    std::vector<Answer> out;
    for (auto done = tree_.take_finished(); !done.empty(); done = tree_.take_finished()) {
        for (auto &f : done) {
            // The reload's own steps: they may begin its next phase, whose
            // tickets come round in this loop.
            if (reload_ && reload_->on_finished(f, now)) continue;
            auto it = tickets_.find(f.ticket);
            if (it == tickets_.end()) continue;  // its connection has gone
            json body = f.result ? ok() : error(f.result.error());
            if (it->second.changes) body["changes"] = changes_json(*it->second.changes);
            out.push_back({it->second.conn, std::move(body)});
            tickets_.erase(it);
        }
    }
    if (reload_ && reload_->done()) {
        Result<void> result = reload_->result();
        json body = result ? ok() : error(result.error());
        body["changes"] = changes_json(reload_->changes());
        if (reload_conn_) out.push_back({*reload_conn_, std::move(body)});
        reload_.reset();
        reload_conn_.reset();
        fx_.reload_ends(result, std::move(*reload_spec_));
        reload_spec_.reset();
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (auto done = wait_outcome(*it, now)) {
            out.push_back({it->conn, std::move(*done)});
            it = waiters_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

std::optional<core::Time> Requests::next_deadline() const {
    std::optional<core::Time> next;
    for (const auto &w : waiters_)
        if (w.deadline && (!next || *w.deadline < *next)) next = w.deadline;
    return next;
}

// The commands go on: only their answers have nobody left to go to.
void Requests::forget(std::uint64_t conn) {
    waiters_.remove_if([conn](const Waiter &w) { return w.conn == conn; });
    std::erase_if(tickets_, [conn](const auto &t) { return t.second.conn == conn; });
    if (reload_conn_ == conn) reload_conn_.reset();
    subscribers_.remove(conn);
}

}  // namespace chip::daemon
