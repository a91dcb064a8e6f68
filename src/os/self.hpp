// The calling process: its pid, its parent, its user.
#pragma once

#include <sys/types.h>

#include <string>

namespace chip::os {

// getpid(2).
pid_t self_pid();
// getppid(2).
pid_t parent_pid();
// getuid(2): the real uid.
uid_t real_uid();
// getgid(2): the real gid.
gid_t real_gid();
// gethostname(2): this machine's name; empty when it has none.
std::string host_name();

// Ends the process at once with CODE (_exit: no destructors, no other
// thread waited for), for a CLI whose threads cannot be stopped otherwise.
[[noreturn]] void exit_now(int code);

}  // namespace chip::os
