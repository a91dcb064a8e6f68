// What the spec loader asks of the machine: user and group accounts, folders,
// the spec file and the files it includes, and (for `chipd --check`) whether
// programs can be executed. The loader reaches them only through this, so its
// tests run the same on any machine with a Host of their own.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace chip::spec {

// A passwd entry, as much of it as a worker's environment needs.
struct User {
    uid_t uid = 0;
    gid_t gid = 0;      // the primary group
    std::string name;   // the login name: USER, LOGNAME
    std::string home;   // HOME
    std::string shell;  // SHELL
};

class Host {
public:
    virtual ~Host() = default;
    // The user named NAME.
    virtual std::optional<User> user_by_name(const std::string &name) const = 0;
    // The user with UID.
    virtual std::optional<User> user_by_id(uid_t uid) const = 0;
    // The gid of the group named NAME.
    virtual std::optional<gid_t> group_by_name(const std::string &name) const = 0;
    // True when PATH is a folder.
    virtual bool is_folder(const std::string &path) const = 0;
    // True when PATH is a folder chipd may create files in.
    virtual bool is_writable_folder(const std::string &path) const = 0;
    // Why chipd would refuse folder PATH for its log files (another user can
    // write to it or owns it), as a sentence naming it; empty when it would
    // not. This Host refuses none.
    virtual std::string log_folder_refusal(const std::string &) const { return {}; }
    // The file at PATH, at most LIMIT bytes; the error's code is an errno value
    // (EISDIR for a folder, EFBIG past LIMIT).
    virtual Result<std::string> read_file(const std::string &path, std::size_t limit) const = 0;
    // The names of the regular files in the folder PATH, in any order; the
    // error's code is an errno value (ENOENT: no such folder).
    virtual Result<std::vector<std::string>> files_in_folder(const std::string &path) const = 0;
    // Whether chipd may execute PATH (a regular file with execute permission);
    // the error's code says why not.
    virtual Result<void> executable(const std::string &path) const = 0;
    // chipd's PATH, where a command without '/' is looked up when the spec's
    // env sets none.
    virtual std::string search_path() const = 0;
    // The working directory, against which a relative spec folder is taken.
    virtual std::string current_dir() const = 0;
    // This machine's name: a cluster node's name when the spec gives none.
    // Empty when unknown (a host that does not say).
    virtual std::string host_name() const { return {}; }
};

// The machine this process runs on.
const Host &system_host();

}  // namespace chip::spec
