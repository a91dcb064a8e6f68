// Fuzz target: the sd_notify datagram parser (src/daemon/notify_message.hpp),
// READY=1, STATUS= and the other lines chipd ignores, CHIP_EXPORT_NAME=VALUE.
//
// Input: one datagram. Checked: READY is set exactly when a line is
// "READY=1"; every export kept has a valid, unique name and a value within
// the limit without a NUL byte; every warning is printable text.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.hpp"
#include "daemon/notify_message.hpp"

using namespace chip::daemon;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    // chipd ignores a longer datagram whole.
    if (size > kNotifyMaxDatagram) return 0;
    std::string_view text(reinterpret_cast<const char *>(data), size);
    NotifyMessage m = parse_notify(text);

    bool ready = text == "READY=1" || text.starts_with("READY=1\n") ||
                 text.find("\nREADY=1\n") != std::string_view::npos || text.ends_with("\nREADY=1");
    CHECK_FUZZ(m.ready == ready);
    std::set<std::string> names;
    for (const auto &[name, value] : m.exports) {
        CHECK_FUZZ(valid_export_name(name));
        CHECK_FUZZ(names.insert(name).second);
        CHECK_FUZZ(value.size() <= kExportMaxValue);
        CHECK_FUZZ(value.find('\0') == std::string::npos);
        CHECK_FUZZ(value.find('\n') == std::string::npos);
        // The value sent last for that name.
        std::string line = "CHIP_EXPORT_" + name + "=" + value;
        CHECK_FUZZ(text.find(line) != std::string_view::npos);
    }
    for (const auto &w : m.warnings) {
        CHECK_FUZZ(!w.empty());
        for (char c : w) CHECK_FUZZ(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    }
    return 0;
}
