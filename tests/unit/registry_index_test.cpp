// The registry index file chipd publishes beside its socket
// (src/registry/index.hpp): its format, and a parser that accepts nothing else.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/names.hpp"
#include "registry/index.hpp"

using namespace chip;
using namespace chip::registry;

namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";

std::string shm(const std::string &registry) {
    return registry_shm_name(kToken, registry);
}

std::string error_of(const std::string &text) {
    auto r = parse_index(text);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
}

}  // namespace

TEST_CASE("an index lists each registry with its shared-memory name and parses back") {
    std::vector<IndexEntry> entries{{"sessions", shm("sessions")}, {"a.b:c-d_e", shm("a.b:c-d_e")}};
    std::string text = format_index(entries);
    CHECK(text == "chip-registries 1\nsessions " + shm("sessions") + "\na.b:c-d_e " +
                      shm("a.b:c-d_e") + "\n");
    auto back = parse_index(text);
    REQUIRE(back.ok());
    CHECK(*back == entries);
}

TEST_CASE("an index with no registry is the header alone") {
    CHECK(format_index({}) == "chip-registries 1\n");
    auto back = parse_index("chip-registries 1\n");
    REQUIRE(back.ok());
    CHECK(back->empty());
}

TEST_CASE("the parser refuses anything but a well-formed index, naming the line") {
    const std::string head = "chip-registries 1\n";
    CHECK(error_of("").find("line 1") != std::string::npos);
    CHECK(error_of("chip-registries 2\n").find("line 1") != std::string::npos);
    CHECK(error_of("chip-registries 1").find("newline") != std::string::npos);
    CHECK(error_of(head + "r " + shm("r")).find("line 2") != std::string::npos);
    CHECK(error_of(head + "r\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r  " + shm("r") + "\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r " + shm("r") + " \n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r " + shm("r") + "\r\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "bad/name " + shm("r") + "\n").find("registry name") !=
          std::string::npos);
    // The region must be named for the same registry, with a full random token.
    CHECK(error_of(head + "r " + shm("s") + "\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r /chip-0123456789abcdef-r\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r /chip-" + std::string(32, 'A') + "-r\n").find("line 2") !=
          std::string::npos);
    CHECK(error_of(head + "r chip-" + kToken + "-r\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r /../../etc/passwd\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r " + shm("r") + "\nr " + shm("r") + "\n").find("twice") !=
          std::string::npos);
    CHECK(error_of(head + "\n").find("line 2") != std::string::npos);
    CHECK(error_of(head + "r " + shm("r") + "\n" + std::string(1, '\0') + "\n").find("line 3") !=
          std::string::npos);
}

TEST_CASE("the parser refuses an index larger than its bound without reading it") {
    std::string big = "chip-registries 1\n";
    while (big.size() <= kMaxIndexSize) big += "r " + shm("r") + "\n";
    CHECK(error_of(big).find("larger than") != std::string::npos);
}

TEST_CASE("valid_shm_name wants /chip-<32 lowercase hex>-<registry>") {
    CHECK(valid_shm_name(shm("r"), "r"));
    CHECK_FALSE(valid_shm_name(shm("r"), "s"));
    CHECK_FALSE(valid_shm_name(shm("r") + "x", "r"));
    CHECK_FALSE(valid_shm_name("/chip-" + kToken + "_r", "r"));
    CHECK_FALSE(valid_shm_name(shm("r/x"), "r/x"));
    CHECK_FALSE(valid_shm_name("", ""));
}
