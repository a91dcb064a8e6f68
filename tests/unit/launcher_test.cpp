// What a failed spawn says in start-failed lines (src/daemon/launcher.hpp):
// os::spawn reports the step that failed and its errno as values, and the
// launcher words them with the worker's command or folder. And the
// environment a worker starts with. No process starts.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "daemon/launcher.hpp"

using chip::daemon::spawn_failure;
using chip::os::SpawnResult;
using chip::os::SpawnStep;

TEST_CASE("spawn failures, step by step") {
    chip::spec::Launch launch;
    launch.command = {"/x", "--flag"};
    launch.cwd = "/srv";
    auto text = [&](SpawnStep step, int error) {
        return spawn_failure(SpawnResult{0, step, error}, launch);
    };
    CHECK(text(SpawnStep::Exec, ENOENT) == "cannot execute /x: No such file or directory");
    CHECK(text(SpawnStep::Exec, EACCES) == "cannot execute /x: Permission denied");
    CHECK(text(SpawnStep::Chdir, EACCES) == "cannot change to its folder /srv: Permission denied");
    CHECK(text(SpawnStep::SetUid, EPERM) == "cannot switch user or group: Operation not permitted");
    CHECK(text(SpawnStep::SetGid, EPERM) == text(SpawnStep::SetUid, EPERM));
    CHECK(text(SpawnStep::SetGroups, EPERM) == text(SpawnStep::SetUid, EPERM));
    CHECK(text(SpawnStep::Dup, EBADF) == "cannot set up stdin/stdout/stderr: Bad file descriptor");
    CHECK(text(SpawnStep::DeathSignal, ESRCH) ==
          "cannot set the parent-death signal: No such process");
    CHECK(text(SpawnStep::Cgroup, ENODEV) == "cannot join its cgroup: No such device");
    CHECK(text(SpawnStep::Setsid, EPERM) == "setsid: Operation not permitted");
    CHECK(text(SpawnStep::Clone, EAGAIN) == "Resource temporarily unavailable");
    // A name looked up in PATH is told as written.
    launch.command = {"worker"};
    CHECK(text(SpawnStep::Exec, ENOENT) == "cannot execute worker: No such file or directory");
}

namespace {

// The environment of LAUNCH over chipd's BASE, as "NAME=VALUE" lines.
std::vector<std::string> environment(const std::vector<const char *> &base,
                                     const chip::spec::Launch &launch) {
    std::vector<std::string> owned;
    std::vector<const char *> env;
    chip::daemon::worker_environment(base, launch, owned, env);
    return std::vector<std::string>(env.begin(), env.end());
}

const std::vector<const char *> kChipd{"PATH=/usr/bin", "HOME=/root",      "USER=root",
                                       "LOGNAME=root",  "SHELL=/bin/bash", "LANG=C.UTF-8"};

}  // namespace

TEST_CASE("a worker without a user inherits chipd's environment, its env on top") {
    chip::spec::Launch launch;
    launch.command = {"x"};
    CHECK(environment(kChipd, launch) == std::vector<std::string>(kChipd.begin(), kChipd.end()));
    launch.env = {{"LANG", "fr_FR.UTF-8"}, {"A", "1"}};
    CHECK(environment(kChipd, launch) ==
          std::vector<std::string>{"PATH=/usr/bin", "HOME=/root", "USER=root", "LOGNAME=root",
                                   "SHELL=/bin/bash", "LANG=fr_FR.UTF-8", "A=1"});
}

TEST_CASE("a worker with a user gets its HOME, USER, LOGNAME and SHELL, unless its env sets them") {
    chip::spec::Launch launch;
    launch.command = {"x"};
    launch.user = "app";
    launch.uid = 1000;
    launch.gid = 1000;
    launch.login = chip::spec::Login{"app", "/home/app", "/bin/sh"};
    CHECK(environment(kChipd, launch) == std::vector<std::string>{"PATH=/usr/bin", "LANG=C.UTF-8",
                                                                  "HOME=/home/app", "USER=app",
                                                                  "LOGNAME=app", "SHELL=/bin/sh"});
    launch.env = {{"HOME", "/srv/app"}};
    CHECK(environment(kChipd, launch) ==
          std::vector<std::string>{"PATH=/usr/bin", "LANG=C.UTF-8", "USER=app", "LOGNAME=app",
                                   "SHELL=/bin/sh", "HOME=/srv/app"});
    // A numeric user without a passwd entry: none of chipd's four.
    launch.env.clear();
    launch.user = "4000";
    launch.uid = 4000;
    launch.login.reset();
    CHECK(environment(kChipd, launch) == std::vector<std::string>{"PATH=/usr/bin", "LANG=C.UTF-8"});
    // A group alone changes nothing of the four.
    chip::spec::Launch group_only;
    group_only.command = {"x"};
    group_only.gid = 50;
    CHECK(environment(kChipd, group_only) ==
          std::vector<std::string>(kChipd.begin(), kChipd.end()));
}
