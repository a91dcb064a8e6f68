// chipd's imperative shell: it turns the core's actions (spawn, signal, log,
// exit) into system calls and libuv handles, and what happens (SIGCHLD, READY=1
// datagrams, timers, control requests) back into core events. It also owns the
// registries (shared memory), output capture and the control socket.
//
// Everything here runs on one libuv loop; nothing blocks it except short
// writes to chipd's own stdout/stderr. Failures are logged and handled per
// worker or per client: chipd never exits for them (README.md, "chipd").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "spec/spec.hpp"
#include "core/tree.hpp"
#include "daemon/events.hpp"
#include "daemon/output.hpp"
#include "daemon/systemd.hpp"
#include "os/fd.hpp"
#include "os/shm.hpp"
#include "os/socket.hpp"
#include "registry/table.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

struct Options {
    std::string socket;     // --socket, or empty
    bool json_log = false;  // --log-format json
};

class Daemon final : public core::Effects {
public:
    Daemon(spec::Spec spec, Options opts);
    ~Daemon() override;
    Daemon(const Daemon &) = delete;
    Daemon &operator=(const Daemon &) = delete;

    // Sets everything up, starts the tree and runs until the tree is done.
    // Returns chipd's exit code. Throws only for start-up failures.
    int run();

    // core::Effects
    Result<pid_t> spawn(const core::Node &worker) override;
    void kill_group(pid_t pgid, int sig) override;
    void log(const core::Event &e) override;
    void exit(int code) override;
    void removed(const core::Node &node) override;

private:
    struct Registry {
        spec::RegistrySpec spec;
        std::string shm_name;
        os::Mapping mapping;
        registry::Table table;
    };
    // What a worker spec needs at every spawn, computed once (instances share it).
    struct SpawnCache {
        std::shared_ptr<const spec::Launch> launch;  // keeps its address unique while cached
        std::vector<std::string> candidates;
        std::vector<const char *> candidate_ptrs;
        std::vector<char *> argv;
        std::vector<std::string> env_owned;  // "K=V" from the spec
        std::vector<const char *> env;       // base environment with the spec's on top
        std::vector<gid_t> groups;
        std::shared_ptr<Sink> out_file, err_file;
    };
    // Per worker node.
    struct Slot {
        std::string env_path;      // "CHIP_PATH=..."
        std::string env_instance;  // "CHIP_INSTANCE=..."
        std::string notify_path;   // its NOTIFY_SOCKET, ready: notify only
        std::string env_notify;
        os::UniqueFd notify_fd;
        std::unique_ptr<uv::Poll> notify_poll;
    };
    struct Client;
    struct Waiter {
        std::uint64_t client;
        std::vector<core::Node *> nodes;
        std::optional<std::uint64_t> deadline_ns;
    };

    void setup();
    void cleanup();
    core::Time now() const;
    void after_events();
    void arm_timer();
    void on_sigchld();
    void on_term_signal(int sig);
    void on_notify(std::uint64_t id);
    SpawnCache &cache_for(const std::shared_ptr<const spec::Launch> &launch);
    void open_notify(Slot &slot, std::uint64_t id);
    void close_notify(Slot &slot);
    void start_capture(os::UniqueFd fd, std::shared_ptr<Sink> sink, const std::string &prefix);
    void warn(const std::string &msg);
    void write_log(const std::string &line);

    // Registry.
    Registry *find_registry(const nlohmann::json &req, std::string &err, std::string &code);
    void member_died(pid_t pid);
    // Watches a member that is not a worker through a pidfd; false when the
    // process has already exited.
    bool watch_member(pid_t pid);
    int check_join_allowed(const os::PeerCred &peer, pid_t pid, std::string &why);

    // Control socket.
    void on_accept();
    void on_client_io(std::uint64_t id, int events);
    void process_lines(Client &c);
    void send(Client &c, const nlohmann::json &resp);
    void drop_client(std::uint64_t id);
    std::optional<nlohmann::json> handle(Client &c, const nlohmann::json &req);
    nlohmann::json op_status(const nlohmann::json &req);
    nlohmann::json op_signal(const nlohmann::json &req);
    std::optional<nlohmann::json> op_command(Client &c, core::Command cmd,
                                             const nlohmann::json &req);
    std::optional<nlohmann::json> op_wait(Client &c, const nlohmann::json &req);
    nlohmann::json op_join(Client &c, const nlohmann::json &req, bool join);
    nlohmann::json op_members(const nlohmann::json &req, bool groups);
    nlohmann::json op_logs(const nlohmann::json &req);
    nlohmann::json node_json(const core::Node &n, core::Time t) const;
    void finish_request(std::uint64_t client, const nlohmann::json &resp);

    spec::Spec spec_;
    Options opts_;
    std::string socket_path_;
    std::string notify_dir_;
    std::string env_socket_;  // "CHIP_SOCKET=..."
    std::vector<const char *> base_env_;
    LogStyle style_;

    uv::Loop loop_;
    std::unique_ptr<core::Tree> tree_;
    std::unordered_map<std::uint64_t, Slot> slots_;  // by node id
    struct DeadNotify {
        os::UniqueFd fd;
        std::unique_ptr<uv::Poll> poll;
    };
    std::vector<DeadNotify> dead_notify_;  // closed during this loop turn
    std::unordered_map<const spec::Launch *, std::unique_ptr<SpawnCache>> caches_;
    std::unordered_map<std::string, std::shared_ptr<Sink>> file_sinks_;  // by log file path
    std::vector<std::unique_ptr<Registry>> registries_;
    // Members that are not chipd's children, watched through pidfds.
    struct Watch {
        os::UniqueFd pidfd;
        std::unique_ptr<uv::Poll> poll;  // destroyed before pidfd is closed
    };
    std::unordered_map<pid_t, std::unique_ptr<Watch>> member_watches_;
    std::vector<std::unique_ptr<Watch>> dead_watches_;
    std::list<std::unique_ptr<OutputPipe>> pipes_;
    std::vector<std::unique_ptr<OutputPipe>> dead_pipes_;
    std::shared_ptr<Sink> inherit_out_, inherit_err_;
    os::UniqueFd dev_null_;

    os::UniqueFd listen_fd_;
    std::unique_ptr<uv::Poll> listen_poll_;
    std::map<std::uint64_t, std::unique_ptr<Client>> clients_;
    std::vector<std::unique_ptr<Client>> dead_clients_;
    std::uint64_t next_client_ = 1;
    std::unordered_map<std::uint64_t, std::uint64_t> tickets_;  // ticket -> client
    std::list<Waiter> waiters_;

    std::unique_ptr<uv::Signal> sig_chld_, sig_term_, sig_int_, sig_hup_;
    std::unique_ptr<uv::Timer> timer_;
    std::unique_ptr<uv::Timer> waiter_timer_;
    std::optional<core::Time> armed_;
    std::unique_ptr<uv::Check> check_;

    std::vector<char *> scratch_env_;
    bool exiting_ = false;
    int exit_code_ = 0;
    int term_signals_ = 0;
    std::unique_ptr<Systemd> systemd_;
};

}  // namespace chip::daemon
