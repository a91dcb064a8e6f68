// Cuts a worker's output stream into the lines chipd writes (README.md, "Log
// files"): whole lines, a line longer than 64 KiB in pieces of at most 64 KiB,
// and a last line without a newline completed with one when the stream ends.
//
// Pure: bytes in, lines out through a callback; it reads and writes nothing
// and does not know where the lines go (output.hpp's sinks do).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace chip::daemon {

// The longest piece of a line, newline excluded.
inline constexpr std::size_t kMaxLine = 64 * 1024;

class LineSplitter {
public:
    // Called with one or more complete lines, each ending in '\n'.
    using Emit = std::function<void(std::string_view lines)>;

    explicit LineSplitter(std::size_t max_line = kMaxLine) : max_(max_line) {}

    // Passes on the complete lines of DATA (with what was kept before it) and
    // keeps an unfinished last line.
    void feed(std::string_view data, const Emit &emit);
    // The stream ended: an unfinished last line is passed on with a newline.
    void finish(const Emit &emit);
    // Bytes of the unfinished line kept.
    std::size_t pending() const { return partial_.size(); }
    // The unfinished line kept, and (for a splitter taking over another's
    // stream, README.md "Upgrading chipd in place") setting it; at most the
    // maximum line.
    const std::string &partial() const { return partial_; }
    void set_partial(std::string_view kept) { partial_.assign(kept.substr(0, max_)); }

private:
    std::size_t max_;
    std::string partial_;  // an unfinished last line, at most max_ bytes; usually empty
    std::string piece_;    // a piece of a long line, with its newline
};

}  // namespace chip::daemon
