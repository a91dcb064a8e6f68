// Hand-off between siblings (README.md): CHIP_EXPORT_NAME=VALUE lines in a
// `ready: notify` worker's datagrams reach the environment of the workers
// started after it under its later siblings; status shows them; a restart
// withdraws them until sent again; datagrams from strangers, and datagrams
// over 16 KiB, are ignored with a warning.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "chip/chip.h"
#include "chip/chip.hpp"
#include "datagram.hpp"
#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

json notify_extra(const json &more = json::object()) {
    json e = more;
    e["ready"] = "notify";
    e["start_timeout"] = 30;
    return e;
}

std::string env_of(Chipd &d, const std::string &path, const std::string &name) {
    pid_t pid = d.pid_of(path);
    if (pid <= 0) return "<no pid>";
    // Just after exec, /proc/PID/environ may not show the new environment
    // yet: every worker has CHIP_PATH once it does.
    wait_until([&] { return environ_of(pid, "CHIP_PATH").has_value(); });
    return environ_of(pid, name).value_or("<unset>");
}

// Sends MSG to the datagram socket at PATH ('@' abstract) from this process.
bool send_to(const std::string &path, const std::string &msg) {
    return send_datagram(path, msg) == 0;
}

}  // namespace

TEST_CASE("exports reach the later siblings and what is inside them, not the earlier ones") {
    Chipd d(spec({
        worker("early", helper("sleep")),
        worker("db",
               helper({"export:DB_PORT=5432", "export:SHARED=db", "export:bad-name=1", "notify"}),
               notify_extra()),
        worker("mid", helper("sleep")),
        worker("db2", helper({"export:DB_PORT=6000", "export:SHARED=db2", "notify"}),
               notify_extra()),
        worker("late", helper("sleep"), {{"env", {{"SHARED", "mine"}}}}),
        supervisor("sup", json::array({worker("inner", helper("sleep"))})),
    }));
    d.start_ready();

    CHECK(env_of(d, "early", "DB_PORT") == "<unset>");
    CHECK(env_of(d, "db", "DB_PORT") == "<unset>");
    CHECK(env_of(d, "mid", "DB_PORT") == "5432");
    CHECK(env_of(d, "mid", "SHARED") == "db");
    // db2 is a later sibling of db: it gets db's.
    CHECK(env_of(d, "db2", "DB_PORT") == "5432");
    // Of two exporters the later wins; the worker's own env wins over both.
    CHECK(env_of(d, "late", "DB_PORT") == "6000");
    CHECK(env_of(d, "late", "SHARED") == "mine");
    CHECK(env_of(d, "sup/inner", "DB_PORT") == "6000");
    CHECK(env_of(d, "sup/inner", "SHARED") == "db2");
    // chipd's own variables stay as they were.
    CHECK(env_of(d, "sup/inner", "CHIP_PATH") == "sup/inner");

    // The malformed line was said and ignored; the rest of the datagram counted.
    CHECK(d.log_has({"db", "bad export name", "bad-name"}));

    json db = d.node("db");
    CHECK(db["exports"] == json{{"DB_PORT", "5432"}, {"SHARED", "db"}});
    CHECK(d.node("db2")["exports"] == json{{"DB_PORT", "6000"}, {"SHARED", "db2"}});
    CHECK_FALSE(d.node("early").contains("exports"));
    CHECK_FALSE(d.node("mid").contains("exports"));
    CHECK_FALSE(d.node("sup").contains("exports"));

    // chipctl status --json shows them too.
    auto st = d.run_ctl({"status", "--json"});
    CHECK(st.out.find("\"exports\"") != std::string::npos);
    CHECK(st.out.find("\"DB_PORT\"") != std::string::npos);
}

TEST_CASE("a restarted exporter's new value reaches the siblings restarted after it") {
    Chipd d(spec({worker("db", helper({"export-pid:DB_PID", "notify"}), notify_extra()),
                  worker("client", helper("sleep"))},
                 {{"strategy", "rest_for_one"}, {"max_restarts", 5}, {"period", 10}}));
    d.start_ready();
    pid_t db1 = d.pid_of("db");
    pid_t client1 = d.pid_of("client");
    CHECK(env_of(d, "client", "DB_PID") == std::to_string(db1));
    CHECK(d.node("db")["exports"]["DB_PID"] == std::to_string(db1));

    ::kill(db1, SIGKILL);
    pid_t client2 = d.wait_new_pid("client", client1);
    REQUIRE(client2 > 0);
    pid_t db2 = d.pid_of("db");
    CHECK(db2 != db1);
    CHECK(env_of(d, "client", "DB_PID") == std::to_string(db2));
    CHECK(d.node("db")["exports"]["DB_PID"] == std::to_string(db2));
}

TEST_CASE("exports are withdrawn when the exporter's process exits") {
    // A one_for_one tree: the exporter exits and is held stopped; a sibling
    // restarted meanwhile does not get its old value.
    Chipd d(spec({worker("db", helper({"export:X=1", "notify"}), notify_extra()),
                  worker("client", helper("sleep"))}));
    d.start_ready();
    CHECK(env_of(d, "client", "X") == "1");
    REQUIRE(d.run_ctl({"stop", "db"}).exit_code == 0);
    REQUIRE(d.wait_state("db", "stopped"));
    CHECK_FALSE(d.node("db").contains("exports"));
    pid_t c1 = d.pid_of("client");
    REQUIRE(d.run_ctl({"restart", "client"}).exit_code == 0);
    REQUIRE(d.wait_new_pid("client", c1) > 0);
    CHECK(env_of(d, "client", "X") == "<unset>");
}

TEST_CASE("a datagram from a descendant of the worker counts, even out of its process group") {
    Chipd d(spec({worker("db", helper({"export:FROM=child", "notify-child"}), notify_extra()),
                  worker("client", helper("sleep"))}));
    d.start_ready();
    CHECK(env_of(d, "client", "FROM") == "child");
}

TEST_CASE("a notify datagram from a process that is not the worker is ignored with a warning") {
    TempDir scratch;
    std::string go = scratch.file("go");
    Chipd d(
        spec({worker("db", helper({"wait-file:" + go, "export:OWN=1", "notify"}), notify_extra()),
              worker("client", helper("sleep"))}));
    d.start();
    REQUIRE(d.wait_state("db", "starting"));
    pid_t db = d.pid_of("db");
    std::string sock;
    REQUIRE(wait_until([&] {
        sock = environ_of(db, "NOTIFY_SOCKET").value_or("");
        return !sock.empty();
    }));
    // This test is no process of db's: neither its READY=1 nor its export counts.
    REQUIRE(send_to(sock, "CHIP_EXPORT_EVIL=1\nREADY=1"));
    REQUIRE(send_to(sock, "READY=1"));
    CHECK(d.wait_log({"db", "notify datagram from pid " + std::to_string(::getpid()), "ignored"}));
    CHECK(d.state_of("db") == "starting");
    CHECK_FALSE(d.node("db").contains("exports"));

    write_file(go, "");
    REQUIRE(d.wait_ready());
    CHECK(env_of(d, "client", "OWN") == "1");
    CHECK(env_of(d, "client", "EVIL") == "<unset>");
    CHECK(d.node("db")["exports"] == json{{"OWN", "1"}});
    // Said once per start, not per datagram.
    int said = 0;
    for (const auto &l : d.stderr_lines())
        if (l.find("not one of its processes") != std::string::npos) ++said;
    CHECK(said == 1);
}

TEST_CASE("a notify datagram over 16 KiB is ignored with a warning; chipd keeps supervising") {
    Chipd d(spec(
        {worker("db", helper({"notify-big:17408", "export:AFTER=1", "notify"}), notify_extra()),
         worker("client", helper("sleep"))}));
    d.start_ready();
    CHECK(d.log_has({"db", "notify datagram over 16384 bytes ignored"}));
    // Its CHIP_EXPORT_BIG went with it; the next datagram was taken.
    CHECK(d.node("db")["exports"] == json{{"AFTER", "1"}});
    CHECK(env_of(d, "client", "BIG") == "<unset>");
    CHECK(env_of(d, "client", "AFTER") == "1");
    // Still supervising: a killed worker is restarted.
    pid_t c1 = d.pid_of("client");
    ::kill(c1, SIGKILL);
    CHECK(d.wait_new_pid("client", c1) > 0);
}

TEST_CASE("a 16 KiB datagram is read whole") {
    Chipd d(spec({worker("db", helper({"notify-big:16384"}), notify_extra()),
                  worker("client", helper("sleep"))}));
    d.start_ready();
    CHECK(d.node("db")["exports"] == json{{"BIG", "1"}});
    CHECK(env_of(d, "client", "BIG") == "1");
}

TEST_CASE("binary garbage in notify datagrams never crashes chipd") {
    // From the worker itself (taken, parsed, found wanting) and from a
    // stranger (dropped unread).
    TempDir scratch;
    std::string go = scratch.file("go");
    Chipd d(spec({worker("db", helper({"wait-file:" + go, "notify-junk", "export:OK=1", "notify"}),
                         notify_extra()),
                  worker("client", helper("sleep"))}));
    d.start();
    REQUIRE(d.wait_state("db", "starting"));
    pid_t db = d.pid_of("db");
    std::string sock;
    REQUIRE(wait_until([&] {
        sock = environ_of(db, "NOTIFY_SOCKET").value_or("");
        return !sock.empty();
    }));
    std::string junk;
    for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 131 + 7) & 0xff);
    for (int i = 0; i < 20; ++i) REQUIRE(send_to(sock, junk.substr(0, 200 * i + 1)));
    REQUIRE(send_to(sock, ""));
    write_file(go, "");
    REQUIRE(d.wait_ready());
    CHECK(d.running());
    CHECK(d.node("db")["exports"] == json{{"OK", "1"}});
    CHECK(env_of(d, "client", "OK") == "1");
}

TEST_CASE("libchip: chip_notify sends its state as is to NOTIFY_SOCKET") {
    TempDir dir;
    std::string path = dir.file("notify");
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);

    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    CHECK(chip_notify("CHIP_EXPORT_DB_PORT=5432\nREADY=1") == 0);
    chip::Client::notify("CHIP_EXPORT_X=1");
    CHECK(chip_notify(nullptr) == -EINVAL);
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    CHECK(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))) ==
          "CHIP_EXPORT_DB_PORT=5432\nREADY=1");
    n = ::recv(fd, buf, sizeof buf, 0);
    CHECK(std::string(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0))) == "CHIP_EXPORT_X=1");
    ::unsetenv("NOTIFY_SOCKET");
    CHECK(chip_notify("READY=1") == 0);  // nothing to tell
    ::close(fd);
}
