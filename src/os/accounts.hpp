// The machine's user and group databases (passwd, group), by name or id, for
// the spec loader (through spec::Host) and the launcher. Lookups only; no policy.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

namespace chip::os {

// The uid and primary gid of the passwd entry named NAME.
std::optional<std::pair<uid_t, gid_t>> user_by_name(const std::string &name);
// The primary gid of the passwd entry of UID.
std::optional<gid_t> user_by_id(uid_t uid);
// The gid of the group entry named NAME.
std::optional<gid_t> group_by_name(const std::string &name);

}  // namespace chip::os
