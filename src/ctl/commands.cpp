#include "ctl/commands.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "chip/chip.h"
#include "client/connection.hpp"
#include "client/published.hpp"
#include "common/names.hpp"
#include "ctl/format.hpp"
#include "ctl/tail.hpp"
#include "os/clock.hpp"
#include "os/file.hpp"
#include "os/self.hpp"

namespace chip::ctl {

namespace {

using nlohmann::json;

// An interactive command: polling a log file ten times a second is plenty.
constexpr std::chrono::milliseconds kFollowPoll{100};
// How much longer than its --timeout `wait` waits for chipd's answer.
constexpr std::chrono::seconds kWaitGrace{1};

void complain(const std::string &message) {
    std::cerr << "chipctl: " << message << '\n';
}

int usage_error(const std::string &command, const std::string &message) {
    complain(message);
    std::cerr << "Run 'chipctl " << command << " --help' for more information.\n";
    return kExitUsage;
}

std::string quoted(const std::string &s) {
    return '"' + s + '"';
}

// A request's outcome: chipd's response (ok or not) when EXIT is kExitOk;
// otherwise a transport failure, already reported.
struct Reply {
    int exit = kExitOk;
    json body;

    bool ok() const {
        auto it = body.find("ok");
        return exit == kExitOk && it != body.end() && it->is_boolean() && it->get<bool>();
    }
    std::string errno_name() const {
        auto it = body.find("errno");
        return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
    }
};

// S seconds as the user wrote them: "2", "0.5".
std::string seconds_text(double s) {
    std::ostringstream out;
    out << s;
    return out.str();
}

// The command's deadline passed before chipd answered (stopped, hung, or
// busier than --timeout allows): kExitUnreachable.
int unanswered(const Context &ctx) {
    complain("chipd at " + ctx.socket + " did not answer within " + seconds_text(ctx.timeout_s) +
             " s");
    return kExitUnreachable;
}

// A connection to chipd by the command's deadline; nullopt when there is none
// (reported: the exit code is kExitUnreachable).
std::optional<client::Connection> connect(const Context &ctx) {
    auto conn = client::Connection::open(ctx.socket, ctx.deadline);
    if (conn) return std::move(*conn);
    if (conn.error().code == ETIMEDOUT)
        unanswered(ctx);
    else
        complain(conn.error().message);
    return std::nullopt;
}

// The exit code of a request that failed in transport.
int lost(const Context &ctx, const Error &e) {
    if (e.code == ETIMEDOUT) return unanswered(ctx);
    complain("lost chipd at " + ctx.socket + ": " + e.message);
    return e.code == EPROTO ? kExitFailed : kExitUnreachable;
}

// One request on a fresh connection, by the command's deadline. Not reaching chipd, losing it
// before the answer (it died) or no answer in time is kExitUnreachable; a garbled answer is a
// failure.
Reply call(const Context &ctx, const json &request) {
    auto conn = connect(ctx);
    if (!conn) return {kExitUnreachable, {}};
    auto response = conn->request(request, ctx.deadline);
    if (!response) return {lost(ctx, response.error()), {}};
    return {kExitOk, std::move(*response)};
}

// Reports an {"ok": false} response; returns the exit code for it.
int failed(const Reply &reply) {
    auto it = reply.body.find("error");
    if (it != reply.body.end() && it->is_string())
        complain(it->get<std::string>());
    else
        complain(
            "chipd refused the request (" +
            (reply.errno_name().empty() ? std::string("no reason given") : reply.errno_name()) +
            ")");
    return kExitFailed;
}

// The exit code of a request whose success prints nothing.
int simple(const Context &ctx, const json &request) {
    Reply reply = call(ctx, request);
    if (reply.exit != kExitOk) return reply.exit;
    return reply.ok() ? kExitOk : failed(reply);
}

std::string join_names(const std::vector<std::string> &names) {
    std::string out;
    for (const auto &n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

int several_registries(const std::string &command, const std::vector<std::string> &names) {
    return usage_error(command,
                       "several registries (" + join_names(names) + "): choose one with -r");
}

// After chipd answered EINVAL to a request with a null registry: if that is
// because it serves several, it is the user's usage error (README.md, "chipctl":
// -r defaults to the only registry); else chipd's own error stands.
int registry_ambiguous_or(const Context &ctx, const std::string &command, const Reply &original) {
    Reply reply = call(ctx, json{{"op", "registries"}});
    if (reply.ok()) {
        auto it = reply.body.find("registries");
        if (it != reply.body.end() && it->is_array() && it->size() > 1) {
            std::vector<std::string> names;
            for (const auto &r : *it)
                if (r.is_object() && r.contains("name") && r["name"].is_string())
                    names.push_back(r["name"].get<std::string>());
            return several_registries(command, names);
        }
    }
    return failed(original);
}

bool check_group(const std::string &group) {
    if (valid_group_name(group)) return true;
    complain("invalid group name " + quoted(group) + " (expected [A-Za-z0-9_.:-]{1,64})");
    return false;
}

bool check_registry(const std::optional<std::string> &registry) {
    if (!registry || valid_group_name(*registry)) return true;
    complain("invalid registry name " + quoted(*registry) + " (expected [A-Za-z0-9_.:-]{1,64})");
    return false;
}

json registry_json(const std::optional<std::string> &registry) {
    return registry ? json(*registry) : json(nullptr);
}

// libchip's handle, closed on every path.
struct ClientDeleter {
    void operator()(chip_client *c) const { chip_close(c); }
};
using Client = std::unique_ptr<chip_client, ClientDeleter>;

// libchip's handle for members and groups, which read the shared memory
// without connecting (so they work for a user who may not connect, and while
// chipd is SIGSTOPped). What libchip will trust is checked here first, to say
// why not: no chipd there or a runtime folder not to be trusted (exit 3), an
// index of the registries not to be trusted (1).
Client connect_client(const Context &ctx, int &exit) {
    uid_t owner = 0;
    auto folder = client::reach_socket(os::absolute_path(ctx.socket), os::real_uid(), owner);
    if (!folder) {
        complain(folder.error().message);
        exit = kExitUnreachable;
        return nullptr;
    }
    if (auto published = client::read_published(*folder, owner); !published) {
        complain(published.error().message);
        exit = kExitFailed;
        return nullptr;
    }
    Client c(chip_connect(ctx.socket.c_str()));
    if (!c) {
        complain("cannot reach chipd at " + ctx.socket + ": " + std::strerror(errno));
        exit = kExitUnreachable;
    }
    return c;
}

std::string libchip_error(ssize_t code, const std::string &registry, const std::string &what) {
    if (code == -ENOENT) return "unknown registry " + quoted(registry);
    // The folder and the index passed connect_client's checks: the region failed.
    if (code == -EPERM)
        return what + ": the shared memory of registry " + quoted(registry) +
               " is not to be trusted (not chipd's, or writable by others)";
    return what + ": " + chip_strerror(static_cast<int>(code));
}

// The registry to read: GIVEN, else the only one chipd serves. Sets OUT, or
// reports and returns the exit code.
int pick_registry(chip_client *c, const std::string &command,
                  const std::optional<std::string> &given, std::string &out) {
    if (given) {
        if (!check_registry(given)) return kExitFailed;
        out = *given;
        return kExitOk;
    }
    std::size_t cap = 8;
    for (;;) {
        auto names = std::make_unique<char[][65]>(cap);
        ssize_t n = chip_registries(c, names.get(), cap);
        if (n < 0) {
            complain(std::string("cannot list the registries: ") +
                     chip_strerror(static_cast<int>(n)));
            return kExitFailed;
        }
        if (static_cast<std::size_t>(n) > cap) {
            cap = static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0) {
            complain("no registry");
            return kExitFailed;
        }
        std::vector<std::string> list;
        for (ssize_t i = 0; i < n; ++i) list.emplace_back(names[i], strnlen(names[i], 65));
        if (list.size() > 1) return several_registries(command, list);
        out = list.front();
        return kExitOk;
    }
}

}  // namespace

namespace {

// `status -v`: a block per worker under the table.
void print_details(const json &node) {
    auto text = [&](const char *key) {
        auto it = node.find(key);
        return it != node.end() && it->is_string() ? it->get<std::string>() : std::string("-");
    };
    std::cout << '\n' << text("path") << '\n';
    std::cout << "  command:   " << format_command(node.value("command", json()), 0) << '\n';
    std::cout << "  cwd:       " << text("cwd") << '\n';
    std::cout << "  user:      "
              << (node.value("user", json()).is_string() ? text("user") : "(chipd's)") << '\n';
    std::cout << "  stdout:    " << text("stdout") << "\n  stderr:    " << text("stderr") << '\n';
    if (auto p = node.find("processes"); p != node.end() && p->is_array() && !p->empty()) {
        std::cout << "  processes:\n";
        for (const auto &x : *p)
            std::cout << "    " << x.value("pid", 0) << "  " << x.value("command", "") << '\n';
    }
    if (auto e = node.find("exports"); e != node.end() && e->is_object())
        for (const auto &[k, v] : e->items())
            std::cout << "  export:    " << k << '=' << (v.is_string() ? v.get<std::string>() : "")
                      << '\n';
    // The last lines of its log: its stdout's file, else its stderr's.
    std::string file = text("stdout");
    if (file.empty() || file[0] != '/') file = text("stderr");
    if (!file.empty() && file[0] == '/') {
        std::cout << "  last lines of " << file << ":\n";
        std::cout.flush();
        auto shown = show_files({{"   ", file}}, 5, false, STDOUT_FILENO, kFollowPoll);
        if (!shown) std::cout << "    (" << shown.error().message << ")\n";
    }
}

}  // namespace

int cmd_status(const Context &ctx, const std::string &path, bool verbose) {
    // With the usage columns (CPU, RSS, start, command), which chipd reads
    // from /proc only when asked.
    json request{{"op", "status"}, {"path", path}, {"usage", true}};
    if (verbose) request["verbose"] = true;
    Reply reply = call(ctx, request);
    if (reply.exit != kExitOk) return reply.exit;
    if (!reply.ok()) return failed(reply);
    const json nodes = reply.body.value("nodes", json::array());
    if (ctx.json) {
        std::cout << nodes.dump() << '\n';
        return kExitOk;
    }
    std::cout << format_status_table(nodes);
    if (verbose)
        for (const auto &n : nodes)
            if (n.is_object() && n.value("kind", "") == "worker") print_details(n);
    return kExitOk;
}

int cmd_members(const Context &ctx, const std::optional<std::string> &registry,
                const std::string &group, bool cluster) {
    if (!check_group(group)) return kExitFailed;
    int exit = kExitOk;
    Client c = connect_client(ctx, exit);
    if (!c) return exit;
    std::string reg;
    if (int rc = pick_registry(c.get(), "members", registry, reg); rc != kExitOk) return rc;
    if (cluster) {
        // Every host's members, from the cluster view: NODE PID lines.
        std::vector<chip_cluster_member> all(64);
        for (;;) {
            ssize_t n =
                chip_members_cluster(c.get(), reg.c_str(), group.c_str(), all.data(), all.size());
            if (n < 0) {
                complain(
                    n == -ENOTCONN
                        ? "members --cluster: chipd's spec has no \"cluster\""
                        : libchip_error(n, reg, "cannot read the cluster members of " + group));
                return kExitFailed;
            }
            if (static_cast<std::size_t>(n) <= all.size()) {
                all.resize(static_cast<std::size_t>(n));
                break;
            }
            all.resize(static_cast<std::size_t>(n) + static_cast<std::size_t>(n) / 4 + 8);
        }
        if (ctx.json) {
            json out = json::array();
            for (const auto &m : all)
                out.push_back({{"node", std::string(m.node, strnlen(m.node, 65))}, {"pid", m.pid}});
            std::cout << out.dump() << '\n';
        } else {
            for (const auto &m : all)
                std::cout << std::string(m.node, strnlen(m.node, 65)) << ' ' << m.pid << '\n';
        }
        return kExitOk;
    }

    // The group may grow between two reads: retry until the buffer holds it all.
    std::vector<pid_t> pids(64);
    for (;;) {
        ssize_t n = chip_members(c.get(), reg.c_str(), group.c_str(), pids.data(), pids.size());
        if (n < 0) {
            complain(libchip_error(n, reg, "cannot read the members of " + group));
            return kExitFailed;
        }
        if (static_cast<std::size_t>(n) <= pids.size()) {
            pids.resize(static_cast<std::size_t>(n));
            break;
        }
        pids.resize(static_cast<std::size_t>(n) + static_cast<std::size_t>(n) / 4 + 8);
    }
    if (ctx.json) {
        std::cout << json(pids).dump() << '\n';
    } else {
        for (pid_t p : pids) std::cout << p << '\n';
    }
    return kExitOk;
}

int cmd_groups(const Context &ctx, const std::optional<std::string> &registry, bool cluster) {
    int exit = kExitOk;
    Client c = connect_client(ctx, exit);
    if (!c) return exit;
    std::string reg;
    if (int rc = pick_registry(c.get(), "groups", registry, reg); rc != kExitOk) return rc;

    std::vector<chip_group_info> infos(64);
    for (;;) {
        ssize_t n = cluster ? chip_groups_cluster(c.get(), reg.c_str(), infos.data(), infos.size())
                            : chip_groups(c.get(), reg.c_str(), infos.data(), infos.size());
        if (n == -ENOTCONN && cluster) {
            complain("groups --cluster: chipd's spec has no \"cluster\"");
            return kExitFailed;
        }
        if (n < 0) {
            complain(libchip_error(n, reg, "cannot read the groups of " + reg));
            return kExitFailed;
        }
        if (static_cast<std::size_t>(n) <= infos.size()) {
            infos.resize(static_cast<std::size_t>(n));
            break;
        }
        infos.resize(static_cast<std::size_t>(n) + static_cast<std::size_t>(n) / 4 + 8);
    }
    std::vector<std::pair<std::string, std::uint32_t>> groups;
    for (const auto &g : infos)
        groups.emplace_back(std::string(g.name, strnlen(g.name, 65)), g.count);
    if (ctx.json) {
        json out = json::object();
        for (const auto &[name, count] : groups) out[name] = count;
        std::cout << out.dump() << '\n';
    } else {
        std::cout << format_groups(std::move(groups));
    }
    return kExitOk;
}

int cmd_membership(const Context &ctx, const std::string &op,
                   const std::optional<std::string> &registry, const std::string &group,
                   std::optional<pid_t> pid) {
    if (!check_group(group) || !check_registry(registry)) return kExitFailed;
    json request{{"op", op},
                 {"registry", registry_json(registry)},
                 {"group", group},
                 {"pid", pid.value_or(os::parent_pid())}};
    Reply reply = call(ctx, request);
    if (reply.exit != kExitOk) return reply.exit;
    if (reply.ok()) return kExitOk;
    if (!registry && reply.errno_name() == "EINVAL") return registry_ambiguous_or(ctx, op, reply);
    return failed(reply);
}

int cmd_signal(const Context &ctx, const std::string &signal, bool cluster,
               const std::optional<std::string> &path, const std::optional<std::string> &group,
               const std::optional<std::string> &registry) {
    auto sig = parse_signal(signal);
    if (!sig) return usage_error("signal", "unknown signal " + quoted(signal));
    if (cluster && !group) return usage_error("signal", "--cluster goes with --group");
    if (path && group) return usage_error("signal", "give PATH or --group, not both");
    if (!path && !group) return usage_error("signal", "give PATH or --group GROUP");
    if (registry && !group) return usage_error("signal", "-r goes with --group");

    json request{{"op", "signal"}, {"signal", signal_name(*sig)}};
    if (path) {
        request["path"] = *path;
    } else {
        if (!check_group(*group) || !check_registry(registry)) return kExitFailed;
        request["group"] = *group;
        request["registry"] = registry_json(registry);
        if (cluster) request["cluster"] = true;
    }
    Reply reply = call(ctx, request);
    if (reply.exit != kExitOk) return reply.exit;
    if (!reply.ok()) {
        if (group && !registry && reply.errno_name() == "EINVAL")
            return registry_ambiguous_or(ctx, "signal", reply);
        return failed(reply);
    }
    if (cluster) {
        // NODE PID... per node that answered; the silent ones on stderr.
        json nodes = reply.body.value("nodes", json::object());
        json silent = reply.body.value("silent", json::array());
        if (ctx.json) {
            std::cout << json{{"nodes", nodes}, {"silent", silent}}.dump() << '\n';
        } else {
            for (const auto &[node, pids] : nodes.items()) {
                std::cout << node;
                for (const auto &p : pids) std::cout << ' ' << p.dump();
                std::cout << '\n';
            }
        }
        for (const auto &n : silent)
            complain("signal --cluster: node " + n.get<std::string>() +
                     " did not answer within the timeout");
        return silent.empty() ? kExitOk : kExitFailed;
    }
    if (ctx.json)
        std::cout << json{{"pids", reply.body.value("pids", json::array())}}.dump() << '\n';
    return kExitOk;
}

int cmd_cluster(const Context &ctx) {
    Reply reply = call(ctx, json{{"op", "cluster"}});
    if (reply.exit != kExitOk) return reply.exit;
    if (!reply.ok()) return failed(reply);
    json out = reply.body;
    out.erase("ok");
    if (ctx.json) {
        std::cout << out.dump() << '\n';
        return kExitOk;
    }
    std::string nodes;
    for (const auto &n : out.value("nodes", json::array()))
        nodes += (nodes.empty() ? "" : " ") + n.get<std::string>();
    const json &lease = out["lease"];
    std::cout << "cluster   " << out.value("name", "") << '\n'
              << "node      " << out.value("node", "") << '\n'
              << "state     " << out.value("state", "")
              << (out.contains("error") ? " (" + out["error"].get<std::string>() + ")" : "") << '\n'
              << "etcd      " << out.value("endpoint", "") << '\n'
              << "lease     " << (lease.is_string() ? lease.get<std::string>() : "-") << " (ttl "
              << out.value("lease_ttl", 0) << " s)" << '\n'
              << "nodes     " << nodes << '\n'
              << "members   " << out.value("members", 0) << '\n';
    return kExitOk;
}

int cmd_control(const Context &ctx, const std::string &op, const std::string &path) {
    return simple(ctx, json{{"op", op}, {"path", path}});
}

int cmd_wait(const Context &ctx, const std::string &path, std::optional<double> timeout_s) {
    // `chipd spec.json & chipctl wait PATH`: a chipd that has not created its
    // socket yet is waited for too, within the same timeout.
    const std::int64_t start = os::monotonic_now().count();
    auto left = [&] {
        return timeout_s
                   ? *timeout_s - static_cast<double>(os::monotonic_now().count() - start) / 1e9
                   : 1e9;
    };
    for (;;) {
        auto probe = client::Connection::open(ctx.socket, ctx.deadline);
        if (probe || (probe.error().code != ENOENT && probe.error().code != ECONNREFUSED) ||
            left() <= 0)
            break;
        os::sleep_for(std::chrono::milliseconds(20));
    }
    json request{{"op", "wait"}, {"path", path}};
    if (timeout_s) request["timeout"] = std::max(0.0, left());
    // chipd answers ETIMEDOUT at the timeout itself: its answer is waited for
    // a little longer, so that a live chipd's is the one that counts.
    Context by = ctx;
    if (by.deadline) *by.deadline += kWaitGrace;
    Reply reply = call(by, request);
    if (reply.exit != kExitOk) return reply.exit;
    if (reply.ok()) return kExitOk;
    if (reply.errno_name() == "ETIMEDOUT") {
        complain("timed out waiting for " + path);
        return kExitFailed;
    }
    return failed(reply);
}

int cmd_logs(const Context &ctx, const std::string &path, std::size_t lines, bool follow_file) {
    Reply reply = call(ctx, json{{"op", "logs"}, {"path", path}});
    if (reply.exit != kExitOk) return reply.exit;
    if (!reply.ok()) return failed(reply);
    // Each worker's file: its stdout's, else its stderr's; a pool's workers
    // may share one or have their own ({instance} in its path).
    std::string file;
    std::vector<std::pair<std::string, std::string>> files;  // (worker path, file), distinct files
    std::string elsewhere;  // where the output of workers without a file goes
    const json none = json::array();
    auto workers = reply.body.value("workers", none);
    for (const auto &w : workers) {
        if (!w.is_object()) continue;
        std::string mine;
        for (const char *key : {"stdout", "stderr"})
            if (auto it = w.find(key); mine.empty() && it != w.end() && it->is_string())
                mine = it->get<std::string>();
        if (!mine.empty()) {
            if (file.empty()) file = mine;
            bool seen = false;
            for (const auto &pf : files) seen = seen || pf.second == mine;
            if (!seen) files.emplace_back(w.value("path", path), mine);
            continue;
        }
        auto where = [&](const char *stream) {
            std::string to = w.value(std::string(stream) + "_to", "");
            return to == "inherit" ? std::string("chipd's own ") + stream
                   : to == "null"  ? std::string("nowhere (discarded)")
                                   : to;
        };
        elsewhere += w.value("path", path) + ": no log file; its stdout goes to " +
                     where("stdout") + ", its stderr to " + where("stderr") + "\n";
    }
    if (file.empty()) {
        // Not an error: the output is where the spec sends it.
        std::cout << elsewhere
                  << "(chipd's own output: its terminal, or under systemd `journalctl -u "
                     "chipd`)\n";
        return kExitOk;
    }
    std::cout.flush();
    // Several files: each line says whose it is.
    auto done = files.size() > 1 ? show_files(files, lines, follow_file, STDOUT_FILENO, kFollowPoll)
                : follow_file    ? follow(file, lines, STDOUT_FILENO, kFollowPoll)
                                 : print_last_lines(file, lines, STDOUT_FILENO);
    if (!done) {
        complain(done.error().message);
        return kExitFailed;
    }
    return kExitOk;
}

int cmd_reexec(const Context &ctx) {
    Reply reply = call(ctx, json{{"op", "reexec"}});
    if (reply.exit != kExitOk) return reply.exit;
    if (!reply.ok()) return failed(reply);
    if (ctx.json)
        std::cout << reply.body.dump() << '\n';
    else
        std::cout << "chipd re-executed: version " << reply.body.value("version", "?") << '\n';
    return kExitOk;
}

int cmd_shutdown(const Context &ctx) {
    return simple(ctx, json{{"op", "shutdown"}});
}

// "CHANGE PATH" lines for the "changes" of RESPONSE (the JSON array with --json).
void print_changes(const Context &ctx, const json &response) {
    auto it = response.find("changes");
    if (it == response.end() || !it->is_array()) return;
    if (ctx.json) {
        std::cout << it->dump() << '\n';
        return;
    }
    for (const auto &c : *it)
        if (c.is_object() && c.value("change", "").size() && c.value("path", "").size())
            std::cout << c.value("change", "") << ' ' << c.value("path", "") << '\n';
}

// A change request: its changes printed, and on failure the reason (and for an
// invalid spec or child, every error line chipd found).
int changing(const Context &ctx, const json &request) {
    Reply reply = call(ctx, request);
    if (reply.exit != kExitOk) return reply.exit;
    print_changes(ctx, reply.body);
    if (reply.ok()) return kExitOk;
    if (auto errors = reply.body.find("errors"); errors != reply.body.end() && errors->is_array()) {
        for (const auto &e : *errors)
            if (e.is_string()) std::cerr << e.get<std::string>() << '\n';
    }
    return failed(reply);
}

int cmd_reload(const Context &ctx, const std::optional<std::string> &spec, bool dry_run) {
    json request{{"op", "reload"}, {"spec", nullptr}, {"dry_run", dry_run}};
    if (spec) request["spec"] = os::absolute_path(*spec);
    return changing(ctx, request);
}

int cmd_scale(const Context &ctx, const std::string &path, unsigned count) {
    return changing(ctx, json{{"op", "scale"}, {"path", path}, {"count", count}});
}

int cmd_add(const Context &ctx, const std::string &parent,
            const std::optional<std::string> &child_json, const std::optional<std::string> &file) {
    if (child_json.has_value() == file.has_value())
        return usage_error("add", "give the child as JSON or with -f FILE, not both");
    std::string text, label = "child";
    if (file) {
        auto read = os::read_small_file(*file, 16u << 20);
        if (!read) {
            complain(*file + ": " + std::strerror(read.error().code));
            return kExitFailed;
        }
        text = std::move(*read);
        label = *file;
    } else {
        text = *child_json;
    }
    json child = json::parse(text, nullptr, false);
    if (child.is_discarded()) {
        // chipd's loader would say where; the JSON text is sent as a string then.
        child = text;
    }
    return changing(ctx, json{{"op", "add"},
                              {"path", parent},
                              {"child", child},
                              {"file", label},
                              {"dir", os::current_dir()}});
}

int cmd_remove(const Context &ctx, const std::string &path) {
    return changing(ctx, json{{"op", "remove"}, {"path", path}});
}

int cmd_events(const Context &ctx, const std::string &path) {
    auto conn = connect(ctx);
    if (!conn) return kExitUnreachable;
    auto response = conn->request(json{{"op", "events"}, {"path", path}}, ctx.deadline);
    if (!response) return lost(ctx, response.error());
    Reply reply{kExitOk, std::move(*response)};
    if (!reply.ok()) return failed(reply);
    // A stream: quiet for as long as nothing happens, so no deadline from here.
    for (;;) {
        auto line = conn->read_line(std::nullopt);
        if (!line) {
            complain("lost chipd at " + ctx.socket + ": " + line.error().message);
            return kExitUnreachable;
        }
        // chipd closes the stream when it exits: the end.
        if (!*line) return kExitOk;
        if (ctx.json) {
            std::cout << **line << '\n' << std::flush;
            continue;
        }
        json event = json::parse(**line, nullptr, false);
        if (event.is_discarded()) continue;
        std::cout << format_event_line(event) << std::flush;
    }
}

}  // namespace chip::ctl
