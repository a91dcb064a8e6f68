// The registry index: the small text file chipd publishes beside its control
// socket ("chipd.sock.registries", README.md "The registry") to tell readers
// which shared-memory object holds each registry. The regions' names carry a
// random part, so readers cannot derive them; they read this file instead.
//
//   chip-registries 1
//   sessions /chip-0123456789abcdef0123456789abcdef-sessions
//
// One line per registry: its name, one space, its shared-memory name, which
// must be "/chip-<32 lowercase hex digits>-<the same name>". Every line ends
// with '\n'. Parsing is strict (a reader trusts nothing else) and bounded.
// This is only the format; where the file lives and who may have written it
// is decided by os/private_folder.hpp and its callers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace chip::registry {

struct IndexEntry {
    std::string registry;  // a registry name ([A-Za-z0-9_.:-]{1,64})
    std::string shm_name;  // "/chip-<token>-<registry>", for shm_open
    bool operator==(const IndexEntry &) const = default;
};

// An index file is never larger than this (about 500 registries).
inline constexpr std::size_t kMaxIndexSize = 64 * 1024;

// The file's text for ENTRIES (valid names, as chipd makes them).
std::string format_index(const std::vector<IndexEntry> &entries);
// The entries of TEXT, in file order; EINVAL with the first fault and its line
// ("line 2: expected ...") for anything but a well-formed index.
Result<std::vector<IndexEntry>> parse_index(std::string_view text);
// Whether SHM is "/chip-<kShmTokenLen lowercase hex>-<REGISTRY>".
bool valid_shm_name(std::string_view shm, std::string_view registry);

}  // namespace chip::registry
