// What the spec loader asks of the machine: user and group accounts, folders
// and the spec file itself. The loader reaches them only through this, so its
// tests run the same on any machine with a Host of their own.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "common/result.hpp"

namespace chip::spec {

class Host {
public:
    virtual ~Host() = default;
    // The uid and primary gid of the user named NAME.
    virtual std::optional<std::pair<uid_t, gid_t>> user_by_name(const std::string &name) const = 0;
    // The primary gid of the user with UID.
    virtual std::optional<gid_t> user_by_id(uid_t uid) const = 0;
    // The gid of the group named NAME.
    virtual std::optional<gid_t> group_by_name(const std::string &name) const = 0;
    // True when PATH is a folder.
    virtual bool is_folder(const std::string &path) const = 0;
    // True when PATH is a folder chipd may create files in.
    virtual bool is_writable_folder(const std::string &path) const = 0;
    // The file at PATH, at most LIMIT bytes; the error's code is an errno value
    // (EISDIR for a folder, EFBIG past LIMIT).
    virtual Result<std::string> read_file(const std::string &path, std::size_t limit) const = 0;
    // The working directory, against which a relative spec folder is taken.
    virtual std::string current_dir() const = 0;
    // This machine's name: a cluster node's name when the spec gives none.
    // Empty when unknown (a host that does not say).
    virtual std::string host_name() const { return {}; }
};

// The machine this process runs on.
const Host &system_host();

}  // namespace chip::spec
