// The folder of the control socket, which chipd and its clients must trust
// (README.md, "Paths"): the user's private runtime folder ($XDG_RUNTIME_DIR/chip
// or /tmp/chip-$UID, mode 0700), root's /run/chip, or a folder named by the
// user. chipd creates and checks it and keeps it open; chipd publishes files
// in it (the registry index) and readers read them, always relative to the
// checked folder's descriptor, never following a symlink a stranger planted.
//
// It decides trust from the facts of stat(2) (folder_refusal is pure, for the
// unit tests); it knows nothing of what the published files say.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "common/names.hpp"
#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::os {

// What stat(2) says of a folder (or of what stands at its path).
struct FolderFacts {
    bool is_symlink = false;
    bool is_folder = false;
    uid_t owner = 0;
    mode_t mode = 0;  // the permission bits, with setuid, setgid and sticky (07777)
};

// Why a folder of KIND showing FACTS is not to be used by the user UID, as a
// phrase ("mode 0777, expected 0700"); nullopt when it is fine. Private: a
// real folder (not a symlink) owned by UID with mode 0700 exactly. System: a
// real folder owned by root that only root may write. Given: always fine here
// (the user named it; readers apply given_folder_refusal).
std::optional<std::string> folder_refusal(SocketFolderKind kind, const FolderFacts &facts,
                                          uid_t uid);
// Why a reader must not trust files in a Given folder beside a socket owned by
// SOCKET_OWNER: the folder is owned by someone other than root and
// SOCKET_OWNER, or others than its owner may write it without the sticky bit
// (they could replace the socket and the files beside it). nullopt when fine.
std::optional<std::string> given_folder_refusal(const FolderFacts &facts, uid_t socket_owner);

// The socket's folder, open (O_DIRECTORY, close-on-exec) and checked.
struct SocketFolder {
    UniqueFd fd;
    std::string path;         // the folder
    std::string socket_name;  // the socket's file name in it
    SocketFolderKind kind = SocketFolderKind::Given;
    FolderFacts facts;
};

// chipd's side: the folder of SOCKET_PATH (absolute) for the user UID,
// created if missing (a Private one with mode 0700, others 0755, their
// missing parents too) and checked with folder_refusal. A folder that fails
// is an EPERM error naming it and saying why.
Result<SocketFolder> prepare_socket_folder(const std::string &socket_path, uid_t uid);
// The clients' side: the same, never creating anything (ENOENT when missing).
Result<SocketFolder> open_socket_folder(const std::string &socket_path, uid_t uid);

// The owner of the socket in FOLDER (not following a symlink). ENOENT when
// there is none, ECONNREFUSED when something else than a socket is there.
Result<uid_t> socket_owner(const SocketFolder &folder);

// A file read from a checked folder, and who owns it.
struct TrustedFile {
    std::string text;
    uid_t owner = 0;
};
// NAME in FOLDER, opened without following a symlink: a regular file owned by
// OWNER or root, writable by its owner alone, of at most LIMIT bytes. ENOENT
// when missing; EPERM (with the reason) when it is not to be trusted.
Result<TrustedFile> read_trusted_file(const SocketFolder &folder, const std::string &name,
                                      uid_t owner, std::size_t limit);
// Replaces NAME in FOLDER by a file of TEXT, mode 0644, atomically: written to
// a fresh temporary file (O_EXCL) in FOLDER, then renamed over NAME, so a
// reader sees the old file or the new one, whole.
Result<void> publish_file(const SocketFolder &folder, const std::string &name,
                          const std::string &text);
// Removes NAME from FOLDER; a missing one is not an error.
void remove_in(const SocketFolder &folder, const std::string &name);

}  // namespace chip::os
