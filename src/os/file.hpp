// Reading files, for the code outside src/os (chipctl's log tailing, the spec
// loader): opening for reading, telling a file's identity (which inode, how
// large), positioned reads, small whole files, folders, absolute paths.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "os/fd.hpp"

namespace chip::os {

// Which file (device and inode: a rotated file keeps them, a new one at the
// same path has others) and its size.
struct FileIdentity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
};

// Opens PATH read-only, close-on-exec. The error's code is the errno (ENOENT
// when there is no such file), its message "PATH: <strerror>".
Result<UniqueFd> open_read(const std::string &path);
// fstat(2) of FD; the message names nothing but the cause.
Result<FileIdentity> file_identity(int fd);
// stat(2) of PATH (following symlinks). Errors as open_read.
Result<FileIdentity> path_identity(const std::string &path);
// pread(2) retrying EINTR: bytes read (0 at the end), or -errno.
ssize_t read_at(int fd, char *buf, std::size_t cap, off_t offset);

// True when PATH is a folder (following symlinks).
bool is_folder(const std::string &path);
// True when PATH is a folder this process may create files in.
bool is_writable_folder(const std::string &path);
// The names of the regular files (symlinks followed) in the folder PATH, in
// no particular order. The error's code is the errno (ENOENT: no such folder).
Result<std::vector<std::string>> files_in_folder(const std::string &path);
// Whether this process may execute PATH: a regular file (symlinks followed)
// with execute permission for it. The error's code says why not (ENOENT,
// EACCES, EISDIR for a folder, ...); its message is empty.
Result<void> executable_file(const std::string &path);
// The whole file at PATH; EISDIR for a folder, EFBIG past LIMIT bytes. The
// error's code is the errno; its message is empty (the caller names the file).
Result<std::string> read_small_file(const std::string &path, std::size_t limit);
// The working directory, or "" when it cannot be told.
std::string current_dir();

// PATH made absolute against the current folder, lexically normal ("a/./b"
// is "a/b"); PATH unchanged when the current folder cannot be read.
std::string absolute_path(const std::string &path);

}  // namespace chip::os
