// chipctl's subcommands (README.md, "chipctl"): one function each, taking the
// global options and the subcommand's own, printing the result and any error
// ("chipctl: ..." on stderr), and returning the exit code. Argument parsing is
// main.cpp's; these only check what CLI11 cannot (signal names, combinations).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace chip::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // chipd (or libchip) refused or failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // no chipd at the socket, or it went away

// The default deadline of the commands that chipd answers at once.
inline constexpr double kDefaultTimeoutS = 30;

// The global options.
struct Context {
    std::string socket;  // control socket path, already resolved
    bool json = false;   // machine-readable output
    // The command's deadline on os::monotonic_now()'s clock, covering
    // connecting, sending and the answer (README.md, "chipctl"): --timeout,
    // else kDefaultTimeoutS for the commands chipd answers at once; none for
    // the commands that wait (start, stop, wait, reload, ...) without
    // --timeout. Streams (logs -f, events) have none after their first answer.
    std::optional<std::chrono::nanoseconds> deadline;
    double timeout_s = 0;  // the seconds it was set from, for the message
};

int cmd_status(const Context &ctx, const std::string &path, bool verbose = false);
// From the registry's shared memory through libchip.
int cmd_members(const Context &ctx, const std::optional<std::string> &registry,
                const std::string &group, bool cluster = false);
int cmd_groups(const Context &ctx, const std::optional<std::string> &registry,
               bool cluster = false);
// chipd's session with etcd (op "cluster").
int cmd_cluster(const Context &ctx);
// OP is "join" or "leave"; PID defaults to chipctl's parent (the calling shell).
int cmd_membership(const Context &ctx, const std::string &op,
                   const std::optional<std::string> &registry, const std::string &group,
                   std::optional<pid_t> pid);
// Exactly one of PATH and GROUP; REGISTRY only with GROUP.
int cmd_signal(const Context &ctx, const std::string &signal, bool cluster,
               const std::optional<std::string> &path, const std::optional<std::string> &group,
               const std::optional<std::string> &registry);
// OP is "start", "stop" or "restart"; chipd answers once it is done.
int cmd_control(const Context &ctx, const std::string &op, const std::string &path);
int cmd_wait(const Context &ctx, const std::string &path, std::optional<double> timeout_s);
int cmd_logs(const Context &ctx, const std::string &path, std::size_t lines, bool follow);
// Executes chipd's program again, every worker kept (README.md, "Upgrading
// chipd in place").
int cmd_reexec(const Context &ctx);
int cmd_shutdown(const Context &ctx);
// The tree changed while it runs. Each prints one "CHANGE PATH" line per change.
// SPEC (relative: from chipctl's folder) is the new spec; none: chipd's own.
int cmd_reload(const Context &ctx, const std::optional<std::string> &spec, bool dry_run);
int cmd_scale(const Context &ctx, const std::string &path, unsigned count);
// Exactly one of CHILD_JSON and FILE; relative paths in the child are taken
// from chipctl's folder.
int cmd_add(const Context &ctx, const std::string &parent,
            const std::optional<std::string> &child_json, const std::optional<std::string> &file);
int cmd_remove(const Context &ctx, const std::string &path);
// The events of PATH's subtree from now on, one line each (ctx.json: chipd's
// JSON objects), until chipd exits (0).
int cmd_events(const Context &ctx, const std::string &path);

}  // namespace chip::ctl
