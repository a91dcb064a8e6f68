// chipctl: the command line of chip (README.md, "chipctl"). This file only
// declares the command line and dispatches; the subcommands are commands.cpp.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <string>

#include <CLI/CLI.hpp>

#include "common/names.hpp"
#include "ctl/commands.hpp"
#include "os/clock.hpp"
#include "os/self.hpp"

namespace {

using namespace chip::ctl;

// CLI11's NonNegativeNumber and PositiveNumber print DBL_MAX in full in their
// messages; these say it shortly.
CLI::Validator number_above(double min, bool or_equal) {
    std::string want =
        std::string(or_equal ? ">= " : "> ") + (min == 0 ? "0" : std::to_string(min));
    return CLI::Validator(
        [=](const std::string &s) {
            double v = 0;
            bool good = CLI::detail::lexical_cast(s, v) && (or_equal ? v >= min : v > min);
            return good ? std::string() : "expected a number " + want + ", got " + s;
        },
        "NUMBER " + want);
}

// "Run 'chipctl signal --help' ..." names the subcommand being parsed, if any.
std::string help_hint(const CLI::App &app) {
    std::string cmd = "chipctl";
    for (const CLI::App *sub : app.get_subcommands()) cmd += " " + sub->get_name();
    return "Run '" + cmd + " --help' for more information.\n";
}

int run(int argc, char **argv) {
    CLI::App app{"chipctl: control chipd, the chip process supervisor, and query its registries",
                 "chipctl"};
    app.set_version_flag("--version", std::string("chipctl ") + CHIP_VERSION);
    app.require_subcommand(0, 1);
    // Global options may also follow the subcommand: `chipctl status --json`.
    app.fallthrough();

    std::optional<std::string> socket;
    bool json = false;
    std::optional<double> timeout;
    app.add_option("--socket", socket,
                   "control socket (default: $CHIP_SOCKET, else the default path)");
    app.add_flag("--json", json, "machine-readable output");
    app.add_option("--timeout", timeout,
                   "exit 3 if chipd has not answered within S seconds (default: 30 for the "
                   "commands chipd answers at once; none for those that wait)")
        ->type_name("S")
        ->check(number_above(0, false));

    std::function<int(const Context &)> action;

    // Option values live here until the chosen action runs.
    std::string path = "/", group, signal, op;
    std::optional<std::string> opt_path, registry, opt_group;
    std::optional<pid_t> pid;
    std::size_t lines = 10;
    bool follow = false;
    bool cluster = false;
    bool verbose = false;

    auto *status =
        app.add_subcommand("status", "show the tree (or the subtree at PATH) as a table");
    status->add_option("PATH", path, "node path (default: /, the whole tree)");
    status->add_flag("-v,--verbose", verbose,
                     "also each worker's full command, cwd, user, log files, processes, "
                     "exports and last log lines");
    status->callback(
        [&] { action = [&](const Context &c) { return cmd_status(c, path, verbose); }; });

    auto *members = app.add_subcommand("members", "list the member pids of GROUP, in join order");
    members->add_option("-r,--registry", registry, "registry (default: the only one)");
    members->add_option("GROUP", group, "group name")->required();
    members->add_flag("--cluster", cluster,
                      "every host's members (NODE PID), from the cluster view");
    members->callback([&] {
        action = [&](const Context &c) { return cmd_members(c, registry, group, cluster); };
    });

    auto *groups =
        app.add_subcommand("groups", "list the groups of a registry and their member counts");
    groups->add_option("-r,--registry", registry, "registry (default: the only one)");
    groups->add_flag("--cluster", cluster, "the groups over every host, from the cluster view");
    groups->callback(
        [&] { action = [&](const Context &c) { return cmd_groups(c, registry, cluster); }; });

    auto *cluster_cmd = app.add_subcommand(
        "cluster", "show chipd's session with etcd: state, node, lease, the nodes seen");
    cluster_cmd->callback([&] { action = [&](const Context &c) { return cmd_cluster(c); }; });

    for (const char *name : {"join", "leave"}) {
        auto *sub = app.add_subcommand(
            name,
            std::string(name) + " GROUP for PID (default: chipctl's parent, the calling shell)");
        sub->add_option("-r,--registry", registry, "registry (default: the only one)");
        sub->add_option("GROUP", group, "group name")->required();
        sub->add_option("--pid", pid, "the pid to act for")->check(number_above(0, false));
        sub->callback([&, name] {
            op = name;
            action = [&](const Context &c) { return cmd_membership(c, op, registry, group, pid); };
        });
    }

    auto *sig = app.add_subcommand("signal",
                                   "send SIG to the workers of PATH or to the members of a group");
    sig->add_option("SIG", signal, "TERM, SIGTERM or a number")->required();
    sig->add_option("PATH", opt_path, "node path: every running worker under it");
    sig->add_option("-g,--group", opt_group, "signal every member of this group instead");
    sig->add_option("-r,--registry", registry, "registry of --group (default: the only one)");
    sig->add_flag("--cluster", cluster, "the group's members on every host, through etcd");
    sig->callback([&] {
        action = [&](const Context &c) {
            return cmd_signal(c, signal, cluster, opt_path, opt_group, registry);
        };
    });

    for (const char *name : {"start", "stop", "restart"}) {
        auto *sub = app.add_subcommand(
            name, std::string(name) + " the worker or subtree at PATH and wait until done");
        sub->add_option("PATH", path, "node path")->required();
        sub->callback([&, name] {
            op = name;
            action = [&](const Context &c) { return cmd_control(c, op, path); };
        });
    }

    auto *wait = app.add_subcommand("wait", "wait until PATH is ready");
    wait->add_option("PATH", path, "node path")->required();
    wait->add_option("--timeout", timeout,
                     "give up after S seconds (exit 1; exit 3 if chipd does not answer)")
        ->type_name("S")
        ->check(number_above(0, true));
    wait->callback([&] { action = [&](const Context &c) { return cmd_wait(c, path, timeout); }; });

    auto *logs = app.add_subcommand("logs", "show the captured output of the worker at PATH");
    logs->add_option("PATH", path, "worker path")->required();
    logs->add_option("-n,--lines", lines, "show the last N lines (default 10)")
        ->type_name("N")
        ->check(number_above(0, true));
    logs->add_flag("-f,--follow", follow, "keep printing what is appended, across rotations");
    logs->callback(
        [&] { action = [&](const Context &c) { return cmd_logs(c, path, lines, follow); }; });

    std::optional<std::string> spec_file, child_json, child_file;
    bool dry_run = false;
    unsigned count = 0;
    auto *reload = app.add_subcommand(
        "reload", "make the running tree match SPEC (default: chipd's spec file, reread)");
    reload->add_option("SPEC", spec_file, "the new spec; it becomes chipd's spec file");
    reload->add_flag("--dry-run", dry_run, "list the changes without making them");
    reload->callback(
        [&] { action = [&](const Context &c) { return cmd_reload(c, spec_file, dry_run); }; });

    auto *scale = app.add_subcommand("scale", "set the number of instances of the pool at PATH");
    scale->add_option("PATH", path, "pool path")->required();
    scale->add_option("N", count, "instances (0 or more)")->required();
    scale->callback([&] { action = [&](const Context &c) { return cmd_scale(c, path, count); }; });

    auto *add =
        app.add_subcommand("add", "add a child (worker or supervisor) under PARENT and start it");
    add->add_option("PARENT", path, "supervisor path (/ for the root)")->required();
    add->add_option("CHILD", child_json, "the child as JSON, as in a spec");
    add->add_option("-f,--file", child_file, "read the child from FILE");
    add->callback([&] {
        action = [&](const Context &c) { return cmd_add(c, path, child_json, child_file); };
    });

    auto *remove =
        app.add_subcommand("remove", "stop the node at PATH and remove it from the tree");
    remove->add_option("PATH", path, "node path")->required();
    remove->callback([&] { action = [&](const Context &c) { return cmd_remove(c, path); }; });

    auto *events = app.add_subcommand(
        "events", "print the events of PATH's subtree (default: all) as they happen");
    events->add_option("PATH", path, "node path or pool (default: /, the whole tree)");
    events->callback([&] { action = [&](const Context &c) { return cmd_events(c, path); }; });

    auto *reexec = app.add_subcommand(
        "reexec", "execute chipd's program again (an upgrade) without stopping any worker");
    reexec->callback([&] { action = [](const Context &c) { return cmd_reexec(c); }; });

    auto *shutdown = app.add_subcommand("shutdown", "stop the whole tree in order; chipd exits 0");
    shutdown->callback([&] { action = [](const Context &c) { return cmd_shutdown(c); }; });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
        std::cerr << "chipctl: " << e.what() << '\n' << help_hint(app);
        return kExitUsage;
    }
    if (!action) {
        std::cerr << app.help();
        return kExitUsage;
    }
    Context ctx;
    ctx.socket =
        chip::resolve_socket_path(socket ? socket->c_str() : nullptr, chip::os::real_uid());
    ctx.json = json;
    // The commands that answer once their work is done may take as long as it
    // takes (a stop_timeout, a start_timeout) unless told otherwise.
    static const std::set<std::string> waiting = {"start",  "stop",  "restart", "wait",
                                                  "reload", "scale", "add",     "remove"};
    const CLI::App *sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands()[0];
    if (timeout || (sub && !waiting.count(sub->get_name()))) {
        ctx.timeout_s = timeout.value_or(kDefaultTimeoutS);
        // Capped at a year: beyond that the nanoseconds would not fit.
        ctx.deadline = chip::os::monotonic_now() +
                       std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::duration<double>(std::min(ctx.timeout_s, 3.2e7)));
    }
    return action(ctx);
}

}  // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::cerr << "chipctl: " << e.what() << '\n';
        return kExitFailed;
    }
}
