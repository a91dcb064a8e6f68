// chipd: parses the command line, loads the spec and runs the daemon.
// Exit codes (README.md, "chipd"): 0 clean shutdown, 1 the root supervisor
// gave up or failed to start (or chipd could not set up), 2 invalid spec or usage.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "daemon/daemon.hpp"
#include "daemon/fd_budget.hpp"
#include "handoff/codec.hpp"
#include "os/process.hpp"
#include "os/reexec.hpp"
#include "os/self.hpp"
#include "spec/loader.hpp"

namespace {

// A line on stderr before (or after) the daemon runs: as JSON with
// --log-format json, so that every line chipd writes parses.
void say(bool json, const char *event, const std::string &text) {
    if (json) {
        nlohmann::json j{{"event", event}, {"message", text}};
        std::fprintf(stderr, "%s\n",
                     j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
        std::fprintf(stderr, "%s\n", text.c_str());
    }
}

// The largest hand-off read (a tree of 100,000 workers takes some tens of MiB).
constexpr std::size_t kMaxHandoff = std::size_t{1} << 30;

// The hand-off in FD from the chipd of this pid that executed this one
// (README.md, "Upgrading chipd in place"), checked whole, and its format
// VERSION; FD is closed.
chip::Result<chip::handoff::State> take_handoff(int fd, std::uint32_t &version) {
    using chip::make_error;
    if (!chip::os::fd_open(fd))
        return make_error(EBADF, "fd " + std::to_string(fd) + " is not open");
    auto bytes = chip::os::read_whole(fd, kMaxHandoff);
    chip::os::UniqueFd(fd).reset();
    if (!bytes)
        return make_error(EIO,
                          "cannot read fd " + std::to_string(fd) + ": " + bytes.error().message);
    version = chip::handoff::version_of(*bytes);
    auto state = chip::handoff::decode(*bytes);
    if (!state) return state.error();
    if (state->pid != chip::os::self_pid())
        return make_error(EINVAL, "written by pid " + std::to_string(state->pid) +
                                      ", not this chipd's (" +
                                      std::to_string(chip::os::self_pid()) + ")");
    for (int f : state->fds())
        if (!chip::os::fd_open(f))
            return make_error(EBADF, "fd " + std::to_string(f) + " it names is not open");
    return state;
}

}  // namespace

int main(int argc, char **argv) {
    // Before anything is opened or changed: what a fresh chipd was given.
    std::uint64_t signal_mask = chip::os::signal_mask();
    CLI::App app{
        "chipd: a supervisor of OS processes with OTP supervision trees and a "
        "process-group registry"};
    std::string spec_path, socket, log_format = "text", log_file;
    std::uint64_t log_max_bytes = 10u << 20;
    unsigned log_keep = 5;
    bool check = false, no_cgroups = false;
    app.add_option("SPEC", spec_path, "the spec file (JSON)")->required();
    app.add_option("--socket", socket,
                   "control socket path (default: the spec's, else "
                   "$XDG_RUNTIME_DIR/chip/chipd.sock, /run/chip/chipd.sock "
                   "for root, /tmp/chip-$UID/chipd.sock)");
    app.add_option("--log-format", log_format,
                   "format of every line chipd writes (events, and inherited worker output)")
        ->check(CLI::IsMember({"text", "json"}));
    app.add_option("--log-file", log_file, "also write chipd's own log lines to this file");
    app.add_option("--log-max-bytes", log_max_bytes,
                   "rotate the --log-file before it passes this size (default 10 MiB)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    app.add_option("--log-keep", log_keep, "rotated --log-file copies kept (default 5)")
        ->check(CLI::Range(1u, 1000u));
    app.add_flag("--no-cgroups", no_cgroups,
                 "contain workers with process groups only (no cgroup per worker)");
    app.add_flag("--check", check,
                 "validate the spec, and what would fail at start (programs, cwds), and exit "
                 "(0 valid, 2 invalid)");
    app.set_version_flag("--version", std::string("chipd ") + CHIP_VERSION);
    // For a chipd about to execute this program (chipctl reexec): the
    // hand-off versions it reads.
    app.add_flag_callback(
           "--handoff-versions",
           [] {
               std::string out;
               for (auto v = chip::handoff::kOldestVersion; v <= chip::handoff::kVersion; ++v)
                   out += (out.empty() ? "" : " ") + std::to_string(v);
               std::printf("%s\n", out.c_str());
               throw CLI::Success();
           },
           "print the hand-off versions this chipd reads and exit")
        ->group("");
    int handoff_fd = -1;
    app.add_option("--handoff", handoff_fd, "take over from the chipd that executed this one")
        ->group("");
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        app.exit(e);
        return 2;
    }

    chip::daemon::Options opts;
    opts.socket = socket;
    opts.json_log = log_format == "json";
    opts.log_file = log_file;
    opts.log_max_bytes = log_max_bytes;
    opts.log_keep = log_keep;
    opts.cgroups = !no_cgroups;
    opts.program = chip::os::program_path(argv[0]);
    opts.signal_mask = signal_mask;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--handoff") {
            ++i;
            continue;
        }
        if (a.rfind("--handoff=", 0) == 0) continue;
        opts.args.push_back(a);
    }
    if (handoff_fd >= 0) {
        // Refused before anything is touched: the workers go on, orphaned
        // but unharmed, and whoever restarts chipd finds them in its cgroups.
        std::uint32_t version = 0;
        auto state = take_handoff(handoff_fd, version);
        if (!state) {
            say(log_format == "json", "fatal",
                "chipd: fatal: hand-off refused: " + state.error().message);
            return 1;
        }
        // Nothing else of the last chipd's stays open (close-on-exec missed).
        chip::os::close_fds_except(state->fds());
        // Kept open across the exec, they are close-on-exec again: no worker
        // started from now on inherits them.
        for (int fd : state->fds()) (void)chip::os::set_cloexec(fd, true);
        opts.signal_mask = state->signal_mask;
        opts.handoff_version = version;
        try {
            chip::daemon::Daemon d(std::move(*state), opts);
            return d.run();
        } catch (const std::exception &e) {
            // What it names could not be taken over (a region that is not
            // one): the same refusal, no worker touched (Daemon::run).
            say(log_format == "json", "fatal",
                std::string("chipd: fatal: hand-off refused: ") + e.what());
            return 1;
        }
    }

    chip::spec::Spec spec;
    try {
        // Programs and folders may change before a worker starts: chipd meets
        // them as start failures, --check reports them now.
        spec =
            chip::spec::load_file(spec_path, chip::spec::system_host(),
                                  check ? chip::spec::Checks::Machine : chip::spec::Checks::Spec);
    } catch (const chip::spec::SpecError &e) {
        for (const auto &line : e.errors()) say(log_format == "json" && !check, "spec-error", line);
        return 2;
    }
    if (check) {
        // Not an error: the limit may be raised before chipd runs. The limit
        // is what chipd would get (the soft one raised as at start).
        std::size_t limit = chip::os::raise_fd_limit(chip::daemon::kFdLimitWanted);
        auto estimate = chip::daemon::estimate_fds(spec);
        if (auto w = chip::daemon::fd_warning(spec_path, estimate, limit); !w.empty())
            std::fprintf(stderr, "chipd: warning: %s\n", w.c_str());
        std::printf("%s: ok\n", spec_path.c_str());
        return 0;
    }
    try {
        chip::daemon::Daemon d(std::move(spec), opts);
        return d.run();
    } catch (const std::exception &e) {
        say(log_format == "json", "fatal", std::string("chipd: fatal: ") + e.what());
        return 1;
    }
}
