// Finding a chipd's registries without talking to it (README.md, "The
// registry"): the socket's folder checked as every client checks it, the index
// file chipd publishes beside the socket read and trusted only when it comes
// from the socket's owner (or root), in a folder nobody else may rearrange.
// Shared by libchip and chipctl. It maps nothing (libchip does).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.hpp"
#include "os/private_folder.hpp"
#include "registry/index.hpp"

namespace chip::client {

// What a chipd publishes: its registries and the uid their regions must have.
struct Published {
    std::vector<registry::IndexEntry> entries;
    uid_t owner = 0;  // of the index file: chipd's uid
};

// The folder of SOCKET_PATH (absolute), checked for the user UID, with the
// socket's owner in *SOCKET_OWNER. ENOENT when there is no socket, EPERM for a
// runtime folder that is not to be trusted, ...: chipd is not reachable.
Result<os::SocketFolder> reach_socket(const std::string &socket_path, uid_t uid,
                                      uid_t &socket_owner);
// The index in FOLDER beside a socket owned by SOCKET_OWNER. EPERM when it is
// not to be trusted (a symlink, a stranger's, writable by others, in a folder
// others may rearrange), ESTALE when it is not an index, ENOENT when missing.
Result<Published> read_published(const os::SocketFolder &folder, uid_t socket_owner);
// Both.
Result<Published> find_published(const std::string &socket_path, uid_t uid);

}  // namespace chip::client
