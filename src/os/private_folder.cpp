#include "os/private_folder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "os/shm.hpp"

namespace chip::os {

namespace {

std::string uid_text(uid_t uid) {
    return "uid " + std::to_string(uid);
}

FolderFacts facts_of(const struct stat &st) {
    FolderFacts f;
    f.is_symlink = S_ISLNK(st.st_mode);
    f.is_folder = S_ISDIR(st.st_mode);
    f.owner = st.st_uid;
    f.mode = st.st_mode & 07777;
    return f;
}

std::string what_folder(SocketFolderKind kind) {
    return kind == SocketFolderKind::Given ? "socket folder " : "runtime folder ";
}

Error sys_error(int code, const std::string &what) {
    return make_error(code, what + ": " + std::strerror(code));
}

// Creates the missing folders of PATH (PATH included) with MODE, like mkdir -p.
// Existing ones are left as they are: what matters is checked on the last one.
Result<void> make_folders(const std::string &path, mode_t mode) {
    for (std::size_t i = 1; i <= path.size(); ++i) {
        if (i != path.size() && path[i] != '/') continue;
        std::string part = path.substr(0, i);
        if (::mkdir(part.c_str(), mode) < 0 && errno != EEXIST)
            return sys_error(errno, "cannot create " + part);
    }
    return {};
}

// Opens and checks the folder of SOCKET_PATH; creates it first when CREATE.
Result<SocketFolder> open_folder(const std::string &socket_path, uid_t uid, bool create) {
    SocketFolder f;
    auto slash = socket_path.rfind('/');
    if (slash == std::string::npos || slash + 1 == socket_path.size())
        return make_error(EINVAL, "socket path " + socket_path + " does not name a file");
    f.path = slash == 0 ? "/" : socket_path.substr(0, slash);
    f.socket_name = socket_path.substr(slash + 1);
    f.kind = socket_folder_kind(socket_path, uid);
    const std::string what = what_folder(f.kind) + f.path;

    // The folder the user named may be reached through symlinks; the default
    // ones never are (O_NOFOLLOW on the last component: a planted link fails).
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    if (f.kind != SocketFolderKind::Given) flags |= O_NOFOLLOW;
    bool created = false;
    if (create) {
        mode_t mode = f.kind == SocketFolderKind::Private ? 0700 : 0755;
        auto parent = f.path.substr(0, f.path.rfind('/'));
        if (!parent.empty())
            if (auto r = make_folders(parent, mode); !r) return r.error();
        if (::mkdir(f.path.c_str(), mode) == 0)
            created = true;
        else if (errno != EEXIST)
            return sys_error(errno, "cannot create " + what);
    }
    f.fd = UniqueFd(::open(f.path.c_str(), flags));
    if (!f.fd) {
        int e = errno;
        struct stat st {};
        // A symlink (ELOOP) or a file (ENOTDIR): say which.
        if ((e == ELOOP || e == ENOTDIR) && ::lstat(f.path.c_str(), &st) == 0) {
            if (auto why = folder_refusal(f.kind, facts_of(st), uid))
                return make_error(EPERM, "refusing " + what + ": " + *why);
        }
        return sys_error(e, "cannot open " + what);
    }
    struct stat st {};
    if (::fstat(f.fd.get(), &st) < 0) return sys_error(errno, "cannot stat " + what);
    // mkdir's mode went through the umask: set it whole on the folder we made.
    mode_t want = f.kind == SocketFolderKind::Private ? 0700 : 0755;
    if (created && (st.st_mode & 07777) != want && st.st_uid == uid) {
        if (::fchmod(f.fd.get(), want) < 0) return sys_error(errno, "cannot chmod " + what);
        st.st_mode = (st.st_mode & ~07777) | want;
    }
    f.facts = facts_of(st);
    if (auto why = folder_refusal(f.kind, f.facts, uid))
        return make_error(EPERM, "refusing " + what + ": " + *why);
    return f;
}

}  // namespace

std::optional<std::string> folder_refusal(SocketFolderKind kind, const FolderFacts &facts,
                                          uid_t uid) {
    if (kind == SocketFolderKind::Given) return std::nullopt;
    if (facts.is_symlink) return std::string("it is a symlink; expected a real folder");
    if (!facts.is_folder) return std::string("it is not a folder");
    if (kind == SocketFolderKind::Private) {
        if (facts.owner != uid)
            return "owned by " + uid_text(facts.owner) + "; expected " + uid_text(uid) +
                   " (the user running chip)";
        if (facts.mode != 0700)
            return "mode " + format_mode(facts.mode) + "; expected 0700 (private to its user)";
        return std::nullopt;
    }
    if (facts.owner != 0) return "owned by " + uid_text(facts.owner) + "; expected root";
    if (facts.mode & (S_IWGRP | S_IWOTH))
        return "mode " + format_mode(facts.mode) + "; expected no write access but root's";
    return std::nullopt;
}

std::optional<std::string> given_folder_refusal(const FolderFacts &facts, uid_t socket_owner) {
    if (!facts.is_folder) return std::string("it is not a folder");
    if (facts.owner != 0 && facts.owner != socket_owner)
        return "owned by " + uid_text(facts.owner) + ", neither root nor the socket's owner (" +
               uid_text(socket_owner) + ")";
    if ((facts.mode & (S_IWGRP | S_IWOTH)) && !(facts.mode & S_ISVTX))
        return "mode " + format_mode(facts.mode) +
               ": others may replace the socket and the files beside it";
    return std::nullopt;
}

Result<SocketFolder> prepare_socket_folder(const std::string &socket_path, uid_t uid) {
    return open_folder(socket_path, uid, true);
}

Result<SocketFolder> open_socket_folder(const std::string &socket_path, uid_t uid) {
    return open_folder(socket_path, uid, false);
}

Result<uid_t> socket_owner(const SocketFolder &folder) {
    struct stat st {};
    const std::string path = folder.path + "/" + folder.socket_name;
    if (::fstatat(folder.fd.get(), folder.socket_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
        return sys_error(errno, "cannot reach chipd at " + path);
    if (!S_ISSOCK(st.st_mode))
        return make_error(ECONNREFUSED, "cannot reach chipd at " + path + ": not a socket");
    return st.st_uid;
}

Result<TrustedFile> read_trusted_file(const SocketFolder &folder, const std::string &name,
                                      uid_t owner, std::size_t limit) {
    const std::string path = folder.path + "/" + name;
    // O_NONBLOCK: a FIFO planted under the name must not hang us before fstat.
    UniqueFd fd(::openat(folder.fd.get(), name.c_str(),
                         O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd) {
        int e = errno;
        if (e == ELOOP) return make_error(EPERM, "refusing " + path + ": it is a symlink");
        return sys_error(e, "cannot open " + path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return sys_error(errno, "cannot stat " + path);
    if (!S_ISREG(st.st_mode)) return make_error(EPERM, "refusing " + path + ": not a regular file");
    if (st.st_uid != owner && st.st_uid != 0)
        return make_error(EPERM, "refusing " + path + ": owned by " + uid_text(st.st_uid) +
                                     ", neither root nor the socket's owner (" + uid_text(owner) +
                                     ")");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return make_error(EPERM, "refusing " + path + ": mode " + format_mode(st.st_mode) +
                                     ", writable by others than its owner");
    if (static_cast<std::size_t>(st.st_size) > limit)
        return make_error(EFBIG,
                          "refusing " + path + ": larger than " + std::to_string(limit) + " bytes");
    TrustedFile out;
    out.owner = st.st_uid;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, "cannot read " + path);
        if (n == 0) break;
        out.text.append(buf, static_cast<std::size_t>(n));
        // It grew since fstat: still bounded.
        if (out.text.size() > limit)
            return make_error(
                EFBIG, "refusing " + path + ": larger than " + std::to_string(limit) + " bytes");
    }
    return out;
}

Result<void> publish_file(const SocketFolder &folder, const std::string &name,
                          const std::string &text) {
    const int dir = folder.fd.get();
    std::string tmp;
    UniqueFd fd;
    // O_EXCL on a fresh random name: never a file someone prepared for us.
    for (int attempt = 0; attempt < 8 && !fd; ++attempt) {
        auto token = random_hex(8);
        if (!token) return token.error();
        tmp = name + ".tmp-" + *token;
        fd = UniqueFd(
            ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!fd && errno != EEXIST)
            return sys_error(errno, "cannot create " + folder.path + "/" + tmp);
    }
    if (!fd) return sys_error(EEXIST, "cannot create a temporary file in " + folder.path);
    auto fail = [&](int e, const std::string &what) {
        ::unlinkat(dir, tmp.c_str(), 0);
        return sys_error(e, what + " " + folder.path + "/" + name);
    };
    // The umask may have narrowed the mode; readers of any user need 0644.
    if (::fchmod(fd.get(), 0644) < 0) return fail(errno, "cannot chmod");
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(errno, "cannot write");
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd.release()) < 0) return fail(errno, "cannot write");
    if (::renameat(dir, tmp.c_str(), dir, name.c_str()) < 0) return fail(errno, "cannot replace");
    return {};
}

void remove_in(const SocketFolder &folder, const std::string &name) {
    ::unlinkat(folder.fd.get(), name.c_str(), 0);
}

}  // namespace chip::os
