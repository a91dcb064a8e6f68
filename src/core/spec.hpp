// The spec as chipd uses it: plain types, already validated and with every
// default filled in. Produced by src/spec (JSON -> these types); consumed by the
// supervision core and the daemon. No parsing and no validation happens here.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace chip::core {

using Duration = std::chrono::nanoseconds;

enum class Strategy { OneForOne, OneForAll, RestForOne };
enum class RestartType { Permanent, Transient, Temporary };
enum class ReadyMode { Started, Notify };

struct OutputSpec {
    enum class Mode { Inherit, Null, File };
    Mode mode = Mode::Inherit;
    std::string file;                     // absolute path, Mode::File only
    std::uint64_t max_bytes = 10u << 20;  // rotate before passing this size
    unsigned keep = 5;                    // PATH.1 ... PATH.keep
};

struct WorkerSpec {
    std::vector<std::string> command;  // non-empty; command[0] absolute if it had a '/'
    RestartType restart = RestartType::Permanent;
    unsigned instances = 1;
    std::vector<std::pair<std::string, std::string>> env;  // in spec order
    std::string cwd;                                       // absolute
    std::optional<std::string> user;                       // name as written
    std::optional<std::string> group;
    std::optional<uid_t> uid;  // resolved from user
    std::optional<gid_t> gid;  // resolved from group, else user's primary group
    ReadyMode ready = ReadyMode::Started;
    Duration start_timeout = std::chrono::seconds(10);
    int stop_signal = 15;  // SIGTERM
    Duration stop_timeout = std::chrono::seconds(5);
    std::vector<std::pair<std::string, std::vector<std::string>>> join;  // registry -> groups
    OutputSpec out;                                                      // "stdout"
    OutputSpec err;                                                      // "stderr"
};

struct ChildSpec;

struct SupervisorSpec {
    Strategy strategy = Strategy::OneForOne;
    unsigned max_restarts = 3;
    Duration period = std::chrono::seconds(5);
    std::vector<ChildSpec> children;
};

struct ChildSpec {
    std::string name;
    bool is_supervisor = false;
    WorkerSpec worker;          // when !is_supervisor
    SupervisorSpec supervisor;  // when is_supervisor
};

struct RegistrySpec {
    std::string name;
    std::uint32_t max_groups = 1024;
    std::uint32_t max_members = 16384;  // memberships (pid, group) in all
};

struct Spec {
    std::string file;  // the spec file as given
    std::string dir;   // its folder, absolute
    std::vector<RegistrySpec> registries;
    SupervisorSpec root;
    std::optional<std::string> socket;  // absolute when set
};

}  // namespace chip::core
