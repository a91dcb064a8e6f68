// Name rules shared by the spec loader, chipd, chipctl and libchip.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace chip {

inline constexpr std::size_t kMaxNameLen = 64;

// A child name: [A-Za-z0-9_.-]{1,64}.
bool valid_child_name(std::string_view s);
// A group or registry name: [A-Za-z0-9_.:-]{1,64}.
bool valid_group_name(std::string_view s);

// Signal names without the SIG prefix ("TERM"), accepting "SIGTERM" and numbers
// ("15") too. Returns nullopt for anything else.
std::optional<int> parse_signal(std::string_view s);
// "TERM" for SIGTERM; the number as text for signals without a name.
std::string signal_name(int sig);

// The protocol's symbolic error codes (README.md, "Protocol"): "ENOENT" for
// ENOENT; "EIO" for a code the protocol does not name, and EIO for an unknown name.
const char *errno_name(int code);
int errno_from_name(std::string_view name);

// The control socket path when none is given, for the user UID (the caller's
// real uid, os::real_uid()): $XDG_RUNTIME_DIR/chip/chipd.sock, else
// /run/chip/chipd.sock for root, else /tmp/chip-$UID/chipd.sock.
std::string default_socket_path(uid_t uid);
// --socket, else $CHIP_SOCKET, else default_socket_path(UID).
std::string resolve_socket_path(const char *given, uid_t uid);

// Where the socket's folder stands among the defaults (README.md, "Paths").
enum class SocketFolderKind {
    Private,  // the user's own runtime folder: $XDG_RUNTIME_DIR/chip or /tmp/chip-$UID (0700)
    System,   // /run/chip, root's default (owned by root, writable by root alone)
    Given,    // any other folder, named by --socket, the spec or $CHIP_SOCKET
};
// The private runtime folder of the user UID: $XDG_RUNTIME_DIR/chip if set,
// else /tmp/chip-$UID for a user other than root; nullopt for root without
// XDG_RUNTIME_DIR (root's default is /run/chip).
std::optional<std::string> private_runtime_folder(uid_t uid);
// The kind of the folder of SOCKET_PATH (absolute) for the user UID: Private
// when it is UID's private runtime folder, System when it is /run/chip and UID
// is root, else Given. The path decides, however it was given: a socket named
// explicitly in /tmp/chip-$UID is checked like the default one.
SocketFolderKind socket_folder_kind(const std::string &socket_path, uid_t uid);

// The shared-memory object name (for shm_open, with its leading '/') of
// registry REGISTRY: "/chip-<TOKEN>-<REGISTRY>", TOKEN being kShmTokenLen
// random hex digits drawn by chipd for each region (never guessable, so that
// nobody can take the name first).
inline constexpr std::size_t kShmTokenLen = 32;
std::string registry_shm_name(std::string_view token, std::string_view registry);
// The file beside the socket SOCKET_NAME (a file name, no folder) that
// publishes its registries' shared-memory names: "SOCKET_NAME.registries".
std::string registry_index_name(const std::string &socket_name);
// The shared-memory object name of a registry's cluster view (include/chip/
// registry.h, "The cluster view"): the registry's own REGISTRY_SHM followed by
// "@cluster", so that it is as unguessable and found through the same index.
std::string cluster_shm_name(std::string_view registry_shm);

// A prefix "chip-<hash>-" unique to the chipd at SOCKET_PATH (16 hex digits of
// FNV-1a 64 over the path made lexically normal), for names that must not
// collide between two chipd instances (the notify sockets' abstract names).
// SOCKET_PATH must be absolute for two processes to agree.
std::string socket_hash_prefix(const std::string &socket_path);

// A permission mode written as octal digits ("0660", "640"): 1 to 4 digits,
// at most 0777 (no setuid, setgid or sticky bit). nullopt for anything else.
std::optional<mode_t> parse_mode(std::string_view s);
// MODE as 4 octal digits: "0660".
std::string format_mode(mode_t mode);

}  // namespace chip
