#include "registry/index.hpp"

#include <cerrno>

#include "common/names.hpp"

namespace chip::registry {

namespace {

constexpr std::string_view kHeader = "chip-registries 1";

bool lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

bool valid_shm_name(std::string_view shm, std::string_view registry) {
    constexpr std::string_view kLead = "/chip-";
    if (!valid_group_name(registry)) return false;
    if (shm.size() != kLead.size() + kShmTokenLen + 1 + registry.size()) return false;
    if (shm.substr(0, kLead.size()) != kLead) return false;
    if (!lower_hex(shm.substr(kLead.size(), kShmTokenLen))) return false;
    if (shm[kLead.size() + kShmTokenLen] != '-') return false;
    return shm.substr(kLead.size() + kShmTokenLen + 1) == registry;
}

std::string format_index(const std::vector<IndexEntry> &entries) {
    std::string out(kHeader);
    out += '\n';
    for (const auto &e : entries) out += e.registry + ' ' + e.shm_name + '\n';
    return out;
}

Result<std::vector<IndexEntry>> parse_index(std::string_view text) {
    auto fail = [](std::size_t line, const std::string &what) {
        return make_error(EINVAL, "line " + std::to_string(line) + ": " + what);
    };
    if (text.size() > kMaxIndexSize)
        return make_error(EINVAL, "larger than " + std::to_string(kMaxIndexSize) + " bytes");
    std::vector<IndexEntry> out;
    std::size_t line = 0;
    while (!text.empty()) {
        ++line;
        auto nl = text.find('\n');
        if (nl == std::string_view::npos) return fail(line, "expected a line ending in a newline");
        std::string_view l = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        if (line == 1) {
            if (l != kHeader) return fail(line, "expected \"" + std::string(kHeader) + "\"");
            continue;
        }
        auto space = l.find(' ');
        if (space == std::string_view::npos)
            return fail(line, "expected a registry name, a space and a shared-memory name");
        std::string_view name = l.substr(0, space), shm = l.substr(space + 1);
        if (!valid_group_name(name)) return fail(line, "expected a registry name");
        if (!valid_shm_name(shm, name))
            return fail(line, "expected the shared-memory name /chip-<" +
                                  std::to_string(kShmTokenLen) + " hex digits>-" +
                                  std::string(name));
        for (const auto &e : out)
            if (e.registry == name) return fail(line, "registry " + std::string(name) + " twice");
        out.push_back({std::string(name), std::string(shm)});
    }
    if (line == 0) return fail(1, "expected \"" + std::string(kHeader) + "\"");
    return out;
}

}  // namespace chip::registry
