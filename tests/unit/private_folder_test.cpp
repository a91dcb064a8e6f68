// Which socket folders chipd and its clients trust (folder_refusal and
// given_folder_refusal of src/os/private_folder.hpp), from stat's facts alone.
#include <doctest/doctest.h>

#include <string>

#include "os/private_folder.hpp"

using namespace chip;
using chip::os::FolderFacts;

namespace {

FolderFacts folder(uid_t owner, mode_t mode) {
    FolderFacts f;
    f.is_folder = true;
    f.owner = owner;
    f.mode = mode;
    return f;
}

std::string refusal(SocketFolderKind kind, const FolderFacts &f, uid_t uid) {
    auto why = os::folder_refusal(kind, f, uid);
    return why ? *why : "";
}

}  // namespace

TEST_CASE("a private runtime folder must be a real folder of its user with mode 0700") {
    const auto kPrivate = SocketFolderKind::Private;
    CHECK(refusal(kPrivate, folder(1000, 0700), 1000).empty());
    CHECK(refusal(kPrivate, folder(1000, 0777), 1000) ==
          "mode 0777; expected 0700 (private to its user)");
    CHECK(refusal(kPrivate, folder(1000, 0755), 1000).find("mode 0755") != std::string::npos);
    CHECK(refusal(kPrivate, folder(1000, 0500), 1000).find("mode 0500") != std::string::npos);
    CHECK(refusal(kPrivate, folder(1000, 01700), 1000).find("mode 1700") != std::string::npos);
    CHECK(refusal(kPrivate, folder(1001, 0700), 1000) ==
          "owned by uid 1001; expected uid 1000 (the user running chip)");
    CHECK(refusal(kPrivate, folder(0, 0700), 1000).find("owned by uid 0") != std::string::npos);
    FolderFacts link;
    link.is_symlink = true;
    link.owner = 1000;
    link.mode = 0777;
    CHECK(refusal(kPrivate, link, 1000).find("symlink") != std::string::npos);
    FolderFacts file = folder(1000, 0700);
    file.is_folder = false;
    CHECK(refusal(kPrivate, file, 1000) == "it is not a folder");
}

TEST_CASE("/run/chip must be root's, writable by root alone") {
    const auto kSystem = SocketFolderKind::System;
    CHECK(refusal(kSystem, folder(0, 0755), 0).empty());
    CHECK(refusal(kSystem, folder(0, 0750), 0).empty());
    CHECK(refusal(kSystem, folder(0, 0700), 0).empty());
    CHECK(refusal(kSystem, folder(0, 0775), 0).find("mode 0775") != std::string::npos);
    CHECK(refusal(kSystem, folder(0, 01777), 0).find("mode 1777") != std::string::npos);
    CHECK(refusal(kSystem, folder(1000, 0755), 0).find("owned by uid 1000") != std::string::npos);
}

TEST_CASE(
    "a folder the user named is not refused when opened; its readers check it against the "
    "socket's owner") {
    CHECK(refusal(SocketFolderKind::Given, folder(1234, 0777), 1000).empty());
    CHECK_FALSE(os::given_folder_refusal(folder(0, 0755), 1000).has_value());
    CHECK_FALSE(os::given_folder_refusal(folder(1000, 0700), 1000).has_value());
    CHECK_FALSE(os::given_folder_refusal(folder(0, 01777), 1000).has_value());  // like /tmp
    CHECK_FALSE(os::given_folder_refusal(folder(1000, 01770), 1000).has_value());
    auto stranger = os::given_folder_refusal(folder(1234, 0755), 1000);
    REQUIRE(stranger.has_value());
    CHECK(stranger->find("owned by uid 1234") != std::string::npos);
    auto open = os::given_folder_refusal(folder(0, 0777), 1000);
    REQUIRE(open.has_value());
    CHECK(open->find("mode 0777") != std::string::npos);
    CHECK(os::given_folder_refusal(folder(1000, 0770), 1000).has_value());
}
