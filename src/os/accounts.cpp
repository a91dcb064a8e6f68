#include "os/accounts.hpp"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <vector>

namespace chip::os {

namespace {

// getpw*_r/getgr*_r with a buffer grown on ERANGE (sysconf's hint may be -1).
template <typename Entry, typename Lookup>
bool lookup_entry(Entry &entry, Lookup lookup) {
    std::vector<char> buf(4096);
    for (;;) {
        Entry *result = nullptr;
        int rc = lookup(&entry, buf.data(), buf.size(), &result);
        if (rc == ERANGE && buf.size() < (1u << 22)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        return rc == 0 && result != nullptr;
    }
}

// PW's fields copied out of the lookup's buffer.
UserEntry entry_of(const passwd &pw) {
    return UserEntry{pw.pw_uid, pw.pw_gid, pw.pw_name ? pw.pw_name : "", pw.pw_dir ? pw.pw_dir : "",
                     pw.pw_shell ? pw.pw_shell : ""};
}

}  // namespace

std::optional<UserEntry> user_by_name(const std::string &name) {
    passwd pw{};
    std::optional<UserEntry> out;
    // The entry points into the lookup's buffer: copied out inside the lambda.
    if (!lookup_entry(pw, [&](passwd *e, char *b, std::size_t n, passwd **r) {
            int rc = ::getpwnam_r(name.c_str(), e, b, n, r);
            if (rc == 0 && *r) out = entry_of(*e);
            return rc;
        }))
        return std::nullopt;
    return out;
}

std::optional<UserEntry> user_by_id(uid_t uid) {
    passwd pw{};
    std::optional<UserEntry> out;
    if (!lookup_entry(pw, [&](passwd *e, char *b, std::size_t n, passwd **r) {
            int rc = ::getpwuid_r(uid, e, b, n, r);
            if (rc == 0 && *r) out = entry_of(*e);
            return rc;
        }))
        return std::nullopt;
    return out;
}

std::optional<gid_t> group_by_name(const std::string &name) {
    group gr{};
    if (!lookup_entry(gr, [&](group *e, char *b, std::size_t n, group **r) {
            return ::getgrnam_r(name.c_str(), e, b, n, r);
        }))
        return std::nullopt;
    return gr.gr_gid;
}

}  // namespace chip::os
