// The machine's user and group databases and small file reads, for the spec
// loader (through spec::Host). Lookups by name or id only; no policy here.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "common/result.hpp"

namespace chip::os {

// The uid and primary gid of the passwd entry named NAME.
std::optional<std::pair<uid_t, gid_t>> user_by_name(const std::string &name);
// The primary gid of the passwd entry of UID.
std::optional<gid_t> user_by_id(uid_t uid);
// The gid of the group entry named NAME.
std::optional<gid_t> group_by_name(const std::string &name);

// True when PATH is a folder (following symlinks).
bool is_folder(const std::string &path);
// True when PATH is a folder this process may create files in.
bool is_writable_folder(const std::string &path);
// The whole regular file at PATH; EISDIR for a folder, EFBIG past LIMIT bytes.
Result<std::string> read_small_file(const std::string &path, std::size_t limit);
// The working directory, or "" when it cannot be told.
std::string current_dir();

}  // namespace chip::os
