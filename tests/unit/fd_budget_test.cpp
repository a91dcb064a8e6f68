// The file descriptors a spec needs in chipd (daemon/fd_budget.hpp), as
// `chipd --check` estimates them, and the warning when they do not fit.
#include <doctest/doctest.h>

#include <string>

#include "daemon/fd_budget.hpp"
#include "spec/loader.hpp"

using chip::daemon::estimate_fds;
using chip::daemon::fd_warning;
using chip::daemon::kChipdOwnFds;

namespace {

chip::spec::Spec load(const std::string &children) {
    return chip::spec::load_string(R"({"root": {"children": [)" + children + "]}}", "t.json",
                                   "/tmp");
}

}  // namespace

TEST_CASE("fd estimate: 10000 workers with inherited output need two pipes each") {
    auto e = estimate_fds(load(R"({"name": "p", "command": ["sleep"], "instances": 10000})"));
    CHECK(e.workers == 10000);
    CHECK(e.pipes == 20000);
    CHECK(e.notify == 0);
    CHECK(e.log_files == 0);
    CHECK(e.total == 20000 + kChipdOwnFds);
}

TEST_CASE("fd estimate: null streams need none, one shared file one pipe, notify a socket") {
    auto e = estimate_fds(load(R"(
        {"name": "quiet", "command": ["a"], "stdout": "null", "stderr": "null"},
        {"name": "half", "command": ["a"], "stdout": "null"},
        {"name": "both", "command": ["a"], "instances": 3, "ready": "notify",
         "stdout": {"file": "/tmp/both.log"}, "stderr": {"file": "/tmp/both.log"}},
        {"name": "sub", "supervisor": {"children": [
            {"name": "two", "command": ["a"], "stdout": {"file": "/tmp/out.log"},
             "stderr": {"file": "/tmp/err.log"}},
            {"name": "again", "command": ["a"], "stdout": {"file": "/tmp/out.log"}}]}})"));
    CHECK(e.workers == 7);
    // quiet 0, half 1, both 3 x 1, two 2, again 2.
    CHECK(e.pipes == 8);
    CHECK(e.notify == 3);
    CHECK(e.log_files == 3);  // both.log, out.log, err.log: each open once
    CHECK(e.total == 8 + 3 + 3 + kChipdOwnFds);
}

TEST_CASE("fd estimate: the warning names the spec, the need and the limit, only past it") {
    auto e = estimate_fds(load(R"({"name": "p", "command": ["sleep"], "instances": 10000})"));
    CHECK(fd_warning("big.json", e, 1048576).empty());
    CHECK(fd_warning("big.json", e, e.total).empty());
    CHECK(fd_warning("big.json", e, 4096) ==
          "big.json: its 10000 workers may need about 20064 file descriptors (20000 output "
          "pipes, 0 notify sockets, 0 log files, 64 for chipd), more than RLIMIT_NOFILE allows "
          "(4096): raise its hard limit (ulimit -Hn, systemd's LimitNOFILE=) or workers will "
          "fail to start");
}
