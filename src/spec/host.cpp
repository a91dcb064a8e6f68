#include "spec/host.hpp"

#include "os/accounts.hpp"
#include "os/file.hpp"
#include "os/self.hpp"

namespace chip::spec {

namespace {

class SystemHost final : public Host {
public:
    std::optional<std::pair<uid_t, gid_t>> user_by_name(const std::string &name) const override {
        return os::user_by_name(name);
    }
    std::optional<gid_t> user_by_id(uid_t uid) const override { return os::user_by_id(uid); }
    std::optional<gid_t> group_by_name(const std::string &name) const override {
        return os::group_by_name(name);
    }
    bool is_folder(const std::string &path) const override { return os::is_folder(path); }
    bool is_writable_folder(const std::string &path) const override {
        return os::is_writable_folder(path);
    }
    Result<std::string> read_file(const std::string &path, std::size_t limit) const override {
        return os::read_small_file(path, limit);
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
