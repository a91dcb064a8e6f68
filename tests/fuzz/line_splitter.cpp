// Fuzz target: the splitter that cuts a worker's output into log lines
// (src/daemon/line_splitter.hpp), fed in arbitrary reads.
//
// Input: byte 0 picks the longest piece (1 to 64 bytes, or the real 64 KiB
// when its top bits are set); the rest is the stream, cut into reads at each
// 0xff byte (not part of the stream). Checked: every emit is whole lines, and
// the lines are exactly those of the stream, a line longer than the maximum in
// pieces of the maximum, whatever the reads, and a last line completed with a
// newline.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "daemon/line_splitter.hpp"

using chip::daemon::LineSplitter;

namespace {

// The lines the splitter must emit for STREAM, computed the simple way.
std::string expected(std::string_view stream, std::size_t max) {
    std::string out;
    std::size_t at = 0;
    while (at < stream.size()) {
        auto nl = stream.find('\n', at);
        bool complete = nl != std::string_view::npos;
        std::string_view line = stream.substr(at, complete ? nl - at : std::string_view::npos);
        if (line.empty()) out += '\n';
        for (std::size_t p = 0; p < line.size(); p += max) {
            out.append(line.substr(p, max));
            out += '\n';
        }
        if (!complete) break;
        at = nl + 1;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size == 0) return 0;
    std::size_t max = data[0] >= 0xc0 ? chip::daemon::kMaxLine : 1 + data[0] % 64;
    std::string_view rest(reinterpret_cast<const char *>(data + 1), size - 1);

    LineSplitter splitter(max);
    std::string out, stream;
    auto emit = [&](std::string_view lines) {
        CHECK_FUZZ(!lines.empty() && lines.back() == '\n');
        out.append(lines);
    };
    std::size_t at = 0;
    while (at <= rest.size()) {
        auto cut = rest.find('\xff', at);
        std::string_view read = rest.substr(at, cut == std::string_view::npos ? cut : cut - at);
        splitter.feed(read, emit);
        stream.append(read);
        CHECK_FUZZ(splitter.pending() <= max);
        if (cut == std::string_view::npos) break;
        at = cut + 1;
    }
    splitter.finish(emit);
    CHECK_FUZZ(splitter.pending() == 0);
    CHECK_FUZZ(out == expected(stream, max));
    return 0;
}
