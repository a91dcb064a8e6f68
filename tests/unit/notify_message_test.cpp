// What chipd takes from a worker's notify datagram
// (src/daemon/notify_message.hpp): READY=1 and CHIP_EXPORT_ lines, with a
// warning per refused export and nothing thrown whatever the bytes.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/notify_message.hpp"

using chip::daemon::kExportMaxValue;
using chip::daemon::parse_notify;
using chip::daemon::valid_export_name;
using Exports = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("READY=1 alone, and with exports around it") {
    auto m = parse_notify("READY=1");
    CHECK(m.ready);
    CHECK(m.exports.empty());
    CHECK(m.warnings.empty());

    m = parse_notify("CHIP_EXPORT_DB_PORT=5432\nREADY=1\nCHIP_EXPORT_DB_HOST=127.0.0.1\n");
    CHECK(m.ready);
    CHECK(m.exports == Exports{{"DB_PORT", "5432"}, {"DB_HOST", "127.0.0.1"}});
    CHECK(m.warnings.empty());
}

TEST_CASE("exports without READY=1; other sd_notify lines are ignored") {
    auto m = parse_notify("STATUS=starting\nCHIP_EXPORT_X=val\nMAINPID=12\nREADY=0");
    CHECK_FALSE(m.ready);
    CHECK(m.exports == Exports{{"X", "val"}});
    CHECK(m.warnings.empty());
}

TEST_CASE("values: empty, with '=' and spaces; a name sent twice keeps its last value") {
    auto m = parse_notify("CHIP_EXPORT_A=\nCHIP_EXPORT_B=x=y z\nCHIP_EXPORT_A=2");
    CHECK(m.exports == Exports{{"A", "2"}, {"B", "x=y z"}});
}

TEST_CASE("invalid names are refused with a warning; the rest of the datagram counts") {
    auto m = parse_notify(
        "CHIP_EXPORT_lower=1\nCHIP_EXPORT_9LIVES=1\nCHIP_EXPORT_=1\nCHIP_EXPORT_A-B=1\n"
        "CHIP_EXPORT_NOVALUE\nCHIP_EXPORT_OK=1\nREADY=1");
    CHECK(m.ready);
    CHECK(m.exports == Exports{{"OK", "1"}});
    REQUIRE(m.warnings.size() == 5);
    CHECK(m.warnings[0].find("bad export name") != std::string::npos);
    CHECK(m.warnings[0].find("lower") != std::string::npos);
    CHECK(m.warnings[4].find("without a value") != std::string::npos);

    CHECK(valid_export_name("_"));
    CHECK(valid_export_name("A1_"));
    CHECK(valid_export_name(std::string(64, 'A')));
    CHECK_FALSE(valid_export_name(std::string(65, 'A')));
    CHECK_FALSE(valid_export_name("1A"));
    CHECK_FALSE(valid_export_name(""));
    m = parse_notify("CHIP_EXPORT_" + std::string(65, 'A') + "=1");
    CHECK(m.exports.empty());
    CHECK(m.warnings.size() == 1);
}

TEST_CASE("a value over 4 KiB is refused; 4 KiB exactly is taken") {
    std::string big(kExportMaxValue + 1, 'v');
    auto m = parse_notify("CHIP_EXPORT_BIG=" + big +
                          "\nCHIP_EXPORT_FIT=" + std::string(kExportMaxValue, 'f') + "\nREADY=1");
    CHECK(m.ready);
    REQUIRE(m.exports.size() == 1);
    CHECK(m.exports[0].first == "FIT");
    CHECK(m.exports[0].second.size() == kExportMaxValue);
    REQUIRE(m.warnings.size() == 1);
    CHECK(m.warnings[0].find("BIG") != std::string::npos);
    CHECK(m.warnings[0].find("4097 bytes") != std::string::npos);
}

TEST_CASE("truncated lines: no READY=1 from a part of it, a cut export is what arrived") {
    CHECK_FALSE(parse_notify("READY=").ready);
    CHECK_FALSE(parse_notify("READY").ready);
    CHECK_FALSE(parse_notify("READY=10").ready);
    CHECK(parse_notify("CHIP_EXPORT_X").exports.empty());
    CHECK(parse_notify("CHIP_EXPORT_").exports.empty());
    CHECK(parse_notify("CHIP_EXP").warnings.empty());
    CHECK(parse_notify("").exports.empty());
    CHECK_FALSE(parse_notify("").ready);
    CHECK(parse_notify("\n\n\n").warnings.empty());
}

TEST_CASE("binary garbage: no crash, NUL bytes never reach a value, warnings are printable") {
    using namespace std::string_literals;
    auto m = parse_notify("CHIP_EXPORT_X=a\0b\nREADY=1\0\nCHIP_EXPORT_\xff\x01=1"s);
    CHECK_FALSE(m.ready);  // "READY=1\0" is not READY=1
    CHECK(m.exports.empty());
    REQUIRE(m.warnings.size() == 2);
    for (const auto &w : m.warnings)
        for (char c : w) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));

    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        std::string bytes(rng() % 2000, '\0');
        for (auto &c : bytes) {
            auto r = rng() % 8;
            c = r == 0 ? '\n' : r == 1 ? '=' : static_cast<char>(rng());
        }
        if (round % 2) bytes = "CHIP_EXPORT_" + bytes;
        auto g = parse_notify(bytes);
        for (const auto &[k, v] : g.exports) {
            CHECK(valid_export_name(k));
            CHECK(v.size() <= kExportMaxValue);
            CHECK(v.find('\0') == std::string::npos);
            CHECK(v.find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("a huge datagram is parsed whole, linearly") {
    std::string text;
    for (int i = 0; i < 20000; ++i) text += "CHIP_EXPORT_V" + std::to_string(i % 100) + "=x\n";
    text += "READY=1";
    auto m = parse_notify(text);
    CHECK(m.ready);
    CHECK(m.exports.size() == 100);
    CHECK(m.warnings.empty());
}
