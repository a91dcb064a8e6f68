// How worker output is cut into lines (src/daemon/line_splitter.hpp): whole
// lines, pieces of at most 64 KiB for a longer line whatever the reads that
// brought it, and a newline for a last line left unfinished. Small maximums
// make the boundaries easy to see; the last cases use the real 64 KiB.
#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/line_splitter.hpp"

using chip::daemon::kMaxLine;
using chip::daemon::LineSplitter;
using Lines = std::vector<std::string>;

namespace doctest {
template <>
struct StringMaker<Lines> {
    static String convert(const Lines &v) {
        std::string out = "{";
        for (const auto &s : v) {
            std::string shown = s.size() > 40 ? "<" + std::to_string(s.size()) + " bytes>" : s;
            out += (out.size() > 1 ? ", \"" : "\"") + shown + "\"";
        }
        return (out + "}").c_str();
    }
};
}  // namespace doctest

namespace {

// Feeds CHUNKS in turn, then ends the stream. Returns what was emitted, call
// by call, and checks that every call is whole lines.
struct Run {
    Lines calls;
    Lines lines;  // each line of every call, newline included
};

Run split(const std::vector<std::string> &chunks, std::size_t max, bool finish = true) {
    LineSplitter s(max);
    Run run;
    auto emit = [&](std::string_view piece) {
        REQUIRE(!piece.empty());
        CHECK(piece.back() == '\n');
        run.calls.emplace_back(piece);
        std::size_t start = 0;
        while (start < piece.size()) {
            auto nl = piece.find('\n', start);
            run.lines.emplace_back(piece.substr(start, nl + 1 - start));
            start = nl + 1;
        }
    };
    for (const auto &c : chunks) s.feed(c, emit);
    if (finish) s.finish(emit);
    return run;
}

std::string xs(std::size_t n, char c = 'x') {
    return std::string(n, c);
}

}  // namespace

TEST_CASE("whole lines pass in one piece per read") {
    auto r = split({"a\nbb\nccc\n"}, 8);
    CHECK(r.calls == Lines{"a\nbb\nccc\n"});
    r = split({"a\n\n", "b\n"}, 8);
    CHECK(r.calls == Lines{"a\n\n", "b\n"});
}

TEST_CASE("an unfinished line waits for its end, or for the end of the stream") {
    auto r = split({"ab", "c\nd", "e\nf"}, 8, false);
    CHECK(r.lines == Lines{"abc\n", "de\n"});
    r = split({"ab", "c\nd", "e\nf"}, 8);
    CHECK(r.lines == Lines{"abc\n", "de\n", "f\n"});
    CHECK(split({}, 8).calls.empty());
    CHECK(split({"", "done\n"}, 8).calls == Lines{"done\n"});
    LineSplitter s(8);
    s.feed("abc", [](std::string_view) {});
    CHECK(s.pending() == 3);
}

TEST_CASE("a line of exactly the maximum is one line, however it arrives") {
    CHECK(split({xs(8) + "\n"}, 8).lines == Lines{xs(8) + "\n"});
    CHECK(split({xs(8), "\n"}, 8).lines == Lines{xs(8) + "\n"});
    CHECK(split({xs(5), xs(3), "\nz\n"}, 8).lines == Lines{xs(8) + "\n", "z\n"});
    CHECK(split({xs(8)}, 8).lines == Lines{xs(8) + "\n"});
}

TEST_CASE("a longer line is cut into pieces of at most the maximum") {
    CHECK(split({xs(9) + "\n"}, 8).lines == Lines{xs(8) + "\n", "x\n"});
    CHECK(split({xs(8), "y\n"}, 8).lines == Lines{xs(8) + "\n", "y\n"});
    CHECK(split({xs(16) + "\n"}, 8).lines == Lines{xs(8) + "\n", xs(8) + "\n"});
    CHECK(split({"a\n" + xs(20) + "\nb\n"}, 8).lines ==
          Lines{"a\n", xs(8) + "\n", xs(8) + "\n", xs(4) + "\n", "b\n"});
    // A partial line and the next read together pass the maximum.
    CHECK(split({xs(6), xs(4)}, 8).lines == Lines{xs(8) + "\n", xs(2) + "\n"});
    CHECK(split({xs(6), xs(4) + "\nq\n"}, 8).lines == Lines{xs(8) + "\n", xs(2) + "\n", "q\n"});
    CHECK(split({xs(6), xs(20)}, 8).lines ==
          Lines{xs(8) + "\n", xs(8) + "\n", xs(8) + "\n", xs(2) + "\n"});
}

TEST_CASE("any chunking of a stream gives the same lines, none over the maximum") {
    // Lines of every length around the boundaries, fed in random chunks.
    const std::size_t max = 8;
    std::string stream;
    Lines expected;
    for (std::size_t len : {0, 1, 7, 8, 9, 15, 16, 17, 3, 24, 0, 8}) {
        std::string line;
        for (std::size_t i = 0; i < len; ++i) line += static_cast<char>('a' + (i % 26));
        stream += line + "\n";
        if (line.empty()) expected.push_back("\n");
        for (std::size_t at = 0; at < len; at += max)
            expected.push_back(line.substr(at, max) + "\n");
    }
    std::mt19937 rng(7);
    for (int round = 0; round < 500; ++round) {
        std::vector<std::string> chunks;
        for (std::size_t at = 0; at < stream.size();) {
            std::size_t n = std::uniform_int_distribution<std::size_t>(0, 20)(rng);
            chunks.push_back(stream.substr(at, n));
            at += n;
        }
        auto r = split(chunks, max);
        REQUIRE(r.lines == expected);
    }
}

TEST_CASE("64 KiB: no piece over it, whatever the reads") {
    // 60 KiB without a newline, then 10 KiB more without one.
    auto r = split({xs(60 * 1024), xs(10 * 1024, 'y')}, kMaxLine);
    for (const auto &l : r.lines) CHECK(l.size() <= kMaxLine + 1);
    REQUIRE(r.lines.size() == 2);
    CHECK(r.lines[0] == xs(60 * 1024) + xs(4 * 1024, 'y') + "\n");
    CHECK(r.lines[1] == xs(6 * 1024, 'y') + "\n");
    // ... then a newline: the rest of the line, and nothing empty after it.
    r = split({xs(60 * 1024), xs(10 * 1024, 'y') + "\n"}, kMaxLine);
    CHECK(r.lines.size() == 2);
    CHECK(r.lines[1] == xs(6 * 1024, 'y') + "\n");
    // Exactly 64 KiB, its newline in the next read: one line.
    r = split({xs(kMaxLine), "\n", "next\n"}, kMaxLine);
    CHECK(r.lines == Lines{xs(kMaxLine) + "\n", "next\n"});
    // 64 KiB and one byte: two pieces.
    r = split({xs(kMaxLine + 1) + "\n"}, kMaxLine);
    CHECK(r.lines == Lines{xs(kMaxLine) + "\n", "x\n"});
}
