// The machine's user and group databases (passwd, group), by name or id, for
// the spec loader (through spec::Host) and the launcher. Lookups only; no policy.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace chip::os {

// A passwd entry: what a login as that user gets.
struct UserEntry {
    uid_t uid = 0;
    gid_t gid = 0;      // the primary group
    std::string name;   // the login name
    std::string home;   // pw_dir
    std::string shell;  // pw_shell
};

// The passwd entry named NAME.
std::optional<UserEntry> user_by_name(const std::string &name);
// The passwd entry of UID.
std::optional<UserEntry> user_by_id(uid_t uid);
// The gid of the group entry named NAME.
std::optional<gid_t> group_by_name(const std::string &name);

}  // namespace chip::os
