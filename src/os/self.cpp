#include "os/self.hpp"

#include <unistd.h>

namespace chip::os {

pid_t self_pid() {
    return ::getpid();
}

pid_t parent_pid() {
    return ::getppid();
}

uid_t real_uid() {
    return ::getuid();
}

gid_t real_gid() {
    return ::getgid();
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
}

void exit_now(int code) {
    ::_exit(code);
}

}  // namespace chip::os
