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

// The shared-memory object name (for shm_open, with its leading '/') of the
// registry REGISTRY served by the chipd at SOCKET_PATH: "/chip-<hash>-<registry>"
// where <hash> is 16 hex digits of FNV-1a 64 over the socket path, made lexically
// normal. SOCKET_PATH must be absolute (os::absolute_path) for chipd and its
// clients to agree.
std::string registry_shm_name(const std::string &socket_path, const std::string &registry);
// The shared-memory object name of REGISTRY's cluster view (include/chip/
// registry.h, "The cluster view"): the registry's name followed by "@cluster".
std::string cluster_shm_name(const std::string &socket_path, const std::string &registry);
// The prefix "/chip-<hash>-" shared by every registry of that chipd.
std::string registry_shm_prefix(const std::string &socket_path);

}  // namespace chip
