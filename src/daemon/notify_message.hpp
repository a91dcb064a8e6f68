// What chipd takes from one sd_notify datagram of a worker (README.md, "Hand-off
// between siblings"): READY=1, and CHIP_EXPORT_NAME=VALUE lines, the variables
// it hands to the workers started after it under its later siblings. Pure: the
// text in, what it says out, with a warning per line it refuses.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chip::daemon {

// The longest datagram chipd reads; a longer one is ignored whole.
inline constexpr std::size_t kNotifyMaxDatagram = 16 * 1024;
// The longest exported value, and name (after CHIP_EXPORT_).
inline constexpr std::size_t kExportMaxValue = 4096;
inline constexpr std::size_t kExportMaxName = 64;

struct NotifyMessage {
    bool ready = false;
    // In the order sent; a name sent twice keeps its last value, in place of
    // its first.
    std::vector<std::pair<std::string, std::string>> exports;
    // One sentence per refused CHIP_EXPORT_ line ("bad export name ...").
    std::vector<std::string> warnings;
};

// Whether NAME matches [A-Z_][A-Z0-9_]{0,63}.
bool valid_export_name(std::string_view name);

// Newline-separated assignments, as sd_notify sends them. Lines chipd does not
// know (STATUS=, MAINPID=, garbage) are ignored without a word.
NotifyMessage parse_notify(std::string_view text);

}  // namespace chip::daemon
