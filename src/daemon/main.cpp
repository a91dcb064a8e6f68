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
#include "os/process.hpp"
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

}  // namespace

int main(int argc, char **argv) {
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
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        app.exit(e);
        return 2;
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
        chip::daemon::Options opts;
        opts.socket = socket;
        opts.json_log = log_format == "json";
        opts.log_file = log_file;
        opts.log_max_bytes = log_max_bytes;
        opts.log_keep = log_keep;
        opts.cgroups = !no_cgroups;
        chip::daemon::Daemon d(std::move(spec), opts);
        return d.run();
    } catch (const std::exception &e) {
        say(log_format == "json", "fatal", std::string("chipd: fatal: ") + e.what());
        return 1;
    }
}
