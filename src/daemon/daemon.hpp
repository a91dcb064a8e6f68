// chipd's imperative shell: it runs the core (core::Tree) on a libuv loop,
// turning the core's actions (spawn, signal, log, exit) into the work of the
// modules beside it, and what happens (SIGCHLD, READY=1, timers, SIGTERM,
// control requests) back into core events:
//
//   launcher.hpp    spawning workers, their output and notify sockets
//   cgroups.hpp     each worker's cgroup: nothing outlives its worker
//   output.hpp      output pipes and where their lines go (line_splitter.hpp)
//   registries.hpp  the shared-memory registries and their members
//   control.hpp     the control socket's connections and framing
//   requests.hpp    the protocol's operations
//   systemd.hpp     READY=1, STATUS=, STOPPING=1, WATCHDOG=1 to systemd
//   events.hpp      the event log's lines
//   cluster.hpp     etcd: memberships mirrored, the cluster view, signals
//
// This file holds the set-up, the loop's turn and the wiring; it decides no
// supervision rule (the core does) and words no protocol answer. Everything
// runs on one loop that nothing blocks except short writes to chipd's own
// stdout/stderr. Failures are logged and handled per worker or per client:
// chipd never exits for them (README.md, "chipd").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/tree.hpp"
#include "daemon/cgroups.hpp"
#include "daemon/cluster.hpp"
#include "daemon/control.hpp"
#include "daemon/events.hpp"
#include "daemon/launcher.hpp"
#include "daemon/output.hpp"
#include "daemon/registries.hpp"
#include "daemon/requests.hpp"
#include "daemon/systemd.hpp"
#include "daemon/term_signals.hpp"
#include "handoff/state.hpp"
#include "spec/spec.hpp"
#include "uv/uv.hpp"

namespace chip::daemon {

struct Options {
    std::string socket;     // --socket, or empty
    bool json_log = false;  // --log-format json
    // --log-file: chipd's own log lines also go to this rotated file.
    std::string log_file;
    std::uint64_t log_max_bytes = 10u << 20;
    unsigned log_keep = 5;
    bool cgroups = true;  // false: --no-cgroups
    // For a reexec (README.md, "Upgrading chipd in place"): the program
    // chipd was started as (absolute), its arguments after argv[0] (without
    // --handoff), and the signal mask the first chipd of this pid was given.
    std::string program;
    std::vector<std::string> args;
    std::uint64_t signal_mask = 0;
    std::uint32_t handoff_version = 0;  // of the hand-off taken over, if any
};

class Daemon final : public core::Effects, private RequestHandler, private RequestEffects {
public:
    Daemon(spec::Spec spec, Options opts);
    // The chipd that takes over from the one of the same pid that wrote
    // HANDOFF (decoded and checked whole): its spec, tree and workers.
    Daemon(handoff::State handoff, Options opts);
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
    double random() override;
    core::Time now() override;
    void removed(const core::Node &node) override;
    void redefined(const core::Node &node,
                   const std::shared_ptr<const core::WorkerSpec> &old) override;

private:
    // RequestHandler: lines from the control socket, to the request handlers.
    Reply on_request(std::uint64_t conn, const os::PeerCred &peer, std::string_view line) override;
    std::string on_oversized() override;
    void on_closed(std::uint64_t conn) override;
    // RequestEffects
    int kill(pid_t pid, int sig) override;
    void shutdown() override;
    Loaded load_spec(const std::string &path) override;
    std::vector<std::string> refused(const spec::Spec &next) override;
    void reload_begins(const spec::Spec &next, const std::vector<core::Change> &changes) override;
    void reload_ends(const Result<void> &result, spec::Spec next) override;
    std::string spec_dir() override;
    const std::vector<std::pair<std::string, std::string>> *exports_of(std::uint64_t id) override;
    pid_t pid_max() override { return pid_max_; }
    std::optional<CgroupUsage> cgroup_of(std::uint64_t id) override;
    std::vector<pid_t> processes_of(std::uint64_t id, pid_t pid, bool all) override;
    std::string wall_time_of(core::Time t) override;
    std::optional<nlohmann::json> cluster_status() override;
    bool cluster_signal(std::uint64_t conn, const std::string &registry, const std::string &group,
                        int sig, std::chrono::milliseconds timeout) override;
    std::optional<Error> reexec(std::uint64_t conn) override;

    // ---- reexec ----
    // Executes the program again with the state handed over; returns only on
    // failure, with the reason (everything is as it was).
    Error execute_again(std::uint64_t conn);
    // Everything the next chipd needs, as it is now.
    handoff::State handoff_state(std::uint64_t conn) const;
    // After a hand-off: the requester is answered, the log told.
    void took_over();

    void setup();
    // The parts of setup() a hand-off changes.
    void setup_socket(std::size_t fd_limit, std::optional<os::UniqueFd> &listen_fd);
    void setup_registries();
    void cleanup();
    // The end of every loop turn (and of timer callbacks, which run before
    // the loop polls): answers, timers, systemd, exit.
    void after_events();
    void answer_requests();
    void arm_timers();
    void on_sigchld();
    void on_term_signal(int sig);
    void on_hangup();
    void on_ready(std::uint64_t id);
    void begin_shutdown(const std::string &why);
    void warn(const std::string &msg);
    // Writes the line FORMAT makes in chipd's log style to stderr, and to the
    // --log-file (never with journal priorities: a file keeps timestamps).
    // Returns the line written to stderr.
    std::string write_log(const std::function<std::string(LogStyle)> &format);
    // The event stream: whether anyone follows it, and LINE (a JSON object,
    // with or without its newline) to those following NODE (null: all of it).
    bool streaming() const;
    void publish(const core::Node *node, std::string_view line);

    spec::Spec spec_;
    Options opts_;
    std::unique_ptr<handoff::State> handoff_;   // taken over at setup, then gone
    std::optional<std::uint64_t> reexec_conn_;  // a reexec asked for, carried out at the turn's end
    std::string socket_path_;
    os::SocketFolder socket_folder_;  // the socket's, checked, open while chipd runs
    LogStyle style_;

    // Declared after the loop: handles are closed before it.
    uv::Loop loop_;
    std::unique_ptr<SystemProcesses> procs_;
    std::unique_ptr<Registries> registries_;
    std::unique_ptr<Cgroups> cgroups_;
    std::unique_ptr<Cluster> cluster_;  // with "cluster" in the spec
    bool closing_cluster_ = false;      // the loop runs on until the lease is revoked
    std::unique_ptr<Launcher> launcher_;
    std::unique_ptr<Systemd> systemd_;
    std::unique_ptr<FileSink> log_file_;  // --log-file
    bool log_file_opening_ = false;       // its first open: a failure is fatal
    std::size_t worker_fd_limit_ = 0;     // the soft fd limit chipd was given
    std::unique_ptr<core::Tree> tree_;
    std::unique_ptr<Requests> requests_;
    std::unique_ptr<Control> control_;

    std::unique_ptr<uv::Signal> sig_chld_, sig_term_, sig_int_, sig_hup_;
    std::unique_ptr<uv::Timer> timer_;         // the core's next deadline
    std::optional<core::Time> armed_;          // ... as armed
    std::unique_ptr<uv::Timer> waiter_timer_;  // the next timeout of a wait
    std::unique_ptr<uv::Check> check_;
    std::unique_ptr<uv::Timer> reap_timer_;  // more exited children than one batch
    static constexpr std::size_t kReapBatch = 256;
    bool reaped_this_turn_ = false;

    std::mt19937_64 random_{std::random_device{}()};  // the backoff's jitter

    const core::Node *spawning_ = nullptr;  // the worker whose declared groups are joined
    bool exiting_ = false;
    int exit_code_ = 0;
    TermSignals term_signals_;
    pid_t pid_max_ = os::kPidMaxLimit;  // kernel.pid_max, read at start
};

}  // namespace chip::daemon
