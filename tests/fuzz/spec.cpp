// Fuzz target: the spec loader (src/spec/loader.hpp), a whole spec and one
// child as `chipctl add` sends it, over a machine of its own (no file, user
// or folder of the real one is looked at).
//
// Input: the spec text. Checked: it either loads or is refused with
// SpecError (any other exception escapes: a crash), every error is one line
// naming the file; a loaded spec has valid names, unique among siblings,
// absolute paths, capacities and limits within the documented bounds.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.hpp"
#include "common/names.hpp"
#include "spec/loader.hpp"

using namespace chip;

namespace {

// A fixed machine: users root and app, groups root and staff; every path is a
// writable folder except those ending in ".log" (log files) and those under
// /ro (read-only).
struct FuzzHost final : spec::Host {
    std::optional<spec::User> user_by_name(const std::string &name) const override {
        if (name == "root") return spec::User{0, 0, "root", "/root", "/bin/sh"};
        if (name == "app") return spec::User{1000, 1000, "app", "/home/app", "/bin/sh"};
        return std::nullopt;
    }
    std::optional<spec::User> user_by_id(uid_t uid) const override {
        if (uid == 0) return user_by_name("root");
        if (uid == 1000) return user_by_name("app");
        return std::nullopt;
    }
    std::optional<gid_t> group_by_name(const std::string &name) const override {
        if (name == "root") return 0;
        if (name == "staff") return 50;
        return std::nullopt;
    }
    bool is_folder(const std::string &path) const override { return !path.ends_with(".log"); }
    bool is_writable_folder(const std::string &path) const override {
        return is_folder(path) && !path.starts_with("/ro");
    }
    Result<std::string> read_file(const std::string &, std::size_t) const override {
        return make_error(ENOENT, "no files here");
    }
    Result<std::vector<std::string>> files_in_folder(const std::string &) const override {
        return make_error(ENOENT, "no folders here");
    }
    Result<void> executable(const std::string &) const override { return {}; }
    std::string search_path() const override { return "/usr/bin:/bin"; }
    std::string current_dir() const override { return "/work"; }
};

void check_errors(const spec::SpecError &e, std::string_view label) {
    CHECK_FUZZ(!e.errors().empty());
    for (const auto &line : e.errors()) {
        CHECK_FUZZ(line.starts_with(std::string(label) + ":"));
        CHECK_FUZZ(line.find('\n') == std::string::npos);
    }
}

void check_output(const spec::OutputSpec &o) {
    if (o.mode != spec::OutputSpec::Mode::File) return;
    CHECK_FUZZ(o.file.starts_with("/"));
    CHECK_FUZZ(o.max_bytes >= spec::kMinMaxBytes);
    CHECK_FUZZ(o.keep <= spec::kMaxKeep);
}

void check_child(const core::ChildSpec &c, int depth);

void check_supervisor(const core::SupervisorSpec &s, int depth) {
    CHECK_FUZZ(depth <= spec::kMaxDepth + 1);
    CHECK_FUZZ(s.max_restarts <= spec::kMaxRestartsLimit);
    CHECK_FUZZ(s.period.count() > 0);
    std::set<std::string> names;
    for (const auto &c : s.children) {
        CHECK_FUZZ(names.insert(c.name).second);
        check_child(c, depth + 1);
    }
}

void check_child(const core::ChildSpec &c, int depth) {
    CHECK_FUZZ(valid_child_name(c.name));
    if (c.is_supervisor) {
        CHECK_FUZZ(c.supervisor != nullptr);
        check_supervisor(*c.supervisor, depth);
        return;
    }
    CHECK_FUZZ(c.worker != nullptr && c.worker->launch != nullptr);
    const auto &w = *c.worker;
    const auto &l = spec::launch_of(w);
    CHECK_FUZZ(!l.command.empty());
    CHECK_FUZZ(l.cwd.starts_with("/"));
    CHECK_FUZZ(!w.instances || *w.instances <= spec::kMaxInstances);
    CHECK_FUZZ(w.stop_signal >= 1 && w.stop_signal <= 64);
    check_output(l.out);
    check_output(l.err);
    if (w.backoff) {
        CHECK_FUZZ(w.backoff->initial.count() > 0 && w.backoff->max >= w.backoff->initial);
        CHECK_FUZZ(w.backoff->factor >= 1 && w.backoff->jitter >= 0 && w.backoff->jitter <= 1);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    static const FuzzHost host;
    std::string_view text(reinterpret_cast<const char *>(data), size);
    try {
        spec::Spec s = spec::load_string(text, "fuzz.json", "/srv", host);
        CHECK_FUZZ(s.root != nullptr);
        CHECK_FUZZ(s.dir == "/srv");
        CHECK_FUZZ(!s.socket || s.socket->starts_with("/"));
        std::set<std::string> names;
        for (const auto &r : s.registries) {
            CHECK_FUZZ(names.insert(r.name).second);
            CHECK_FUZZ(r.max_groups >= 1 && r.max_groups <= spec::kMaxGroupsLimit);
            CHECK_FUZZ(r.max_members >= 1 && r.max_members <= spec::kMaxMembersLimit);
        }
        check_supervisor(*s.root, 0);
    } catch (const spec::SpecError &e) {
        check_errors(e, "fuzz.json");
    }
    try {
        core::ChildSpec c = spec::load_child(text, "child", "/srv", {"r", "sessions"}, host);
        check_child(c, 0);
    } catch (const spec::SpecError &e) {
        check_errors(e, "child");
    }
    return 0;
}
