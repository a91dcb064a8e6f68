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
#include "daemon/control.hpp"
#include "daemon/launcher.hpp"
#include "daemon/registries.hpp"
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

class Daemon final : public core::Effects, private RequestHandler {
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
    void on_ready(std::uint64_t id);
    void warn(const std::string &msg);
    void write_log(const std::string &line);

    // Registry.
    Registry *find_registry(const nlohmann::json &req, std::string &err, std::string &code);

    // Control socket.
    // RequestHandler
    Reply on_request(std::uint64_t conn, const os::PeerCred &peer, std::string_view line) override;
    std::string on_oversized() override;
    void on_closed(std::uint64_t conn) override;
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
    LogStyle style_;

    uv::Loop loop_;
    std::unique_ptr<core::Tree> tree_;
    std::unique_ptr<Launcher> launcher_;
    std::unique_ptr<SystemProcesses> procs_;
    std::unique_ptr<Registries> registries_;

    std::unique_ptr<Control> control_;
    std::unordered_map<std::uint64_t, std::uint64_t> tickets_;  // ticket -> client
    std::list<Waiter> waiters_;

    std::unique_ptr<uv::Signal> sig_chld_, sig_term_, sig_int_, sig_hup_;
    std::unique_ptr<uv::Timer> timer_;
    std::unique_ptr<uv::Timer> waiter_timer_;
    std::optional<core::Time> armed_;
    std::unique_ptr<uv::Check> check_;

    bool exiting_ = false;
    int exit_code_ = 0;
    int term_signals_ = 0;
    std::unique_ptr<Systemd> systemd_;
};

}  // namespace chip::daemon
