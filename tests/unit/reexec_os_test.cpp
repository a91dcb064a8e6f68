// The system calls of chipd's reexec (src/os/reexec.hpp), on this machine:
// the memfd that carries the hand-off, close-on-exec flags, closing every
// descriptor but some, the signal mask, finding the program, and asking a
// program a question with a deadline.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "os/reexec.hpp"

using namespace chip;

TEST_CASE("a memfd holds the hand-off, sealed, and survives an exec") {
    std::string data(200000, 'x');
    data[5] = '\0';
    data.back() = 'y';
    auto fd = os::memfd_holding(data);
    REQUIRE(fd);
    CHECK((::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) == 0);
    auto back = os::read_whole(fd->get(), 1u << 20);
    REQUIRE(back);
    CHECK(*back == data);
    // Sealed: nobody changes it after it was written.
    CHECK(::write(fd->get(), "z", 1) == -1);
    auto small = os::read_whole(fd->get(), 1000);
    REQUIRE_FALSE(small);
    CHECK(small.error().code == E2BIG);
}

TEST_CASE("close-on-exec is set and cleared") {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    os::UniqueFd a(p[0]), b(p[1]);
    REQUIRE(os::set_cloexec(a.get(), false));
    CHECK((::fcntl(a.get(), F_GETFD) & FD_CLOEXEC) == 0);
    REQUIRE(os::set_cloexec(a.get(), true));
    CHECK((::fcntl(a.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_FALSE(os::set_cloexec(9999, true));
    CHECK(os::fd_open(a.get()));
    CHECK_FALSE(os::fd_open(9999));
}

TEST_CASE("every descriptor but those kept is closed") {
    // In a child: the test runner's own descriptors stay open.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fds[6];
        for (int &f : fds) f = ::open("/dev/null", O_RDONLY);
        os::close_fds_except({fds[1], fds[4], 1});
        bool ok = os::fd_open(fds[1]) && os::fd_open(fds[4]) && os::fd_open(0) && os::fd_open(1) &&
                  os::fd_open(2);
        for (int i : {0, 2, 3, 5}) ok = ok && !os::fd_open(fds[i]);
        ok = ok && os::open_fd_count() == 5;
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("the signal mask as a bit set") {
    std::uint64_t before = os::signal_mask();
    std::uint64_t all = os::block_all_signals();
    CHECK(all == before);
    std::uint64_t blocked = os::signal_mask();
    CHECK((blocked & (std::uint64_t{1} << (SIGCHLD - 1))) != 0);
    CHECK((blocked & (std::uint64_t{1} << (SIGTERM - 1))) != 0);
    os::set_signal_mask(std::uint64_t{1} << (SIGUSR1 - 1));
    CHECK(os::signal_mask() == std::uint64_t{1} << (SIGUSR1 - 1));
    os::set_signal_mask(before);
    CHECK(os::signal_mask() == before);
}

TEST_CASE("the program is found as exec would, and made absolute") {
    CHECK(os::program_path("/usr/sbin/chipd") == "/usr/sbin/chipd");
    std::string rel = os::program_path("build/chipd");
    CHECK(rel.front() == '/');
    CHECK(rel.size() > std::string("/build/chipd").size());
    CHECK(rel.substr(rel.size() - 12) == "/build/chipd");
    std::string sh = os::program_path("sh");
    CHECK(sh.front() == '/');
    CHECK(sh.substr(sh.size() - 3) == "/sh");
}

TEST_CASE("a program is asked a question with a deadline") {
    using namespace std::chrono_literals;
    auto echo = os::run_program("/bin/sh", {"-c", "echo 1 2; echo oops >&2"}, 30s);
    CHECK(echo.spawn_error == 0);
    CHECK(echo.exited);
    CHECK(echo.status == 0);
    CHECK(echo.output == "1 2\noops\n");

    auto failing = os::run_program("/bin/sh", {"-c", "exit 3"}, 30s);
    CHECK(failing.exited);
    CHECK(failing.status == 3);

    auto missing = os::run_program("/nonexistent/chipd", {"--handoff-versions"}, 30s);
    CHECK(missing.spawn_error == ENOENT);

    auto bounded = os::run_program("/bin/sh", {"-c", "head -c 100000 /dev/zero"}, 30s, 100);
    CHECK(bounded.exited);
    CHECK(bounded.output.size() == 100);

    // One that never answers is killed at the deadline.
    auto silent = os::run_program("/bin/sleep", {"1000"}, 200ms);
    CHECK(silent.timed_out);
    // One that closes its output but lives on is killed too.
    auto lingering = os::run_program("/bin/sh", {"-c", "exec >&- 2>&-; exec sleep 1000"}, 200ms);
    CHECK(lingering.timed_out);
}
