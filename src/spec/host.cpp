#include "spec/host.hpp"

#include <cstdlib>

#include "os/accounts.hpp"
#include "os/file.hpp"
#include "os/folder.hpp"
#include "os/self.hpp"

namespace chip::spec {

namespace {

std::optional<User> user_of(const std::optional<os::UserEntry> &e) {
    if (!e) return std::nullopt;
    return User{e->uid, e->gid, e->name, e->home, e->shell};
}

class SystemHost final : public Host {
public:
    std::optional<User> user_by_name(const std::string &name) const override {
        return user_of(os::user_by_name(name));
    }
    std::optional<User> user_by_id(uid_t uid) const override {
        return user_of(os::user_by_id(uid));
    }
    std::optional<gid_t> group_by_name(const std::string &name) const override {
        return os::group_by_name(name);
    }
    bool is_folder(const std::string &path) const override { return os::is_folder(path); }
    bool is_writable_folder(const std::string &path) const override {
        return os::is_writable_folder(path);
    }
    std::string log_folder_refusal(const std::string &path) const override {
        return os::folder_refusal(path);
    }
    Result<std::string> read_file(const std::string &path, std::size_t limit) const override {
        return os::read_small_file(path, limit);
    }
    Result<std::vector<std::string>> files_in_folder(const std::string &path) const override {
        return os::files_in_folder(path);
    }
    Result<void> executable(const std::string &path) const override {
        return os::executable_file(path);
    }
    // The launcher's fallback when chipd has no PATH (launcher.cpp).
    std::string search_path() const override {
        const char *p = std::getenv("PATH");
        return p && *p ? p : "/usr/local/bin:/usr/bin:/bin";
    }
    std::string current_dir() const override { return os::current_dir(); }
    std::string host_name() const override { return os::host_name(); }
};

}  // namespace

const Host &system_host() {
    static const SystemHost host;
    return host;
}

}  // namespace chip::spec
