#include "daemon/notify_message.hpp"

namespace chip::daemon {

namespace {

constexpr std::string_view kExportPrefix = "CHIP_EXPORT_";

// A name for a warning: printable ASCII, cut at 64 bytes.
std::string shown(std::string_view s) {
    std::string out;
    for (char ch : s.substr(0, 64)) {
        auto c = static_cast<unsigned char>(ch);
        out += c >= 0x20 && c < 0x7f ? ch : '?';
    }
    if (s.size() > 64) out += "...";
    return out;
}

}  // namespace

bool valid_export_name(std::string_view name) {
    if (name.empty() || name.size() > kExportMaxName) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

NotifyMessage parse_notify(std::string_view text) {
    NotifyMessage m;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line == "READY=1") {
            m.ready = true;
        } else if (line.substr(0, kExportPrefix.size()) == kExportPrefix) {
            auto rest = line.substr(kExportPrefix.size());
            auto eq = rest.find('=');
            if (eq == std::string_view::npos) {
                m.warnings.push_back("export without a value ignored: " + shown(line));
            } else if (auto name = rest.substr(0, eq); !valid_export_name(name)) {
                m.warnings.push_back("bad export name ignored (expected [A-Z_][A-Z0-9_]{0,63}): " +
                                     shown(name));
            } else if (auto value = rest.substr(eq + 1); value.size() > kExportMaxValue) {
                m.warnings.push_back("export " + std::string(name) + " ignored: its value is " +
                                     std::to_string(value.size()) + " bytes (at most " +
                                     std::to_string(kExportMaxValue) + ")");
            } else if (value.find('\0') != std::string_view::npos) {
                m.warnings.push_back("export " + std::string(name) +
                                     " ignored: its value holds a NUL byte");
            } else {
                bool replaced = false;
                for (auto &[k, v] : m.exports)
                    if (k == name) {
                        v = std::string(value);
                        replaced = true;
                    }
                if (!replaced) m.exports.emplace_back(std::string(name), std::string(value));
            }
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return m;
}

}  // namespace chip::daemon
