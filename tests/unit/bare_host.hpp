// The machine as the spec loader sees it, with nothing on it: no user, no
// group, no file to read; every path is a writable folder but log files
// ("*.log"), and every program is executable. For tests (and fuzz targets)
// that load specs made in memory.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "spec/host.hpp"

namespace chip::test {

struct BareHost : spec::Host {
    explicit BareHost(std::string search = "/usr/bin:/bin") : search_(std::move(search)) {}
    std::optional<spec::User> user_by_name(const std::string &) const override {
        return std::nullopt;
    }
    std::optional<spec::User> user_by_id(uid_t) const override { return std::nullopt; }
    std::optional<gid_t> group_by_name(const std::string &) const override { return std::nullopt; }
    bool is_folder(const std::string &path) const override { return !path.ends_with(".log"); }
    bool is_writable_folder(const std::string &) const override { return true; }
    Result<std::string> read_file(const std::string &, std::size_t) const override {
        return make_error(ENOENT, "no files here");
    }
    Result<std::vector<std::string>> files_in_folder(const std::string &) const override {
        return make_error(ENOENT, "no folders here");
    }
    Result<void> executable(const std::string &) const override { return {}; }
    std::string search_path() const override { return search_; }
    std::string current_dir() const override { return "/"; }

private:
    std::string search_;
};

}  // namespace chip::test
