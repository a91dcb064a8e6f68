// Files chipd writes where another user might reach (log files and their
// rotations): the folder is opened without following a symlink another user
// made as its last component, its owner and mode are checked on the folder
// actually opened, and the files in it are opened and renamed relative to it,
// never through a symlink (README.md, "Log files"). It does not decide what is
// written nor when to rotate (daemon/output.*).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::os {

// Why a folder owned by OWNER with MODE (st_mode) must not hold the files of a
// process whose effective uid is SELF, as a phrase ("is writable by others and
// not sticky"); empty when it may: owned by SELF or root, and writable by no
// one else unless sticky. Pure.
std::string folder_distrust(uid_t owner, mode_t mode, uid_t self);

// Why a file with MODE (st_mode), OWNER and LINKS hard links must not be
// appended to by a process whose effective uid is SELF, as a phrase ("is a
// symbolic link"); empty when it may. It must be a regular file; in a SHARED
// folder (one others can write to: sticky) it must also be SELF's own with no
// other name, for another user could have made it. Pure.
std::string file_distrust(mode_t mode, uid_t owner, nlink_t links, bool shared, uid_t self);

// Why opening a Folder or a file in it failed. REFUSED: chipd will not write
// there whatever the permissions (ERROR's code ELOOP for a symbolic link,
// EPERM otherwise, its message ending "; refused"); else ERROR's code is the
// errno of the call that failed (ENOENT, EACCES, EMFILE...).
struct OpenFailure {
    Error error;
    bool refused = false;
};

// An open folder that passed folder_distrust for this process's effective uid.
class Folder {
public:
    // Opens PATH (O_PATH: no read permission needed) and checks the folder
    // opened. The folders above it may be symbolic links (/var/run -> /run);
    // PATH itself only one of root's or this process's user's. Messages name
    // the folder: "folder /x is a symbolic link of uid 1000, not of ...;
    // refused", "folder /x (owner uid 0, mode 0777) is writable by others and
    // not sticky; refused", "folder /x: No such file or directory".
    static std::optional<Folder> open(const std::string &path, OpenFailure &why);

    const std::string &path() const { return path_; }
    // Writable by others (and so sticky): files in it get file_distrust's
    // stricter checks.
    bool shared() const { return shared_; }

    // Opens NAME in this folder for appending, close-on-exec, created 0644
    // when missing; never through a symbolic link, never blocking on a FIFO,
    // never opening what file_distrust refuses. Sets SIZE to its size. Messages
    // name nothing but the cause ("is a symbolic link; refused").
    UniqueFd open_append(const std::string &name, std::uint64_t &size, OpenFailure &why) const;
    // renameat(2) of FROM to TO, both names in this folder: a symbolic link is
    // renamed itself, never what it points to. A failure is ignored (a missing
    // PATH.k while rotating is normal).
    void rename(const std::string &from, const std::string &to) const;

private:
    Folder(UniqueFd fd, std::string path, bool shared)
        : fd_(std::move(fd)), path_(std::move(path)), shared_(shared) {}

    UniqueFd fd_;
    std::string path_;
    bool shared_ = false;
};

// Why chipd would refuse folder PATH for its files (Folder::open's refusal
// message without "; refused"), or empty: it would not, or it cannot be
// opened at all (which the caller tells otherwise).
std::string folder_refusal(const std::string &path);

}  // namespace chip::os
