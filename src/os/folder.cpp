#include "os/folder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace chip::os {

namespace {

std::string uid_text(uid_t uid) {
    return "uid " + std::to_string(uid);
}

// MODE's permission bits as chmod takes them: "0755", "1777".
std::string mode_text(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

OpenFailure failed(int code, std::string message) {
    return OpenFailure{make_error(code, std::move(message)), false};
}

OpenFailure refused(int code, std::string message) {
    return OpenFailure{make_error(code, message + "; refused"), true};
}

}  // namespace

std::string folder_distrust(uid_t owner, mode_t mode, uid_t self) {
    if (owner != self && owner != 0)
        return "is owned by " + uid_text(owner) + ", not by chipd's user (" + uid_text(self) +
               ") or root";
    bool group = mode & S_IWGRP, others = mode & S_IWOTH;
    if ((group || others) && !(mode & S_ISVTX))
        return std::string("is writable by ") +
               (group && others ? "its group and others"
                : group         ? "its group"
                                : "others") +
               " and not sticky";
    return {};
}

std::string file_distrust(mode_t mode, uid_t owner, nlink_t links, bool shared, uid_t self) {
    if (S_ISLNK(mode)) return "is a symbolic link";
    if (!S_ISREG(mode)) {
        const char *what = S_ISDIR(mode)    ? "a folder"
                           : S_ISFIFO(mode) ? "a FIFO"
                           : S_ISSOCK(mode) ? "a socket"
                           : S_ISCHR(mode)  ? "a character device"
                           : S_ISBLK(mode)  ? "a block device"
                                            : "of an unknown type";
        return std::string("is not a regular file but ") + what;
    }
    // In a sticky folder others can write to, a file chipd did not create may
    // be someone's bait: their own file, or a hard link to one of chipd's user.
    if (shared && owner != self)
        return "is owned by " + uid_text(owner) + ", not by chipd's user (" + uid_text(self) +
               "), in a folder others can write to";
    if (shared && links != 1)
        return "has " + std::to_string(links) + " hard links, in a folder others can write to";
    return {};
}

std::optional<Folder> Folder::open(const std::string &path, OpenFailure &why) {
    // O_PATH with O_NOFOLLOW opens a symlink itself rather than failing, so
    // that fstat below tells it apart; the folders above PATH are followed.
    UniqueFd fd(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        why = failed(errno, "folder " + path + ": " + std::strerror(errno));
        return std::nullopt;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        why = failed(errno, "folder " + path + ": " + std::strerror(errno));
        return std::nullopt;
    }
    uid_t self = ::geteuid();
    if (S_ISLNK(st.st_mode)) {
        // A link of root's or chipd's user's own (/var/run -> /run) is theirs
        // to make; one of another user's may be bait.
        if (st.st_uid != 0 && st.st_uid != self) {
            why =
                refused(ELOOP, "folder " + path + " is a symbolic link of " + uid_text(st.st_uid) +
                                   ", not of chipd's user (" + uid_text(self) + ") or root");
            return std::nullopt;
        }
        fd.reset(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!fd || ::fstat(fd.get(), &st) != 0) {
            why = failed(errno, "folder " + path + ": " + std::strerror(errno));
            return std::nullopt;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        why = failed(ENOTDIR, "folder " + path + ": " + std::strerror(ENOTDIR));
        return std::nullopt;
    }
    // Checked on the folder opened, not on PATH again: what PATH names may
    // change, this fd's folder stays the one checked.
    std::string distrust = folder_distrust(st.st_uid, st.st_mode, self);
    if (!distrust.empty()) {
        why = refused(EPERM, "folder " + path + " (owner " + uid_text(st.st_uid) + ", mode " +
                                 mode_text(st.st_mode) + ") " + distrust);
        return std::nullopt;
    }
    return Folder(std::move(fd), path, (st.st_mode & (S_IWGRP | S_IWOTH)) != 0);
}

UniqueFd Folder::open_append(const std::string &name, std::uint64_t &size, OpenFailure &why) const {
    uid_t self = ::geteuid();
    // Looked at before opening: a device must not even be opened (opening
    // some has effects). What is there may still change before openat; the
    // fstat below checks what was opened.
    struct stat st {};
    if (::fstatat(fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        std::string distrust = file_distrust(st.st_mode, st.st_uid, st.st_nlink, shared_, self);
        if (!distrust.empty()) {
            why = refused(S_ISLNK(st.st_mode) ? ELOOP : EPERM, distrust);
            return {};
        }
    }
    // O_NONBLOCK: a FIFO put there since would block the open until a reader
    // came; O_NOCTTY: a terminal must not become chipd's.
    UniqueFd fd(::openat(
        fd_.get(), name.c_str(),
        O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644));
    if (!fd) {
        int e = errno;
        if (e == ELOOP)
            why = refused(ELOOP, "is a symbolic link");
        else
            why = failed(e, std::strerror(e));
        return {};
    }
    if (::fstat(fd.get(), &st) != 0) {
        why = failed(errno, std::strerror(errno));
        return {};
    }
    std::string distrust = file_distrust(st.st_mode, st.st_uid, st.st_nlink, shared_, self);
    if (!distrust.empty()) {
        why = refused(EPERM, distrust);
        return {};
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags >= 0) (void)::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    size = static_cast<std::uint64_t>(st.st_size);
    return fd;
}

void Folder::rename(const std::string &from, const std::string &to) const {
    (void)::renameat(fd_.get(), from.c_str(), fd_.get(), to.c_str());
}

std::string folder_refusal(const std::string &path) {
    OpenFailure why;
    if (Folder::open(path, why) || !why.refused) return {};
    std::string &m = why.error.message;
    constexpr std::string_view kRefused = "; refused";
    if (m.ends_with(kRefused)) m.erase(m.size() - kRefused.size());
    return m;
}

}  // namespace chip::os
