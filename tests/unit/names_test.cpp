// Name rules, signal names and shared-memory names (src/common/names.hpp).
#include <doctest/doctest.h>

#include <csignal>
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

TEST_CASE("registry_shm_name is stable for the same socket path") {
    CHECK(registry_shm_name("/run/chip/chipd.sock", "sessions") ==
          registry_shm_name("/run/chip/chipd.sock", "sessions"));
    // The same path written differently names the same chipd.
    CHECK(registry_shm_name("/run/chip/./chipd.sock", "sessions") ==
          registry_shm_name("/run/chip/chipd.sock", "sessions"));
}

TEST_CASE("registry_shm_name differs for different sockets and registries") {
    CHECK(registry_shm_name("/run/chip/a.sock", "r") != registry_shm_name("/run/chip/b.sock", "r"));
    CHECK(registry_shm_name("/run/chip/a.sock", "r") != registry_shm_name("/run/chip/a.sock", "s"));
}

TEST_CASE("registry_shm_name is /chip-<16 hex digits>-<registry>") {
    std::string name = registry_shm_name("/tmp/x.sock", "sessions");
    std::string prefix = registry_shm_prefix("/tmp/x.sock");
    CHECK(name == prefix + "sessions");
    REQUIRE(prefix.size() == 6 + 16 + 1);
    CHECK(prefix.rfind("/chip-", 0) == 0);
    CHECK(prefix.back() == '-');
    CHECK(prefix.substr(6, 16).find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(name.find('/', 1) == std::string::npos);  // one path component, as shm_open wants
}
