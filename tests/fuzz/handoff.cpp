// Fuzz target: the hand-off codec (src/handoff/codec.hpp), what a new chipd
// reads from the one before it across `chipctl reexec`.
//
// Input: a hand-off's bytes, read as they are and resealed (their header's
// length and checksum made to fit: what the checksum would otherwise keep
// the fuzzer from reaching). Checked: each is read whole or refused with
// EINVAL or ENOMEM and a one-line "hand-off: " reason; a State read is sound
// (each fd named once, sink indices in range, every node with its definition,
// every worker definition with a launch) and written again in its version,
// reads back and writes the same bytes.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "handoff/codec.hpp"

using namespace chip;

namespace {

void check_node(const core::NodeSnapshot &n) {
    CHECK_FUZZ(n.is_supervisor ? n.sup != nullptr : n.worker != nullptr);
    if (n.worker) CHECK_FUZZ(n.worker->launch != nullptr);
    for (const auto &p : n.pools) CHECK_FUZZ(p.def && p.def->launch);
    for (const auto &c : n.children) check_node(c);
}

void check_sound(const handoff::State &s) {
    auto fds = s.fds();
    std::sort(fds.begin(), fds.end());
    CHECK_FUZZ(std::adjacent_find(fds.begin(), fds.end()) == fds.end());
    for (auto i : s.shared_sinks) CHECK_FUZZ(i < s.sinks.size());
    for (const auto &p : s.pipes) CHECK_FUZZ(p.sink < s.sinks.size() && p.fd >= 0);
    for (const auto &x : s.slots) {
        if (x.out_file) CHECK_FUZZ(*x.out_file < s.sinks.size());
        if (x.err_file) CHECK_FUZZ(*x.err_file < s.sinks.size());
    }
    CHECK_FUZZ(s.tree.root.is_supervisor);
    check_node(s.tree.root);
}

void run(std::string_view bytes) {
    auto r = handoff::decode(bytes);
    if (!r.ok()) {
        const auto &e = r.error();
        CHECK_FUZZ(e.code == EINVAL || e.code == ENOMEM);
        CHECK_FUZZ(e.message.starts_with("hand-off: "));
        CHECK_FUZZ(e.message.find('\n') == std::string::npos);
        return;
    }
    std::uint32_t version = handoff::version_of(bytes);
    CHECK_FUZZ(handoff::accepts(version));
    if (version < 2) CHECK_FUZZ(!r->systemd);
    check_sound(*r);
    std::string again = handoff::encode(*r, version);
    auto r2 = handoff::decode(again);
    CHECK_FUZZ(r2.ok());
    CHECK_FUZZ(r2->tree.root.children.size() == r->tree.root.children.size());
    CHECK_FUZZ(handoff::encode(*r2, version) == again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string bytes(reinterpret_cast<const char *>(data), size);
    run(bytes);
    run(handoff::reseal(bytes));
    return 0;
}
