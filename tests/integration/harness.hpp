// The integration test harness: runs the real chipd and chipctl against real
// worker processes (tests/integration/test_helper.cpp), each test in its own
// temporary folder with its own socket and shared-memory names.
//
// It never sleeps to synchronise: wait_until() polls a predicate under a
// deadline. Every deadline is generous (it only bounds how long a failure takes
// to show on a busy machine) and scaled by $CHIP_TEST_TIMEOUT_MULTIPLIER. It
// starts processes only through Child and kills only what it started, by pid
// (never by name). It does not use doctest: failures to set up throw
// std::runtime_error, which doctest reports as the test's failure; skip()
// throws Skipped, which the integration tests' main (main.cpp) turns into exit
// 77, meson's SKIP.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace chip::test {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// ---- paths of the built programs --------------------------------------------------

// $CHIPD, else the chipd meson built.
std::string chipd_path();
// $CHIPCTL, else the chipctl meson built.
std::string chipctl_path();
// $CHIP_TEST_HELPER, else the chip_test_helper meson built.
std::string helper_path();

// A worker's command: the test helper with MODES joined by ',' as one argument
// (e.g. helper({"record:/tmp/x/rec", "notify"})).
nlohmann::json helper(std::initializer_list<std::string> modes);
nlohmann::json helper(const std::string &mode);

// Spec builders. A worker {"name": NAME, "command": COMMAND, ...EXTRA}.
nlohmann::json worker(const std::string &name, const nlohmann::json &command,
                      const nlohmann::json &extra = nlohmann::json::object());
// A nested supervisor {"name": NAME, "supervisor": {"children": CHILDREN, ...BODY}}.
nlohmann::json supervisor(const std::string &name, const nlohmann::json &children,
                          const nlohmann::json &body = nlohmann::json::object());
// A spec {"root": {"children": CHILDREN, ...ROOT}, ...TOP}.
nlohmann::json spec(const nlohmann::json &children,
                    const nlohmann::json &root = nlohmann::json::object(),
                    const nlohmann::json &top = nlohmann::json::object());

// ---- time ------------------------------------------------------------------------

// The default deadline of every wait: far above what anything takes on an idle
// machine, so that only a real failure reaches it.
inline constexpr Ms kDeadline = 30000ms;

// $CHIP_TEST_TIMEOUT_MULTIPLIER (default 1; the sanitizer run sets it higher).
double timeout_multiplier();
// D scaled by timeout_multiplier().
Ms scaled(Ms d);
// D scaled, in seconds, as a command-line argument (chipctl wait --timeout).
std::string scaled_seconds(Ms d);
// Polls PRED every few milliseconds until it holds (true) or the scaled
// DEADLINE passes (false).
bool wait_until(const std::function<bool()> &pred, Ms deadline = kDeadline);

// ---- skipping --------------------------------------------------------------------

// What skip() throws. Not a std::exception, so that no `catch (const
// std::exception &)` on the way swallows it.
struct Skipped {
    std::string why;
};

// Ends the running test case as skipped (it cannot run on this host): prints
// "SKIP: WHY" on stderr and throws Skipped, so that the destructors of what the
// case started (Chipd, Child, TempDir...) run as the stack unwinds. The
// integration tests' main then exits 77, which meson reports as SKIP. A case
// that failed a check before calling skip() still reports its failure.
[[noreturn]] void skip(const std::string &why);
// Whether skip() was called since the last take_skipped(); clears it (for main).
bool take_skipped();

// ---- files -----------------------------------------------------------------------

// A fresh folder under /tmp (mkdtemp), removed recursively by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;

    const std::string &path() const { return path_; }
    // PATH/NAME.
    std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// The whole file ("" if it does not exist).
std::string read_file(const std::string &path);
// The file's lines, without their '\n' (none if it does not exist).
std::vector<std::string> read_lines(const std::string &path);
void write_file(const std::string &path, const std::string &text);
bool file_exists(const std::string &path);
// Polls until FILE's first line holds a pid (written by a worker's shell);
// returns it, 0 after the deadline.
pid_t wait_pid_file(const std::string &file);
// Lines of TEXT (split at '\n').
std::vector<std::string> split_lines(const std::string &text);
// Words of LINE split at spaces.
std::vector<std::string> split_words(const std::string &line);

// ---- processes -------------------------------------------------------------------

// Exists and is not a zombie.
bool process_alive(pid_t pid);
// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 if PID is gone.
char process_state(pid_t pid);
// Fields of /proc/PID/stat; -1 if PID is gone.
pid_t parent_of(pid_t pid);
pid_t pgid_of(pid_t pid);
pid_t sid_of(pid_t pid);
// The real uid of PID (from /proc/PID/status), -1 if gone.
long uid_of(pid_t pid);
// The value of NAME in /proc/PID/environ, nullopt if unset or PID is gone.
std::optional<std::string> environ_of(pid_t pid, const std::string &name);

// How a Child is started.
struct ChildOptions {
    // stdin: these bytes through a pipe (at most 64 KiB), else /dev/null.
    std::optional<std::string> input;
    // stdout and stderr through pipes, read by Child::collect().
    bool capture = false;
    // Unless captured: stdout to this file (created or truncated, O_APPEND),
    // "" for the test's own stdout.
    std::string out_file;
    // Unless captured: stderr to this file, "" for the test's own stderr...
    std::string err_file;
    // ...or to wherever stdout goes.
    bool err_to_out = false;
    // Sent to the child if the test process dies (PR_SET_PDEATHSIG); 0 for none.
    int death_signal = SIGKILL;
    // RLIMIT_NOFILE (soft and hard) of the child, else the test's own...
    std::optional<unsigned long> max_fds;
    // ...with this hard limit instead, when set.
    std::optional<unsigned long> max_fds_hard;
};

// A child process of the test: ARGV[0] (a path, no $PATH search) executed with
// ARGV. The only way the harness and the tests start a process. The destructor
// SIGKILLs it by pid and reaps it, unless it was reaped already.
class Child {
public:
    // Throws std::runtime_error when it cannot fork; an exec failure is exit 127.
    explicit Child(const std::vector<std::string> &argv, const ChildOptions &opts = {});
    ~Child();
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;

    pid_t pid() const { return pid_; }
    // Reaps it if it exited: its exit code (128+N for signal N), else nullopt
    // (never blocks).
    std::optional<int> exit_code();
    bool running() { return !exit_code().has_value(); }
    // Polls until it exits: its exit code, or nullopt after the scaled DEADLINE
    // (it is left running).
    std::optional<int> wait(Ms deadline = kDeadline);
    // Sends SIG unless it was reaped already.
    void signal(int sig);
    // SIGKILL (unless reaped already), reaps it and returns its exit code.
    int kill();
    // With capture: reads its stdout and stderr into out() and err() until both
    // reach EOF (true) or the scaled DEADLINE passes (false).
    bool collect(Ms deadline = kDeadline);
    const std::string &out() const { return out_; }
    const std::string &err() const { return err_; }

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
    int out_fd_ = -1, err_fd_ = -1;
    std::string out_, err_;
};

struct ProcResult {
    int exit_code = -1;  // 128+N when killed by signal N; -1 when it timed out
    std::string out;
    std::string err;
};

// Runs ARGV as a Child (stdout and stderr captured, stdin INPUT or /dev/null)
// and waits for it; killed with SIGKILL after the scaled DEADLINE.
ProcResult run_process(const std::vector<std::string> &argv, Ms deadline = kDeadline,
                       const std::optional<std::string> &input = std::nullopt);
// chipctl --socket SOCKET ARGS...
ProcResult run_ctl_at(const std::string &socket, const std::vector<std::string> &args,
                      Ms deadline = kDeadline);

// A raw connection to a control socket, speaking the line protocol directly.
class Client {
public:
    // Connects (throws on failure).
    explicit Client(const std::string &socket);
    ~Client();
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    // Sends BYTES as they are (no newline added).
    void send_raw(const std::string &bytes);
    // Reads one response line (without '\n'); nullopt on EOF or after the
    // scaled DEADLINE.
    std::optional<std::string> read_line(Ms deadline = kDeadline);
    // Whether chipd closes the connection (EOF) before the scaled DEADLINE,
    // with nothing more to read before it.
    bool wait_closed(Ms deadline = kDeadline);
    // Sends REQ as one line and parses the response line (throws on EOF or
    // timeout).
    nlohmann::json request(const nlohmann::json &req, Ms deadline = kDeadline);
    int fd() const { return fd_; }

private:
    int fd_ = -1;
    std::string buf_;
};

// ---- chipd -----------------------------------------------------------------------

// One chipd under test, in its own TempDir: DIR/spec.json, DIR/chipd.sock,
// DIR/chipd.out and DIR/chipd.err (its stdout and stderr).
class Chipd {
public:
    // Writes SPEC (JSON text) to DIR/spec.json; start() runs chipd on it.
    explicit Chipd(const std::string &spec);
    explicit Chipd(const nlohmann::json &spec);
    // The same with the control socket at SOCKET instead of DIR/chipd.sock.
    Chipd(const nlohmann::json &spec, const std::string &socket);
    // Kills chipd (SIGTERM, then SIGKILL) if still running, reaps it, then
    // SIGKILLs every worker pid it recorded that still carries this chipd's
    // CHIP_SOCKET in its environment. When chipd ended by SIGKILL, a chipd
    // with an empty tree is then run on its socket and stopped: it clears the
    // cgroups the killed one left.
    ~Chipd();
    Chipd(const Chipd &) = delete;
    Chipd &operator=(const Chipd &) = delete;

    // Starts chipd [EXTRA...] --socket SOCKET DIR/spec.json (as a Child that
    // gets SIGTERM if the test dies).
    void start(const std::vector<std::string> &extra = {});
    // The next start() runs chipd with RLIMIT_NOFILE at N, soft and hard (so
    // that it cannot raise it).
    void limit_fds(unsigned long n) { max_fds_ = n; }
    // The same with a soft limit N below the hard limit HARD (which chipd may
    // raise its soft limit to).
    void limit_fds(unsigned long n, unsigned long hard) {
        max_fds_ = n;
        max_fds_hard_ = hard;
    }
    // Polls status until the root is `running`. False if chipd exited or the
    // scaled DEADLINE passed.
    bool wait_ready(Ms deadline = kDeadline);
    // start() and wait_ready(); throws with chipd's stderr if not ready.
    void start_ready(const std::vector<std::string> &extra = {});
    // SIGTERM, then waits for chipd's exit code (SIGKILL after the scaled
    // DEADLINE, and returns -1).
    int stop(Ms deadline = kDeadline);
    // Waits for chipd to exit on its own: its exit code (128+N for signal N),
    // or nullopt after the scaled DEADLINE.
    std::optional<int> wait_exit(Ms deadline = kDeadline);
    // Reaps chipd if it exited: its exit code, else nullopt (never blocks).
    std::optional<int> exit_code();
    bool running() { return !exit_code().has_value(); }
    void signal(int sig);
    pid_t pid() const { return proc_ ? proc_->pid() : -1; }

    const TempDir &dir() const { return dir_; }
    std::string file(const std::string &name) const { return dir_.file(name); }
    const std::string &socket() const { return socket_; }
    std::string spec_path() const { return dir_.file("spec.json"); }

    // chipctl --socket SOCKET ARGS...
    ProcResult run_ctl(const std::vector<std::string> &args, Ms deadline = kDeadline);
    // One request over a fresh connection.
    nlohmann::json request(const nlohmann::json &req, Ms deadline = kDeadline);
    // The nodes of PATH's subtree ({"op":"status"}); an empty array when chipd
    // does not answer or answers with an error.
    nlohmann::json status_json(const std::string &path = "/");
    // PATH's node; null if unknown or chipd does not answer.
    nlohmann::json node(const std::string &path);
    // PATH's pid (0 when none); recorded for the destructor.
    pid_t pid_of(const std::string &path);
    // PATH's state ("" if unknown).
    std::string state_of(const std::string &path);
    // PATH's restarts (-1 if unknown).
    int restarts_of(const std::string &path);
    // Polls until PATH's state is STATE.
    bool wait_state(const std::string &path, const std::string &state, Ms deadline = kDeadline);
    // Polls until PATH runs with a pid other than OLD (and not 0); returns it or 0.
    pid_t wait_new_pid(const std::string &path, pid_t old, Ms deadline = kDeadline);
    // The shared-memory files of its registries ({"op":"registries"}).
    std::vector<std::string> shm_files();

    // Records PID as a worker of this chipd, killed by the destructor if left.
    void track(pid_t pid);

    std::string stdout_text() const;
    std::string stderr_text() const;
    std::vector<std::string> stderr_lines() const;
    // Whether a line of chipd's stderr contains every one of PARTS.
    bool log_has(std::initializer_list<std::string> parts) const;
    // Polls until log_has(PARTS).
    bool wait_log(std::initializer_list<std::string> parts, Ms deadline = kDeadline) const;

private:
    TempDir dir_;
    std::string socket_;
    std::unique_ptr<Child> proc_;
    std::vector<pid_t> workers_;
    std::optional<unsigned long> max_fds_, max_fds_hard_;
};

}  // namespace chip::test
