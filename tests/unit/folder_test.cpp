// Which log folders and files chipd trusts (src/os/folder.hpp): the pure
// decisions on an owner, a mode and a link count. Nothing on disk.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>

#include "os/folder.hpp"

using chip::os::file_distrust;
using chip::os::folder_distrust;

TEST_CASE("a folder of chipd's user or root that no one else can write to is trusted") {
    CHECK(folder_distrust(1000, S_IFDIR | 0755, 1000) == "");
    CHECK(folder_distrust(0, S_IFDIR | 0755, 1000) == "");
    CHECK(folder_distrust(0, S_IFDIR | 0700, 0) == "");
    CHECK(folder_distrust(1000, S_IFDIR | 0555, 1000) == "");
}

TEST_CASE("a folder of another user is refused, whatever its mode") {
    CHECK(folder_distrust(1000, S_IFDIR | 0755, 0) ==
          "is owned by uid 1000, not by chipd's user (uid 0) or root");
    CHECK(folder_distrust(1001, S_IFDIR | 01777, 1000) ==
          "is owned by uid 1001, not by chipd's user (uid 1000) or root");
}

TEST_CASE("a folder its group or others can write to is refused unless sticky") {
    CHECK(folder_distrust(0, S_IFDIR | 0775, 0) == "is writable by its group and not sticky");
    CHECK(folder_distrust(0, S_IFDIR | 0757, 0) == "is writable by others and not sticky");
    CHECK(folder_distrust(1000, S_IFDIR | 0777, 1000) ==
          "is writable by its group and others and not sticky");
    // Sticky and owned by chipd's user, or by root like /tmp.
    CHECK(folder_distrust(0, S_IFDIR | 01777, 0) == "");
    CHECK(folder_distrust(0, S_IFDIR | 01777, 1000) == "");
    CHECK(folder_distrust(1000, S_IFDIR | 01770, 1000) == "");
}

TEST_CASE("a log file must be a regular file") {
    CHECK(file_distrust(S_IFREG | 0644, 0, 1, false, 0) == "");
    CHECK(file_distrust(S_IFLNK | 0777, 0, 1, false, 0) == "is a symbolic link");
    CHECK(file_distrust(S_IFIFO | 0644, 0, 1, false, 0) == "is not a regular file but a FIFO");
    CHECK(file_distrust(S_IFCHR | 0644, 0, 1, false, 0) ==
          "is not a regular file but a character device");
    CHECK(file_distrust(S_IFBLK | 0644, 0, 1, false, 0) ==
          "is not a regular file but a block device");
    CHECK(file_distrust(S_IFSOCK | 0644, 0, 1, false, 0) == "is not a regular file but a socket");
    CHECK(file_distrust(S_IFDIR | 0755, 0, 2, false, 0) == "is not a regular file but a folder");
}

TEST_CASE(
    "in a folder only chipd's user can write to, any of its regular files will do; in a shared "
    "one, only its own with a single name") {
    CHECK(file_distrust(S_IFREG | 0644, 1000, 1, false, 0) == "");
    CHECK(file_distrust(S_IFREG | 0644, 0, 3, false, 0) == "");
    CHECK(file_distrust(S_IFREG | 0644, 0, 1, true, 0) == "");
    CHECK(file_distrust(S_IFREG | 0644, 1000, 1, true, 0) ==
          "is owned by uid 1000, not by chipd's user (uid 0), in a folder others can write to");
    CHECK(file_distrust(S_IFREG | 0644, 0, 2, true, 0) ==
          "has 2 hard links, in a folder others can write to");
}
