// chip_test_helper: the worker program of the integration tests.
//
//   chip_test_helper MODE[,MODE...] [MODE...]
//
// Modes run in order; the last one decides how it ends (by default it runs
// until SIGTERM and exits 0):
//   sleep             run until SIGTERM, exit 0 on it
//   exit:N            exit N now
//   exit-after:MS:N   exit N after MS milliseconds
//   ignore-term       ignore SIGTERM (only SIGKILL ends it)
//   notify            send READY=1 to $NOTIFY_SOCKET (a path, or '@' abstract)
//   notify-after:MS   the same after MS milliseconds
//   notify-if-set     send READY=1 only if $NOTIFY_SOCKET is set (the same
//                     command serves as a `ready: started` and a `ready:
//                     notify` worker)
//   never-ready       nothing (documents a notify worker that never sends)
//   export:NAME=VALUE the next notify datagram also carries
//                     CHIP_EXPORT_NAME=VALUE (before READY=1)
//   export-pid:NAME   the same with its pid as the value
//   notify-big:BYTES  send one datagram of BYTES bytes that starts with
//                     CHIP_EXPORT_BIG=1 and READY=1 (the rest is padding)
//   notify-junk       send binary datagrams: empty, NUL bytes, invalid UTF-8,
//                     cut CHIP_EXPORT_ lines (none says READY=1)
//   notify-child      fork a child that leaves the process group (setsid) and
//                     sends the notify datagram (READY=1 with the exports)
//                     from its own pid, then lives 3 s
//   print:TEXT        "out:TEXT" on stdout, "err:TEXT" on stderr
//   record:FILE       append "start PID CHIP_PATH CHIP_INSTANCE" to FILE, then
//                     "ready PID" before each READY=1 and "stop PID" on SIGTERM
//   env:FILE          write its environment to FILE, one VAR=VALUE a line
//   pid:FILE          write its pid to FILE
//   fork-orphan:FILE[:MS]  fork a child that writes its pid to FILE, lives MS
//                     (default 300) milliseconds and exits: with exit:0 after
//                     it, the child is orphaned and its new parent must reap it
//   pgid:FILE         write "PGID SID" to FILE
//   escape:FILE       fork a child that leaves the process group and session
//                     (setsid), ignores SIGTERM and SIGHUP, writes its pid to
//                     FILE and sleeps until killed: only its worker's cgroup
//                     still holds it
//   wait-file:FILE    wait until FILE exists (polling every 10 ms)
//   request:SOCKET    send stdin (one request line) to the control socket
//                     SOCKET, print the response line on stdout and exit 0;
//                     exit 3 if it cannot connect, 4 if no response comes
// Files are written whole and renamed into place (or appended with one
// write), so a test polling for them never reads half a line.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "datagram.hpp"

extern char **environ;

namespace {

std::string g_record;   // record:FILE, for the SIGTERM handler
std::string g_exports;  // "CHIP_EXPORT_NAME=VALUE\n" lines for the next notify
char g_stop_line[64];
std::size_t g_stop_len = 0;

void append_line(const std::string &file, const std::string &line) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    std::string l = line + "\n";
    (void)!::write(fd, l.data(), l.size());
    ::close(fd);
}

void write_whole(const std::string &file, const std::string &text) {
    std::string tmp = file + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    (void)!::write(fd, text.data(), text.size());
    ::close(fd);
    ::rename(tmp.c_str(), file.c_str());
}

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

extern "C" void on_term(int) {
    if (g_stop_len) {
        int fd = ::open(g_record.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            (void)!::write(fd, g_stop_line, g_stop_len);
            ::close(fd);
        }
    }
    ::_exit(0);
}

std::string env(const char *name) {
    const char *v = std::getenv(name);
    return v ? v : "";
}

void send_notify(const std::string &msg) {
    std::string path = env("NOTIFY_SOCKET");
    if (path.empty()) {
        std::fprintf(stderr, "chip_test_helper: no NOTIFY_SOCKET\n");
        std::exit(99);
    }
    if (int rc = chip::test::send_datagram(path, msg, 1 << 20); rc < 0) {
        std::fprintf(stderr, "chip_test_helper: sendto NOTIFY_SOCKET: %s\n", std::strerror(-rc));
        std::exit(98);
    }
}

void notify_ready() {
    if (!g_record.empty()) append_line(g_record, "ready " + std::to_string(::getpid()));
    send_notify(g_exports + "READY=1");
    g_exports.clear();
}

// request:SOCKET: one request (stdin) and its response line (stdout).
int request(const std::string &socket) {
    std::string req;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(0, buf, sizeof buf)) > 0) req.append(buf, static_cast<std::size_t>(n));
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (fd < 0 || socket.size() >= sizeof addr.sun_path) return 3;
    std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
        std::perror("chip_test_helper: connect");
        return 3;
    }
    for (std::size_t done = 0; done < req.size();) {
        n = ::write(fd, req.data() + done, req.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 4;
        done += static_cast<std::size_t>(n);
    }
    std::string resp;
    while (resp.find('\n') == std::string::npos) {
        n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 4;
        resp.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    resp.erase(resp.find('\n') + 1);
    std::fwrite(resp.data(), 1, resp.size(), stdout);
    std::fflush(stdout);
    return 0;
}

[[noreturn]] void sleep_forever() {
    for (;;) ::pause();
}

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> parts;
    std::size_t pos = 0;
    for (;;) {
        auto next = s.find(sep, pos);
        parts.push_back(s.substr(pos, next == std::string::npos ? next : next - pos));
        if (next == std::string::npos) return parts;
        pos = next + 1;
    }
}

}  // namespace

int main(int argc, char **argv) {
    ::signal(SIGTERM, on_term);
    std::vector<std::string> modes;
    for (int i = 1; i < argc; ++i)
        for (auto &m : split(argv[i], ',')) modes.push_back(m);
    for (const auto &mode : modes) {
        auto colon = mode.find(':');
        std::string name = mode.substr(0, colon);
        std::string arg = colon == std::string::npos ? "" : mode.substr(colon + 1);
        if (name == "sleep" || name == "never-ready") {
        } else if (name == "exit") {
            std::fflush(nullptr);
            return std::atoi(arg.c_str());
        } else if (name == "exit-after") {
            auto p = split(arg, ':');
            sleep_ms(std::atol(p[0].c_str()));
            std::fflush(nullptr);
            return p.size() > 1 ? std::atoi(p[1].c_str()) : 0;
        } else if (name == "ignore-term") {
            ::signal(SIGTERM, SIG_IGN);
        } else if (name == "notify") {
            notify_ready();
        } else if (name == "notify-if-set") {
            if (!env("NOTIFY_SOCKET").empty()) notify_ready();
        } else if (name == "notify-after") {
            sleep_ms(std::atol(arg.c_str()));
            notify_ready();
        } else if (name == "export") {
            g_exports += "CHIP_EXPORT_" + arg + "\n";
        } else if (name == "export-pid") {
            g_exports += "CHIP_EXPORT_" + arg + "=" + std::to_string(::getpid()) + "\n";
        } else if (name == "notify-big") {
            std::string msg = "CHIP_EXPORT_BIG=1\nREADY=1\nX=";
            msg.resize(static_cast<std::size_t>(std::atol(arg.c_str())), 'x');
            send_notify(msg);
        } else if (name == "notify-junk") {
            std::string bytes;
            unsigned x = 12345;
            for (int i = 0; i < 8192; ++i) {
                x = x * 1103515245u + 12345u;
                bytes += static_cast<char>((x >> 16) & 0xff);
            }
            send_notify("");
            static const char cut[] =
                "CHIP_EXPORT_\xff\x00=1\nCHIP_EXPORT_A=\x00"
                "b\nREADY=1\x00";
            send_notify(std::string(cut, sizeof cut - 1));
            send_notify("CHIP_EXPORT_");
            send_notify("CHIP_EXPORT_Z");
            for (std::size_t n = 1; n <= bytes.size(); n *= 2) send_notify(bytes.substr(0, n));
        } else if (name == "notify-child") {
            pid_t child = ::fork();
            if (child == 0) {
                ::setsid();  // out of the worker's group: its parent vouches for it
                notify_ready();
                // Alive while chipd checks where the datagram came from.
                sleep_ms(3000);
                ::_exit(0);
            }
            g_exports.clear();
        } else if (name == "print") {
            std::printf("out:%s\n", arg.c_str());
            std::fflush(stdout);
            std::fprintf(stderr, "err:%s\n", arg.c_str());
            std::fflush(stderr);
        } else if (name == "record") {
            g_record = arg;
            g_stop_len = static_cast<std::size_t>(std::snprintf(
                g_stop_line, sizeof g_stop_line, "stop %d\n", static_cast<int>(::getpid())));
            append_line(arg, "start " + std::to_string(::getpid()) + " " + env("CHIP_PATH") + " " +
                                 env("CHIP_INSTANCE"));
        } else if (name == "env") {
            std::string text;
            for (char **e = environ; *e; ++e) text += std::string(*e) + "\n";
            write_whole(arg, text);
        } else if (name == "pid") {
            write_whole(arg, std::to_string(::getpid()) + "\n");
        } else if (name == "pgid") {
            write_whole(arg,
                        std::to_string(::getpgid(0)) + " " + std::to_string(::getsid(0)) + "\n");
        } else if (name == "wait-file") {
            while (::access(arg.c_str(), F_OK) != 0) sleep_ms(10);
        } else if (name == "request") {
            return request(arg);
        } else if (name == "escape") {
            pid_t child = ::fork();
            if (child == 0) {
                ::setsid();
                ::signal(SIGTERM, SIG_IGN);
                ::signal(SIGHUP, SIG_IGN);
                write_whole(arg, std::to_string(::getpid()) + "\n");
                sleep_forever();
            }
        } else if (name == "fork-orphan") {
            auto p = split(arg, ':');
            long ms = p.size() > 1 ? std::atol(p[1].c_str()) : 300;
            pid_t child = ::fork();
            if (child == 0) {
                ::signal(SIGTERM, SIG_DFL);
                write_whole(p[0], std::to_string(::getpid()) + "\n");
                sleep_ms(ms);
                ::_exit(0);
            }
        } else {
            std::fprintf(stderr, "chip_test_helper: unknown mode %s\n", mode.c_str());
            return 97;
        }
    }
    sleep_forever();
}
