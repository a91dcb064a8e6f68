#include "os/self.hpp"

#include <unistd.h>

#include <string>

#include "common/names.hpp"

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

}  // namespace chip::os

namespace chip {

// Declared in common/names.hpp, defined here: it asks the kernel for the uid.
std::string default_socket_path() {
    return default_socket_path(os::real_uid());
}

}  // namespace chip
