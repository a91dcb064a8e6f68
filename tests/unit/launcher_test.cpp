// What a failed spawn says in start-failed lines (src/daemon/launcher.hpp):
// os::spawn reports the step that failed and its errno as values, and the
// launcher words them with the worker's command or folder. No process starts.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

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
