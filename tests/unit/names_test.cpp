// Name rules, signal names, shared-memory names, modes and socket folders
// (src/common/names.hpp).
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "common/names.hpp"

using namespace chip;

TEST_CASE("a child name is 1 to 64 characters") {
    CHECK(valid_child_name("a"));
    CHECK(valid_child_name(std::string(64, 'x')));
    CHECK_FALSE(valid_child_name(std::string(65, 'x')));
    CHECK_FALSE(valid_child_name(""));
    CHECK_FALSE(valid_child_name("."));  // would read as folders in paths
    CHECK_FALSE(valid_child_name(".."));
    CHECK(valid_child_name("..."));
    CHECK(valid_child_name(".hidden"));
}

TEST_CASE("a child name allows letters, digits, '_', '.' and '-' only") {
    CHECK(valid_child_name("Session_1.web-2"));
    CHECK(valid_child_name("0"));
    CHECK(valid_child_name("..."));
    for (const char *bad : {"a b", "a/b", "a:b", "a=b", "é", "a\n", "a\tb", "a*", "a~"}) {
        INFO(bad);
        CHECK_FALSE(valid_child_name(bad));
    }
    CHECK_FALSE(valid_child_name(std::string("a\0b", 3)));
}

TEST_CASE("a group name is 1 to 64 characters and also allows ':'") {
    CHECK(valid_group_name("players:eu-1.a_b"));
    CHECK(valid_group_name(std::string(64, ':')));
    CHECK_FALSE(valid_group_name(std::string(65, 'g')));
    CHECK_FALSE(valid_group_name(""));
    for (const char *bad : {"a b", "a/b", "a=b", "ü", "a,b"}) {
        INFO(bad);
        CHECK_FALSE(valid_group_name(bad));
    }
}

TEST_CASE("parse_signal accepts names with or without SIG, and numbers") {
    CHECK(parse_signal("TERM") == SIGTERM);
    CHECK(parse_signal("SIGTERM") == SIGTERM);
    CHECK(parse_signal("KILL") == SIGKILL);
    CHECK(parse_signal("SIGUSR1") == SIGUSR1);
    CHECK(parse_signal("15") == 15);
    CHECK(parse_signal("1") == 1);
    CHECK(parse_signal("64") == 64);
}

TEST_CASE("parse_signal refuses what is not a signal") {
    CHECK_FALSE(parse_signal("0").has_value());
    CHECK_FALSE(parse_signal("65").has_value());
    CHECK_FALSE(parse_signal("99").has_value());
    CHECK_FALSE(parse_signal("99999999999999999999").has_value());
    CHECK_FALSE(parse_signal("FOO").has_value());
    CHECK_FALSE(parse_signal("").has_value());
    CHECK_FALSE(parse_signal("SIG").has_value());
    CHECK_FALSE(parse_signal("term").has_value());
    CHECK_FALSE(parse_signal("-15").has_value());
    CHECK_FALSE(parse_signal("15x").has_value());
    CHECK_FALSE(parse_signal(" TERM").has_value());
}

TEST_CASE("signal_name gives the name without SIG, or the number") {
    CHECK(signal_name(SIGTERM) == "TERM");
    CHECK(signal_name(SIGKILL) == "KILL");
    CHECK(signal_name(SIGHUP) == "HUP");
    CHECK(signal_name(SIGRTMIN + 1) == std::to_string(SIGRTMIN + 1));
}

TEST_CASE("signal_name and parse_signal round-trip for every named signal") {
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        std::string name = signal_name(sig);
        INFO(name);
        CHECK(parse_signal(name) == sig);
    }
}

TEST_CASE("socket_hash_prefix is stable for the same socket path and differs for others") {
    CHECK(socket_hash_prefix("/run/chip/chipd.sock") == socket_hash_prefix("/run/chip/chipd.sock"));
    // The same path written differently names the same chipd.
    CHECK(socket_hash_prefix("/run/chip/./chipd.sock") ==
          socket_hash_prefix("/run/chip/chipd.sock"));
    CHECK(socket_hash_prefix("/run/chip/a.sock") != socket_hash_prefix("/run/chip/b.sock"));
    std::string prefix = socket_hash_prefix("/tmp/x.sock");
    REQUIRE(prefix.size() == 5 + 16 + 1);
    CHECK(prefix.rfind("chip-", 0) == 0);
    CHECK(prefix.back() == '-');
}

TEST_CASE("registry_shm_name is /chip-<token>-<registry>, one path component") {
    std::string token(kShmTokenLen, 'a');
    std::string name = registry_shm_name(token, "sessions");
    CHECK(name == "/chip-" + token + "-sessions");
    CHECK(name.find('/', 1) == std::string::npos);  // as shm_open wants
    CHECK(registry_index_name("chipd.sock") == "chipd.sock.registries");
}

TEST_CASE("parse_mode takes 1 to 4 octal digits up to 0777 and nothing else") {
    CHECK(parse_mode("0660") == mode_t{0660});
    CHECK(parse_mode("660") == mode_t{0660});
    CHECK(parse_mode("0777") == mode_t{0777});
    CHECK(parse_mode("0600") == mode_t{0600});
    CHECK(parse_mode("0") == mode_t{0});
    for (const char *bad : {"", "0o660", "0x1b6", "08", "0668", "1777", "4755", "2770", "00660",
                            " 660", "660 ", "-660", "+660", "rw-rw----"}) {
        INFO(bad);
        CHECK_FALSE(parse_mode(bad).has_value());
    }
    CHECK(format_mode(0660) == "0660");
    CHECK(format_mode(0700) == "0700");
    CHECK(format_mode(01777) == "1777");
    CHECK(format_mode(05) == "0005");
}

TEST_CASE("the socket's folder is private, system or given, by its path") {
    const char *had = std::getenv("XDG_RUNTIME_DIR");
    std::string saved = had ? had : "";
    ::unsetenv("XDG_RUNTIME_DIR");
    CHECK(private_runtime_folder(1000) == "/tmp/chip-1000");
    CHECK_FALSE(private_runtime_folder(0).has_value());
    CHECK(socket_folder_kind("/tmp/chip-1000/chipd.sock", 1000) == SocketFolderKind::Private);
    CHECK(socket_folder_kind("/tmp/chip-1000/other.sock", 1000) == SocketFolderKind::Private);
    CHECK(socket_folder_kind("/tmp/chip-1000/./x/../chipd.sock", 1000) ==
          SocketFolderKind::Private);
    CHECK(socket_folder_kind("/tmp/chip-1000/chipd.sock", 1001) == SocketFolderKind::Given);
    CHECK(socket_folder_kind("/tmp/chip-1000/sub/chipd.sock", 1000) == SocketFolderKind::Given);
    CHECK(socket_folder_kind("/run/chip/chipd.sock", 0) == SocketFolderKind::System);
    CHECK(socket_folder_kind("/run/chip/chipd.sock", 1000) == SocketFolderKind::Given);
    CHECK(socket_folder_kind("/srv/app/chipd.sock", 0) == SocketFolderKind::Given);
    ::setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    CHECK(private_runtime_folder(1000) == "/run/user/1000/chip");
    CHECK(socket_folder_kind("/run/user/1000/chip/chipd.sock", 1000) == SocketFolderKind::Private);
    CHECK(socket_folder_kind("/tmp/chip-1000/chipd.sock", 1000) == SocketFolderKind::Given);
    ::setenv("XDG_RUNTIME_DIR", "/run/user/0/", 1);
    CHECK(socket_folder_kind("/run/user/0/chip/chipd.sock", 0) == SocketFolderKind::Private);
    CHECK(socket_folder_kind("/run/chip/chipd.sock", 0) == SocketFolderKind::System);
    if (had)
        ::setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
    else
        ::unsetenv("XDG_RUNTIME_DIR");
}
