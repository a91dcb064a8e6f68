// chipd: parses the command line, loads the spec and runs the daemon.
// Exit codes (README.md, "chipd"): 0 clean shutdown, 1 the root supervisor
// gave up or failed to start (or chipd could not set up), 2 invalid spec or usage.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "daemon/daemon.hpp"
#include "spec/loader.hpp"

int main(int argc, char **argv) {
    CLI::App app{
        "chipd: a supervisor of OS processes with OTP supervision trees and a "
        "process-group registry"};
    std::string spec_path, socket, log_format = "text";
    bool check = false, no_cgroups = false;
    app.add_option("SPEC", spec_path, "the spec file (JSON)")->required();
    app.add_option("--socket", socket,
                   "control socket path (default: the spec's, else "
                   "$XDG_RUNTIME_DIR/chip/chipd.sock, /run/chip/chipd.sock "
                   "for root, /tmp/chip-$UID/chipd.sock)");
    app.add_option("--log-format", log_format, "event log format on stderr")
        ->check(CLI::IsMember({"text", "json"}));
    app.add_flag("--no-cgroups", no_cgroups,
                 "contain workers with process groups only (no cgroup per worker)");
    app.add_flag("--check", check, "validate the spec and exit (0 valid, 2 invalid)");
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
        spec = chip::spec::load_file(spec_path);
    } catch (const chip::spec::SpecError &e) {
        for (const auto &line : e.errors()) std::fprintf(stderr, "%s\n", line.c_str());
        return 2;
    }
    if (check) {
        std::printf("%s: ok\n", spec_path.c_str());
        return 0;
    }
    try {
        chip::daemon::Options opts;
        opts.socket = socket;
        opts.json_log = log_format == "json";
        opts.cgroups = !no_cgroups;
        chip::daemon::Daemon d(std::move(spec), opts);
        return d.run();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "chipd: fatal: %s\n", e.what());
        return 1;
    }
}
