// Containment's pure parts (src/os/cgroup.hpp, src/daemon/cgroups.hpp): where
// the cgroup2 hierarchy and chipd's cgroup are, read from the text of
// /proc/self/mountinfo and /proc/self/cgroup, and the cgroup name of a node.
#include <doctest/doctest.h>

#include <string>

#include "daemon/cgroups.hpp"
#include "os/cgroup.hpp"

using chip::daemon::cgroup_name;
using chip::os::cgroup2_folder;
using chip::os::cgroup2_path;

namespace {

// A hybrid layout (cgroup v1 controllers, cgroup2 at .../unified), as on
// Debian's older defaults and the development machines.
const char *const kHybrid =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// The unified layout, with an optional field (shared:N) before the " - ".
const char *const kUnified =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate\n";

}  // namespace

TEST_CASE("cgroup2_folder: the cgroup2 mount of a hybrid or unified layout") {
    CHECK(cgroup2_folder(kHybrid, "/") == "/sys/fs/cgroup/unified");
    CHECK(cgroup2_folder(kHybrid, "/a/b") == "/sys/fs/cgroup/unified/a/b");
    CHECK(cgroup2_folder(kUnified, "/system.slice/chipd.service") ==
          "/sys/fs/cgroup/system.slice/chipd.service");
    CHECK(cgroup2_folder(kUnified, "/") == "/sys/fs/cgroup");
}

TEST_CASE("cgroup2_folder: none without a cgroup2 mount; v1 mounts do not count") {
    CHECK_FALSE(cgroup2_folder("", "/"));
    CHECK_FALSE(cgroup2_folder("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "/"));
    CHECK_FALSE(cgroup2_folder("garbage\n- cgroup2\n1 2 3\n", "/"));
}

TEST_CASE("cgroup2_folder: a mount of part of the hierarchy holds only what is below its root") {
    // A container that sees its own cgroup mounted at /sys/fs/cgroup.
    const char *info = "50 40 0:30 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    CHECK(cgroup2_folder(info, "/docker/abc") == "/sys/fs/cgroup");
    CHECK(cgroup2_folder(info, "/docker/abc/w") == "/sys/fs/cgroup/w");
    CHECK_FALSE(cgroup2_folder(info, "/docker/abcd"));
    CHECK_FALSE(cgroup2_folder(info, "/other"));
}

TEST_CASE("cgroup2_folder: escaped characters of the mount point") {
    const char *info = "41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 none rw\n";
    CHECK(cgroup2_folder(info, "/x") == "/mnt/my cgroups/x");
    CHECK(cgroup2_folder("41 31 0:38 / / rw - cgroup2 none rw\n", "/x") == "/x");
}

TEST_CASE("cgroup2_path: the 0:: line of /proc/self/cgroup") {
    CHECK(cgroup2_path("9:name=systemd:/\n4:memory:/x/y\n0::/\n") == "/");
    CHECK(cgroup2_path("0::/user.slice/user-1000.slice/session-2.scope\n") ==
          "/user.slice/user-1000.slice/session-2.scope");
    CHECK_FALSE(cgroup2_path("4:memory:/x\n1:cpu:/\n"));
    CHECK_FALSE(cgroup2_path(""));
}

TEST_CASE("cgroup_name: a node's path in one folder name, never a cgroup's own file") {
    CHECK(cgroup_name("web") == "web");
    CHECK(cgroup_name("web/api.0") == "web:api.0");
    CHECK(cgroup_name("a/b/c") == "a:b:c");
    CHECK(cgroup_name("memory") == "memory");
    // Names the kernel's files have, or could have.
    CHECK(cgroup_name("cgroup.procs") == "_cgroup.procs");
    CHECK(cgroup_name("cpu.stat") == "_cpu.stat");
    CHECK(cgroup_name("memory.max") == "_memory.max");
    CHECK(cgroup_name("io.0") == "_io.0");
    CHECK(cgroup_name("cpu/x") == "cpu:x");
    CHECK(cgroup_name("_x") == "__x");
    CHECK(cgroup_name(".x") == "_.x");
    // Too long for a folder name: cut, and told apart by a hash of the path.
    std::string deep, deeper;
    for (int i = 0; i < 5; ++i) deep += std::string(60, 'a') + "/";
    deeper = deep + "b";
    deep += "c";
    CHECK(cgroup_name(deep).size() <= 200);
    CHECK(cgroup_name(deep) != cgroup_name(deeper));
    CHECK(cgroup_name(deep) == cgroup_name(deep));
}
