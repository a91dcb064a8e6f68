#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef CHIPD_PATH
#define CHIPD_PATH "chipd"
#endif
#ifndef CHIPCTL_PATH
#define CHIPCTL_PATH "chipctl"
#endif
#ifndef HELPER_PATH
#define HELPER_PATH "chip_test_helper"
#endif

namespace chip::test {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string env_or(const char *name, const char *fallback) {
    const char *v = std::getenv(name);
    return v && *v ? v : fallback;
}

std::runtime_error sys_error(const std::string &what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

int decode(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

// The fields of /proc/PID/stat after the command name: index 0 is the state.
std::vector<std::string> stat_fields(pid_t pid) {
    std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto rp = s.rfind(')');
    if (rp == std::string::npos) return {};
    return split_words(s.substr(rp + 2));
}

// Reads whatever FD has without blocking into OUT; false at EOF.
bool drain(int fd, std::string &out) {
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        return errno == EAGAIN;
    }
}

}  // namespace

// ---- paths ---------------------------------------------------------------------

std::string chipd_path() {
    return env_or("CHIPD", CHIPD_PATH);
}
std::string chipctl_path() {
    return env_or("CHIPCTL", CHIPCTL_PATH);
}
std::string helper_path() {
    return env_or("CHIP_TEST_HELPER", HELPER_PATH);
}

json helper(std::initializer_list<std::string> modes) {
    std::string joined;
    for (const auto &m : modes) joined += (joined.empty() ? "" : ",") + m;
    return json::array({helper_path(), joined});
}

json helper(const std::string &mode) {
    return json::array({helper_path(), mode});
}

json worker(const std::string &name, const json &command, const json &extra) {
    json w = extra;
    w["name"] = name;
    w["command"] = command;
    return w;
}

json supervisor(const std::string &name, const json &children, const json &body) {
    json b = body;
    b["children"] = children;
    return json{{"name", name}, {"supervisor", b}};
}

json spec(const json &children, const json &root, const json &top) {
    json r = root;
    r["children"] = children;
    json s = top;
    s["root"] = r;
    return s;
}

// ---- time ----------------------------------------------------------------------

double timeout_multiplier() {
    const char *v = std::getenv("CHIP_TEST_TIMEOUT_MULTIPLIER");
    if (!v || !*v) return 1.0;
    double m = std::strtod(v, nullptr);
    return m > 0 ? m : 1.0;
}

Ms scaled(Ms d) {
    return Ms(static_cast<Ms::rep>(static_cast<double>(d.count()) * timeout_multiplier()));
}

std::string scaled_seconds(Ms d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(scaled(d).count()) / 1000.0);
    return buf;
}

bool wait_until(const std::function<bool()> &pred, Ms deadline) {
    auto end = Clock::now() + scaled(deadline);
    for (;;) {
        if (pred()) return true;
        if (Clock::now() >= end) return pred();
        std::this_thread::sleep_for(5ms);
    }
}

// ---- skipping ------------------------------------------------------------------

namespace {
bool g_skipped = false;
}  // namespace

void skip(const std::string &why) {
    std::cout.flush();
    std::cerr << "SKIP: " << why << std::endl;
    g_skipped = true;
    throw Skipped{why};
}

bool take_skipped() {
    bool was = g_skipped;
    g_skipped = false;
    return was;
}

// ---- files ---------------------------------------------------------------------

TempDir::TempDir() {
    char tmpl[] = "/tmp/chip-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw sys_error("mkdtemp");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> read_lines(const std::string &path) {
    return split_lines(read_file(path));
}

void write_file(const std::string &path, const std::string &text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << text;
}

bool file_exists(const std::string &path) {
    return ::access(path.c_str(), F_OK) == 0;
}

pid_t wait_pid_file(const std::string &file) {
    pid_t pid = 0;
    wait_until([&] {
        auto lines = read_lines(file);
        if (lines.empty() || lines[0].empty()) return false;
        pid = static_cast<pid_t>(std::stol(lines[0]));
        return pid > 0;
    });
    return pid;
}

std::vector<std::string> split_lines(const std::string &text) {
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

std::vector<std::string> split_words(const std::string &line) {
    std::vector<std::string> words;
    std::istringstream in(line);
    std::string w;
    while (in >> w) words.push_back(w);
    return words;
}

// ---- processes -----------------------------------------------------------------

char process_state(pid_t pid) {
    auto f = stat_fields(pid);
    return f.empty() || f[0].empty() ? 0 : f[0][0];
}

bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    char s = process_state(pid);
    return s != 0 && s != 'Z' && s != 'X';
}

pid_t parent_of(pid_t pid) {
    auto f = stat_fields(pid);
    return f.size() > 1 ? static_cast<pid_t>(std::stol(f[1])) : -1;
}

pid_t pgid_of(pid_t pid) {
    auto f = stat_fields(pid);
    return f.size() > 2 ? static_cast<pid_t>(std::stol(f[2])) : -1;
}

pid_t sid_of(pid_t pid) {
    auto f = stat_fields(pid);
    return f.size() > 3 ? static_cast<pid_t>(std::stol(f[3])) : -1;
}

long uid_of(pid_t pid) {
    for (const auto &line : read_lines("/proc/" + std::to_string(pid) + "/status")) {
        if (line.rfind("Uid:", 0) == 0) {
            auto w = split_words(line);
            return w.size() > 1 ? std::stol(w[1]) : -1;
        }
    }
    return -1;
}

std::optional<std::string> environ_of(pid_t pid, const std::string &name) {
    std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
    std::string key = name + "=";
    std::size_t pos = 0;
    while (pos < env.size()) {
        auto end = env.find('\0', pos);
        if (end == std::string::npos) end = env.size();
        if (env.compare(pos, key.size(), key) == 0)
            return env.substr(pos + key.size(), end - pos - key.size());
        pos = end + 1;
    }
    return std::nullopt;
}

// ---- Child ---------------------------------------------------------------------

namespace {

// A pipe holding all of INPUT, its write end closed: its read end, for a
// child's stdin (the input must fit the pipe's buffer, so nothing blocks).
int input_pipe(const std::string &input) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) throw sys_error("pipe2");
    if (input.size() > 65536 || ::fcntl(p[1], F_SETFL, O_NONBLOCK) < 0 ||
        ::write(p[1], input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
        ::close(p[0]);
        ::close(p[1]);
        throw std::runtime_error("Child: cannot give " + std::to_string(input.size()) +
                                 " bytes of input through a pipe");
    }
    ::close(p[1]);
    return p[0];
}

}  // namespace

Child::Child(const std::vector<std::string> &argv, const ChildOptions &opts) {
    if (argv.empty()) throw std::runtime_error("Child: no command");
    // Everything the child needs is ready before fork: after it, only
    // async-signal-safe calls.
    std::vector<char *> args;
    for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    int in = opts.input ? input_pipe(*opts.input) : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0) throw sys_error("open /dev/null");
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    if (opts.capture && (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0)) {
        auto e = sys_error("pipe2");
        for (int fd : {in, out[0], out[1], err[0], err[1]})
            if (fd >= 0) ::close(fd);
        throw e;
    }
    const char *out_file = opts.capture || opts.out_file.empty() ? nullptr : opts.out_file.c_str();
    const char *err_file = opts.capture || opts.err_file.empty() ? nullptr : opts.err_file.c_str();
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
        auto e = sys_error("fork");
        for (int fd : {in, out[0], out[1], err[0], err[1]})
            if (fd >= 0) ::close(fd);
        throw e;
    }
    if (pid_ == 0) {
        if (opts.death_signal) {
            ::prctl(PR_SET_PDEATHSIG, opts.death_signal);
            if (::getppid() != parent) ::_exit(127);  // the test died already
        }
        if (opts.max_fds) {
            struct rlimit rl = {*opts.max_fds, opts.max_fds_hard.value_or(*opts.max_fds)};
            if (::setrlimit(RLIMIT_NOFILE, &rl) < 0) ::_exit(127);
        }
        constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC;
        int o = out[1], e = err[1];
        if (out_file && (o = ::open(out_file, kFlags, 0644)) < 0) ::_exit(127);
        if (err_file && (e = ::open(err_file, kFlags, 0644)) < 0) ::_exit(127);
        if (::dup2(in, 0) < 0) ::_exit(127);
        if (o >= 0 && ::dup2(o, 1) < 0) ::_exit(127);
        if (opts.err_to_out && !opts.capture) {
            if (::dup2(1, 2) < 0) ::_exit(127);
        } else if (e >= 0 && ::dup2(e, 2) < 0) {
            ::_exit(127);
        }
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(in);
    if (opts.capture) {
        ::close(out[1]);
        ::close(err[1]);
        out_fd_ = out[0];
        err_fd_ = err[0];
        ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
        ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
    }
}

Child::~Child() {
    kill();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
}

std::optional<int> Child::exit_code() {
    if (status_ || pid_ <= 0) return status_;
    int st = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &st, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == pid_) status_ = decode(st);
    return status_;
}

std::optional<int> Child::wait(Ms deadline) {
    wait_until([&] { return exit_code().has_value(); }, deadline);
    return exit_code();
}

void Child::signal(int sig) {
    if (pid_ > 0 && !exit_code()) ::kill(pid_, sig);
}

int Child::kill() {
    if (pid_ <= 0) return -1;
    if (exit_code()) return *status_;
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = decode(st);
    return *status_;
}

bool Child::collect(Ms deadline) {
    bool out_open = out_fd_ >= 0, err_open = err_fd_ >= 0;
    auto end = Clock::now() + scaled(deadline);
    while (out_open || err_open) {
        auto left = std::chrono::duration_cast<Ms>(end - Clock::now()).count();
        if (left <= 0) return false;
        pollfd fds[2] = {{out_open ? out_fd_ : -1, POLLIN, 0},
                         {err_open ? err_fd_ : -1, POLLIN, 0}};
        int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 100)));
        if (n < 0 && errno != EINTR) throw sys_error("poll");
        if (out_open && fds[0].revents) out_open = drain(out_fd_, out_);
        if (err_open && fds[1].revents) err_open = drain(err_fd_, err_);
    }
    return true;
}

ProcResult run_process(const std::vector<std::string> &argv, Ms deadline,
                       const std::optional<std::string> &input) {
    auto end = Clock::now() + scaled(deadline);
    ChildOptions opts;
    opts.capture = true;
    opts.input = input;
    Child c(argv, opts);
    ProcResult r;
    // Its output ends (EOF) when it exits; its exit follows at once.
    std::optional<int> code;
    if (c.collect(deadline))
        while (!(code = c.exit_code()) && Clock::now() < end) std::this_thread::sleep_for(1ms);
    if (!code) c.kill();
    r.exit_code = code ? *code : -1;
    r.out = c.out();
    r.err = c.err();
    return r;
}

ProcResult run_ctl_at(const std::string &socket, const std::vector<std::string> &args,
                      Ms deadline) {
    std::vector<std::string> argv{chipctl_path(), "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, deadline);
}

// ---- Client --------------------------------------------------------------------

Client::Client(const std::string &socket) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw sys_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.size() >= sizeof addr.sun_path) {
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("socket path too long: " + socket);
    }
    std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
    if (::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
        auto e = sys_error("connect " + socket);
        ::close(fd_);
        fd_ = -1;
        throw e;
    }
}

Client::~Client() {
    if (fd_ >= 0) ::close(fd_);
}

void Client::send_raw(const std::string &bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw sys_error("send");
        }
        done += static_cast<std::size_t>(n);
    }
}

std::optional<std::string> Client::read_line(Ms deadline) {
    auto end = Clock::now() + scaled(deadline);
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<Ms>(end - Clock::now()).count();
        if (left <= 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        char chunk[8192];
        ssize_t r = ::recv(fd_, chunk, sizeof chunk, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return std::nullopt;
        buf_.append(chunk, static_cast<std::size_t>(r));
    }
}

bool Client::wait_closed(Ms deadline) {
    if (!buf_.empty()) return false;
    auto end = Clock::now() + scaled(deadline);
    for (;;) {
        auto left = std::chrono::duration_cast<Ms>(end - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd_, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        char c;
        ssize_t r = ::recv(fd_, &c, 1, 0);
        if (r < 0 && errno == EINTR) continue;
        return r == 0 || (r < 0 && errno == ECONNRESET);
    }
}

json Client::request(const json &req, Ms deadline) {
    send_raw(req.dump() + "\n");
    auto line = read_line(deadline);
    if (!line) throw std::runtime_error("no response to " + req.dump());
    return json::parse(*line);
}

// ---- Chipd ---------------------------------------------------------------------

Chipd::Chipd(const std::string &spec) : socket_(dir_.file("chipd.sock")) {
    write_file(spec_path(), spec);
}

Chipd::Chipd(const json &spec) : Chipd(spec.dump(2)) {}

Chipd::Chipd(const json &spec, const std::string &socket) : socket_(socket) {
    write_file(spec_path(), spec.dump(2));
}

namespace {

// A chipd killed with SIGKILL leaves its cgroups behind (README.md,
// "Containment"): a successor on its socket, with an empty tree, kills what
// is left in them and removes them at its exit.
void sweep_cgroups(const std::string &socket) {
    TempDir dir;
    write_file(dir.file("spec.json"), R"({"root": {"children": []}})");
    ChildOptions opts;
    opts.err_file = dir.file("chipd.err");
    opts.out_file = dir.file("chipd.out");
    opts.death_signal = SIGTERM;
    Child successor({chipd_path(), "--socket", socket, dir.file("spec.json")}, opts);
    wait_until(
        [&] { return !successor.running() || run_ctl_at(socket, {"status"}).exit_code == 0; },
        10000ms);
    successor.signal(SIGTERM);
    successor.wait(10000ms);
}

}  // namespace

Chipd::~Chipd() {
    // Cleaning up, not checking: a short grace period, then SIGKILL.
    if (proc_ && proc_->running()) {
        proc_->signal(SIGTERM);
        if (!proc_->wait(5000ms)) proc_->kill();
    }
    // Only pids still carrying our socket in their environment are ours: a pid
    // may have been reused by another test's process meanwhile.
    for (pid_t w : workers_)
        if (process_alive(w) && environ_of(w, "CHIP_SOCKET") == socket_) ::kill(w, SIGKILL);
    if (proc_ && proc_->exit_code() == std::optional<int>(128 + SIGKILL)) {
        try {
            sweep_cgroups(socket_);
        } catch (...) {
            // Cleaning up: never a reason to fail (or end) the test.
        }
    }
}

void Chipd::start(const std::vector<std::string> &extra) {
    if (proc_) throw std::runtime_error("chipd already started");
    std::vector<std::string> argv{chipd_path()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {"--socket", socket_, spec_path()});
    ChildOptions opts;
    opts.out_file = file("chipd.out");
    opts.err_file = file("chipd.err");
    // If the test dies, chipd is told to shut down (and so its workers).
    opts.death_signal = SIGTERM;
    opts.max_fds = max_fds_;
    opts.max_fds_hard = max_fds_hard_;
    proc_ = std::make_unique<Child>(argv, opts);
}

bool Chipd::wait_ready(Ms deadline) {
    return wait_until(
               [&] {
                   if (!running()) return true;
                   return state_of("/") == "running";
               },
               deadline) &&
           running();
}

void Chipd::start_ready(const std::vector<std::string> &extra) {
    start(extra);
    if (!wait_ready())
        throw std::runtime_error("chipd did not become ready; its stderr:\n" + stderr_text());
}

std::optional<int> Chipd::exit_code() {
    return proc_ ? proc_->exit_code() : std::nullopt;
}

std::optional<int> Chipd::wait_exit(Ms deadline) {
    wait_until([&] { return exit_code().has_value(); }, deadline);
    return exit_code();
}

int Chipd::stop(Ms deadline) {
    if (!proc_) return -1;
    if (auto c = exit_code()) return *c;
    signal(SIGTERM);
    if (auto c = wait_exit(deadline)) return *c;
    proc_->kill();
    return -1;
}

void Chipd::signal(int sig) {
    if (proc_) proc_->signal(sig);
}

ProcResult Chipd::run_ctl(const std::vector<std::string> &args, Ms deadline) {
    return run_ctl_at(socket_, args, deadline);
}

json Chipd::request(const json &req, Ms deadline) {
    Client c(socket_);
    return c.request(req, deadline);
}

json Chipd::status_json(const std::string &path) {
    try {
        json r = request({{"op", "status"}, {"path", path}});
        if (r.value("ok", false) && r.contains("nodes")) {
            for (const auto &n : r["nodes"])
                if (n.contains("pid") && n["pid"].is_number()) track(n["pid"].get<pid_t>());
            return r["nodes"];
        }
    } catch (const std::exception &) {
    }
    return json::array();
}

json Chipd::node(const std::string &path) {
    for (const auto &n : status_json(path))
        if (n.value("path", "") == path) return n;
    return nullptr;
}

pid_t Chipd::pid_of(const std::string &path) {
    json n = node(path);
    if (n.is_null() || !n["pid"].is_number()) return 0;
    return n["pid"].get<pid_t>();
}

std::string Chipd::state_of(const std::string &path) {
    json n = node(path);
    return n.is_null() ? "" : n.value("state", "");
}

int Chipd::restarts_of(const std::string &path) {
    json n = node(path);
    return n.is_null() ? -1 : n.value("restarts", -1);
}

bool Chipd::wait_state(const std::string &path, const std::string &state, Ms deadline) {
    return wait_until([&] { return state_of(path) == state; }, deadline);
}

pid_t Chipd::wait_new_pid(const std::string &path, pid_t old, Ms deadline) {
    pid_t now = 0;
    wait_until(
        [&] {
            json n = node(path);
            if (n.is_null() || !n["pid"].is_number() || n.value("state", "") != "running")
                return false;
            now = n["pid"].get<pid_t>();
            return now != old;
        },
        deadline);
    return now != old ? now : 0;
}

std::vector<std::string> Chipd::shm_files() {
    std::vector<std::string> files;
    json r = request({{"op", "registries"}});
    if (r.value("ok", false))
        for (const auto &reg : r["registries"]) files.push_back(reg.value("shm", ""));
    return files;
}

void Chipd::track(pid_t pid) {
    if (pid > 0 && std::find(workers_.begin(), workers_.end(), pid) == workers_.end())
        workers_.push_back(pid);
}

std::string Chipd::stdout_text() const {
    return read_file(file("chipd.out"));
}
std::string Chipd::stderr_text() const {
    return read_file(file("chipd.err"));
}
std::vector<std::string> Chipd::stderr_lines() const {
    return split_lines(stderr_text());
}

bool Chipd::log_has(std::initializer_list<std::string> parts) const {
    for (const auto &line : stderr_lines()) {
        bool all = true;
        for (const auto &p : parts) all = all && line.find(p) != std::string::npos;
        if (all) return true;
    }
    return false;
}

bool Chipd::wait_log(std::initializer_list<std::string> parts, Ms deadline) const {
    return wait_until([&] { return log_has(parts); }, deadline);
}

}  // namespace chip::test
