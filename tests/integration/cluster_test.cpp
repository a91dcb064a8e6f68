// The cluster (README.md, "Cluster") against a real etcd that each case starts
// on free loopback ports, with its own data folder, and stops by pid: several
// chipds (their own sockets and node names) stand in for hosts. Memberships
// mirrored, views on every host, deaths, a SIGKILLed chipd's members expiring,
// etcd stopped and back, cluster-wide signals, TLS, a chipd without "cluster",
// an unreachable endpoint and garbage under the prefix.
//
// A case skips (exit 77) only when etcd is not installed or cannot serve here
// (scripts/test installs etcd-server).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "chip/chip.h"
#include "harness.hpp"

using namespace chip::test;
using nlohmann::json;

namespace {

// A loopback TCP port nobody listens on now (the kernel's pick for port 0).
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
    ::close(fd);
    return ntohs(a.sin_port);
}

// One POST to 127.0.0.1:PORT, written by hand (the test's own tool, to plant
// keys); the answer's body, or nullopt when nothing answers.
std::optional<std::string> http_post(int port, const std::string &path, const std::string &body) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    std::string req = "POST " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: " +
                      "application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return std::nullopt;
    }
    std::string resp;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    auto end = resp.find("\r\n\r\n");
    if (resp.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return std::nullopt;
    return resp.substr(end + 4);
}

std::string base64(const std::string &s) {
    static const char *k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < s.size(); i += 3) {
        unsigned n = (unsigned(uint8_t(s[i])) << 16) | (unsigned(uint8_t(s[i + 1])) << 8) |
                     uint8_t(s[i + 2]);
        out += {k[n >> 18], k[(n >> 12) & 63], k[(n >> 6) & 63], k[n & 63]};
    }
    if (s.size() - i == 1) {
        unsigned n = unsigned(uint8_t(s[i])) << 16;
        out += {k[n >> 18], k[(n >> 12) & 63], '=', '='};
    } else if (s.size() - i == 2) {
        unsigned n = (unsigned(uint8_t(s[i])) << 16) | (unsigned(uint8_t(s[i + 1])) << 8);
        out += {k[n >> 18], k[(n >> 12) & 63], k[(n >> 6) & 63], '='};
    }
    return out;
}

std::string etcd_binary() {
    if (const char *e = std::getenv("ETCD"); e && *e) return e;
    return "/usr/bin/etcd";
}

// An etcd of the test's own: loopback ports, a data folder in a TempDir,
// stopped by pid. TLS: client URLs over https with a client certificate
// required (the files under DIR made by make_certificates).
class Etcd {
public:
    struct Tls {
        std::string ca, cert, key;
    };
    explicit Etcd(std::optional<Tls> tls = std::nullopt)
        : tls_(std::move(tls)), client_(free_port()), peer_(free_port()) {
        if (::access(etcd_binary().c_str(), X_OK) != 0)
            skip("etcd is not installed (apt-get install etcd-server)");
        start();
    }
    ~Etcd() { stop(); }

    std::string url() const {
        return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(client_);
    }
    int port() const { return client_; }

    void start() {
        std::string peer = "http://127.0.0.1:" + std::to_string(peer_);
        std::vector<std::string> argv{etcd_binary(),
                                      "--name",
                                      "t",
                                      "--data-dir",
                                      dir_.file("data"),
                                      "--listen-client-urls",
                                      url(),
                                      "--advertise-client-urls",
                                      url(),
                                      "--listen-peer-urls",
                                      peer,
                                      "--initial-advertise-peer-urls",
                                      peer,
                                      "--initial-cluster",
                                      "t=" + peer,
                                      "--log-level",
                                      "error"};
        if (tls_)
            argv.insert(argv.end(), {"--cert-file", tls_->cert, "--key-file", tls_->key,
                                     "--client-cert-auth", "--trusted-ca-file", tls_->ca});
        ChildOptions opts;
        opts.out_file = dir_.file("etcd.log");
        opts.err_to_out = true;
        proc_ = std::make_unique<Child>(argv, opts);
        // Served when the port answers (plain HTTP only; TLS: when it listens).
        bool up = wait_until(
            [&] {
                if (proc_->exit_code()) return true;
                if (tls_) return port_listens();
                auto r = http_post(client_, "/v3/kv/range", R"({"key":"AA=="})");
                return r && r->find("header") != std::string::npos;
            },
            scaled(20000ms));
        if (!up || proc_->exit_code())
            skip("etcd does not serve here: " + read_file(dir_.file("etcd.log")).substr(0, 400));
    }
    // SIGTERM by pid, and reaped.
    void stop() {
        if (!proc_) return;
        proc_->signal(SIGTERM);
        if (!proc_->wait(scaled(10000ms))) proc_->kill();
        proc_.reset();
    }
    // Puts KEY = VALUE as some other program would.
    void put(const std::string &key, const std::string &value) {
        auto r = http_post(client_, "/v3/kv/put",
                           json{{"key", base64(key)}, {"value", base64(value)}}.dump());
        REQUIRE(r.has_value());
    }

private:
    bool port_listens() const {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(client_));
        bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
        ::close(fd);
        return ok;
    }
    TempDir dir_;
    std::optional<Tls> tls_;
    int client_;
    int peer_;
    std::unique_ptr<Child> proc_;
};

// A spec for host NODE: registry "jobs", WORKERS workers "w" joining group "g".
json host_spec(const std::string &endpoint, const std::string &node, unsigned instances = 1,
               const json &extra_cluster = json::object()) {
    json cluster{{"etcd", {endpoint}}, {"name", "t"}, {"node", node}, {"lease_ttl", 2}};
    for (const auto &[k, v] : extra_cluster.items()) cluster[k] = v;
    json fields{{"join", {{"jobs", {"g"}}}}};
    if (instances != 1) fields["instances"] = instances;  // a pool: /w/0, /w/1...
    return spec(json::array({worker("w", helper("sleep"), fields)}), json::object(),
                {{"registries", {"jobs"}}, {"cluster", cluster}});
}

using Members = std::set<std::pair<std::string, pid_t>>;

// chipctl --json members --cluster GROUP: the (node, pid) pairs; nullopt when
// chipctl fails.
std::optional<Members> cluster_members(Chipd &d, const std::string &group = "g") {
    auto r = d.run_ctl({"--json", "members", "--cluster", group});
    if (r.exit_code != 0) return std::nullopt;
    Members out;
    for (const auto &m : json::parse(r.out)) out.insert({m["node"], m["pid"].get<pid_t>()});
    return out;
}

// Polls until D's cluster view of "g" is WANT.
bool wait_view(Chipd &d, const Members &want, Ms deadline = kDeadline) {
    if (wait_until([&] { return cluster_members(d) == want; }, deadline)) return true;
    // What it is instead, for the failure's report.
    std::string seen;
    if (auto m = cluster_members(d))
        for (const auto &[node, pid] : *m) seen += " " + node + ":" + std::to_string(pid);
    else
        seen = " (chipctl failed: " + d.run_ctl({"members", "--cluster", "g"}).err + ")";
    std::string wanted;
    for (const auto &[node, pid] : want) wanted += " " + node + ":" + std::to_string(pid);
    MESSAGE("view of " << d.socket() << ":" << seen << "; wanted" << wanted);
    return false;
}

// The pids of the workers of D ("w", or "w/N" for a pool).
std::vector<pid_t> worker_pids(Chipd &d, const std::string &path = "w") {
    std::vector<pid_t> pids;
    for (const auto &n : d.status_json(path))
        if (n.value("pid", 0) > 0 && n.value("type", "") != "supervisor")
            pids.push_back(n["pid"].get<pid_t>());
    return pids;
}

Members members_of(const std::string &node, const std::vector<pid_t> &pids) {
    Members out;
    for (pid_t p : pids) out.insert({node, p});
    return out;
}

Members join(Members a, const Members &b) {
    a.insert(b.begin(), b.end());
    return a;
}

json cluster_status(Chipd &d) {
    return d.request({{"op", "cluster"}});
}

}  // namespace

TEST_CASE("three hosts: each one's members are seen in every view; a death leaves them all") {
    Etcd etcd;
    Chipd a(host_spec(etcd.url(), "a")), b(host_spec(etcd.url(), "b")),
        c(host_spec(etcd.url(), "c", 2));
    a.start_ready();
    b.start_ready();
    c.start_ready();
    pid_t pa = a.pid_of("w"), pb = b.pid_of("w");
    auto pcs = worker_pids(c);
    REQUIRE(pcs.size() == 2);
    Members all = join(join(members_of("a", {pa}), members_of("b", {pb})), members_of("c", pcs));
    for (Chipd *d : {&a, &b, &c}) CHECK(wait_view(*d, all));

    // A join through chipctl on b, for a worker there: seen on a and c.
    REQUIRE(b.run_ctl({"join", "h", "--pid", std::to_string(pb)}).exit_code == 0);
    CHECK(wait_until([&] { return cluster_members(a, "h") == Members{{"b", pb}}; }));
    CHECK(wait_until([&] { return cluster_members(c, "h") == Members{{"b", pb}}; }));
    auto groups = a.run_ctl({"groups", "--cluster"});
    CHECK(groups.exit_code == 0);
    CHECK(groups.out.find("g") != std::string::npos);
    CHECK(groups.out.find("h") != std::string::npos);

    // a's worker dies: gone from every view, its replacement is there.
    ::kill(pa, SIGKILL);
    pid_t pa2 = a.wait_new_pid("w", pa);
    REQUIRE(pa2 > 0);
    Members after = join(join(members_of("a", {pa2}), members_of("b", {pb})), members_of("c", pcs));
    for (Chipd *d : {&a, &b, &c}) CHECK(wait_view(*d, after));

    // Lines NODE PID.
    auto lines = b.run_ctl({"members", "--cluster", "h"});
    CHECK(lines.out == "b " + std::to_string(pb) + "\n");
    auto st = cluster_status(c);
    CHECK(st["state"] == "connected");
    CHECK(st["node"] == "c");
    CHECK(st["nodes"] == json({"a", "b", "c"}));
    CHECK(st["lease"].is_string());
    auto text = c.run_ctl({"cluster"});
    CHECK(text.exit_code == 0);
    CHECK(text.out.find("state     connected") != std::string::npos);

    // libchip reads the view too.
    chip_client *cl = chip_connect(a.socket().c_str());
    REQUIRE(cl != nullptr);
    chip_cluster_member out[8];
    ssize_t n = chip_members_cluster(cl, "jobs", "h", out, 8);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(std::string(out[0].node) == "b");
        CHECK(out[0].pid == pb);
    }
    chip_close(cl);

    // A clean stop revokes the lease: b's members leave at once.
    CHECK(b.stop() == 0);
    CHECK(wait_view(a, join(members_of("a", {pa2}), members_of("c", pcs)), 1500ms));
}

TEST_CASE("a chipd killed with SIGKILL: its members leave the other views within lease_ttl + 1 s") {
    Etcd etcd;
    Chipd a(host_spec(etcd.url(), "a")), b(host_spec(etcd.url(), "b"));
    a.start_ready();
    b.start_ready();
    pid_t pa = a.pid_of("w"), pb = b.pid_of("w");
    REQUIRE(wait_view(a, {{"a", pa}, {"b", pb}}));
    // A killed chipd leaves its regions behind: removed here, by name.
    std::vector<std::string> left = b.shm_files();
    for (std::size_t i = 0, n = left.size(); i < n; ++i) left.push_back(left[i] + "@cluster");
    b.signal(SIGKILL);
    REQUIRE(b.wait_exit().has_value());
    // lease_ttl 2: etcd lets the lease expire at most 2 s after the last keepalive.
    CHECK(wait_view(a, {{"a", pa}}, 3000ms));
    for (const auto &f : left) CHECK(::unlink(f.c_str()) == 0);
}

TEST_CASE("a reexec: the other hosts never lose its members, also once its old lease is gone") {
    Etcd etcd;
    Chipd a(host_spec(etcd.url(), "a")), b(host_spec(etcd.url(), "b"));
    a.start_ready();
    b.start_ready();
    pid_t pa = a.pid_of("w"), pb = b.pid_of("w");
    REQUIRE(wait_view(b, {{"a", pa}, {"b", pb}}));
    REQUIRE(wait_until([&] { return cluster_status(a).value("state", "") == "connected"; }));
    std::string old_lease = cluster_status(a).value("lease", "");
    REQUIRE(!old_lease.empty());
    std::vector<std::string> regions = a.shm_files();

    auto r = a.run_ctl({"reexec"});
    INFO(r.out << r.err << a.stderr_text());
    REQUIRE(r.exit_code == 0);
    // A new session on a new lease; the old one is left to expire.
    json now;
    REQUIRE(wait_until([&] {
        now = cluster_status(a);
        return now.value("state", "") == "connected" && now.value("lease", "") != old_lease;
    }));
    auto ttl_of_old = [&] {
        auto reply =
            http_post(etcd.port(), "/v3/lease/timetolive",
                      json{{"ID", std::to_string(std::stoll(old_lease, nullptr, 16))}}.dump());
        if (!reply) return std::optional<long>();
        auto j = json::parse(*reply, nullptr, false);
        if (j.is_discarded() || !j.contains("TTL")) return std::optional<long>();
        return std::optional<long>(
            std::stol(j["TTL"].is_string() ? j["TTL"].get<std::string>() : j["TTL"].dump()));
    };
    REQUIRE(wait_until([&] { return ttl_of_old() == std::optional<long>(-1); }));
    // Its member is still everyone's, and its regions are the same.
    CHECK(wait_view(b, {{"a", pa}, {"b", pb}}));
    CHECK(wait_view(a, {{"a", pa}, {"b", pb}}));
    CHECK(a.shm_files() == regions);
    CHECK(a.pid_of("w") == pa);
    // And a death after it still leaves every view.
    ::kill(pa, SIGKILL);
    CHECK(wait_until([&] {
        auto m = cluster_members(b);
        return m && m->count({"a", pa}) == 0 && m->count({"b", pb}) == 1;
    }));
}

TEST_CASE("etcd stopped and back: chipds supervise on, warn once and resync") {
    Etcd etcd;
    Chipd a(host_spec(etcd.url(), "a")), b(host_spec(etcd.url(), "b"));
    a.start_ready();
    b.start_ready();
    pid_t pa = a.pid_of("w"), pb = b.pid_of("w");
    REQUIRE(wait_view(b, {{"a", pa}, {"b", pb}}));

    etcd.stop();
    CHECK(a.wait_log({"warning", "cluster: etcd at", "retrying with backoff"}));
    CHECK(wait_until([&] { return cluster_status(a)["state"] != "connected"; }));
    // Local supervision goes on: a worker that dies meanwhile is restarted.
    ::kill(pa, SIGKILL);
    pid_t pa2 = a.wait_new_pid("w", pa);
    REQUIRE(pa2 > 0);
    CHECK(a.run_ctl({"members", "g"}).out == std::to_string(pa2) + "\n");

    etcd.start();
    CHECK(a.wait_log({"cluster: etcd at", "reached again: resynced"}));
    // The stale key of the dead worker is gone, the new one is there.
    CHECK(wait_view(b, {{"a", pa2}, {"b", pb}}));
    CHECK(wait_view(a, {{"a", pa2}, {"b", pb}}));
    CHECK(cluster_status(a)["state"] == "connected");
    // Warned once for the outage, not once per retry.
    std::size_t warnings = 0;
    for (const auto &line : a.stderr_lines())
        if (line.find("retrying with backoff") != std::string::npos) ++warnings;
    CHECK(warnings == 1);
}

TEST_CASE("signal --group --cluster reaches the members on every host") {
    Etcd etcd;
    Chipd a(host_spec(etcd.url(), "a")), b(host_spec(etcd.url(), "b", 2));
    a.start_ready();
    b.start_ready();
    pid_t pa = a.pid_of("w");
    auto pbs = worker_pids(b);
    REQUIRE(pbs.size() == 2);
    REQUIRE(wait_view(a, join(members_of("a", {pa}), members_of("b", pbs))));
    auto r = a.run_ctl({"--json", "signal", "TERM", "--group", "g", "--cluster"});
    CHECK(r.exit_code == 0);
    json out = json::parse(r.out);
    CHECK(out["nodes"]["a"] == json({pa}));
    std::set<pid_t> got;
    for (const auto &p : out["nodes"]["b"]) got.insert(p.get<pid_t>());
    CHECK(got == std::set<pid_t>(pbs.begin(), pbs.end()));
    CHECK(out["silent"].empty());
    // They got it: each is replaced.
    CHECK(a.wait_new_pid("w", pa) > 0);
    CHECK(wait_until([&] { return !process_alive(pbs[0]) && !process_alive(pbs[1]); }));
    // Without a cluster: refused.
    Chipd plain(spec(json::array({worker("w", helper("sleep"), {{"join", {{"jobs", {"g"}}}}})}),
                     json::object(), {{"registries", {"jobs"}}}));
    plain.start_ready();
    auto refused = plain.run_ctl({"signal", "TERM", "--group", "g", "--cluster"});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("cluster") != std::string::npos);
}

TEST_CASE("a chipd without cluster: local registry as always, the cluster calls say ENOTCONN") {
    Chipd plain(spec(json::array({worker("w", helper("sleep"), {{"join", {{"jobs", {"g"}}}}})}),
                     json::object(), {{"registries", {"jobs"}}}));
    plain.start_ready();
    pid_t p = plain.pid_of("w");
    CHECK(plain.run_ctl({"members", "g"}).out == std::to_string(p) + "\n");
    auto m = plain.run_ctl({"members", "--cluster", "g"});
    CHECK(m.exit_code == 1);
    CHECK(m.err.find("no \"cluster\"") != std::string::npos);
    CHECK(plain.request({{"op", "cluster"}})["errno"] == "ENOTCONN");
    chip_client *cl = chip_connect(plain.socket().c_str());
    REQUIRE(cl != nullptr);
    chip_cluster_member out[2];
    CHECK(chip_members_cluster(cl, "jobs", "g", out, 2) == -ENOTCONN);
    chip_close(cl);
    for (const auto &f : plain.shm_files()) CHECK(f.find("@cluster") == std::string::npos);
}

TEST_CASE("an unreachable etcd: chipd starts and supervises, warns once, keeps retrying") {
    std::string nowhere = "http://127.0.0.1:" + std::to_string(free_port());
    Chipd a(host_spec(nowhere, "a"));
    a.start_ready();
    pid_t pa = a.pid_of("w");
    CHECK(a.run_ctl({"members", "g"}).out == std::to_string(pa) + "\n");
    CHECK(a.wait_log({"warning", "cluster: etcd at " + nowhere}));
    auto st = cluster_status(a);
    CHECK(st["state"] != "connected");
    CHECK(st.contains("error"));
    CHECK(cluster_members(a) == Members{});  // an empty view, not an error
    CHECK(a.stop() == 0);
}

TEST_CASE("keys under the prefix that are no chip keys are ignored with a warning") {
    Etcd etcd;
    Chipd a(host_spec(etcd.url(), "a"));
    a.start_ready();
    pid_t pa = a.pid_of("w");
    REQUIRE(wait_view(a, {{"a", pa}}));
    etcd.put("/chip/t/jobs/g/x/notapid", R"({"node":"x","pid":1})");
    etcd.put("/chip/t/jobs/g/y/5", "junk");
    etcd.put("/chip/t/jobs/g/z/6", R"({"node":"other","pid":6})");
    etcd.put("/chip/t/stray", "x");
    CHECK(a.wait_log({"warning", "cluster: ignored a key under /chip/t/"}));
    // A well-formed key from another host still counts.
    etcd.put("/chip/t/jobs/g/w/7", R"({"node":"w","pid":7,"path":"x"})");
    CHECK(wait_view(a, {{"a", pa}, {"w", 7}}));
    CHECK(a.running());
    CHECK(cluster_status(a)["state"] == "connected");
}

TEST_CASE("TLS: a CA, a client certificate and key made with openssl") {
    if (::access("/usr/bin/openssl", X_OK) != 0) skip("openssl is not installed");
    TempDir certs;
    auto run = [&](const std::vector<std::string> &argv) {
        auto r = run_process(argv, 60000ms);
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
    };
    std::string ca_key = certs.file("ca.key"), ca = certs.file("ca.pem");
    run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=chip-test-ca", "-keyout", ca_key, "-out", ca});
    // Server and client certificates signed by the CA; the server's for 127.0.0.1.
    write_file(certs.file("server.ext"), "subjectAltName=IP:127.0.0.1\n");
    write_file(certs.file("client.ext"), "extendedKeyUsage=clientAuth\n");
    for (std::string who : {"server", "client"}) {
        run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
             "/CN=chip-test-" + who, "-keyout", certs.file(who + ".key"), "-out",
             certs.file(who + ".csr")});
        run({"/usr/bin/openssl", "x509", "-req", "-in", certs.file(who + ".csr"), "-CA", ca,
             "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile",
             certs.file(who + ".ext"), "-out", certs.file(who + ".pem")});
    }
    Etcd etcd(Etcd::Tls{ca, certs.file("server.pem"), certs.file("server.key")});
    json tls{{"tls",
              {{"ca", ca}, {"cert", certs.file("client.pem")}, {"key", certs.file("client.key")}}}};
    Chipd a(host_spec(etcd.url(), "a", 1, tls)), b(host_spec(etcd.url(), "b", 1, tls));
    a.start_ready();
    b.start_ready();
    pid_t pa = a.pid_of("w"), pb = b.pid_of("w");
    CHECK(wait_view(a, {{"a", pa}, {"b", pb}}));
    CHECK(wait_view(b, {{"a", pa}, {"b", pb}}));
    // Without the client certificate etcd refuses: a warning, supervision goes on.
    Chipd c(host_spec(etcd.url(), "c", 1, json{{"tls", {{"ca", ca}}}}));
    c.start_ready();
    CHECK(c.wait_log({"warning", "cluster: etcd at " + etcd.url()}));
    CHECK(cluster_status(c)["state"] != "connected");
}
