// How worker output is cut into lines (src/daemon/line_splitter.hpp): whole
// lines, pieces of at most 64 KiB for a longer line whatever the reads that
// brought it, and a newline for a last line left unfinished. Small maximums
// make the boundaries easy to see; the last cases use the real 64 KiB.
#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/line_splitter.hpp"

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
