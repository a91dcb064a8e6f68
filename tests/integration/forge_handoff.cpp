// forge_handoff: plays the old chipd's part of a reexec with a hand-off that
// is not sound, to see the new chipd refuse it without touching a worker.
//
//   forge_handoff MUTATION PIDFILE CHIPD SOCKET SPEC
//
// Forks a worker (sleep 1000) in its own process group and writes its pid to
// PIDFILE. Builds the State a chipd running SPEC with that worker would hand
// over (the spec loaded, a tree started with the worker as its process), encodes
// it, spoils the bytes as MUTATION says, writes them to a memfd, then becomes
//   CHIPD --socket SOCKET SPEC --handoff FD
// in the same process (so the worker is its child, as after a real reexec).
//
// MUTATION: none (the bytes as encoded), truncate-half (the first half),
// truncate-header (the first 8 bytes), flip (one byte in the middle inverted),
// version:N (the header names version N), garbage (bytes that are no hand-off).
// Exit 2 on bad usage, 3 when something fails before the exec.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "core/tree.hpp"
#include "handoff/codec.hpp"
#include "handoff/state.hpp"
#include "spec/loader.hpp"

namespace {

using namespace chip;

// The world of a tree that is only described: its one spawn is the worker
// already forked.
struct Described : core::Effects {
    explicit Described(pid_t pid) : worker(pid) {}
    Result<pid_t> spawn(const core::Node &) override { return worker; }
    void kill_group(pid_t, int) override {}
    void log(const core::Event &) override {}
    void exit(int) override {}
    pid_t worker;
};

[[noreturn]] void fail(const std::string &what) {
    std::fprintf(stderr, "forge_handoff: %s\n", what.c_str());
    std::exit(3);
}

bool write_all(int fd, const std::string &bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// BYTES with the header's version field set to VERSION: the first offset at
// which a little-endian 32-bit VERSION makes version_of() read it.
std::string with_version(std::string bytes, std::uint32_t version) {
    for (std::size_t off = 0; off + 4 <= bytes.size() && off < 64; ++off) {
        std::string b = bytes;
        for (int i = 0; i < 4; ++i) b[off + i] = static_cast<char>((version >> (8 * i)) & 0xff);
        if (handoff::version_of(b) == version) return b;
    }
    fail("no version field found in the header");
}

std::string mutate(const std::string &bytes, const std::string &how) {
    if (how == "none" || how == "other-pid" || how == "closed-fd" || how == "bad-registry")
        return bytes;
    if (how == "truncate-half") return bytes.substr(0, bytes.size() / 2);
    if (how == "truncate-header") return bytes.substr(0, 8);
    if (how == "flip") {
        std::string b = bytes;
        b[b.size() / 2] = static_cast<char>(~b[b.size() / 2]);
        return b;
    }
    if (how.rfind("version:", 0) == 0)
        return with_version(bytes, static_cast<std::uint32_t>(std::atol(how.c_str() + 8)));
    if (how == "garbage") return std::string("this is no hand-off\n") + std::string(200, 'x');
    std::fprintf(stderr, "forge_handoff: unknown mutation %s\n", how.c_str());
    std::exit(2);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: forge_handoff MUTATION PIDFILE CHIPD SOCKET SPEC\n");
        return 2;
    }
    std::string how = argv[1], pidfile = argv[2], chipd = argv[3], socket = argv[4],
                spec_path = argv[5];

    pid_t worker = ::fork();
    if (worker < 0) fail("fork failed");
    if (worker == 0) {
        ::setpgid(0, 0);
        // Not the test's pipes: it outlives the chipd that reads them.
        int null = ::open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
        ::execlp("sleep", "sleep", "1000", static_cast<char *>(nullptr));
        ::_exit(127);
    }
    {
        std::string tmp = pidfile + ".tmp";
        FILE *f = std::fopen(tmp.c_str(), "w");
        if (!f) fail("cannot write " + tmp);
        std::fprintf(f, "%d\n", static_cast<int>(worker));
        std::fclose(f);
        if (std::rename(tmp.c_str(), pidfile.c_str()) != 0) fail("cannot rename " + tmp);
    }

    std::string bytes;
    try {
        handoff::State state;
        state.pid = ::getpid();
        state.version = CHIP_VERSION;
        state.socket_path = socket;
        // A listening socket, as the old chipd's would be (beside the
        // socket's path: a refusal must leave no socket file behind).
        state.listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::string listen_path = socket + ".forged";
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", listen_path.c_str());
        if (state.listen_fd < 0 ||
            ::bind(state.listen_fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
            ::listen(state.listen_fd, 16) != 0)
            fail("cannot listen on " + listen_path);
        state.spec = spec::load_file(spec_path);
        Described fx(worker);
        core::Tree tree(state.spec.root, fx);
        tree.start(core::Time(std::chrono::seconds(1)));
        state.tree = tree.snapshot();
        core::Node *node = tree.node_by_pid(worker);
        if (!node) fail("the tree did not take the worker");
        handoff::Slot slot;
        slot.id = node->id;
        slot.pid = worker;
        state.slots.push_back(slot);
        // Sound bytes whose content the new chipd must still refuse.
        if (how == "other-pid") state.pid += 1;
        if (how == "closed-fd") state.watches.push_back({worker, 1000});
        if (how == "bad-registry") {
            handoff::Registry r;
            r.spec.name = "jobs";
            r.shm_name = "/chip-forged-jobs";
            r.fd = ::open("/dev/null", O_RDWR);  // open across the exec, and no region
            state.registries.push_back(r);
        }
        bytes = handoff::encode(state);
    } catch (const std::exception &e) {
        fail(std::string("cannot build the hand-off: ") + e.what());
    }
    bytes = mutate(bytes, how);

    int fd = ::memfd_create("chip-forged-handoff", 0);
    if (fd < 0) fail("memfd_create failed");
    if (!write_all(fd, bytes) || ::lseek(fd, 0, SEEK_SET) != 0) fail("cannot write the memfd");
    std::string fd_arg = std::to_string(fd);
    std::vector<const char *> args{chipd.c_str(), "--socket",     socket.c_str(), spec_path.c_str(),
                                   "--handoff",   fd_arg.c_str(), nullptr};
    ::execv(chipd.c_str(), const_cast<char *const *>(args.data()));
    fail("cannot execute " + chipd);
}
